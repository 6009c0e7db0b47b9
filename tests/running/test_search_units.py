"""lrtune's searcher on a real Optuna study, driven as Tune drives it (suggest, then
on_trial_complete), without Ray workers: startup trials, then model-based proposals; diverged
trials told as COMPLETE with the job's worst value; the ASHA grace period as a fraction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from job_helpers import tiny_job  # type: ignore[import-not-found]
from lrtune.running._results import TrialOutcome, pick_best
from lrtune.running._search import LRTuneOptunaSearch, make_scheduler
from lrtune.search import make_sampler
from lrtune.specs import compile_space, parse_job

TPE_PROPOSAL = "tpe:relative_params:0"  # what Optuna 5's TPE records for a model-based proposal
SPACE = {
    "version": 1,
    "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2},
    "hyperparams": {"gamma": {"distribution": "uniform", "low": 0.9, "high": 0.999}},
}


def _job(tmp_path: Path, **fields: Any) -> Any:
    data = tiny_job("search", tmp_path, space=SPACE, **fields)
    data["trials"] = {**data["trials"], **fields.get("trials", {})}
    return parse_job(data)


def _searcher(job: Any) -> LRTuneOptunaSearch:
    return LRTuneOptunaSearch(
        space=compile_space(job).define,
        metric="score",
        mode=job.metric.mode,
        sampler=make_sampler(job),
        study_name=job.name,
    )


def _study(searcher: LRTuneOptunaSearch) -> optuna.Study:
    study: optuna.Study = searcher._ot_study  # type: ignore[assignment]
    return study


def test_startup_trials_default_leaves_most_of_a_small_budget_to_the_model(
    tmp_path: Path,
) -> None:
    expected = {1: 2, 8: 2, 12: 3, 40: 10, 400: 10}
    for num, startup in expected.items():
        assert _job(tmp_path, trials={"num": num}).startup_trials == startup
    assert _job(tmp_path, search={"startup_trials": 5}, trials={"num": 8}).startup_trials == 5


@pytest.mark.parametrize("sampler", ["tpe", "gp"])
def test_with_two_startup_trials_the_third_is_proposed_by_the_model(
    tmp_path: Path, sampler: str
) -> None:
    job = _job(tmp_path, search={"sampler": sampler, "startup_trials": 2}, trials={"num": 4})
    searcher = _searcher(job)
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        assert config is not None
        gamma = config["lrtune"]["hyperparams"]["gamma"]
        searcher.on_trial_complete(
            f"t{i}", {"score": 100.0 * gamma, "budget_reached": 1, "env_steps": 256}
        )
    trials = _study(searcher).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    key = f"{sampler}:relative_params:0"
    # Optuna records the model's proposal in a system attribute; random startup trials have none.
    assert [key in t.system_attrs for t in trials] == [False, False, True, True]


def test_optunas_default_ten_startup_trials_would_have_left_the_third_random(
    tmp_path: Path,
) -> None:
    """The same drive with Optuna's own default (10): no trial of four is model-based."""
    job = _job(tmp_path, search={"startup_trials": 4}, trials={"num": 4})
    searcher = _searcher(job)
    for i in range(4):
        searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"score": float(i), "budget_reached": 1})
    assert not any(TPE_PROPOSAL in t.system_attrs for t in _study(searcher).trials)


def test_a_diverged_trial_is_complete_with_the_worst_value_and_never_best(
    tmp_path: Path,
) -> None:
    job = _job(tmp_path, metric={"worst": -500.0})
    searcher = _searcher(job)
    searcher.suggest("ok")
    searcher.on_trial_complete("ok", {"score": 20.0, "budget_reached": 1, "diverged": 0})
    searcher.suggest("bad")
    # What the trainable reports when a trial diverges: the job's worst value, diverged 1.
    searcher.on_trial_complete("bad", {"score": job.metric.worst_value, "diverged": 1})
    searcher.suggest("broken")
    searcher.on_trial_complete("broken", None, error=True)
    ok, bad, broken = _study(searcher).get_trials(deepcopy=False)
    assert (ok.state, ok.value) == (TrialState.COMPLETE, 20.0)
    assert (bad.state, bad.value) == (TrialState.COMPLETE, -500.0)
    assert bad.user_attrs["lrtune_status"] == "diverged"
    assert broken.state == TrialState.FAIL
    # lrtune's own choice goes by its status: the diverged trial is never best, even when its
    # (worst) value is the study's only complete value in the direction asked.
    outcomes = [
        TrialOutcome("bad", "diverged", job.metric.worst_value, 64, {}, {}, "x"),
        TrialOutcome("ok", "completed", 20.0, 256, {}, {}, "y"),
    ]
    best = pick_best(outcomes, "min")
    assert best is not None and best.trial_id == "ok"


def test_a_resumed_diverged_trial_is_added_complete_with_its_attribute(tmp_path: Path) -> None:
    """The trial's Optuna trial was closed while the experiment was interrupted: the outcome is
    recorded as a new trial, COMPLETE with the worst value and tagged diverged."""
    job = _job(tmp_path)
    searcher = _searcher(job)
    searcher.suggest("t")
    study = _study(searcher)
    frozen = study.trials[0]
    study._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
    searcher.on_trial_complete("t", {"score": job.metric.worst_value, "diverged": 1})
    added = study.trials[-1]
    assert (added.state, added.value) == (TrialState.COMPLETE, -1e6)
    assert added.user_attrs["lrtune_status"] == "diverged" and added.user_attrs["lrtune_resumed"]


def test_asha_grace_period_as_a_fraction_of_the_budget(tmp_path: Path) -> None:
    job = _job(
        tmp_path,
        budget={"trial_env_steps": 40_000},
        scheduler={"name": "asha", "grace_fraction": 0.25},
    )
    assert job.grace_period_steps == 10_000
    scheduler = make_scheduler(job)
    # ASHA's rungs (env steps at which trials are compared): the grace period, then doubling.
    assert [milestone for milestone, _ in scheduler._brackets[0]._rungs] == [40_000, 20_000, 10_000]
    median = _job(
        tmp_path,
        budget={"trial_env_steps": 40_000},
        scheduler={"name": "median", "grace_fraction": 0.1},
    )
    assert make_scheduler(median)._grace_period == 4_000
