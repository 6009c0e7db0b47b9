"""`lrtune run` as a process: a real `mlflow server`, loopback-only sockets, Ctrl-C and resume."""

from __future__ import annotations

import io
import ipaddress
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import psutil
import pytest
from mlflow.tracking import MlflowClient

from lrtune.running import run_job
from lrtune.specs import load_job

pytestmark = pytest.mark.slow


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback (``::ffff:127.0.0.1``) on an IPv6 socket."""
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)


@pytest.fixture()
def mlflow_server(tmp_path: Path, mlflow_server_on: Any) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 with its own store and artifacts."""
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    with mlflow_server_on(backend, artifacts=tmp_path / "artifacts") as url:
        yield url


def test_run_logs_to_a_real_mlflow_server(
    ray_session: Any, mlflow_server: str, tmp_path: Path, job_file: Any
) -> None:
    space = {
        "version": 1,
        "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3},
        "schedule": {"constant": {}, "cosine": {}},
    }
    job = load_job(job_file(tmp_path, "served", space=space))
    outcome = run_job(job, tracking_uri=mlflow_server, stream=io.StringIO())
    assert outcome.exit_code == 0
    client = MlflowClient(mlflow_server)
    exp = client.get_experiment_by_name("served")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    kids = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    assert len(parent) == 1 and len(kids) == 2
    assert all(r.data.tags["mlflow.parentRunId"] == parent[0].info.run_id for r in kids)
    assert all(r.info.status == "FINISHED" for r in runs)
    assert [m.step for m in client.get_metric_history(kids[0].info.run_id, "lr")] == [128, 256]
    artifacts = [a.path for a in client.list_artifacts(parent[0].info.run_id)]
    assert {"summary.json", "job.yaml", "best.yaml"} <= set(artifacts)
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to the local default store


def _listeners(root: psutil.Process) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found.update((c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN)
    return found


def test_a_local_run_listens_on_loopback_only(
    tmp_path: Path, job_file: Any, lrtune_process: Any
) -> None:
    path = job_file(tmp_path, "closed", policy={"lr": 3e-4}, budget={"trial_env_steps": 1280})
    # The test process itself sets Ray's loopback switch (conftest); the child gets a user's
    # opposite setting, so only lrtune's own code can keep it on loopback.
    proc = lrtune_process.start(
        path, tmp_path, env_overrides={"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    )
    lines: list[str] = []
    try:
        lrtune_process.wait_for(proc, "running", lines, 180)
        root = psutil.Process(proc.pid)
        seen: set[tuple[str, int]] = set()
        for _ in range(5):  # sample while trials run
            seen |= _listeners(root)
            time.sleep(1.0)
    finally:
        out, _ = proc.communicate(timeout=300)
        lines.append(out)
    assert proc.returncode == 0, "".join(lines)[-3000:]
    assert seen, "the run's processes should listen somewhere (GCS, raylet)"
    off_loopback = {(ip, port) for ip, port in seen if not is_loopback(ip)}
    assert off_loopback == set(), f"listening off loopback: {sorted(off_loopback)}"


def test_ctrl_c_stops_gracefully_and_the_same_command_resumes_with_the_budget_counted(
    tmp_path: Path, job_file: Any, lrtune_process: Any
) -> None:
    """Ctrl-C while the second of four trials trains (one at a time): the finished trial's run
    is FINISHED, the interrupted one's KILLED, nothing RUNNING in Optuna. The same command
    resumes into the same runs without a duplicated point, and the experiment's env-step budget
    continues its count: it pays for two and a half trials, so the first trial's steps must count
    after the resume for the third to stop at half its budget and a fourth never to start."""
    space = {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3}}
    path = job_file(
        tmp_path,
        "interrupted",
        space=space,
        budget={"trial_env_steps": 512, "experiment_env_steps": 1280},
        trials={"num": 4, "max_concurrent": 1, "max_failures": 1},
    )
    proc = lrtune_process.start(path, tmp_path)
    lines: list[str] = []
    seen: list[str] = []  # trial ids (last 10 characters) in the order they reported
    deadline = time.monotonic() + 400
    assert proc.stdout is not None
    while time.monotonic() < deadline and len(seen) < 2:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.rstrip().endswith(" running") and line.split()[1] not in seen:
            seen.append(line.split()[1])
    proc.send_signal(signal.SIGINT)  # the second trial trains: stop, then resume
    out, _ = proc.communicate(timeout=300)
    output = "".join(lines) + out
    assert proc.returncode == 130, output[-3000:]
    assert len(seen) == 2, output[-3000:]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("interrupted")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("lrtune.role") == "experiment")
    kids = {
        r.data.tags["lrtune.trial_id"][-10:]: r
        for r in runs
        if r.data.tags.get("lrtune.role") == "trial"
    }
    assert parent.info.status == "KILLED"
    assert set(kids) == set(seen), (set(kids), seen)
    first, second = kids[seen[0]], kids[seen[1]]
    assert (first.info.status, first.data.tags["lrtune.status"]) == ("FINISHED", "completed")
    assert (second.info.status, second.data.tags["lrtune.status"]) == ("KILLED", "stopped")
    storage = f"sqlite:///{tmp_path / 'results' / 'interrupted' / 'optuna.db'}"
    study = optuna.load_study(study_name="interrupted", storage=storage)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]

    again = lrtune_process.start(path, tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    assert "resuming" in out
    summary = json.loads((tmp_path / "results" / "interrupted" / "summary.json").read_text())
    # The progress view shows a trial id's last 10 characters.
    steps = {t["trial_id"][-10:]: t["env_steps"] for t in summary["trials"]}
    # The first trial's 512 steps count after the resume: the third trial's first 256 end the
    # experiment, and no fourth trial trains (a count from zero would have run the third to its
    # budget and started a fourth).
    assert steps[seen[0]] == 512 and steps[seen[1]] == 512, steps
    (third,) = set(steps) - set(seen)
    assert 0 < steps[third] < 512 and sum(steps.values()) <= 1280 + 128, steps
    runs = client.search_runs([exp.experiment_id])
    kids_after = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    resumed = [r for r in kids_after if r.data.tags["lrtune.trial_id"][-10:] in seen]
    # The same runs, closed as completed; every lr point once, up to the budget.
    assert {r.info.run_id for r in resumed} == {first.info.run_id, second.info.run_id}
    closed = sorted(
        (r.data.tags["lrtune.trial_id"], r.info.status, r.data.tags.get("lrtune.status", ""))
        for r in kids_after
    )
    assert not [r for r in runs if r.info.status == "RUNNING"], closed
    assert all(r.info.status == "FINISHED" for r in resumed), (closed, summary["trials"])
    assert all(r.data.tags["lrtune.status"] == "completed" for r in resumed), closed
    # The third trial, stopped by the experiment's budget (not by a scheduler, nor by a
    # Ctrl-C), says so in the summary and in MLflow alike.
    statuses = {t["trial_id"][-10:]: t["status"] for t in summary["trials"]}
    assert statuses[third] == "out_of_budget", statuses
    (cut,) = [r for r in kids_after if r.data.tags["lrtune.trial_id"][-10:] == third]
    assert (cut.info.status, cut.data.tags["lrtune.status"]) == ("FINISHED", "out_of_budget")
    for run in resumed:
        lr_steps = [m.step for m in client.get_metric_history(run.info.run_id, "lr")]
        assert lr_steps[-1] == 512 and lr_steps == sorted(set(lr_steps)), lr_steps
