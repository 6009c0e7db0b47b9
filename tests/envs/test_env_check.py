"""`lrtune.envs.check.api_problem`: the run-start probe (one reset, one step) finds what would
fail every trial inside RLlib's vector env, and passes the envs that train."""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from lrtune.envs.check import api_problem

BOX = spaces.Box(-1.0, 1.0, (3,), np.float32)


class Scripted(gym.Env[Any, Any]):
    """An env whose reset and step return what the test gives it."""

    def __init__(self, observation_space: Any, reset: Any, step: Any) -> None:
        self.observation_space = observation_space
        self.action_space = spaces.Discrete(2)
        self._reset, self._step = reset, step

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        return self._reset

    def step(self, action: Any) -> Any:
        return self._step


ZEROS = np.zeros(3, np.float32)
GOOD_STEP = (ZEROS, 1.0, False, False, {})

FAULTS = {
    # gym < 0.26: RLlib's SyncVectorEnv says "too many values to unpack (expected 2)".
    "old reset": (BOX, ZEROS, GOOD_STEP, r"reset\(\) returned an array of shape \(3,\), not "),
    "old step": (BOX, (ZEROS, {}), (ZEROS, 1.0, False, {}), r"step\(\) returned a tuple of 4"),
    # "Output array is the wrong shape"
    "shape": (BOX, (np.zeros(4), {}), GOOD_STEP, r"observation has shape \(4,\), but the env "),
    "step shape": (BOX, (ZEROS, {}), (np.zeros((1, 3)), 1.0, False, False, {}), r"step\(\)'s"),
    # "setting an array element with a sequence"
    "reward array": (
        BOX,
        (ZEROS, {}),
        (ZEROS, np.array([1.0]), False, False, {}),
        r"reward is an array of shape \(1,\), not a number",
    ),
    "reward text": (BOX, (ZEROS, {}), (ZEROS, "1", False, False, {}), r"reward is a str"),
    "info": (BOX, (ZEROS, {}), (ZEROS, 1.0, False, False, None), r"info \(the fifth value\)"),
    "discrete": (spaces.Discrete(4), (7, {}), GOOD_STEP, r"observation is 7, not in the env's"),
    "dict keys": (
        spaces.Dict({"a": BOX, "b": spaces.Discrete(2)}),
        ({"a": ZEROS}, {}),
        GOOD_STEP,
        r"observation is a dict, but the env declares Dict",
    ),
    "tuple part": (
        spaces.Tuple((spaces.Discrete(2), BOX)),
        ((1, np.zeros(5)), {}),
        GOOD_STEP,
        r"reset\(\)'s observation\[1\] has shape \(5,\)",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_what_would_fail_every_trial_is_named(fault: str) -> None:
    space, reset, step, message = FAULTS[fault]
    problem = api_problem(Scripted(space, reset, step))
    assert problem is not None and re.search(message, problem), problem


@pytest.mark.parametrize(
    "env_id",
    ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1", "Blackjack-v1", "lrtune/RecSys-v0"],
)
def test_envs_that_train_pass(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        assert api_problem(env) is None
    finally:
        env.close()


def test_loose_bounds_numpy_rewards_and_composite_observations_pass() -> None:
    """Values outside a Box's bounds, float64 observations in a float32 Box, numpy scalar
    rewards and nested observations train in RLlib, so they pass."""
    composite = spaces.Dict({"a": BOX, "b": spaces.Tuple((spaces.Discrete(3), BOX))})
    observation = {"a": np.full(3, 5.0), "b": (np.int64(2), ZEROS)}
    env = Scripted(composite, (observation, {}), (observation, np.float32(0.5), True, False, {}))
    assert api_problem(env) is None
    assert api_problem(Scripted(BOX, (ZEROS, {}), (ZEROS, np.int64(1), False, True, {}))) is None
