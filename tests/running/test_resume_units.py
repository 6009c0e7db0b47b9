"""Resume pieces without Ray: a lost Optuna trial is handed out again, a trial told once stays
told once, the concurrency limit and the budget stopper are the current command's."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.search import ConcurrencyLimiter as TuneConcurrencyLimiter

from job_helpers import tiny_job  # type: ignore[import-not-found]
from lrtune.running._run import ExperimentEnvStepBudget
from lrtune.running._search import ConcurrencyLimiter, LRTuneOptunaSearch, VariantGenerator
from lrtune.search import make_sampler
from lrtune.specs import compile_space, parse_job

SPACE = {
    "version": 1,
    "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2},
    "hyperparams": {"gamma": {"distribution": "uniform", "low": 0.9, "high": 0.999}},
}


def _searcher(job: Any, storage: str) -> LRTuneOptunaSearch:
    return LRTuneOptunaSearch(
        space=compile_space(job).define,
        metric="score",
        mode=job.metric.mode,
        sampler=make_sampler(job),
        study_name=job.name,
        storage=optuna.storages.RDBStorage(storage),
    )


def test_an_optuna_trial_lost_with_the_driver_is_handed_out_again(tmp_path: Path) -> None:
    job = parse_job(tiny_job("lost", tmp_path, space=SPACE))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    killed = _searcher(job, storage)
    kept = killed.suggest("saved")  # in Tune's snapshot: its own searcher state knows it
    lost = killed.suggest("lost")  # asked after the snapshot: the driver died with it
    # The next driver's searcher knows "saved" (restored state), not "lost".
    resumed = _searcher(job, storage)
    resumed._ot_trials["saved"] = killed._ot_trials["saved"]
    again = resumed.suggest("new")
    assert again == lost and again != kept
    study = optuna.load_study(study_name="lost", storage=storage)
    assert len(study.trials) == 2  # the same Optuna trial, not a third one
    assert resumed.reused == {"new": 1}
    resumed.on_trial_complete("new", {"score": 5.0, "budget_reached": 1})
    assert study.trials[1].state == TrialState.COMPLETE and study.trials[1].value == 5.0
    resumed.suggest("fresh")  # no orphan left: asked anew
    assert len(study.trials) == 3


def test_a_trial_told_before_the_kill_is_not_told_twice(tmp_path: Path) -> None:
    job = parse_job(tiny_job("twice", tmp_path, space=SPACE))
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    searcher = _searcher(job, storage)
    searcher.suggest("t")
    searcher.on_trial_complete("t", {"score": 3.0, "budget_reached": 1})
    # Tune's snapshot predates the end: the resumed trial ends again from its last checkpoint.
    searcher._completed_trials.discard("t")
    searcher.on_trial_complete("t", {"score": 3.0, "budget_reached": 1})
    study = optuna.load_study(study_name="twice", storage=storage)
    assert [(t.state, t.value) for t in study.trials] == [(TrialState.COMPLETE, 3.0)]


def test_the_concurrency_limit_is_the_current_commands_after_a_restore(tmp_path: Path) -> None:
    job = parse_job(tiny_job("limit", tmp_path, space=SPACE))
    first = TuneConcurrencyLimiter(_searcher(job, "sqlite://"), max_concurrent=1)
    first.live_trials.add("a")
    saved = first.get_state()
    now = ConcurrencyLimiter(_searcher(job, "sqlite://"), max_concurrent=3)
    assert type(now).__name__ == "ConcurrencyLimiter"  # Tune files its state by class name
    now.set_state(saved)
    assert now.max_concurrent == 3 and now.live_trials == {"a"}
    generator = VariantGenerator(max_concurrent=4)
    old = VariantGenerator(max_concurrent=1)
    generator.set_state(old.get_state())
    assert generator.max_concurrent == 4


def test_an_unpickled_budget_stopper_is_the_current_one() -> None:
    first = ExperimentEnvStepBudget(1000, key="/tmp/exp-a", steps={"t1": 10})
    blob = pickle.dumps(first)  # what tuner.pkl and Tune's snapshot hold
    current = ExperimentEnvStepBudget(1000, key="/tmp/exp-a", steps={"t1": 600, "t2": 400})
    assert pickle.loads(blob) is current
    assert current.stop_all()  # 600 + 400 of 1000: the count continues, not from zero
    other = pickle.loads(pickle.dumps(ExperimentEnvStepBudget(5, key=None, steps={"x": 1})))
    assert other is not current and other.steps == {"x": 1} and not other.stop_all()
