"""What the sampling tests share (imported by name: test folders have no __init__.py, and pytest
puts ``tests/`` on ``sys.path`` for its top-level conftest): small env-runner settings, the config
built from them and the bit-for-bit comparison of two episode chunks."""

from __future__ import annotations

from typing import Any

import numpy as np

from lrtune.learners import ModelSettings, build_algorithm_config
from lrtune.learners._presets import over_presets

#: benchmarks/throughput.py's settings, smaller: several envs, fragments that cut episodes.
SAMPLING_SETTINGS: dict[str, dict[str, Any]] = {
    "ppo": {
        "num_envs_per_env_runner": 4,
        "rollout_fragment_length": 32,
        "train_batch_size_per_learner": 128,
        "minibatch_size": 64,
        "num_epochs": 2,
    },
    "dqn": {
        "num_envs_per_env_runner": 4,
        "rollout_fragment_length": 4,
        "train_batch_size_per_learner": 32,
        "num_steps_sampled_before_learning_starts": 64,
        "min_sample_timesteps_per_iteration": 128,
        "epsilon": [[0, 1.0], [400, 0.05]],  # both greedy and random actions in a short run
    },
}


def sampling_config(
    agent: str, env: str, *, normalize: bool = False, extra: dict[str, Any] | None = None
) -> Any:
    """lrtune's config for ``agent`` on ``env`` with `SAMPLING_SETTINGS` over the presets
    (and ``extra`` over those), a 16-16 network, seed 0."""
    hyperparams = over_presets(agent, env, {}, SAMPLING_SETTINGS[agent], extra or {})
    return build_algorithm_config(
        agent,
        env,
        policy={"lr": 1e-3},
        hyperparams=hyperparams,
        model=ModelSettings(hidden=(16, 16), normalize_observations=normalize),
        seed=0,
    )


def assert_same_episodes(a: Any, b: Any) -> None:
    """Two episode chunks hold the same steps bit for bit (their random ids aside)."""
    assert (len(a), a.t_started, a.is_terminated, a.is_truncated) == (
        len(b),
        b.t_started,
        b.is_terminated,
        b.is_truncated,
    )
    np.testing.assert_array_equal(a.get_observations(), b.get_observations())
    np.testing.assert_array_equal(a.get_actions(), b.get_actions())
    np.testing.assert_array_equal(a.get_rewards(), b.get_rewards())
    assert sorted(a.extra_model_outputs) == sorted(b.extra_model_outputs)
    for key in a.extra_model_outputs:  # action_logp, action_dist_inputs, weights_seq_no
        np.testing.assert_array_equal(
            a.get_extra_model_outputs(key), b.get_extra_model_outputs(key), err_msg=key
        )


def assert_same_samples(ours: list[list[Any]], theirs: list[list[Any]], min_chunks: int) -> int:
    """Two runners' ``sample()`` results, call by call, hold the same chunks (at least
    ``min_chunks`` per call) bit for bit; returns how many of the chunks end their episode."""
    done = 0
    for mine, other in zip(ours, theirs, strict=True):
        assert len(mine) == len(other) >= min_chunks
        for a, b in zip(mine, other, strict=True):
            assert_same_episodes(a, b)
            done += a.is_done
    return done
