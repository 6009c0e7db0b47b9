"""lrtune's learner inside real RLlib algorithms (PPO and DQN on CartPole-v1, real Ray)."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lrtune.learners import RESULT_KEY, build_algorithm_config
from lrtune.policies import LRPolicySpec
from lrtune.registry import optimizers

pytestmark = pytest.mark.slow

PPO_TINY: dict[str, Any] = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "num_envs_per_env_runner": 1,
}
DQN_TINY: dict[str, Any] = {
    "train_batch_size_per_learner": 32,
    "num_steps_sampled_before_learning_starts": 64,
    "min_sample_timesteps_per_iteration": 100,
    "rollout_fragment_length": 25,
    "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 5000},
}
WARMUP_COSINE = {
    "lr": 1e-3,
    "schedule": {
        "name": "warmup",
        "params": {"steps": 256, "start_factor": 0.1, "then": {"name": "cosine"}},
    },
}


def warmup_cosine(step: int, budget: int) -> float:
    """Independent closed form: linear warmup 0.1→1 over 256 steps, cosine to 0 by the budget."""
    if step < 256:
        return 1e-3 * (0.1 + 0.9 * step / 256)
    t = min(step - 256, budget - 256)
    return 1e-3 * 0.5 * (1 + math.cos(math.pi * t / (budget - 256)))


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def make_algo(agent: str, policy: Mapping[str, Any], budget: int = 1024, **hp: Any) -> Any:
    base = PPO_TINY if agent == "ppo" else DQN_TINY
    config = build_algorithm_config(
        agent, "CartPole-v1", policy=policy, hyperparams={**base, **hp}, budget=budget, seed=3
    )
    return config.build_algo()


def learner_of(algo: Any) -> Any:
    return algo.learner_group._learner


def module_weights(algo: Any) -> list[torch.Tensor]:
    return [p.detach().clone() for p in learner_of(algo).module["default_policy"].parameters()]


def test_ppo_reports_the_warmup_cosine_lr_read_back_from_the_optimizer() -> None:
    algo = make_algo("ppo", WARMUP_COSINE, budget=768)
    try:
        for _ in range(6):
            result = algo.train()
            metrics = result[RESULT_KEY]
            steps = result["env_runners"]["num_env_steps_sampled_lifetime"]
            assert metrics["lr_env_step"] == steps
            assert metrics["lr"] == pytest.approx(warmup_cosine(int(steps), 768), rel=1e-12)
            assert learner_of(algo).applied_lr() == metrics["lr"]
            # A KL, up to float32 rounding: the orthogonal init's near-uniform first policy
            # (output gain 0.01) moves so little that the KL can round to -1e-10.
            assert metrics["kl"] >= -1e-6
            assert metrics["grad_norm_pre_gating"] > 0.0
    finally:
        algo.stop()


def test_dqn_reports_the_last_updates_lr_and_its_env_step() -> None:
    algo = make_algo("dqn", WARMUP_COSINE, budget=600)
    try:
        seen = []
        for _ in range(4):
            metrics = algo.train()[RESULT_KEY]
            if "lr" not in metrics:  # no update yet (replay warm-up)
                continue
            step = int(metrics["lr_env_step"])
            assert metrics["lr"] == pytest.approx(warmup_cosine(step, 600), rel=1e-12)
            assert "kl" not in metrics
            seen.append(step)
        assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] > seen[0]
    finally:
        algo.stop()


# Rates at which each optimizer makes visible progress in 12 updates on one batch.
OPTIMIZER_LR = {
    "adadelta": 1.0,
    "adagrad": 1e-2,
    "sgd": 5e-2,
    "lars": 1.0,
    "lamb": 2e-2,
    "rmsprop": 1e-3,
}


@pytest.fixture(scope="module")
def fixed_episodes() -> Any:
    algo = make_algo("ppo", {"lr": 1e-3})
    try:
        return algo.env_runner.sample(num_timesteps=256)
    finally:
        algo.stop()


@pytest.mark.parametrize("name", optimizers.names())
def test_each_optimizer_trains_ppo_on_a_fixed_batch(name: str, fixed_episodes: Any) -> None:
    policy = {"lr": OPTIMIZER_LR.get(name, 3e-3), "optimizer": name}
    config = build_algorithm_config(
        "ppo", "CartPole-v1", policy=policy, hyperparams=PPO_TINY, budget=1000, seed=0
    )
    import gymnasium as gym

    learner = config.build_learner(env=gym.make("CartPole-v1"))
    losses = []
    for _ in range(12):
        out = learner.update(
            episodes=copy.deepcopy(fixed_episodes),
            timesteps={"num_env_steps_sampled_lifetime": 256},
            minibatch_size=256,
            num_epochs=1,
        )
        losses.append(float(out["default_policy"]["total_loss"].peek()))
    weights = [p.detach() for p in learner.module["default_policy"].parameters()]
    assert all(torch.isfinite(w).all() for w in weights)
    assert sum(losses[-3:]) / 3 < 0.95 * losses[0], (name, losses)
    assert learner.applied_lr() == policy["lr"]


def test_clip_global_norm_bounds_the_post_gating_norm() -> None:
    algo = make_algo(
        "ppo", {"lr": 1e-3, "gradients": {"name": "clip_global_norm", "params": {"max_norm": 0.01}}}
    )
    try:
        for _ in range(2):
            metrics = algo.train()[RESULT_KEY]
            assert metrics["grad_norm_pre_gating"] > 0.01
            assert metrics["grad_norm_post_gating"] <= 0.01 + 1e-6
    finally:
        algo.stop()


def test_kl_adaptive_cuts_the_lr_when_kl_overshoots_and_raises_it_when_small() -> None:
    tiny_target = {"name": "kl_adaptive", "params": {"target": 1e-9, "factor": 2.0}}
    algo = make_algo("ppo", {"lr": 1e-2, "feedback": [tiny_target]})
    try:
        first = algo.train()[RESULT_KEY]
        second = algo.train()[RESULT_KEY]
        assert first["feedback_factor"] == 1.0 and first["next_feedback_factor"] == 0.5
        assert second["lr"] == pytest.approx(1e-2 * 0.5)
    finally:
        algo.stop()
    huge_target = {"name": "kl_adaptive", "params": {"target": 10.0, "factor": 2.0}}
    algo = make_algo("ppo", {"lr": 1e-4, "feedback": [huge_target]})
    try:
        algo.train()
        assert algo.train()[RESULT_KEY]["lr"] == pytest.approx(2e-4)
    finally:
        algo.stop()


def test_divergence_guard_keeps_a_run_at_lr_1e3_alive_with_finite_weights() -> None:
    policy = {"lr": 1e3, "optimizer": "sgd", "feedback": ["divergence_guard"]}
    algo = make_algo("ppo", policy, num_epochs=4, minibatch_size=32)
    try:
        for _ in range(4):
            metrics = algo.train()[RESULT_KEY]
        assert metrics["divergence_events"] >= 1
        assert metrics["lr"] < 1e3
        assert all(torch.isfinite(w).all() for w in module_weights(algo))
    finally:
        algo.stop()


def test_checkpoint_restore_continues_the_exact_trajectory(tmp_path: Path) -> None:
    policy = {**WARMUP_COSINE, "feedback": [{"name": "kl_adaptive", "params": {"target": 1e-9}}]}
    algo = make_algo("ppo", policy, budget=768)
    try:
        before = [algo.train()[RESULT_KEY] for _ in range(2)]
        algo.save_to_path(str(tmp_path / "ckpt"))
    finally:
        algo.stop()
    restored = make_algo("ppo", policy, budget=768)
    try:
        restored.restore_from_path(str(tmp_path / "ckpt"))
        after = restored.train()[RESULT_KEY]
    finally:
        restored.stop()
    assert after["lr_env_step"] == before[-1]["lr_env_step"] + 128
    assert after["feedback_factor"] == before[-1]["next_feedback_factor"] < 1.0
    expected = warmup_cosine(int(after["lr_env_step"]), 768) * after["feedback_factor"]
    assert after["lr"] == pytest.approx(expected, rel=1e-12)


def test_restore_into_a_new_base_lr_takes_effect_on_the_next_update(tmp_path: Path) -> None:
    algo = make_algo("ppo", {"lr": 1e-3})
    try:
        algo.train()
        algo.train()
        algo.save_to_path(str(tmp_path / "ckpt"))
        donor_moments = learner_of(algo).get_state()["optimizer"]
    finally:
        algo.stop()
    exploited = make_algo("ppo", {"lr": 1e-5})
    try:
        exploited.restore_from_path(str(tmp_path / "ckpt"))
        assert learner_of(exploited).applied_lr() == 1e-5  # before any update
        restored_moments = learner_of(exploited).get_state()["optimizer"]
        key = next(iter(donor_moments))
        donor_state = donor_moments[key]["state"]["state"]
        restored_state = restored_moments[key]["state"]["state"]
        for idx in donor_state:
            for name, value in donor_state[idx].items():
                assert np.array_equal(np.asarray(restored_state[idx][name]), np.asarray(value))
        result = exploited.train()[RESULT_KEY]
        assert result["lr"] == 1e-5
        assert result["lr_env_step"] == 3 * 128
    finally:
        exploited.stop()


def test_a_policy_entry_that_does_not_support_the_agent_is_refused() -> None:
    from lrtune.policies import PolicyError

    with pytest.raises(PolicyError, match="kl_adaptive"):
        build_algorithm_config(
            "dqn", "CartPole-v1", policy={"lr": 1e-3, "feedback": ["kl_adaptive"]}
        )
    with pytest.raises(PolicyError, match=r"hyperparams\.lr"):
        build_algorithm_config("ppo", "CartPole-v1", policy={"lr": 1e-3}, hyperparams={"lr": 1})
    with pytest.raises(PolicyError, match=r"hyperparams\.gama"):
        build_algorithm_config("ppo", "CartPole-v1", policy={"lr": 1e-3}, hyperparams={"gama": 1})
    assert LRPolicySpec.model_validate({"lr": 1e-3}).optimizer.name == "adam"


def test_a_setting_goes_to_the_section_that_takes_it_and_deprecated_names_are_refused() -> None:
    """RLlib's ``env_runners`` still lists ``restart_failed_sub_environments`` as a deprecated
    keyword (it raises when given one): the setting goes to ``fault_tolerance``, where it
    lives now. A name that is only deprecated (``num_rollout_workers``) is refused, by name."""
    from lrtune.learners._config import check_hyperparam_names
    from lrtune.policies import PolicyError

    config = build_algorithm_config(
        "ppo",
        "CartPole-v1",
        policy={"lr": 1e-3},
        hyperparams={"restart_failed_sub_environments": True},
    )
    assert config.restart_failed_sub_environments is True
    for agent, rllib in (("ppo", "PPOConfig"), ("dqn", "DQNConfig"), ("sac", "SACConfig")):
        with pytest.raises(
            PolicyError,
            match=rf"hyperparams\.num_rollout_workers: not a setting of RLlib's {rllib} ",
        ):
            check_hyperparam_names(agent, ["gamma", "num_rollout_workers"])
    check_hyperparam_names("dqn", ["gamma", "target_network_update_freq", "n_step"])
