"""No-learning and online-learning baselines for the recommender simulator.

What each one sees, from least to most:

* ``random`` -- nothing: a uniformly random candidate;
* ``observable_myopic`` -- the observation only: the candidate with the highest observed appeal
  ``a_k`` (the last feature of each candidate's block in the observation vector);
* ``bandit`` -- the observation and the clicks (what a real system logs): LinUCB, a contextual
  bandit on a linear click model over the observable features ``[1, a_k, x_k, h * x_k]``
  (``h`` the observed topic click history, ``x_k`` the candidate's topic mixture), learned online
  from scratch across the evaluated sessions (see :class:`LinUCBBandit`);
* ``greedy`` -- hidden state: the candidate with the highest *true* click probability (reads the
  user's hidden interest);
* ``oracle`` -- more hidden state: maximises ``P(click) * (1 + kappa * q)``, the click now plus
  the clicks the budget change ``g * q`` buys later (``kappa`` ~ future clicks per unit quality;
  reads interest and the items' hidden quality).

Greedy and oracle are reference points, not agents: no real system could run them. The
observable ones are functions of observations (and, for the bandit, of past clicks) only: they
take the observation array and an :class:`ObservationLayout` derived from the spaces, never the
environment. Each baseline comes as a single-env form (``*_action``) and a batched one
(``*_actions``, for :class:`~lrtune.envs.batched.BatchedRecSysEnv`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrtune.envs.batched import BatchedRecSysEnv
from lrtune.envs.config import RecSysConfig
from lrtune.envs.recsys import RecSysEnv

__all__ = [
    "BASELINES",
    "BASELINE_SEES",
    "BaselineResult",
    "LinUCBBandit",
    "ObservationLayout",
    "evaluate_baseline",
    "evaluate_policy",
    "greedy_action",
    "greedy_actions",
    "observable_myopic_action",
    "observable_myopic_actions",
    "oracle_action",
    "oracle_actions",
    "random_action",
    "random_actions",
    "session_groups",
]

#: Names accepted by :func:`evaluate_baseline`, from the least to the most informed.
BASELINES: tuple[str, ...] = ("random", "observable_myopic", "bandit", "greedy", "oracle")

#: What each baseline reads, in words (the ``lrtune baselines`` table prints it).
BASELINE_SEES: dict[str, str] = {
    "random": "nothing",
    "observable_myopic": "observation (candidates' appeal)",
    "bandit": "observation + past clicks",
    "greedy": "hidden: true click probability",
    "oracle": "hidden: click probability + quality",
}

#: Independent groups (batched envs with their own seeds) the sessions of an evaluation are split
#: into; the intervals are over the group means (see :func:`evaluate_baseline`).
EVAL_GROUPS = 20

#: LinUCB exploration weight: the upper bound is ``mean + alpha * width``.
BANDIT_ALPHA = 0.5
#: LinUCB ridge prior: the Gram matrix starts at ``ridge * I`` (no data: all weights 0).
BANDIT_RIDGE = 1.0

#: Default oracle horizon factor: kappa = ORACLE_HORIZON * quality_gain / step_cost.
ORACLE_HORIZON = 2.0


def _kappa(config: RecSysConfig, quality_weight: float | None) -> float:
    if quality_weight is not None:
        return float(quality_weight)
    return ORACLE_HORIZON * config.quality_gain / config.step_cost


def _oracle_scores(
    logits: NDArray[np.float64], quality: NDArray[np.float32], kappa: float
) -> NDArray[np.float64]:
    p = 1.0 / (1.0 + np.exp(-logits))
    return p * (1.0 + kappa * quality.astype(np.float64))


@dataclass(frozen=True)
class ObservationLayout:
    """Where the parts of a recommender observation lie, derived from the spaces alone.

    An observation is ``[h (T), budget left, steps left, (x_k (T), a_k) for k = 1..K]``.
    """

    num_topics: int
    num_candidates: int

    @classmethod
    def of(cls, env: RecSysEnv | BatchedRecSysEnv) -> ObservationLayout:
        """The layout of ``env``'s observations, read from its observation and action spaces."""
        if isinstance(env, BatchedRecSysEnv):
            obs_space, act_space = env.single_observation_space, env.single_action_space
        else:
            obs_space, act_space = env.observation_space, env.action_space
        k = int(act_space.n)  # type: ignore[attr-defined]
        dim = int(obs_space.shape[0])  # type: ignore[index]
        topics, rest = divmod(dim - 2 - k, k + 1)
        if rest or topics < 1:
            raise ValueError(
                f"observation length {dim} does not fit K={k} candidates: expected "
                "T + 2 + K * (T + 1) for some T >= 1"
            )
        return cls(num_topics=topics, num_candidates=k)

    def history(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:
        """The observed topic click history ``h``: ``(..., T)``."""
        return obs[..., : self.num_topics]

    def candidates(self, obs: NDArray[np.float32]) -> NDArray[np.float32]:
        """Each candidate's observed features ``(x_k, a_k)``: ``(..., K, T + 1)``."""
        block = obs[..., self.num_topics + 2 :]
        return block.reshape(*obs.shape[:-1], self.num_candidates, self.num_topics + 1)


def observable_myopic_actions(
    obs: NDArray[np.float32], layout: ObservationLayout
) -> NDArray[np.int64]:
    """Per row of ``obs`` ``(n, obs_dim)``, the candidate with the highest observed appeal."""
    return np.argmax(layout.candidates(obs)[..., -1], axis=-1)


def observable_myopic_action(obs: NDArray[np.float32], layout: ObservationLayout) -> int:
    """The candidate with the highest observed appeal in one observation ``(obs_dim,)``."""
    return int(observable_myopic_actions(obs[None, :], layout)[0])


class LinUCBBandit:
    """LinUCB on a linear click model over the observable candidate features.

    Features of candidate ``k``: ``phi_k = [1, a_k, x_k, h * x_k]`` (``2T + 2`` numbers: appeal,
    topic mixture and its overlap with the observed click history, which carries both boredom
    and the topics this user clicked). The model ``P(click) ~ theta . phi`` is one ridge
    regression shared by all sessions: it starts from scratch (``theta = 0``, Gram matrix
    ``ridge * I``), picks ``argmax_k theta . phi_k + alpha * sqrt(phi_k' A^-1 phi_k)``, and
    after each step adds the chosen candidates' features and clicks of every live session.
    Deterministic (no random draws; ties go to the lowest index). It maximises the click now
    (myopic): it never sees quality or the budget dynamics.
    """

    def __init__(
        self, layout: ObservationLayout, alpha: float = BANDIT_ALPHA, ridge: float = BANDIT_RIDGE
    ) -> None:
        """An untrained bandit for observations of ``layout``."""
        if not (np.isfinite(alpha) and alpha >= 0):
            raise ValueError(f"LinUCB alpha={alpha!r} is invalid: must be a finite number >= 0")
        if not (np.isfinite(ridge) and ridge > 0):
            raise ValueError(f"LinUCB ridge={ridge!r} is invalid: must be a finite number > 0")
        self.layout = layout
        self.alpha = float(alpha)
        dim = 2 * layout.num_topics + 2
        self._gram = float(ridge) * np.eye(dim)
        self._target = np.zeros(dim)
        self._gram_inv = np.linalg.inv(self._gram)
        self._theta = np.zeros(dim)
        #: How many (features, click) pairs the model has learned from.
        self.updates = 0

    @property
    def theta(self) -> NDArray[np.float64]:
        """A copy of the current click-model weights."""
        return self._theta.copy()

    def features(self, obs: NDArray[np.float32]) -> NDArray[np.float64]:
        """``(n, K, 2T + 2)`` candidate features of observations ``(n, obs_dim)``."""
        cand = self.layout.candidates(obs).astype(np.float64)
        topics, appeal = cand[..., :-1], cand[..., -1:]
        hist = self.layout.history(obs).astype(np.float64)[:, None, :]
        ones = np.ones_like(appeal)
        return np.concatenate([ones, appeal, topics, hist * topics], axis=-1)

    def actions(self, obs: NDArray[np.float32]) -> NDArray[np.int64]:
        """Per row of ``obs`` ``(n, obs_dim)``, the candidate with the highest upper bound."""
        phi = self.features(obs)
        mean = phi @ self._theta
        spread = np.einsum("nkd,nkd->nk", phi @ self._gram_inv, phi)
        width = np.sqrt(np.maximum(spread, 0.0))
        return np.argmax(mean + self.alpha * width, axis=-1)

    def update(
        self,
        obs: NDArray[np.float32],
        actions: NDArray[np.int64],
        clicks: NDArray[np.bool_] | NDArray[np.float64],
        live: NDArray[np.bool_] | None = None,
    ) -> None:
        """Learn from one step: rows of ``obs`` ``(n, obs_dim)``, their actions and clicks.

        ``live`` masks the rows that count (a batched env's rows whose step was a real
        recommendation, not an autoreset).
        """
        rows = np.arange(len(actions)) if live is None else np.flatnonzero(live)
        if rows.size == 0:
            return
        phi = self.features(obs[rows])[np.arange(rows.size), np.asarray(actions)[rows]]
        y = np.asarray(clicks, dtype=np.float64)[rows]
        self._gram += phi.T @ phi
        self._target += phi.T @ y
        self._gram_inv = np.linalg.inv(self._gram)
        self._theta = self._gram_inv @ self._target
        self.updates += int(rows.size)

    def action(self, obs: NDArray[np.float32]) -> int:
        """The chosen candidate for one observation ``(obs_dim,)``."""
        return int(self.actions(obs[None, :])[0])

    def update_one(self, obs: NDArray[np.float32], action: int, click: bool) -> None:
        """Learn from one single-env step (``click``: the reward was a click)."""
        self.update(obs[None, :], np.array([action]), np.array([float(click)]))


def random_action(env: RecSysEnv, rng: np.random.Generator) -> int:
    """A uniformly random candidate index."""
    return int(rng.integers(env.model.num_candidates))


def greedy_action(env: RecSysEnv) -> int:
    """The candidate with the highest true click probability (myopic)."""
    return int(np.argmax(env.click_logits()))


def oracle_action(env: RecSysEnv, quality_weight: float | None = None) -> int:
    """The candidate maximising ``P(click) * (1 + kappa * quality)`` (long-term clicks)."""
    kappa = _kappa(env.config, quality_weight)
    return int(np.argmax(_oracle_scores(env.click_logits(), env.candidate_quality(), kappa)))


def random_actions(venv: BatchedRecSysEnv, rng: np.random.Generator) -> NDArray[np.int64]:
    """Uniformly random candidate indices for every user of ``venv``."""
    return rng.integers(venv.model.num_candidates, size=venv.num_envs)


def greedy_actions(venv: BatchedRecSysEnv) -> NDArray[np.int64]:
    """Per user, the candidate with the highest true click probability."""
    return np.argmax(venv.click_logits(), axis=1)


def oracle_actions(
    venv: BatchedRecSysEnv, quality_weight: float | None = None
) -> NDArray[np.int64]:
    """Per user, the candidate maximising ``P(click) * (1 + kappa * quality)``."""
    kappa = _kappa(venv.config, quality_weight)
    return np.argmax(_oracle_scores(venv.click_logits(), venv.candidate_quality(), kappa), axis=1)


@dataclass(frozen=True)
class BaselineResult:
    """Per-session outcomes of one baseline: clicks, steps and total reward of each session.

    ``group`` (optional) is each session's group: sessions of one group ran in one batched
    env and shared its candidate order, so they are not independent of each other; the
    intervals then come from the spread of the group means (see :meth:`grouped_mean_ci`).
    """

    name: str
    clicks: NDArray[np.float64]
    steps: NDArray[np.float64]
    returns: NDArray[np.float64]
    group: NDArray[np.int64] | None = None

    @staticmethod
    def mean_ci(values: NDArray[np.float64], z: float = 1.96) -> tuple[float, float, float]:
        """``(mean, low, high)``: the mean with a normal ``mean +- z * se`` interval."""
        v = np.asarray(values, dtype=np.float64)
        mean = float(v.mean())
        se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("inf")
        return mean, mean - z * se, mean + z * se

    @staticmethod
    def grouped_mean_ci(
        values: NDArray[np.float64], group: NDArray[np.int64], level: float = 0.95
    ) -> tuple[float, float, float]:
        """``(mean, low, high)``: the mean of ``values`` with a Student-t interval over groups.

        The groups are the independent units: the interval is ``mean +- t * sd / sqrt(G)`` with
        ``sd`` the standard deviation of the ``G`` group means and ``t`` the two-sided ``level``
        quantile of Student's t with ``G - 1`` degrees of freedom (infinite for one group).
        """
        from scipy.stats import t as student_t

        v = np.asarray(values, dtype=np.float64)
        labels, idx = np.unique(np.asarray(group), return_inverse=True)
        means = np.bincount(idx, weights=v) / np.bincount(idx)
        mean = float(v.mean())
        g = len(labels)
        if g < 2:
            return mean, -float("inf"), float("inf")
        half = float(student_t.ppf(0.5 + level / 2, g - 1)) * float(means.std(ddof=1)) / g**0.5
        return mean, mean - half, mean + half

    def _ci(self, values: NDArray[np.float64]) -> tuple[float, float, float]:
        if self.group is None:
            return self.mean_ci(values)
        return self.grouped_mean_ci(values, self.group)

    @property
    def ctr(self) -> NDArray[np.float64]:
        """Click-through rate per step of each session."""
        return self.clicks / np.maximum(self.steps, 1.0)

    def clicks_ci(self) -> tuple[float, float, float]:
        """Mean clicks per session with its 95 % interval (over groups when ``group`` is set)."""
        return self._ci(self.clicks)

    def ctr_ci(self) -> tuple[float, float, float]:
        """Mean per-session click-through rate with its 95 % interval (as :meth:`clicks_ci`)."""
        return self._ci(self.ctr)

    def summary(self) -> str:
        """One line: clicks/session, CTR and steps/session with 95% intervals."""
        c, cl, ch = self.clicks_ci()
        r, rl, rh = self.ctr_ci()
        s = float(self.steps.mean())
        return (
            f"{self.name}: clicks/session {c:.2f} [{cl:.2f}, {ch:.2f}]  "
            f"ctr {r:.3f} [{rl:.3f}, {rh:.3f}]  steps/session {s:.1f}"
        )


def session_groups(
    num_sessions: int,
    seed: int,
    config: Mapping[str, Any] | RecSysConfig | None = None,
    **kwargs: Any,
) -> tuple[list[BatchedRecSysEnv], list[int]]:
    """The independent groups :func:`evaluate_baseline` runs ``num_sessions`` sessions in.

    ``min(num_sessions, EVAL_GROUPS)`` batched envs of near-equal size and the reset seed of
    each, drawn from ``seed``.
    """
    groups = min(num_sessions, EVAL_GROUPS)
    sizes = [len(part) for part in np.array_split(np.arange(num_sessions), groups)]
    env_seeds = np.random.SeedSequence([seed, 0x6E0B5]).generate_state(groups)
    envs = [BatchedRecSysEnv(size, config, **kwargs) for size in sizes]
    return envs, [int(s) for s in env_seeds]


def evaluate_baseline(
    name: str,
    config: Mapping[str, Any] | RecSysConfig | None = None,
    num_sessions: int = 2000,
    seed: int = 0,
    quality_weight: float | None = None,
    **kwargs: Any,
) -> BaselineResult:
    """Run ``num_sessions`` seeded sessions of baseline ``name`` (batched) and collect outcomes.

    ``name`` is one of :data:`BASELINES`; ``config``/``kwargs`` configure the environment.

    Protocol: the sessions are split into ``min(num_sessions, EVAL_GROUPS)`` groups of
    near-equal size; each group is one :class:`BatchedRecSysEnv` reset with its own seed drawn
    from ``seed``, and each row's first session is the one counted. The groups are the
    independent units of the intervals: the users of one batched env see candidate windows of
    one shared shuffled catalog order (reshuffled every few dozen steps), which moves the mean
    of a candidate-sensitive policy by several times what independent sessions would (measured
    for ``observable_myopic``: between-seed sd 0.25 clicks against a naive standard error 0.05
    at 4000 sessions). ``bandit`` is one LinUCB model shared by all groups, stepped in lockstep:
    it starts untrained and learns after every step from the clicks of every session still
    being counted, so its result depends on ``num_sessions``. Deterministic given the arguments.
    """
    if name not in BASELINES:
        raise ValueError(f"baseline name {name!r} is invalid: allowed: {list(BASELINES)}")
    if num_sessions < 2:
        raise ValueError("num_sessions must be >= 2 (confidence intervals need two sessions)")
    envs, env_seeds = session_groups(num_sessions, seed, config, **kwargs)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBA5E]))
    layout = ObservationLayout.of(envs[0])
    bandit = LinUCBBandit(layout) if name == "bandit" else None
    # Every policy gets the env and its current observations; the observable ones use only the
    # observations (and the bandit its own record of past clicks).
    policy: Callable[[BatchedRecSysEnv, NDArray[np.float32]], NDArray[np.int64]]
    if name == "random":

        def policy(v: BatchedRecSysEnv, obs: NDArray[np.float32]) -> NDArray[np.int64]:
            return random_actions(v, rng)

    elif name == "observable_myopic":

        def policy(v: BatchedRecSysEnv, obs: NDArray[np.float32]) -> NDArray[np.int64]:
            return observable_myopic_actions(obs, layout)

    elif bandit is not None:

        def policy(v: BatchedRecSysEnv, obs: NDArray[np.float32]) -> NDArray[np.int64]:
            return bandit.actions(obs)

    elif name == "greedy":

        def policy(v: BatchedRecSysEnv, obs: NDArray[np.float32]) -> NDArray[np.int64]:
            return greedy_actions(v)

    else:

        def policy(v: BatchedRecSysEnv, obs: NDArray[np.float32]) -> NDArray[np.int64]:
            return oracle_actions(v, quality_weight)

    on_step = bandit.update if bandit is not None else None
    clicks, steps, returns = _run_sessions(envs, env_seeds, policy, on_step)
    return BaselineResult(
        name=name, clicks=clicks, steps=steps, returns=returns,
        group=np.repeat(np.arange(len(envs)), [env.num_envs for env in envs]),
    )  # fmt: skip


def _run_sessions(
    envs: list[BatchedRecSysEnv],
    env_seeds: list[int],
    policy: Callable[[BatchedRecSysEnv, NDArray[np.float32]], NDArray[np.int64]],
    on_step: Callable[
        [NDArray[np.float32], NDArray[np.int64], NDArray[np.bool_], NDArray[np.bool_]], None
    ]
    | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Run each row's first session of every group in lockstep; per-session clicks, steps, returns.

    ``on_step(obs, actions, clicks, live)`` (the bandit's update) is called once per step with
    the rows of every group still stepping, so a learner sees all groups' clicks before acting.
    """
    groups = len(envs)
    sizes = [env.num_envs for env in envs]
    obs = [env.reset(seed=s)[0] for env, s in zip(envs, env_seeds, strict=True)]
    done = [np.zeros(size, dtype=bool) for size in sizes]
    clicks = [np.zeros(size) for size in sizes]
    steps = [np.zeros(size) for size in sizes]
    returns = [np.zeros(size) for size in sizes]
    while True:
        active = [i for i in range(groups) if not done[i].all()]
        if not active:
            break
        seen, chosen, clicked_all, live_all = [], [], [], []
        for i in active:
            env = envs[i]
            actions = policy(env, obs[i])
            next_obs, reward, term, trunc, _ = env.step(actions)
            live = ~done[i]
            clicked = env.last_clicks
            clicks[i] += clicked * live
            returns[i] += reward * live
            steps[i] += live
            done[i] |= term | trunc
            seen.append(obs[i])
            chosen.append(actions)
            clicked_all.append(clicked)
            live_all.append(live)
            obs[i] = next_obs
        if on_step is not None:  # one update per step from every group: lockstep learning
            on_step(
                np.concatenate(seen),
                np.concatenate(chosen),
                np.concatenate(clicked_all),
                np.concatenate(live_all),
            )
    for env in envs:
        env.close()
    return np.concatenate(clicks), np.concatenate(steps), np.concatenate(returns)


def evaluate_policy(
    name: str,
    policy: Callable[[NDArray[np.float32]], NDArray[np.int64]],
    *,
    config: Mapping[str, Any] | RecSysConfig | None = None,
    num_sessions: int = 2000,
    seed: int = 0,
    **kwargs: Any,
) -> BaselineResult:
    """Evaluate any observation -> action ``policy`` (a trained agent) as the baselines are.

    ``policy`` maps observations ``(n, obs_dim)`` to actions ``(n,)``; the sessions, groups,
    seeds and intervals are exactly :func:`evaluate_baseline`'s, so an agent's result and the
    baselines' are comparable (use a ``seed`` the agent was not trained on).
    """
    if num_sessions < 2:
        raise ValueError("num_sessions must be >= 2 (confidence intervals need two sessions)")
    envs, env_seeds = session_groups(num_sessions, seed, config, **kwargs)
    clicks, steps, returns = _run_sessions(envs, env_seeds, lambda _env, obs: policy(obs))
    return BaselineResult(
        name=name, clicks=clicks, steps=steps, returns=returns,
        group=np.repeat(np.arange(len(envs)), [env.num_envs for env in envs]),
    )  # fmt: skip
