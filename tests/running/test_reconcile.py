"""A driver killed with SIGKILL, then the same command again: one MLflow run per trial of the
summary, nothing RUNNING in MLflow or Optuna, and no more Optuna trials than the job asks for
(the trials Tune lost with the driver are handed out again, not asked anew)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import optuna
import psutil
import pytest
from mlflow.tracking import MlflowClient

from lrtune.cli._main import main
from lrtune.testing import start_lrtune

pytestmark = pytest.mark.slow

SPACE = {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3}}


def start_driver(path: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`lrtune run path` in its own session (its Ray processes join that session)."""
    return start_lrtune("run", str(path), cwd=cwd, env=env, new_session=True)


def kill_session(session: int) -> None:
    """SIGKILL every process of a session (the driver and the Ray it started), by session id:
    never `ray stop`, which would end other tests' Ray instances."""
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == session:
                proc.kill()
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue


def trial_ids_running(lines: list[str]) -> set[str]:
    """Trial ids of the progress lines of results (``… <trial> <policy> … running``)."""
    return {line.split()[1] for line in lines if line.rstrip().endswith(" running")}


def test_a_sigkilled_driver_rerun_closes_everything_and_counts_each_trial_once(
    tmp_path: Path, job_file: Any, capsys: Any
) -> None:
    path = job_file(
        tmp_path,
        "killed",
        space=SPACE,
        budget={"trial_env_steps": 640},
        # A checkpoint only at a trial's end: no trial checkpoints force Tune's snapshot.
        trials={"num": 4, "max_concurrent": 2, "max_failures": 1, "checkpoint_env_steps": 640},
    )
    # Tune's snapshot period set past the test: its only snapshot is its first one, so the
    # trials it creates later are lost with the driver (their Optuna trials stay RUNNING).
    proc = start_driver(path, tmp_path, {"TUNE_GLOBAL_CHECKPOINT_S": "3600"})
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if len(trial_ids_running(lines)) >= 3:  # a third trial: created after a snapshot
                break
        else:
            pytest.fail("no third trial in time:\n" + "".join(lines)[-3000:])
    finally:
        kill_session(proc.pid)
        proc.wait(timeout=60)
    seen = trial_ids_running(lines)
    assert len(seen) >= 3, "".join(lines)[-3000:]
    saved: set[str] = set()
    for state in (tmp_path / "ray_results" / "killed").glob("experiment_state-*.json"):
        saved |= {json.loads(t[0])["trial_id"] for t in json.loads(state.read_text())["trial_data"]}
    assert seen - saved, f"every trial was in Tune's snapshot ({saved}): none lost"

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("killed")
    running = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
    )
    roles = sorted(r.data.tags.get("lrtune.role", "") for r in running)
    # The killed driver left its parent run open. Its trial runs may be open in the store too, or
    # only in the tracking journal (the writer thread had not delivered them when the driver
    # died; the rerun replays them): the assertions on `lost` below hold either way.
    assert "experiment" in roles, roles

    # A resume into another MLflow store would split the records: refused, naming the field.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert main(["run", str(path), "--tracking-uri", other]) == 2
    captured = capsys.readouterr()
    assert "tracking.uri" in captured.err and "--restart" in captured.err, captured.err
    assert "taking over the stale lock" in captured.out, captured.out  # the dead driver's

    again = start_driver(path, tmp_path, {})
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    assert "resuming" in out

    summary = json.loads((tmp_path / "results" / "killed" / "summary.json").read_text())
    ids = [t["trial_id"] for t in summary["trials"]]
    assert len(ids) == 4 and summary["counts"]["completed"] == 4, summary["counts"]
    runs = client.search_runs([experiment.experiment_id])
    assert not [r for r in runs if r.info.status == "RUNNING"], [
        (r.data.tags.get("lrtune.trial_id"), r.info.status) for r in runs
    ]
    trial_runs = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    for trial_id in ids:
        mine = [r for r in trial_runs if r.data.tags.get("lrtune.trial_id") == trial_id]
        assert len(mine) == 1 and mine[0].info.status == "FINISHED", (trial_id, mine)
        assert mine[0].data.tags["lrtune.status"] == "completed"
    # The runs of the trials lost with the driver are closed truthfully, not left RUNNING.
    lost = [r for r in trial_runs if r.data.tags.get("lrtune.trial_id") not in ids]
    # (Those with a result before the kill, and any started without one yet.)
    lost_ids = {r.data.tags["lrtune.trial_id"] for r in lost}
    assert lost_ids >= seen - saved and not lost_ids & saved, (lost_ids, seen, saved)
    assert all(
        r.info.status == "KILLED" and r.data.tags.get("lrtune.status") == "stopped" for r in lost
    )

    study = optuna.load_study(
        study_name="killed", storage=f"sqlite:///{tmp_path / 'results' / 'killed' / 'optuna.db'}"
    )
    states = [t.state for t in study.trials]
    assert optuna.trial.TrialState.RUNNING not in states, states
    assert len(study.trials) <= 4, [(t.number, t.state, t.params) for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    lock = tmp_path / "ray_results" / "killed.lrtune.lock"
    assert not lock.exists()  # released at the end
