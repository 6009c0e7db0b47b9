"""Parameter importance leaves out diverged trials, which the study holds as complete with the
job's worst value (a sentinel for the samplers, not a score)."""

from __future__ import annotations

import optuna

from lrtune.analysis._importance import _compute


def _study(diverged: int) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    dists = {
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
        "gamma": optuna.distributions.FloatDistribution(0.9, 0.999),
    }
    for i in range(12):
        lr, gamma = 1e-4 * (1.4**i), 0.9 + 0.008 * ((i * 5) % 12)
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": lr, "gamma": gamma}, distributions=dists, value=100.0 * gamma
            )
        )
    for i in range(diverged):  # high learning rates diverge
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": 9e-3 - 1e-4 * i, "gamma": 0.95},
                distributions=dists,
                value=-1e6,
                user_attrs={"lrtune_status": "diverged"},
            )
        )
    return study


def test_importance_is_computed_on_the_trials_that_did_not_diverge() -> None:
    clean = _compute(_study(0), "fanova", 0)
    with_diverged = _compute(_study(4), "fanova", 0)
    assert clean is not None and with_diverged is not None
    assert with_diverged == clean
    assert clean[1]["gamma"] > clean[1]["lr"]  # the score depends on gamma only
