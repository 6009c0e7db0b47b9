"""``search.batch: true``: the searcher proposes a batch of ``trials.max_concurrent`` trials
once the previous batch has finished, so a seeded search repeats run for run, whatever order
its concurrent trials finish in. A real Ray Tune, Optuna study and MLflow store."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import optuna
import pytest

from job_helpers import tiny_job
from lrtune.running import run_job
from lrtune.specs import JobSpec

SPACE = {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}}


def _search(store: Path) -> list[optuna.trial.FrozenTrial]:
    """Run the batched search into ``store``; its Optuna trials in order of number."""
    data = tiny_job(
        "batched",
        store,
        space=SPACE,
        search={"sampler": "tpe", "seed": 3, "startup_trials": 2, "batch": True},
        trials={"num": 4, "max_concurrent": 2, "max_failures": 0},
        budget={"trial_env_steps": 384},
    )
    outcome = run_job(JobSpec.model_validate(data), stream=io.StringIO())
    assert [t.status for t in outcome.trials] == ["completed"] * 4
    study = optuna.load_study(
        study_name="batched", storage=f"sqlite:///{store / 'results' / 'batched' / 'optuna.db'}"
    )
    return sorted(study.trials, key=lambda t: t.number)


@pytest.mark.slow
def test_a_batched_seeded_search_proposes_each_batch_after_the_last_and_repeats(
    ray_session: Any, tmp_path: Path
) -> None:
    first = _search(tmp_path / "first")
    assert len(first) == 4
    # The second batch was asked for only once both trials of the first had finished (without
    # batching, a trial is proposed as soon as one slot frees).
    first_batch_done = max(t.datetime_complete for t in first[:2] if t.datetime_complete)
    assert all(t.datetime_start and t.datetime_start >= first_batch_done for t in first[2:])
    second = _search(tmp_path / "second")
    assert [t.params for t in second] == [t.params for t in first]
    assert [t.value for t in second] == [t.value for t in first]
