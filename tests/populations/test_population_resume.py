"""A population job stopped with Ctrl-C resumes with the same command: same members, same
MLflow runs, and a lineage that stays whole across the interruption."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from lrtune.cli import main
from lrtune.running._lineage import trajectory
from lrtune.specs import load_policy

pytestmark = pytest.mark.slow

BUDGET = 768  # 6 iterations a member: the Ctrl-C comes after the first of each
STEP = 128  # env steps per iteration of the tiny population job


def test_ctrl_c_then_the_same_command_resumes_the_population(
    tmp_path: Path, make_job: Any, write_job: Any, lrtune_process: Any
) -> None:
    data = make_job(tmp_path, "pop-resume")
    data["budget"] = {"trial_env_steps": BUDGET}
    # Asynchronous (the default): Tune rebuilds the scheduler on restore, which a synchronous
    # population does not survive reliably (run_job warns about it).
    path = write_job(tmp_path, "pop-resume", data)

    # Ctrl-C as soon as both members have reported (both trial runs exist), not after a fixed
    # delay: the interruption lands early in the budget however fast the machine is.
    first = lrtune_process.start(path, tmp_path)
    assert first.stdout is not None
    lines: list[str] = []
    members: set[str] = set()
    deadline = time.monotonic() + 180
    while len(members) < 2 and time.monotonic() < deadline:
        line = first.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.rstrip().endswith(" running"):
            members.add(line.split()[1])
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=180)
    output = "".join(lines) + out
    assert len(members) == 2, output[-3000:]
    assert first.returncode == 130, output[-3000:]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("pop-resume")
    kids = [
        r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("lrtune.role") == "trial"
    ]
    assert len(kids) == 2 and all(r.info.status == "KILLED" for r in kids)
    interrupted_at = {
        r.info.run_id: max(m.step for m in client.get_metric_history(r.info.run_id, "lr"))
        for r in kids
    }
    assert all(step < BUDGET for step in interrupted_at.values()), interrupted_at

    again = lrtune_process.start(path, tmp_path)
    out, _ = again.communicate(timeout=400)
    assert again.returncode == 0, out[-3000:]
    assert "resuming" in out and "descends from" in out

    kids_after = [
        r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("lrtune.role") == "trial"
    ]
    assert {r.info.run_id for r in kids_after} == set(interrupted_at)  # the same two runs
    assert all(r.info.status == "FINISHED" for r in kids_after)
    for run in kids_after:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "lr")]
        assert steps[-1] == BUDGET

    # Every member's effective history runs from the first iteration to the budget, one point
    # per iteration, across the interruption (and any exploits).
    results = tmp_path / "results" / "pop-resume"
    lineage = json.loads((results / "lineage.json").read_text())
    assert set(lineage["trials"]) == {r.data.tags["lrtune.trial_id"] for r in kids_after}
    expected_steps = list(range(STEP, BUDGET + 1, STEP))
    for trial in lineage["trials"]:
        assert [p["env_steps"] for p in trajectory(lineage, trial)] == expected_steps
    exported = tmp_path / "learned.yaml"
    assert main(["schedule", "export", str(results), "-o", str(exported)]) == 0
    points = load_policy(exported).schedule.params["points"]
    assert [int(s) for s, _ in points] == expected_steps
