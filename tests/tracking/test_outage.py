"""Tracking through real `mlflow server` outages: down at the start, SIGKILLed mid-stream and
started again on the same port and store. Afterwards the store holds every metric point exactly
once, one run per trial, and nothing RUNNING; the driver never waits on the server."""

from __future__ import annotations

import io
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from tracking_helpers import RestartableServer, TrialStandIn  # type: ignore[import-not-found]

from lrtune.testing import start_lrtune
from lrtune.tracking import (
    TAG_EXPERIMENT,
    TAG_ROLE,
    TrialRecorder,
    journal_dir,
    open_journal,
)

pytestmark = pytest.mark.slow


class LockedLines(io.StringIO):
    """The driver's output (the writer thread prints to it too)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)


def _describe(trial: Any) -> tuple[str, dict[str, str], dict[str, Any], str | None]:
    return f"trial_{trial.trial_id}", {}, {"p": trial.trial_id}, trial.config.get("artifact")


def _metrics(result: Any) -> dict[str, float]:
    return {"score": result["score"], "lr": result["lr"]}


def _status(trial: Any, result: Any, errored: bool) -> str:
    return "completed"


def test_outages_at_the_start_and_mid_stream_lose_and_duplicate_nothing(
    tmp_path: Path, restartable_server: RestartableServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "60")
    server = restartable_server
    stream = LockedLines()
    results = tmp_path / "results" / "outage"
    folder = journal_dir(results)
    artifact = tmp_path / "trial.yaml"
    artifact.write_text("lr: 0.001\n")
    journal, _ = open_journal(folder, server.url, "outage", stream=stream)
    parent = journal.parent(
        "outage", {TAG_EXPERIMENT: "outage", TAG_ROLE: "experiment"}, {"agent": "ppo"}, resume=False
    )
    recorder = TrialRecorder(
        (server.url, "outage"),
        None,
        describe=_describe,
        metrics_of=_metrics,
        status_of=_status,
        journal_dir=str(folder),
        parent_ref=parent,
    )
    trials = [TrialStandIn("a", {"artifact": str(artifact)}), TrialStandIn("b")]
    slowest = [0.0]

    def feed(steps: range, who: list[Any]) -> None:
        for step in steps:
            for trial in who:
                began = time.perf_counter()
                recorder.on_trial_result(
                    0, [], trial, {"env_steps": step, "score": step / 100, "lr": 1.0 / step}
                )
                slowest[0] = max(slowest[0], time.perf_counter() - began)
            time.sleep(0.01)

    # 1. The server is down at the start: everything is journalled, the parent comes late.
    feed(range(100, 600, 100), trials)
    time.sleep(1.5)
    assert journal.run_id(parent) is None and journal.down
    print(f"server started in {server.start():.1f} s", file=sys.stderr)
    feed(range(600, 1100, 100), trials)
    assert recorder.flush(120)
    assert journal.run_id(parent) is not None and not journal.down

    # 2. SIGKILL mid-stream; the trials go on; one finishes while it is down.
    server.kill()
    feed(range(1100, 1600, 100), trials)
    recorder.on_trial_complete(0, [], trials[0])
    time.sleep(1.5)
    assert journal.down
    print(f"server restarted in {server.start():.1f} s", file=sys.stderr)
    feed(range(1600, 2100, 100), trials[1:])
    recorder.on_trial_complete(0, [], trials[1])
    recorder.on_experiment_end(trials)
    journal.end_run(parent, "FINISHED")
    assert journal.close() == 0
    assert slowest[0] < 1.0

    said = stream.getvalue().splitlines()
    down = [line for line in said if "unreachable" in line]
    back = [line for line in said if "MLflow back; replayed" in line]
    assert len(down) == 2 and len(back) == 2, said  # one line each, per outage
    assert f"MLflow at {server.url} unreachable" in down[0] and str(folder) in down[0]

    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name("outage")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(TAG_ROLE) == "experiment"]
    kids = [r for r in runs if r.data.tags.get(TAG_ROLE) == "trial"]
    assert len(parents) == 1 and len(kids) == 2  # one run per trial, however many retries
    assert {r.data.tags["lrtune.trial_id"] for r in kids} == {"a", "b"}
    assert all(r.info.status == "FINISHED" for r in runs)
    assert parents[0].data.params == {"agent": "ppo"}
    for run in kids:
        trial = run.data.tags["lrtune.trial_id"]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.params == {"p": trial}
        last = 1500 if trial == "a" else 2000
        for key in ("score", "lr"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert steps == list(range(100, last + 1, 100)), (trial, key, steps)
    trial_a = next(r for r in kids if r.data.tags["lrtune.trial_id"] == "a")
    assert [a.path for a in client.list_artifacts(trial_a.info.run_id)] == ["trial.yaml"]


def test_a_real_run_goes_through_a_server_killed_mid_run(
    tmp_path: Path, restartable_server: RestartableServer
) -> None:
    """`lrtune run` of a tiny job; the server is SIGKILLed once the trials run and started
    again at once (it takes tens of seconds to answer). The run never waits on it, and the
    store ends with every point once, one run per trial, nothing RUNNING."""
    restartable_server.start()
    _run_through_an_outage(tmp_path, restartable_server, "killed", down_at_start=False)


def test_a_real_run_with_the_server_down_at_start_creates_its_runs_late_and_loses_nothing(
    tmp_path: Path, restartable_server: RestartableServer
) -> None:
    """The same job with no server at its address when `lrtune run` starts; the server is
    started once the trials run. The parent and trial runs are created late, from the
    journal, and hold every point once."""
    _run_through_an_outage(tmp_path, restartable_server, "late", down_at_start=True)


def _run_through_an_outage(
    tmp_path: Path, server: RestartableServer, name: str, *, down_at_start: bool
) -> None:
    from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]

    # Iterations enough that trials still train during the outage (40 when the server dies 2 s
    # in); whether it is back before the run ends (replayed in the run) or not (`lrtune sync`),
    # both paths are checked.
    steps = 128 * (24 if down_at_start else 40)
    data = tiny_job(name, tmp_path, policy={"lr": 3e-4}, budget={"trial_env_steps": steps})
    data["tracking"] = {"uri": server.url}
    path = write_yaml(tmp_path, name, data)
    began = time.monotonic()
    proc = start_lrtune("run", str(path), cwd=tmp_path, env={"LRTUNE_TRACKING_DRAIN_S": "30"})
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while True:
            line = proc.stdout.readline()
            assert line, "".join(lines)[-3000:]
            lines.append(line)
            if "running" in line:
                break
        if not down_at_start:
            time.sleep(2)
            server.kill()
        outage_at = time.monotonic()
        restart = threading.Thread(target=server.start)
        restart.start()
        # When each result line arrives during and after the outage: the driver prints one per
        # result, so a tracking call that blocked the driver shows as a gap between two of them.
        arrivals: list[float] = []
        for line in proc.stdout:
            lines.append(line)
            if " running" in line or line.rstrip().endswith(" finished"):
                arrivals.append(time.monotonic())
        proc.wait(timeout=900)
        ended_at = time.monotonic()
        restart.join(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    print(f"result lines after the outage began: {len(arrivals)}, longest gap {max(gaps):.1f} s")
    # Never the minutes of MLflow's own retries: a few seconds at most (iterations here take
    # well under a second; the bound leaves room for a loaded CI machine).
    assert len(arrivals) > 10 and max(gaps) < 10.0, gaps
    print("".join(line for line in output.splitlines(True) if "tracking:" in line), file=sys.stderr)
    print(
        f"run: {ended_at - began:.0f} s, {ended_at - outage_at:.0f} s after the outage began",
        file=sys.stderr,
    )
    assert proc.returncode == 0, output[-3000:]
    down = [line for line in output.splitlines() if "unreachable" in line]
    assert len(down) == 1 and "journalling to" in down[0], output[-3000:]
    assert "Retrying" not in output and "View run" not in output
    if "MLflow back; replayed" not in output:  # the run ended first: its journal is left over
        assert f"lrtune sync {name}" in output
        sync = start_lrtune("sync", name, cwd=tmp_path, env={"LRTUNE_TRACKING_DRAIN_S": "30"})
        try:
            synced, _ = sync.communicate(timeout=300)
        finally:
            if sync.poll() is None:
                sync.kill()
        assert sync.returncode == 0, synced
    client = MlflowClient(server.url)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get(TAG_ROLE) == "experiment"]
    kids = [r for r in runs if r.data.tags.get(TAG_ROLE) == "trial"]
    assert len(parents) == 1 and len(kids) == 2
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    for run in kids:
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        history = [m.step for m in client.get_metric_history(run.info.run_id, "lr")]
        assert history == list(range(128, steps + 1, 128))  # every point, once, in order
