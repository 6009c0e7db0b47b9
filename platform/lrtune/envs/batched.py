"""Batched recommender simulator: many users stepped at once, gymnasium's vector API.

:class:`BatchedRecSysEnv` runs ``num_envs`` independent sessions of the model in
:mod:`lrtune.envs.recsys` with whole-array numpy operations (no Python loop over users, items
or topics).

Autoreset: ``AutoresetMode.NEXT_STEP`` (gymnasium 1.x's default). The step on which a session
ends returns that session's last observation with ``terminated`` or ``truncated`` set; the
*next* call to :meth:`~BatchedRecSysEnv.step` ignores that user's action, starts a new session
for it, and returns the new session's first observation with reward 0 and both flags False.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.typing import NDArray

from lrtune.envs.config import RecSysConfig, resolve_config
from lrtune.envs.recsys import RecSysModel

__all__ = ["BatchedRecSysEnv"]

_F32 = np.float32


class BatchedRecSysEnv(VectorEnv[NDArray[np.float32], NDArray[np.int64], NDArray[Any]]):
    """``num_envs`` recommender sessions stepped together (a ``gymnasium.vector.VectorEnv``).

    ``BatchedRecSysEnv(num_envs=1024, config=None, **kwargs)``: configuration as for
    :class:`~lrtune.envs.recsys.RecSysEnv`. Observations are fresh ``(num_envs, obs_dim)``
    float32 arrays, actions ``(num_envs,)`` integers in ``0..K-1``. Infos are empty dicts.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1024,
        config: Mapping[str, Any] | RecSysConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """Validate the configuration and allocate the per-user state arrays."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer >= 1")
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} is invalid: must be an integer >= 1")
        self.config = resolve_config(config, **kwargs)
        self.model = RecSysModel(self.config)
        m = self.model
        n = int(num_envs)
        self.num_envs = n
        self.single_observation_space = m.observation_space()
        self.single_action_space = spaces.Discrete(m.num_candidates)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        t = m.num_topics
        self._rows = np.arange(n)
        self._interest = np.zeros((n, t), dtype=_F32)
        self._hist = np.zeros((n, t), dtype=_F32)
        self._x = np.zeros((n, t), dtype=_F32)
        self._tmp = np.zeros((n, t), dtype=_F32)
        self._tmp2 = np.zeros((n, t), dtype=_F32)
        self._ones = np.ones(t, dtype=_F32)
        self._logit = np.zeros(n, dtype=_F32)
        self._gq = np.zeros(n, dtype=np.float64)
        self._budget = np.zeros(n, dtype=np.float64)
        self._t = np.zeros(n, dtype=np.int64)
        self._users = np.zeros(n, dtype=np.int64)
        self._start = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._click = np.zeros(n, dtype=bool)
        self._pos = 0
        self._block = 0
        self._order_ext: NDArray[np.int64] = np.zeros(0, np.int64)
        self._windows: NDArray[np.float32] = np.zeros((0, 0), _F32)
        self._starts: NDArray[np.int64] = np.zeros((0, n), np.int64)
        self._noise: NDArray[np.float32] = np.zeros((0, n), _F32)
        self._started = False

    # ------------------------------------------------------------------ internals
    def _refill(self) -> None:
        m = self.model
        steps = m.block_length(self.num_envs)
        order_ext, obs_ext, starts, noise = m.deal(self.np_random, steps, self.num_envs)
        # Pad T + 2 floats in front, so that the window of one full observation row starting at
        # ``s * F`` ends with the K candidates' features: one gather then yields a fresh
        # observation array whose user part (first T + 2 entries) is overwritten afterwards.
        lead, f = m.num_topics + 2, m.feat_dim
        padded = np.zeros(lead + obs_ext.size, dtype=_F32)
        padded[lead:] = obs_ext
        item = padded.itemsize
        self._order_ext = order_ext
        self._windows = np.lib.stride_tricks.as_strided(
            padded, shape=(m.num_items, m.obs_dim), strides=(f * item, item), writeable=False
        )
        self._starts, self._noise = starts, noise.astype(_F32)
        self._block, self._pos = steps, 0

    def _new_sessions(self, idx: NDArray[np.int64] | None) -> None:
        m = self.model
        size = self.num_envs if idx is None else len(idx)
        users = self.np_random.integers(self.config.num_users, size=size)
        sel: Any = slice(None) if idx is None else idx
        self._users[sel] = users
        self._interest[sel] = m.user_interest[users]
        self._hist[sel] = 0.0
        self._budget[sel] = m.user_budget[users]
        self._t[sel] = 0

    def _write_obs(self) -> NDArray[np.float32]:
        m = self.model
        t = m.num_topics
        start = self._starts[self._pos]
        self._start = start
        obs = self._windows[start]  # fresh (num_envs, obs_dim) array, candidates in place
        obs[:, :t] = self._hist
        b = obs[:, t]
        np.multiply(self._budget, m.inv_budget, out=b, casting="unsafe")
        np.clip(b, 0.0, m.budget_cap, out=b)
        np.multiply(self._t, -1.0 / m.max_steps, out=obs[:, t + 1], casting="unsafe")
        obs[:, t + 1] += 1.0
        return obs

    # ------------------------------------------------------------------ vector API
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start new sessions for all users (``seed`` re-seeds; a list uses its first item).

        ``options={"reset_mask": bool array}`` restarts only the masked users.
        """
        if isinstance(seed, list):
            seed = seed[0] if seed else None
        super().reset(seed=seed)
        if seed is not None or self._block == 0:
            self._refill()
        mask = None if options is None else options.get("reset_mask")
        if mask is None or not self._started:
            self._new_sessions(None)
            self._needs_reset[:] = False
        else:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"options['reset_mask'] must have shape ({self.num_envs},)")
            self._new_sessions(np.flatnonzero(mask))
            self._needs_reset[mask] = False
        self._started = True
        return self._write_obs(), {}

    def step(
        self, actions: NDArray[np.int64]
    ) -> tuple[
        NDArray[np.float32], NDArray[np.float32], NDArray[np.bool_], NDArray[np.bool_], dict
    ]:
        """Step every user; users whose session ended last step are reset instead (NEXT_STEP)."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        m = self.model
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {a.shape}")
        if a.min() < 0 or a.max() >= m.num_candidates:
            raise ValueError(f"actions must lie in 0..{m.num_candidates - 1}")
        j = self._order_ext[self._start + a]
        x, tmp, hist, interest = self._x, self._tmp, self._hist, self._interest
        np.take(m.topics, j, axis=0, out=x)
        # logit = w_u * <u, x> - w_b * <h, x> + (beta_a * a_j - v0)
        np.multiply(interest, m.w_int, out=tmp)
        np.multiply(hist, m.w_bore, out=self._tmp2)
        tmp -= self._tmp2
        tmp *= x
        logit = np.dot(tmp, self._ones, out=self._logit)
        logit += m.app_logit32[j]
        click = np.greater(logit, self._noise[self._pos], out=self._click)
        # Dynamics: history/boredom, interest drift, budget.
        clickf = click.astype(_F32)
        hist *= m.decay
        x *= clickf[:, None]
        hist += x
        # u += c * eta * (x - u)  ==  u * (1 - c * eta) + eta * c * x
        interest *= (1.0 - (1.0 - m.keep) * clickf)[:, None]
        x *= 1.0 - m.keep
        interest += x
        gq = np.take(m.gain_q, j, out=self._gq)
        gq *= click
        self._budget += gq
        self._budget -= m.step_cost
        if m.engagement_reward:
            reward = (m.engagement[j] * click).astype(_F32)
        else:
            reward = clickf
        self._t += 1
        terminated = self._budget <= 0.0
        truncated = self._t >= m.max_steps
        truncated &= ~terminated
        reset_now = self._needs_reset
        if reset_now.any():
            idx = np.flatnonzero(reset_now)
            self._new_sessions(idx)
            reward[idx] = 0.0
            click[idx] = False
            terminated[idx] = False
            truncated[idx] = False
        self._needs_reset = terminated | truncated
        self._pos += 1
        if self._pos >= self._block:
            self._refill()
        return self._write_obs(), reward, terminated, truncated, {}

    # ------------------------------------------------------------------ oracle access
    def candidate_items(self) -> NDArray[np.int64]:
        """Catalog indices ``(num_envs, K)`` of the current candidates (hidden-state access)."""
        return self._order_ext[self._start[:, None] + np.arange(self.model.num_candidates)]

    def click_logits(self) -> NDArray[np.float64]:
        """True click logits ``(num_envs, K)`` of the current candidates (uses hidden state)."""
        return self.model.click_logits(self.candidate_items(), self._interest, self._hist)

    def click_probabilities(self) -> NDArray[np.float64]:
        """True click probabilities ``(num_envs, K)`` of the current candidates."""
        return 1.0 / (1.0 + np.exp(-self.click_logits()))

    def candidate_quality(self) -> NDArray[np.float32]:
        """True (hidden) quality ``(num_envs, K)`` of the current candidates."""
        return self.model.catalog.quality[self.candidate_items()]

    @property
    def remaining_budget(self) -> NDArray[np.float64]:
        """A copy of the users' hidden remaining time budgets."""
        return self._budget.copy()

    @property
    def last_clicks(self) -> NDArray[np.bool_]:
        """A copy of the clicks of the last step (False for users reset on it)."""
        return self._click.copy()

    @property
    def session_done(self) -> NDArray[np.bool_]:
        """Users whose session ended on the last step (they restart on the next step)."""
        return self._needs_reset.copy()
