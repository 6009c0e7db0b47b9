"""A marker cut off mid-write (full disk, SIGKILL) never wedges the experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from job_helpers import tiny_job  # type: ignore[import-not-found]
from lrtune.running._run import JOB_MARKER, ExperimentConflictError, check_experiment
from lrtune.specs import parse_job


def test_a_torn_marker_is_refused_naming_restart_and_restart_discards_it(tmp_path: Path) -> None:
    job = parse_job(tiny_job("torn", tmp_path, policy={"lr": 1e-3}))
    experiment_dir = tmp_path / "ray_results" / "torn"
    experiment_dir.mkdir(parents=True)
    (experiment_dir / JOB_MARKER).write_text('{"hash": "ab')  # truncated JSON
    with pytest.raises(ExperimentConflictError, match="--restart") as caught:
        check_experiment(job, experiment_dir, restart=False)
    assert JOB_MARKER in str(caught.value)
    assert check_experiment(job, experiment_dir, restart=True) is False


def test_a_torn_tune_state_is_refused_naming_the_file_and_a_whole_one_resumes(
    tmp_path: Path,
) -> None:
    job = parse_job(tiny_job("torn-state", tmp_path, policy={"lr": 1e-3}))
    experiment_dir = tmp_path / "ray_results" / "torn-state"
    experiment_dir.mkdir(parents=True)
    (experiment_dir / JOB_MARKER).write_text(json.dumps({"hash": job.resolved_hash()}))
    (experiment_dir / "tuner.pkl").write_bytes(b"tuner")
    older = experiment_dir / "experiment_state-2026-12-04_03-13-44.json"
    older.write_text('{"trial_data": []}')
    assert check_experiment(job, experiment_dir, restart=False) is True
    # Tune restores from the newest by name: a cut-off newest one is refused, by name.
    newest = experiment_dir / "experiment_state-2026-12-04_04-00-00.json"
    newest.write_text('{"trial_data": [["{\\"trial_id')
    with pytest.raises(ExperimentConflictError, match="--restart") as caught:
        check_experiment(job, experiment_dir, restart=False)
    assert str(newest) in str(caught.value)
    assert check_experiment(job, experiment_dir, restart=True) is False
