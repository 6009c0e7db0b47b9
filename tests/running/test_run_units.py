"""Pieces of the run path that need no Ray: the experiment budget, statuses, best choice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrtune.running._results import TrialOutcome, pick_best, trial_status
from lrtune.running._run import ExperimentEnvStepBudget, unscored_warning, unstarted_warning


def test_experiment_env_step_budget_stops_all_trials_once_their_sum_reaches_it() -> None:
    stopper = ExperimentEnvStepBudget(1000)
    assert stopper("a", {"env_steps": 400}) is False and not stopper.stop_all()
    stopper("b", {"env_steps": 500})
    assert not stopper.stop_all()
    stopper("a", {"env_steps": 500})  # a trial's latest count replaces its earlier one
    assert stopper.stop_all()
    assert not ExperimentEnvStepBudget(None).stop_all()


def test_trial_status_from_the_last_result() -> None:
    assert trial_status({"env_steps": 10, "budget_reached": 1}, False, 10, True) == "completed"
    assert trial_status({"env_steps": 5, "done": True}, False, 10, True) == "pruned"
    assert trial_status({"env_steps": 5, "diverged": 1}, False, 10, True) == "diverged"
    assert trial_status({"env_steps": 5}, False, 10, False) == "stopped"
    assert trial_status(None, True, 10, True) == "failed"
    # Tune marks a result `done` when its scheduler stops the trial; the experiment's budget
    # (Tune's stop_all) stops the running trials unmarked, and Tune's trials that never started
    # keep a placeholder result holding only their id.
    assert trial_status({"env_steps": 5, "done": False}, False, 10, True, True) == "out_of_budget"
    assert trial_status({"env_steps": 5, "done": True}, False, 10, True, True) == "pruned"
    assert trial_status({"trial_id": "x"}, False, 10, True, True) == "out_of_budget"
    assert trial_status({"trial_id": "x"}, False, 10, True, False) == "failed"
    assert trial_status({"env_steps": 5, "done": False}, False, 10, False, True) == "stopped"
    # Without an experiment budget, Tune ends no trial unmarked but a synchronous population
    # member left waiting: pruned, as before.
    assert trial_status({"env_steps": 5, "done": False}, False, 10, True, False) == "pruned"


def _outcome(trial_id: str, status: str, score: float | None) -> TrialOutcome:
    return TrialOutcome(trial_id, status, score, 0, {}, {}, "")


def test_best_is_never_diverged_failed_or_stopped_and_prefers_full_budget() -> None:
    trials = [
        _outcome("d", "diverged", 1e9),
        _outcome("f", "failed", None),
        _outcome("s", "stopped", 500.0),
        _outcome("p", "pruned", 300.0),
        _outcome("c", "completed", 200.0),
    ]
    best = pick_best(trials, "max")
    assert best is not None and best.trial_id == "c"
    best = pick_best(trials[:4], "max")
    assert best is not None and best.trial_id == "p"
    best = pick_best([_outcome("a", "completed", 5.0), _outcome("b", "completed", 1.0)], "min")
    assert best is not None and best.trial_id == "b"


def test_best_among_equal_scores_is_the_one_with_the_better_training_score() -> None:
    """The table's first row is the best trial, also when scores tie."""
    from lrtune.running._results import RunOutcome, summary_table

    def tied(trial_id: str, training: float | None) -> TrialOutcome:
        outcome = _outcome(trial_id, "completed", 500.0)
        outcome.training_score = training
        return outcome

    trials = [tied("first", 366.3), tied("none", None), tied("steady", 486.0)]
    best = pick_best(trials, "max")
    assert best is not None and best.trial_id == "steady"
    best = pick_best(trials, "min")  # the lowest training score, for a job that minimises
    assert best is not None and best.trial_id == "first"
    run = RunOutcome("x", Path("."), Path("."), trials, pick_best(trials, "max"), False, False)
    rows = summary_table(run).splitlines()[1:]
    assert [row.split()[0] for row in rows] == ["steady", "first", "none"]
    assert rows[0].endswith(" *")


def test_a_trial_is_diverged_when_any_seed_diverged_and_reports_the_seeds_lr_range() -> None:
    from lrtune.running._trainable import seed_lr_metrics

    healthy = {"lr": 1e-3, "diverged": 0.0, "kl": 0.01}
    broken = {"lr": 5e-4, "diverged": 1.0, "kl": 0.5}
    merged = seed_lr_metrics([healthy, broken])
    assert merged["diverged"] == 1.0 and merged["lr"] == 1e-3 and merged["kl"] == 0.01
    assert (merged["lr_min"], merged["lr_max"]) == (5e-4, 1e-3)
    assert seed_lr_metrics([healthy]) == healthy  # one seed: exactly its metrics
    assert seed_lr_metrics([broken, healthy])["diverged"] == 1.0
    # The range reaches MLflow with the trial's other metrics.
    from lrtune.running._run import trial_metrics

    logged = trial_metrics({"score": 1.0, "lrtune": merged})
    assert (logged["lr"], logged["lr_min"], logged["lr_max"]) == (1e-3, 5e-4, 1e-3)


def test_the_summary_table_says_how_many_trials_it_leaves_out() -> None:
    from pathlib import Path

    from lrtune.running._results import RunOutcome, summary_table

    trials = [_outcome(f"t{i}", "completed", float(i)) for i in range(7)]
    trials.append(_outcome("f", "failed", None))
    run = RunOutcome("x", Path("."), Path("."), trials, pick_best(trials, "max"), False, False)
    lines = summary_table(run, top=5).splitlines()
    assert [line.split()[0] for line in lines[1:6]] == ["t6", "t5", "t4", "t3", "t2"]
    assert lines[6] == "… 2 more (every trial is in summary.json and MLflow)"
    assert lines[7].startswith("f") and "failed" in lines[7]
    assert "more" not in summary_table(run, top=7)


def test_the_unscored_warning_blames_what_stopped_the_trials(tmp_path: Path, job_file: Any) -> None:
    """Trials that ran their whole env-step budget without an episode ending: the env's time
    limit, with the steps each of a trial's parallel envs ran (not the trial's total). Trials
    a time budget stopped sooner (at 0 env steps, by budget.experiment_seconds) were blamed on
    the time limit too; the warning now names what stopped them, by their status."""
    from lrtune.specs import load_job

    job = load_job(
        job_file(
            tmp_path,
            "unscored",
            budget={"trial_env_steps": 4096, "trial_seconds": 25, "experiment_seconds": 70},
            scheduler={"name": "asha"},
            space={"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3}},
        )
    )
    ran = TrialOutcome("a", "completed", None, 4096, {}, {}, "", iterations=8)
    cut = TrialOutcome("b", "out_of_budget", None, 128, {}, {}, "", iterations=1)
    scored = TrialOutcome("c", "completed", 1.0, 4096, {}, {}, "")
    assert unscored_warning([scored], job) is None
    whole = unscored_warning([ran, scored], job)
    assert whole is not None and whole.startswith("no episode ended in 1 trial(s) (a)")
    assert "the episodes outlast the 4096 env steps the trials ran; give the env a time" in whole
    # 16 envs side by side: each ran 256 steps, which is what the episodes outlast.
    vector = TrialOutcome(
        "v", "completed", None, 4096, {}, {"num_envs_per_env_runner": 16}, "", iterations=8
    )
    shared = unscored_warning([vector], job)
    assert shared is not None and (
        "a trial's env steps are shared by its 16 parallel envs (num_envs_per_env_runner), and "
        "the episodes outlast the 256 steps each env ran; give the env a time limit (env.config: "
        "{max_episode_steps: N}), raise budget.trial_env_steps or lower num_envs_per_env_runner "
        "in hyperparams" in shared
    )
    short = unscored_warning([ran, cut], job)
    assert short is not None
    assert (
        "1 of them stopped after at most 128 env steps, short of budget.trial_env_steps (4096), "
        "ended by budget.experiment_seconds (70) before any episode ended; raise that budget"
        in short
    )
    # A trial the budget ended before its first iteration: its own warning, not "no episode
    # ended" (none ran).
    unstarted = TrialOutcome("u", "out_of_budget", None, 0, {}, {}, "")
    assert unscored_warning([ran, unstarted], job) == unscored_warning([ran], job)
    assert unstarted_warning([ran, cut], job) is None
    assert unstarted_warning([ran, unstarted], job) == (
        "1 trial(s) (u) ended before their first iteration: budget.experiment_seconds (70) ran "
        "out first; raise it, or lower trials.num"
    )
    # A population's members are its trials: its size is the count to lower.
    from types import SimpleNamespace

    population_job = SimpleNamespace(budget=job.budget, population=SimpleNamespace(size=4))
    assert str(unstarted_warning([unstarted], population_job)).endswith(
        "raise it, or lower population.size"
    )
    assert "outlast" not in short
    pruned = TrialOutcome("p", "pruned", None, 512, {}, {}, "", iterations=2)
    timed = TrialOutcome("t", "completed", None, 1024, {}, {}, "", iterations=4)  # trial_seconds
    every = unscored_warning([cut, pruned, timed], job)
    assert every is not None and (
        "3 of them stopped after at most 1024 env steps, short of budget.trial_env_steps (4096), "
        "ended by budget.trial_seconds (25) or budget.experiment_seconds (70) or scheduler asha "
        "before any episode ended" in every
    )


def test_tunes_warning_on_trials_without_result_files_is_dropped_and_others_kept() -> None:
    """A trial the experiment's budget ended before it started has no result file; Tune's
    ResultGrid then logs a FileNotFoundError per such trial, which read as a fault under the
    run's summary (where the trial shows as out_of_budget)."""
    import logging

    from lrtune.running._run import _NoResultFilesFilter

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("ray.tune", logging.WARNING, __file__, 1, message, None, None)

    missing = (
        "- LRTuneTrainable_bb39650d: FileNotFoundError('Could not fetch metrics for "
        "LRTuneTrainable_bb39650d: both result.json and progress.csv were not found at /x')"
    )
    keep = _NoResultFilesFilter().filter
    assert not keep(record(f"Failed to fetch metrics for 1 trial(s):\n{missing}"))
    broken = "- LRTuneTrainable_c: JSONDecodeError('Expecting value: line 1 column 1')"
    assert keep(record(f"Failed to fetch metrics for 2 trial(s):\n{missing}\n{broken}"))
    assert keep(record("something else"))
