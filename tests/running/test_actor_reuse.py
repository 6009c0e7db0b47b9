"""Tune re-uses a finished trial's actor for the next trial (``reuse_actors``) because
`LRTuneTrainable` resets itself: the next trial's algorithms are built from scratch in the same
process and train exactly as on a fresh actor. Parametrised over ``agents.names()``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ray import tune

from job_helpers import tiny_trial, train_trial
from lrtune.registry import agents
from lrtune.running._run import _resets_itself
from lrtune.running._trainable import LRTuneTrainable
from lrtune.specs._point import TrialPoint


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def test_tune_reuses_lrtunes_actors_and_not_a_trainable_that_cannot_reset() -> None:
    assert _resets_itself(LRTuneTrainable) is True
    assert _resets_itself(tune.Trainable) is False


@pytest.mark.slow
@pytest.mark.parametrize("agent", agents.names())
def test_a_reset_actor_trains_the_next_trial_as_a_fresh_actor_does(
    agent: str, tmp_path: Path
) -> None:
    first = tiny_trial(agent, tmp_path, [1000], lr=1e-3)
    try:
        first.train()
        # What Tune does when this actor takes on the next trial.
        assert first.reset(TrialPoint(policy={"lr": 3e-4}).to_config()) is True
        assert first.iteration == 0
        reused = train_trial(first, 2)
    finally:
        first.stop()
    fresh = tiny_trial(agent, tmp_path, [1000], lr=3e-4)
    try:
        assert train_trial(fresh, 2) == reused  # scores, weights and optimizer state
    finally:
        fresh.stop()
