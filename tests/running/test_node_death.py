"""A worker node dies mid-run: its trial goes on on the head from its checkpoint, records whole.

A two-node Ray cluster on loopback (`two_node_cluster.py`: `ray.cluster_utils.Cluster`, 1 CPU a
node, token auth) runs a job of two trials, one on each node; `run_job(job, ray_address=...)` is
the driver, in its own process. Once the worker node's trial has reported (and checkpointed)
a few iterations, the node is removed as a dead machine (`Cluster.remove_node`, not graceful).
The trial is retried (``trials.max_failures``) on the head once its CPU is free, restored from
its last checkpoint; both trials reach their budget, each has one MLflow run (none RUNNING)
whose ``score`` steps are exactly its Tune results' env steps. While the cluster is up, an
embedded Ray (`init_local_ray`) started where it is the machine's recorded current cluster
starts its own instance rather than joining it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest
import yaml

pytestmark = pytest.mark.slow

HELPER = Path(__file__).with_name("two_node_cluster.py")
# 15 iterations of 128 env steps: the node dies after 4, leaving the moved trial 11 to run on
# the head (from its checkpoint) while the head's own trial finishes first.
BUDGET = 1920
DRIVER = """
import sys
from lrtune.running import run_job
from lrtune.specs import load_job
outcome = run_job(load_job(sys.argv[1]), ray_address=sys.argv[2])
sys.exit(outcome.exit_code)
"""

# Prints the GCS address of the embedded Ray that `init_local_ray` gives this process.
LOCAL_PROBE = """
import ray
from lrtune.running import init_local_ray
init_local_ray(num_cpus=1)
print(ray.get_runtime_context().gcs_address)
ray.shutdown()
"""


def _chaos_module() -> ModuleType:
    """benchmarks/chaos.py (not a package): its record checks."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos.py"
    spec = importlib.util.spec_from_file_location("lrtune_chaos_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def wait_for(check: Any, limit: float, what: str, poll: float = 0.5) -> Any:
    """Call ``check`` until it returns something truthy; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {limit:.0f} s waiting for {what}")


def result_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a trial's result.json (a torn last line skipped)."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rows.append(json.loads(line))
    return rows


class TwoNodes:
    """`two_node_cluster.py` in its own process group, and its temp dir (short: Ray's socket
    paths must fit in 107 bytes)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="lrt-nd-", dir="/tmp"))
        self.info_file = self.base / "info.json"
        self.log = (self.base / "cluster.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), str(self.info_file), "--temp-dir", str(self.base)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.info: dict[str, Any] = {}

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the cluster died: {(self.base / 'cluster.log').read_text()}")
            return self.info_file.exists()

        wait_for(ready, 240, "the two-node cluster")
        self.info = json.loads(self.info_file.read_text())

    def remove_worker(self) -> None:
        """Remove the worker node (SIGUSR1 to the helper) and wait until it is gone."""
        os.kill(self.proc.pid, signal.SIGUSR1)
        wait_for(Path(f"{self.info_file}.removed").exists, 120, "the worker node's removal")

    def stop(self) -> None:
        """SIGTERM (Cluster.shutdown), then kill any process of this cluster left by its id."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        marker = str(self.base)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            with contextlib.suppress(psutil.Error):
                if marker in " ".join(proc.info.get("cmdline") or []):
                    proc.kill()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture()
def nodes_and_env(tmp_path: Path) -> Iterator[tuple[TwoNodes, dict[str, str]]]:
    """The cluster, and the environment its driver runs with (the cluster's token, a HOME of
    its own so no other Ray's token file is read)."""
    token = secrets.token_hex(32)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")
    }
    env.update(
        HOME=str(home),
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=token,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
        # Where the venv's `python` is: Ray starts its workers with it.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    nodes = TwoNodes(env)
    try:
        nodes.wait_ready()
        yield nodes, env
    finally:
        nodes.stop()


def test_a_dead_worker_node_moves_its_trial_to_the_head_from_its_checkpoint(
    tmp_path: Path, nodes_and_env: tuple[TwoNodes, dict[str, str]]
) -> None:
    nodes, env = nodes_and_env
    name = "node-death"
    job = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "policy": {"lr": 3e-4},
        "budget": {"trial_env_steps": BUDGET},
        # A checkpoint after every iteration: the moved trial continues from a recent one.
        "trials": {"num": 2, "max_concurrent": 2, "max_failures": 2, "checkpoint_seconds": 0},
        "resources": {"cpus": 1},
        "scheduler": {"name": "none"},
        "hyperparams": {
            "train_batch_size_per_learner": 128,
            "minibatch_size": 64,
            "num_epochs": 1,
            "num_envs_per_env_runner": 1,
        },
        "storage_path": str(tmp_path / "ray_results"),
        "results_dir": str(tmp_path / "results"),
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }
    job_path = tmp_path / f"{name}.yaml"
    job_path.write_text(yaml.safe_dump(job, sort_keys=False))
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(job_path), nodes.info["gcs_address"]],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    head, worker = nodes.info["head_node_id"], nodes.info["worker_node_id"]
    experiment = tmp_path / "ray_results" / name

    def trial_on_the_worker() -> Path | None:
        if driver.poll() is not None:
            raise AssertionError((tmp_path / "driver.log").read_text()[-4000:])
        for path in experiment.glob("trial_*/result.json"):
            rows = result_rows(path)
            if sum(1 for r in rows if r.get("node_id") == worker) >= 4:  # 4 checkpoints
                return path
        return None

    try:
        moved = wait_for(trial_on_the_worker, 300, "a trial with 4 results on the worker node")
        nodes.remove_worker()
        code = driver.wait(timeout=480)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        log.close()
    output = (tmp_path / "driver.log").read_text()
    assert code == 0, output[-4000:]

    rows = result_rows(moved)
    on_worker = [int(r["env_steps"]) for r in rows if r.get("node_id") == worker]
    on_head = [int(r["env_steps"]) for r in rows if r.get("node_id") == head]
    assert on_worker and on_head, {r.get("node_id") for r in rows}
    # Restored from a checkpoint of its run on the worker, not started over.
    assert 128 < on_head[0] <= max(on_worker) + 128, (on_worker, on_head)
    assert max(on_head) >= BUDGET

    summary = json.loads((tmp_path / "results" / name / "summary.json").read_text())
    moved_id = moved.parent.name.removeprefix("trial_")
    by_id = {t["trial_id"]: t for t in summary["trials"]}
    assert by_id[moved_id]["node_id"] == head
    assert all(t["status"] == "completed" and t["env_steps"] >= BUDGET for t in by_id.values())

    chaos = _chaos_module()
    report = chaos.check_records(tmp_path, name, 2, BUDGET, study=False)
    assert report.failures == [], "\n".join(report.failures)

    # While the cluster is up: recorded as the machine's current cluster (the file `ray start`
    # leaves), it is still not joined by an embedded Ray, which starts an instance of its own.
    ray_tmp = Path(tempfile.mkdtemp(prefix="lrt-cur-", dir="/tmp"))
    try:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(nodes.info["gcs_address"])
        probe = subprocess.run(
            [sys.executable, "-c", LOCAL_PROBE],
            env={**env, "RAY_TMPDIR": str(ray_tmp)},
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert probe.returncode == 0, probe.stderr[-3000:]
    address = probe.stdout.strip().splitlines()[-1]
    assert address.startswith("127.0.0.1:") and address != nodes.info["gcs_address"], address
