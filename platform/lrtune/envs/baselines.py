"""No-learning baselines for the recommender simulator.

* random -- a uniformly random candidate;
* greedy -- the myopic choice: the candidate with the highest true click probability;
* oracle -- quality-aware: maximises ``P(click) * (1 + kappa * q)``, the click now plus the
  clicks the budget change ``g * q`` buys later (``kappa`` ~ future clicks per unit quality).

Greedy and oracle read the simulator's hidden state (interest, boredom, quality), so they are
reference points, not agents. Each comes as a single-env function (``*_action(env)``) and a
batched one (``*_actions(venv)``) for :class:`~lrtune.envs.batched.BatchedRecSysEnv`.
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
    "BaselineResult",
    "evaluate_baseline",
    "greedy_action",
    "greedy_actions",
    "oracle_action",
    "oracle_actions",
    "random_action",
    "random_actions",
]

#: Names accepted by :func:`evaluate_baseline`.
BASELINES: tuple[str, ...] = ("random", "greedy", "oracle")

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
    """Per-session outcomes of one baseline: clicks, steps and total reward of each session."""

    name: str
    clicks: NDArray[np.float64]
    steps: NDArray[np.float64]
    returns: NDArray[np.float64]

    @staticmethod
    def mean_ci(values: NDArray[np.float64], z: float = 1.96) -> tuple[float, float, float]:
        """``(mean, low, high)``: the mean with a normal ``mean +- z * se`` interval."""
        v = np.asarray(values, dtype=np.float64)
        mean = float(v.mean())
        se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("inf")
        return mean, mean - z * se, mean + z * se

    @property
    def ctr(self) -> NDArray[np.float64]:
        """Click-through rate per step of each session."""
        return self.clicks / np.maximum(self.steps, 1.0)

    def clicks_ci(self, z: float = 1.96) -> tuple[float, float, float]:
        """Mean clicks per session with its interval."""
        return self.mean_ci(self.clicks, z)

    def ctr_ci(self, z: float = 1.96) -> tuple[float, float, float]:
        """Mean per-session click-through rate with its interval."""
        return self.mean_ci(self.ctr, z)

    def summary(self) -> str:
        """One line: clicks/session, CTR and steps/session with 95% intervals."""
        c, cl, ch = self.clicks_ci()
        r, rl, rh = self.ctr_ci()
        s = float(self.steps.mean())
        return (
            f"{self.name}: clicks/session {c:.2f} [{cl:.2f}, {ch:.2f}]  "
            f"ctr {r:.3f} [{rl:.3f}, {rh:.3f}]  steps/session {s:.1f}"
        )


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
    """
    if name not in BASELINES:
        raise ValueError(f"baseline name {name!r} is invalid: allowed: {list(BASELINES)}")
    if num_sessions < 2:
        raise ValueError("num_sessions must be >= 2 (confidence intervals need two sessions)")
    venv = BatchedRecSysEnv(num_sessions, config, **kwargs)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBA5E]))
    policy: Callable[[BatchedRecSysEnv], NDArray[np.int64]]
    if name == "random":

        def policy(v: BatchedRecSysEnv) -> NDArray[np.int64]:
            return random_actions(v, rng)

    elif name == "greedy":
        policy = greedy_actions
    else:

        def policy(v: BatchedRecSysEnv) -> NDArray[np.int64]:
            return oracle_actions(v, quality_weight)

    venv.reset(seed=seed)
    n = num_sessions
    done = np.zeros(n, dtype=bool)
    clicks = np.zeros(n)
    steps = np.zeros(n)
    returns = np.zeros(n)
    while not done.all():
        _, reward, term, trunc, _ = venv.step(policy(venv))
        live = ~done
        clicks += venv.last_clicks * live
        returns += reward * live
        steps += live
        done |= term | trunc
    venv.close()
    return BaselineResult(name=name, clicks=clicks, steps=steps, returns=returns)
