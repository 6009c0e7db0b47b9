"""Reward scaling for PPO: rewards divided by the running std of the discounted return.

What Stable-Baselines3's ``VecNormalize(norm_reward=True)`` and gymnasium's ``NormalizeReward``
do (rl-zoo3 turns it on for its continuous-control tasks), as a learner connector piece, so that
the env runner and its metrics keep the environment's own rewards: episode returns, scores and
evaluations stay in the task's units; only the rewards the value function and GAE see are scaled.

Per env stream the piece keeps the discounted return ``G ← γ·G + r`` (reset when an episode
terminates or is truncated), feeds every ``G`` of a batch to a running mean and variance, and
divides the batch's rewards by ``√(var + ε)``, clipped to ``±clip``, as SB3 does. Its state (the
running moments and the open episodes' returns) is part of lrtune's learner checkpoint
(`LRPolicyLearner.get_state`), so a restored trial scales with the moments the interrupted one
had, and the open returns continue with the episodes a trial's own checkpoint brings back
(`lrtune.running._sampling_state`). RLlib 2.60 has no such piece, and its learner checkpoint
leaves learner connector state out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns

#: SB3 ``VecNormalize`` defaults: ``epsilon`` and ``clip_reward``.
EPSILON = 1e-8
CLIP = 10.0


class RunningMoments:
    """Running count, mean and variance of a stream of numbers (Chan et al.'s parallel update,
    as SB3's ``RunningMeanStd``); starts at count ε, mean 0, variance 1, as SB3's does."""

    def __init__(self, count: float = 1e-4, mean: float = 0.0, var: float = 1.0) -> None:
        self.count, self.mean, self.var = float(count), float(mean), float(var)

    def update(self, values: np.ndarray) -> None:
        """Fold ``values`` into the moments."""
        if values.size == 0:
            return
        batch_mean, batch_var, batch_count = float(values.mean()), float(values.var()), values.size
        delta = batch_mean - self.mean
        total = self.count + batch_count
        m2 = self.var * self.count + batch_var * batch_count
        m2 += delta**2 * self.count * batch_count / total
        self.mean += delta * batch_count / total
        self.var, self.count = m2 / total, total


def discounted_returns(rewards: np.ndarray, gamma: float, start: float) -> np.ndarray:
    """``G_t = γ·G_{t-1} + r_t`` for every t, from ``G_{-1} = start``."""
    # Imported here: scipy.signal costs 1.4 s of CPU to import, in every trial actor and driver
    # that imports lrtune.learners, where only PPO with reward scaling calls this.
    from scipy.signal import lfilter

    out, _ = lfilter([1.0], [1.0, -gamma], rewards, zi=np.array([gamma * start]))
    return np.asarray(out, dtype=np.float64)


class RewardScaling(ConnectorV2):
    """Learner connector piece: scale each episode chunk's rewards by the running std of the
    discounted return (see the module docstring). lrtune's PPO learner puts it into the
    learner pipeline just before GAE reads the rewards (``model.normalize_rewards``)."""

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        gamma: float = 0.99,
        clip: float = CLIP,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_observation_space, input_action_space, gamma=gamma, clip=clip)
        self.gamma = float(gamma)
        self.clip = float(clip)
        self.moments = RunningMoments()
        # Episode id -> discounted return at the end of its last chunk (open episodes only).
        self.open_returns: dict[str, float] = {}

    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: list[Any],
        explore: bool | None = None,
        shared_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Update the moments with this batch's returns, then scale the batch's rewards.

        Runs after RLlib's pieces have built the batch (and appended one bootstrap step with
        reward 0 to every episode chunk, suffixing its id with ``_<index>``), before GAE. The
        episodes themselves are left alone: the env runner sums their rewards into the episode
        returns it reports."""
        returns, still_open = [], {}
        for chunk in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            episode_id = str(chunk.id_).rsplit("_", 1)[0]
            rewards = np.asarray(chunk.get_rewards(), dtype=np.float64)[:-1]
            start = self.open_returns.get(episode_id, 0.0)
            chunk_returns = discounted_returns(rewards, self.gamma, start)
            returns.append(chunk_returns)
            if not chunk.is_terminated:
                # Cut mid-episode, or truncated by the env: an id that does not come back in
                # the next batch is forgotten there.
                still_open[episode_id] = float(chunk_returns[-1]) if len(rewards) else start
        self.open_returns = still_open
        self.moments.update(np.concatenate(returns) if returns else np.empty(0))
        scale = float(np.sqrt(self.moments.var + EPSILON))
        for columns in batch.values():
            if Columns.REWARDS in columns:
                columns[Columns.REWARDS] = _clip(columns[Columns.REWARDS] / scale, self.clip)
        return batch

    def get_state(
        self, components: Any = None, *, not_components: Any = None, **kwargs: Any
    ) -> Any:
        """The running moments and the open episodes' returns (plain data)."""
        return {
            "count": self.moments.count,
            "mean": self.moments.mean,
            "var": self.moments.var,
            "open_returns": dict(self.open_returns),
        }

    def set_state(self, state: Any) -> None:
        """Restore what `get_state` returned."""
        self.moments = RunningMoments(state["count"], state["mean"], state["var"])
        self.open_returns = {str(k): float(v) for k, v in state["open_returns"].items()}


def _clip(values: Any, bound: float) -> Any:
    """``values`` (a torch tensor or numpy array) clipped to ``[-bound, bound]``."""
    if isinstance(values, torch.Tensor):
        return torch.clamp(values, -bound, bound)
    return np.clip(values, -bound, bound)


def reward_scaling_pieces(pieces: Iterable[Any]) -> list[RewardScaling]:
    """The `RewardScaling` pieces among a pipeline's connectors."""
    return [piece for piece in pieces if isinstance(piece, RewardScaling)]
