"""Intermediate values reach the study from the searcher's background writer, in order, before
the trial is told, and survive Tune's save and restore of the searcher (real Optuna, sqlite)."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from job_helpers import tiny_job  # type: ignore[import-not-found]
from lrtune.running._search import LRTuneOptunaSearch, study_storage
from lrtune.search import make_sampler
from lrtune.specs import compile_space, parse_job

SPACE = {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}}


def _searcher(tmp_path: Path) -> tuple[LRTuneOptunaSearch, str]:
    job = parse_job(tiny_job("reports", tmp_path, space=SPACE))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    searcher = LRTuneOptunaSearch(
        space=compile_space(job).define,
        metric="score",
        mode=job.metric.mode,
        sampler=make_sampler(job),
        study_name=job.name,
        storage=study_storage(url),
    )
    return searcher, url


def _result(score: float, steps: int, **extra: Any) -> dict[str, Any]:
    return {"score": score, "env_steps": steps, **extra}


def test_reports_are_stored_in_order_and_a_stopped_trial_is_pruned_at_its_last_value(
    tmp_path: Path,
) -> None:
    searcher, url = _searcher(tmp_path)
    assert searcher.suggest("a") is not None
    for step in range(1, 51):
        searcher.on_trial_result("a", _result(float(step), 100 * step))
    searcher.on_trial_result("a", _result(float("nan"), 5100))  # not a value: not stored
    # Reported, not yet stored or not: the driver did not wait for the database.
    searcher.on_trial_complete("a", _result(50.0, 5000, budget_reached=0))

    frozen = optuna.load_study(study_name="reports", storage=url).get_trials()[0]
    assert frozen.intermediate_values == {100 * s: float(s) for s in range(1, 51)}
    assert frozen.state == TrialState.PRUNED
    assert frozen.value == 50.0  # Optuna prunes at the last intermediate value


def test_the_driver_thread_never_writes_to_the_study(tmp_path: Path) -> None:
    searcher, _ = _searcher(tmp_path)
    searcher.suggest("a")
    trial = searcher._ot_trials["a"]
    writers: set[str] = set()
    report = trial.report

    def recording_report(value: float, step: int) -> None:
        writers.add(threading.current_thread().name)
        report(value, step)

    trial.report = recording_report  # type: ignore[method-assign]
    for step in range(1, 6):
        searcher.on_trial_result("a", _result(1.0, step))
    searcher._writer.flush()
    assert writers == {"lrtune-optuna-reports"}


def test_save_stores_every_queued_value_and_the_searcher_pickles_and_restores(
    tmp_path: Path,
) -> None:
    searcher, url = _searcher(tmp_path)
    searcher.suggest("a")
    for step in range(1, 21):
        searcher.on_trial_result("a", _result(float(step), step))
    pickle.dumps(searcher)  # Tune pickles the searcher into tuner.pkl, a writer thread running
    searcher.save(str(tmp_path / "searcher.pkl"))
    stored = optuna.load_study(study_name="reports", storage=url).get_trials()[0]
    assert stored.intermediate_values == {s: float(s) for s in range(1, 21)}

    (tmp_path / "again").mkdir()
    restored, _ = _searcher(tmp_path / "again")  # restore replaces its study with the saved one
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.on_trial_result("a", _result(21.0, 21))
    restored.on_trial_complete("a", _result(21.0, 21, budget_reached=1))
    final = optuna.load_study(study_name="reports", storage=url).get_trials()[0]
    assert final.state == TrialState.COMPLETE and final.value == 21.0
    assert final.intermediate_values[21] == 21.0
