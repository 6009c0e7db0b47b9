"""End to end on one machine, all on 127.0.0.1: a two-node Ray cluster with token auth and its
Jobs API, an MLflow server on PostgreSQL, and `lrtune submit` / `lrtune jobs` as a user runs them.

Covered: trials spread over both nodes, one MLflow run per trial with a final status, the logs
show the run, a resubmission resumes without a new trial, the token is refused when missing or
wrong and appears in no log, result or MLflow row, `lrtune jobs stop` ends the experiment
gracefully, and a fresh cluster over the same storage and MLflow server resumes it (what a
KubeRay RayJob retry is). Everything started here is stopped here, by process id.
"""

from __future__ import annotations

import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
from cluster_helpers import write_job  # type: ignore[import-not-found]

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HELPER = Path(__file__).with_name("ray_cluster.py")
VENV_BIN = Path(sys.executable).parent
FINAL = {"FINISHED", "FAILED", "KILLED"}
# One CPU per node and one trial per CPU: each node runs exactly one trial (the spread is
# deterministic), and no trial actor waits for a core of the 2-core CI machine.
TRIALS = 2
BUDGET = 5120  # env steps per trial: 40 iterations, time to stop the job midway (15 ran out once)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str, poll: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_process(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM to the process group we started (start_new_session), SIGKILL after ``grace``."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


# --- PostgreSQL (Debian's, set up by .ci/setup.sh) ------------------------------------------------


def postgres_bindir() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


class Postgres:
    """A throwaway PostgreSQL on 127.0.0.1 (initdb + pg_ctl, as the postgres user when root)."""

    def __init__(self, base: Path, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = base / "pg"
        self.data = self.folder / "data"
        self.port = free_port()
        self.started = False

    def _cmd(self, *args: str) -> list[str]:
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _run(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")
        return done.stdout

    def start(self) -> None:
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "log"),
            "-o", options, "-w", "-t", "120", "start",
        )  # fmt: skip
        self.started = True
        self._run(
            str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
            "postgres", "mlflow",
        )  # fmt: skip

    @property
    def uri(self) -> str:
        """SQLAlchemy 2 URI with the psycopg 3 driver."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/mlflow"

    def dump(self) -> str:
        """The MLflow database as SQL text."""
        return self._run(
            str(self.bindir / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
            "postgres", "mlflow",
        )  # fmt: skip

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.started = False


# --- the Ray cluster, as its own process ----------------------------------------------------------


class RayCluster:
    """`ray_cluster.py` in its own process group: two nodes, token auth, dashboard on loopback."""

    def __init__(self, base: Path, token: str, env: dict[str, str]) -> None:
        self.base = base
        self.port = free_port()
        self.info_file = base / "info.json"
        base.mkdir(parents=True)
        node_env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
        self.log = (base / "cluster.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HELPER), str(self.info_file), "--temp-dir", str(base),
             "--dashboard-port", str(self.port), "--nodes", "2", "--cpus", "1"],
            env=node_env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.info: dict[str, Any] = {}

    def wait_ready(self, timeout: float = 240) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the cluster died: {(self.base / 'cluster.log').read_text()}")
            return self.info_file.exists()

        wait_for(ready, timeout, "the Ray cluster")
        self.info = json.loads(self.info_file.read_text())

    @property
    def dashboard(self) -> str:
        return str(self.info["dashboard_url"])

    def stop(self) -> None:
        """SIGTERM to the helper, which calls Cluster.shutdown; then no process of ours may be
        left (a leftover is killed by its pid and reported)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                stop_process(self.proc, grace=5)
        self.log.close()
        marker = str(self.base)
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if marker in cmdline:  # this cluster's own temp dir: a process of ours
                warnings.warn(f"killing a leftover Ray process {proc.pid}", stacklevel=1)
                proc.kill()


# --- the stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    """What the tests share: folders, the servers, the cluster and how to run lrtune."""

    base: Path
    env: dict[str, str]
    pg: Postgres | None
    mlflow_url: str
    mlflow_proc: subprocess.Popen[Any]
    cluster: RayCluster
    token: str
    clusters: int = 1
    old_tokens: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # every CLI output, searched for the token
    job_ids: list[str] = field(default_factory=list)

    @property
    def store(self) -> Path:
        return self.base / "store"

    def lrtune(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run the lrtune command line as a user would (its own process)."""
        done = subprocess.run(
            [sys.executable, "-m", "lrtune", *args],
            env=env or self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.texts.append(done.stdout + done.stderr)
        return done

    def address(self) -> list[str]:
        return ["--address", self.cluster.dashboard]

    def fresh_cluster(self) -> None:
        """What a KubeRay retry does: a new cluster (new token), same storage and MLflow. The
        new one boots while the old one shuts down."""
        self.old_tokens.append(self.token)
        self.token = secrets.token_hex(32)
        self.clusters += 1
        fresh = RayCluster(self.base / f"c{self.clusters}", self.token, self.env)
        self.cluster.stop()
        self.cluster = fresh
        (self.base / "token").write_text(self.token)
        fresh.wait_ready()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """PostgreSQL, an MLflow server on it, a two-node Ray cluster; all stopped at the end."""
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="lrt-", dir="/tmp"))  # short: Ray's socket paths
    base.chmod(0o755)  # the postgres user reaches its data folder through it
    home = base / "home"
    home.mkdir()
    token = secrets.token_hex(32)
    (base / "token").write_text(token)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE")
    }
    env.update(
        HOME=str(home),  # no ~/.ray/auth_token of this machine's other Rays
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # `python` on the nodes: Ray's own
        RAY_AUTH_TOKEN_PATH=str(base / "token"),
        LRTUNE_CACHE_DIR=str(base / "cache"),
        RAY_USAGE_STATS_ENABLED="0",
    )
    pg: Postgres | None = None
    mlflow_proc = None
    cluster = None
    try:
        bindir = postgres_bindir()
        if bindir is not None:
            pg = Postgres(base, bindir)
            pg.start()
            backend = pg.uri
        else:
            warnings.warn(
                "PostgreSQL not found (bash .ci/setup.sh installs it): the MLflow server of "
                "this e2e test falls back to a sqlite backend",
                stacklevel=1,
            )
            backend = f"sqlite:///{base / 'mlflow-server.db'}"
        port = free_port()
        # Without MLflow's job runner: four processes tracking never uses, contending with the
        # trials for the 2 cores all through the module (lrtune.testing.NO_JOB_RUNNER).
        mlflow_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        mlflow_proc = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", backend, "--artifacts-destination", str(base / "mlartifacts"),
             "--workers", "1"],
            env=mlflow_env, stdout=(base / "mlflow.log").open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        cluster = RayCluster(base / "c1", token, env)  # starts while MLflow migrates its tables
        url = f"http://127.0.0.1:{port}"

        def mlflow_up() -> bool:
            if mlflow_proc is not None and mlflow_proc.poll() is not None:
                raise RuntimeError(f"mlflow server died: {(base / 'mlflow.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_for(mlflow_up, 240, "the MLflow server")
        cluster.wait_ready()
        print(f"e2e stack up in {time.monotonic() - started:.0f} s")
        stack = Stack(base, env, pg, url, mlflow_proc, cluster, token)
        yield stack
        cluster = stack.cluster
    finally:
        if cluster is not None:
            cluster.stop()
        if mlflow_proc is not None:
            stop_process(mlflow_proc, grace=15)
        if pg is not None:
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)


def summary_of(stack: Stack, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((stack.store / "results" / name / "summary.json").read_text())
    return data


def trial_runs(stack: Stack, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_url)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]


def reported_steps(stack: Stack, experiment: str) -> dict[str, int]:
    """Per trial run that has reported: the env step of its latest score in MLflow."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_url)
    if client.get_experiment_by_name(experiment) is None:
        return {}
    steps = {}
    for run in trial_runs(stack, experiment):
        if "score" in run.data.metrics:
            history = client.get_metric_history(run.info.run_id, "score")
            steps[run.info.run_name] = max(m.step for m in history)
    return steps


def one_run_per_trial(stack: Stack, experiment: str, trial_ids: set[str]) -> list[Any]:
    runs = trial_runs(stack, experiment)
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(f"trial_{t}" for t in trial_ids), names
    assert all(r.info.status in FINAL for r in runs), [r.info.status for r in runs]
    return runs


def lap(what: str, since: list[float]) -> None:
    """Print how long a phase took (shown with -s; the e2e budget is about 5 minutes)."""
    now = time.monotonic()
    print(f"e2e: {what} {now - since[0]:.0f} s")
    since[0] = now


def submit(stack: Stack, job: Path, *flags: str) -> tuple[subprocess.CompletedProcess[str], str]:
    done = stack.lrtune("submit", str(job), *stack.address(), "--allow-local-storage", *flags)
    found = re.search(r"ray job id: (\S+)", done.stdout)
    assert found, done.stdout + done.stderr
    stack.job_ids.append(found[1])
    return done, found[1]


# --- the tests --------------------------------------------------------------------------------


def test_stop_then_a_fresh_cluster_resumes_over_both_nodes_and_a_resubmit_adds_nothing(
    stack: Stack,
) -> None:
    job = write_job(
        stack.base / "job",
        "e2e-tiny",
        store=stack.store,
        budget={"trial_env_steps": BUDGET},
        trials={"num": TRIALS, "max_concurrent": TRIALS, "max_failures": 1},
        resources={"cpus": 1},
        tracking={"uri": stack.mlflow_url},
    )
    clock = [time.monotonic()]
    done, first_id = submit(stack, job, "--no-wait")
    assert done.returncode == 0, done.stdout + done.stderr
    lap("submitted (wheel built)", clock)
    assert f"dashboard:  {stack.cluster.dashboard}/#/jobs/{first_id}" in done.stdout
    assert f"experiment: e2e-tiny (MLflow {stack.mlflow_url})" in done.stdout
    assert "lrtune 0.1.0 (wheel" in done.stdout  # built from this checkout, shipped to the nodes

    # Every trial reported, read in MLflow: the driver journals each result as it arrives, where
    # Tune copies result.json to the storage path only at its own experiment syncs (a fresh-clone
    # CI saw all four there only after they had finished, and the stop below came too late).
    reported: dict[str, int] = {}

    def all_training() -> bool:
        reported.clear()
        reported.update(reported_steps(stack, "e2e-tiny"))
        return len(reported) == TRIALS

    wait_for(all_training, 300, "every trial's first result", poll=0.3)
    lap(f"{TRIALS} trials training (env steps {sorted(reported.values())})", clock)

    # `lrtune jobs stop`: SIGTERM; Tune saves the experiment inside the stop wait (60 s, not
    # Ray's 3 s). Only a driver that was not SIGKILLed writes summary.json, after Tune's fit.
    summary_file = stack.store / "results" / "e2e-tiny" / "summary.json"
    assert not summary_file.exists()
    stopping = time.monotonic()
    stop = stack.lrtune("jobs", "stop", first_id, *stack.address())
    stop_s = time.monotonic() - stopping
    print(f"e2e: stop took {stop_s:.1f} s")
    assert stop.returncode == 0 and f"{first_id} STOPPED" in stop.stdout, stop.stdout + stop.stderr
    assert "SIGKILL after 60 s" in stop.stdout
    # The job ends when the driver does, not at the stop wait: the entrypoint's shell traps
    # SIGTERM and waits for the driver (an untrapped one died at once, and Ray waited on the
    # orphaned driver all 60 s where nothing reaps orphans, e.g. a CI container's PID 1).
    assert stop_s < 60, f"`lrtune jobs stop` took {stop_s:.0f} s: {stop.stdout}"
    log = stack.lrtune("jobs", "logs", first_id, *stack.address()).stdout
    assert summary_file.exists(), log[-3000:]
    stopped = summary_of(stack, "e2e-tiny")
    assert stopped["interrupted"] is True, log[-3000:]
    assert "lrtune: results in" in log
    assert all(t["env_steps"] < BUDGET for t in stopped["trials"]), (reported, stopped["trials"])
    assert list((stack.store / "ray_results" / "e2e-tiny").glob("experiment_state-*.json"))
    ids = {t["trial_id"] for t in stopped["trials"]}
    assert len(ids) == TRIALS
    assert all(r.info.status != "RUNNING" for r in one_run_per_trial(stack, "e2e-tiny", ids))
    lap("stopped", clock)

    # A KubeRay retry, as what it is: a fresh cluster over the same storage and MLflow server.
    stack.fresh_cluster()
    lap("fresh cluster", clock)
    done, job_id = submit(stack, job, "--follow")
    lap("resumed to the end", clock)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lrtune: experiment 'e2e-tiny' (resuming)" in done.stdout
    assert f"{job_id} SUCCEEDED" in done.stdout
    summary = summary_of(stack, "e2e-tiny")
    trials = summary["trials"]
    assert summary["resumed"] is True and summary["interrupted"] is False
    assert {t["trial_id"] for t in trials} == ids
    assert {t["status"] for t in trials} == {"completed"}
    assert {t["env_steps"] for t in trials} == {BUDGET}
    assert {t["node_id"] for t in trials} == set(stack.cluster.info["node_ids"])  # both nodes
    runs = one_run_per_trial(stack, "e2e-tiny", ids)
    assert {r.info.status for r in runs} == {"FINISHED"}

    logs = stack.lrtune("jobs", "logs", job_id, *stack.address())
    assert logs.returncode == 0
    assert "lrtune: experiment 'e2e-tiny' (resuming)" in logs.stdout
    assert "completed" in logs.stdout and "lrtune: results in" in logs.stdout
    status = stack.lrtune("jobs", "status", job_id, *stack.address())
    assert f"{job_id}: SUCCEEDED" in status.stdout and "lrtune.job_hash" in status.stdout
    listed = stack.lrtune("jobs", "list", *stack.address(), "--format", "json")
    assert job_id in {row["submission_id"] for row in json.loads(listed.stdout)}

    # The same job again: it resumes the finished experiment and adds no trial.
    again, again_id = submit(stack, job, "--follow")
    lap("resubmitted", clock)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "lrtune: experiment 'e2e-tiny' (resuming)" in again.stdout
    assert {t["trial_id"] for t in summary_of(stack, "e2e-tiny")["trials"]} == ids
    one_run_per_trial(stack, "e2e-tiny", ids)
    assert len({first_id, job_id, again_id}) == 3


def test_token_auth_is_on_and_the_token_appears_nowhere(stack: Stack) -> None:
    import requests

    if not stack.job_ids:
        pytest.skip("needs the runs of the test before")
    # Auth is on: the Jobs API refuses a request without the token, and lrtune says why.
    assert requests.get(f"{stack.cluster.dashboard}/api/version", timeout=10).status_code == 401
    no_token = {k: v for k, v in stack.env.items() if k != "RAY_AUTH_TOKEN_PATH"}
    done = stack.lrtune("jobs", "list", *stack.address(), env=no_token)
    assert done.returncode == 2
    assert "found none" in done.stderr and "$RAY_AUTH_TOKEN_PATH (unset)" in done.stderr
    wrong = {**stack.env, "RAY_AUTH_TOKEN": "not-" + stack.token[4:]}
    done = stack.lrtune("jobs", "list", *stack.address(), env=wrong)
    assert done.returncode == 2 and "rejected the token" in done.stderr
    assert "$RAY_AUTH_TOKEN" in done.stderr and wrong["RAY_AUTH_TOKEN"] not in done.stderr

    # What is searched holds the runs: job ids in the logs, the experiment in results and MLflow.
    current = [j for j in stack.job_ids[1:]]  # the first job ran on the first cluster
    logs = [stack.lrtune("jobs", "logs", j, *stack.address()).stdout for j in current]
    for job_id, text in zip(current, logs, strict=True):
        assert f"Running entrypoint for job {job_id}" in text
    driver_logs = {p.name for p in stack.base.rglob("job-driver-*.log")}
    assert driver_logs >= {f"job-driver-{j}.log" for j in stack.job_ids}
    summary = summary_of(stack, "e2e-tiny")
    assert (
        summary["job_hash"] in (stack.store / "results" / "e2e-tiny" / "summary.json").read_text()
    )
    # Whichever store the MLflow server ran on is searched: the PostgreSQL dump, or the sqlite
    # fallback's database file (read as text: the tables hold plain strings).
    if stack.pg is not None:
        store_text = stack.pg.dump()
    else:
        store_text = (stack.base / "mlflow-server.db").read_bytes().decode("utf-8", "replace")
    assert summary["job_hash"] in store_text and "trial_" in store_text
    # The tokens (this cluster's and the first one's) are in the Ray nodes' own environment, as
    # on KubeRay; no file of the job's logs, Ray's logs, results, checkpoints or MLflow
    # artifacts may hold one, nor the MLflow database, nor anything lrtune printed.
    tokens = [stack.token, *stack.old_tokens]
    folders = (stack.store, stack.base / "mlartifacts", *stack.base.glob("c[0-9]*"))
    files = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 50
    leaks = [str(p) for p in files for t in tokens if t.encode() in p.read_bytes()]
    assert leaks == []
    for text in [*logs, *stack.texts, store_text]:
        assert all(t not in text for t in tokens)


def test_a_python_on_the_nodes_without_lrtunes_dependencies_is_refused_before_submitting(
    stack: Stack,
) -> None:
    # The machine's own Python (outside the virtualenv): no gymnasium, no torch, no mlflow.
    system_python = "/usr/bin/python3"
    if not Path(system_python).exists():
        pytest.skip(f"{system_python} is not on this machine")
    job = write_job(
        stack.base / "job",
        "e2e-wrong-python",
        store=stack.store,
        budget={"trial_env_steps": 128},
        tracking={"uri": stack.mlflow_url},
        cluster={"python": system_python},
    )
    before = {j.strip() for j in stack.lrtune("jobs", "list", *stack.address()).stdout.split()}
    done = stack.lrtune("submit", str(job), *stack.address(), "--allow-local-storage", "--no-wait")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cluster.python: `/usr/bin/python3` on the cluster" in done.stderr
    assert "gymnasium" in done.stderr and "torch" in done.stderr
    assert "ray job id" not in done.stdout  # nothing but the check ran
    after = stack.lrtune("jobs", "list", *stack.address()).stdout
    new = [w for w in after.split() if w.strip() not in before and w.startswith("lrtune-")]
    assert new and all(w.startswith("lrtune-probe-e2e-wrong-python-") for w in new), new
