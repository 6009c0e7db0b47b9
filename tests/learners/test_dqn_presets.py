"""DQN's agent presets in a real RLlib build: tiny smoke runs, no learning claims.

Learning and throughput figures live in benchmarks/presets.py (its docstring)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from lrtune.learners import build_algorithm_config
from lrtune.learners._presets import DQN_DEFAULTS, preset_hyperparams

pytestmark = pytest.mark.slow

# Shorter iterations and an earlier first update than the presets: two iterations stay small.
TINY = {"min_sample_timesteps_per_iteration": 256, "num_steps_sampled_before_learning_starts": 64}


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def test_dqn_defaults_train_two_iterations_at_the_preset_replay_ratio() -> None:
    params = {**preset_hyperparams("dqn", "CartPole-v1"), **TINY}
    config = build_algorithm_config(
        "dqn", "CartPole-v1", policy={"lr": 1e-3}, hyperparams=params, budget=2048, seed=0
    )
    assert config.num_envs_per_env_runner == DQN_DEFAULTS["num_envs_per_env_runner"]
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
    finally:
        algo.stop()
    sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
    assert sampled >= 2 * TINY["min_sample_timesteps_per_iteration"]
    learner = result["learners"]["default_policy"]
    assert math.isfinite(float(learner["total_loss"]))
    assert math.isfinite(float(learner["qf_mean"]))
    # Replayed items per sampled env step is the preset's training_intensity (every training
    # step samples envs x fragment steps and replays intensity times as many items), once
    # learning has started.
    trained = result["learners"]["__all_modules__"]["num_env_steps_trained_lifetime"]
    started = TINY["num_steps_sampled_before_learning_starts"]
    per_call = DQN_DEFAULTS["num_envs_per_env_runner"] * DQN_DEFAULTS["rollout_fragment_length"]
    ratio = trained / (sampled - started)
    # Up to two training steps' worth of slack: when learning starts falls inside a step.
    assert DQN_DEFAULTS["training_intensity"] * (1 - 2 * per_call / (sampled - started)) <= ratio
    assert ratio <= DQN_DEFAULTS["training_intensity"] * 1.05
