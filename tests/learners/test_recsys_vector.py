"""The recommender's native vector env in RLlib: presets, config, batched pipeline, one train().

Throughput figures live in benchmarks/recsys_train.py; these check what is built and that
env steps are counted as the env took them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.connectors.module_to_env import (
    UnBatchToIndividualItems,
)

from lrtune.envs import RECSYS_HARD_ID, RECSYS_ID, BatchedRecSysEnv
from lrtune.learners import RESULT_KEY, build_algorithm_config
from lrtune.learners._presets import preset_hyperparams
from lrtune.learners._vector import BatchedActions, vector_entry_point
from lrtune.policies import PolicyError

POLICY = {"lr": 3e-4}
# A few hundred env steps per iteration: 32 envs x 8 steps.
TINY = {
    "num_envs_per_env_runner": 32,
    "train_batch_size_per_learner": 256,
    "minibatch_size": 128,
    "num_epochs": 1,
}
COUNTING_ID = "lrtune-test/CountingRecSys-v0"


class CountingRecSysEnv(BatchedRecSysEnv):
    """`BatchedRecSysEnv` that counts the user-steps it took (a step that restarts a finished
    session, NEXT_STEP autoreset, is a reset, not a step)."""

    taken = 0

    def step(self, actions: Any) -> Any:
        """Count the users that step (not restart) on this call, then step."""
        type(self).taken += int(self.num_envs - np.count_nonzero(self._needs_reset))
        return super().step(actions)


if COUNTING_ID not in gym.registry:
    gym.register(
        id=COUNTING_ID,
        entry_point="lrtune.envs.recsys:RecSysEnv",
        vector_entry_point=CountingRecSysEnv,
        kwargs={"preset": "default"},
    )


def module_to_env_pieces(config: Any) -> list[type]:
    """Classes of the module-to-env pipeline ``config`` builds for its own vector env."""
    venv = gym.make_vec(config.env, num_envs=2, vectorization_mode=config.gym_env_vectorize_mode)
    try:
        return [type(c) for c in config.build_module_to_env_connector(env=venv).connectors]
    finally:
        venv.close()


@pytest.mark.parametrize("agent", ["ppo", "dqn"])
@pytest.mark.parametrize("env", [RECSYS_ID, RECSYS_HARD_ID, f"lrtune.envs:{RECSYS_ID}"])
def test_recsys_configs_use_the_vector_entry_point(agent: str, env: str) -> None:
    params = preset_hyperparams(agent, env)
    assert params["gym_env_vectorize_mode"] == "vector_entry_point"
    config = build_algorithm_config(agent, env, policy=POLICY, hyperparams=params)
    assert config.gym_env_vectorize_mode == "vector_entry_point"
    assert config.num_envs_per_env_runner == params["num_envs_per_env_runner"]
    # The batched pipeline, not RLlib's per-item one.
    assert module_to_env_pieces(config) == [BatchedActions]


def test_discrete_actions_get_the_batched_pipeline_in_sync_mode_too() -> None:
    # CartPole-v1 does register a vector entry point in gymnasium 1.2 (CartPoleVectorEnv), but
    # has no per-env entry asking for it: its presets, measured in "sync", stay there, with the
    # batched pipeline (its actions are Discrete).
    assert vector_entry_point("CartPole-v1") is True
    for agent in ("ppo", "dqn"):
        params = preset_hyperparams(agent, "CartPole-v1")
        assert "gym_env_vectorize_mode" not in params
        config = build_algorithm_config(agent, "CartPole-v1", policy=POLICY, hyperparams=params)
        assert config.gym_env_vectorize_mode == "sync"
        assert module_to_env_pieces(config) == [BatchedActions]
    # Box actions (RLlib rescales and clips them per item) and LSTM modules keep RLlib's.
    pendulum = build_algorithm_config("ppo", "Pendulum-v1", policy=POLICY)
    assert UnBatchToIndividualItems in module_to_env_pieces(pendulum)
    lstm = build_algorithm_config(
        "ppo", "CartPole-v1", policy=POLICY, hyperparams={"model_config": {"use_lstm": True}}
    )
    assert UnBatchToIndividualItems in module_to_env_pieces(lstm)
    # A job's own module may be stateful: RLlib's pipeline, which strips state per item.
    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    own = build_algorithm_config(
        "ppo",
        "CartPole-v1",
        policy=POLICY,
        hyperparams={"rl_module_spec": RLModuleSpec(module_class=DefaultPPOTorchRLModule)},
    )
    assert UnBatchToIndividualItems in module_to_env_pieces(own)


def test_vector_mode_needs_a_vector_entry_point() -> None:
    assert vector_entry_point("Acrobot-v1") is False
    with pytest.raises(PolicyError, match=r"gym_env_vectorize_mode.*Acrobot-v1"):
        build_algorithm_config(
            "ppo",
            "Acrobot-v1",
            policy=POLICY,
            hyperparams={"gym_env_vectorize_mode": "vector_entry_point"},
        )
    # A job that builds its own module-to-env pipeline keeps it.
    config = build_algorithm_config(
        "ppo",
        RECSYS_ID,
        policy=POLICY,
        hyperparams={
            "gym_env_vectorize_mode": "vector_entry_point",
            "add_default_connectors_to_module_to_env_pipeline": True,
        },
    )
    assert UnBatchToIndividualItems in module_to_env_pieces(config)


@pytest.fixture(scope="module")
def _ray(ray_session: Any) -> Iterator[None]:
    yield


@pytest.mark.slow
@pytest.mark.usefixtures("_ray")
def test_one_iteration_counts_the_env_steps_the_vector_env_took() -> None:
    params = {**preset_hyperparams("ppo", RECSYS_ID), **TINY}
    config = build_algorithm_config(
        "ppo", COUNTING_ID, policy=POLICY, hyperparams=params, budget=10_000, seed=0
    )
    assert config.gym_env_vectorize_mode == "vector_entry_point"
    algo = config.build_algo()
    try:
        assert isinstance(algo.env_runner.env.unwrapped, CountingRecSysEnv)
        CountingRecSysEnv.taken = 0
        result = algo.train()
    finally:
        algo.stop()
    sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
    assert sampled >= TINY["train_batch_size_per_learner"]
    assert sampled == CountingRecSysEnv.taken
    # The LR policy sees the same count (schedules run on lifetime env steps).
    assert result[RESULT_KEY]["lr_env_step"] == sampled
    assert np.isfinite(result["learners"]["default_policy"]["total_loss"])


@pytest.mark.slow
@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize(
    ("agent", "env"), [("ppo", RECSYS_ID), ("ppo", "CartPole-v1"), ("dqn", "CartPole-v1")]
)
def test_batched_pipeline_samples_what_the_default_pipeline_samples(agent: str, env: str) -> None:
    """Same seed, same episodes: observations, actions, their log-probabilities, rewards; on
    a native vector env and on RLlib's "sync" one (CartPole-v1), sampling (PPO) or ε-greedy
    (DQN)."""
    samples = []
    for default_pipeline in (False, True):
        params = {**preset_hyperparams(agent, env), "num_envs_per_env_runner": 32}
        if agent == "ppo":
            params.update(TINY)
        if default_pipeline:  # RLlib's own, per-item module-to-env pipeline
            params["add_default_connectors_to_module_to_env_pipeline"] = True
        config = build_algorithm_config(agent, env, policy=POLICY, hyperparams=params, seed=0)
        assert (BatchedActions in module_to_env_pieces(config)) is not default_pipeline
        algo = config.build_algo()
        try:
            torch.manual_seed(0)
            samples.append(algo.env_runner.sample(num_timesteps=2048, explore=True))
        finally:
            algo.stop()
    batched, default = samples
    assert len(batched) == len(default) > 32  # finished sessions as well as ongoing ones
    assert any(e.is_done for e in batched)
    for a, b in zip(batched, default, strict=True):
        assert np.array_equal(a.get_observations(), b.get_observations())
        assert np.array_equal(a.get_actions(), b.get_actions())
        assert np.array_equal(a.get_rewards(), b.get_rewards())
        if agent == "ppo":
            assert np.allclose(
                a.get_extra_model_outputs("action_logp"),
                b.get_extra_model_outputs("action_logp"),
            )
