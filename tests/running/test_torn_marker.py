"""A marker cut off mid-write (full disk, SIGKILL) never wedges the experiment."""

from __future__ import annotations

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
