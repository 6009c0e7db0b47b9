"""Agent presets: hyper-parameters around the LR policy that make the agent train well.

A search over learning-rate policies is only as good as the agent around it: with RLlib's own
PPO defaults, LR-only searches on classic control can fail outright. Sources:
- PPO: rl-zoo3's tuned CartPole/Pendulum settings and the measurements in shared/STACK.md
  (16 vectorised envs, batch 4096, minibatch 256, 4 epochs, GAE λ 0.94 nearly solves
  CartPole-v1 in ~57k steps at ~6k steps/s on one CPU).
- DQN: rl-zoo3's CartPole DQN (double + dueling, target update every 500 updates, replay 50k).
"""

from __future__ import annotations

from typing import Any

PPO_DEFAULTS: dict[str, Any] = {
    "num_envs_per_env_runner": 16,
    "train_batch_size_per_learner": 4096,
    "minibatch_size": 256,
    "num_epochs": 4,
    "lambda_": 0.94,
    "gamma": 0.99,
    "entropy_coeff": 0.0,
    "vf_loss_coeff": 0.5,
    "clip_param": 0.2,
}

DQN_DEFAULTS: dict[str, Any] = {
    "num_envs_per_env_runner": 1,
    "train_batch_size_per_learner": 64,
    "double_q": True,
    "dueling": True,
    "target_network_update_freq": 500,
    "n_step": 1,
    "replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 50_000},
    "epsilon": [(0, 1.0), (10_000, 0.05)],
    "num_steps_sampled_before_learning_starts": 1_000,
}


def preset_hyperparams(agent: str, env: str | None = None) -> dict[str, Any]:
    """The preset hyper-parameters of ``agent`` (a fresh copy; jobs override any of them)."""
    return dict({"ppo": PPO_DEFAULTS, "dqn": DQN_DEFAULTS}[agent])
