"""Finalist selection per group, and the note when a group's best rate sits at its range's edge."""

from __future__ import annotations

from typing import Any

from lrtune.running._finalize import rates_at_range_edge, select_finalists


def trial(optimizer: str, lr: float, score: float) -> dict[str, Any]:
    """A summary.json trial record of a completed trial."""
    policy = {
        "lr": lr,
        "schedule": {"name": "constant", "params": {}},
        "optimizer": {"name": optimizer, "params": {}},
        "gradients": {"name": "none", "params": {}},
        "feedback": [],
    }
    return {
        "trial_id": f"{optimizer}-{lr}",
        "status": "completed",
        "score": score,
        "policy": policy,
    }


# SGD's best is its largest rate, Adam's its smallest, Adagrad's inside its range; RMSprop tried
# only two rates (no range to speak of).
TRIALS = [
    trial("sgd", 1e-3, 10.0),
    trial("sgd", 1e-2, 11.0),
    trial("sgd", 1e-1, 12.0),
    trial("adam", 1e-4, 12.5),
    trial("adam", 1e-3, 12.0),
    trial("adam", 1e-2, 11.0),
    trial("adagrad", 1e-3, 11.0),
    trial("adagrad", 1e-2, 12.2),
    trial("adagrad", 1e-1, 11.5),
    trial("rmsprop", 1e-4, 11.0),
    trial("rmsprop", 1e-3, 12.1),
]


def test_one_finalist_per_group_is_the_groups_best() -> None:
    chosen = select_finalists(TRIALS, 1, "max", ["optimizer"])
    assert [(g, t["policy"]["lr"]) for g, t in chosen] == [
        ("adam", 1e-4),
        ("adagrad", 1e-2),
        ("rmsprop", 1e-3),
        ("sgd", 1e-1),
    ]


def test_groups_whose_best_rate_is_an_edge_of_their_range_are_named() -> None:
    chosen = select_finalists(TRIALS, 1, "max", ["optimizer"])
    largest, smallest = rates_at_range_edge(chosen, TRIALS, ["optimizer"])
    assert "largest one searched in 1 of 3 group(s) (sgd)" in largest and "above" in largest
    assert "smallest one searched in 1 of 3 group(s) (adam)" in smallest and "below" in smallest
    # One group over all trials: the overall best (Adam 1e-4) is the smallest rate searched.
    (overall,) = rates_at_range_edge(select_finalists(TRIALS, 1, "max"), TRIALS)
    assert "smallest one searched in 1 of 1 group(s) (all)" in overall
    inside = [t for t in TRIALS if t["policy"]["optimizer"]["name"] == "adagrad"]
    assert rates_at_range_edge(select_finalists(inside, 1, "max"), inside) == []


def test_trials_stopped_early_compete_only_when_none_completed() -> None:
    """A completed trial beats any trial stopped early (scored on fewer env steps); with none
    completed, the scheduler's and the experiment budget's early stops compete alike."""
    completed = trial("adam", 1e-3, 5.0)
    pruned = {**trial("adam", 1e-4, 9.0), "status": "pruned"}
    cut = {**trial("sgd", 1e-2, 8.0), "status": "out_of_budget"}
    failed = {**trial("sgd", 1e-1, 99.0), "status": "failed"}
    everything = [completed, pruned, cut, failed]
    assert [t["trial_id"] for _, t in select_finalists(everything, 3, "max")] == ["adam-0.001"]
    early = [pruned, cut, failed]
    assert [t["trial_id"] for _, t in select_finalists(early, 3, "max")] == [
        "adam-0.0001",
        "sgd-0.01",
    ]


def test_equal_scores_are_ordered_by_the_training_score_in_the_jobs_direction() -> None:
    """A capped score (CartPole's 500 on a greedy evaluation) ties several trials; the one whose
    training episodes scored better goes first, whichever was listed first. The training score
    never outranks a better score, and a trial without one goes after those with one."""
    first = {**trial("adam", 1e-3, 500.0), "training_score": 366.3}
    steadier = {**trial("adam", 4e-4, 500.0), "training_score": 486.0}
    unknown = {**trial("sgd", 1e-2, 500.0), "training_score": None}
    better = {**trial("sgd", 1e-1, 501.0), "training_score": 10.0}
    listed = [unknown, first, steadier, better]
    ranked = [t["trial_id"] for _, t in select_finalists(listed, 4, "max")]
    assert ranked == ["sgd-0.1", "adam-0.0004", "adam-0.001", "sgd-0.01"]
    # mode min: the lower score first, then the lower training score.
    low = {**trial("adam", 1e-3, 1.0), "training_score": 3.0}
    lower = {**trial("adam", 4e-4, 1.0), "training_score": 2.0}
    ranked = [t["trial_id"] for _, t in select_finalists([low, lower], 2, "min")]
    assert ranked == ["adam-0.0004", "adam-0.001"]
    # Records written before training scores were kept rank as before: the first listed.
    old = [trial("adam", 1e-3, 500.0), trial("adam", 4e-4, 500.0)]
    assert [t["trial_id"] for _, t in select_finalists(old, 1, "max")] == ["adam-0.001"]
