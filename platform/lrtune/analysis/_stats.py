"""Aggregate statistics of RL scores, after Agarwal et al. (2021), "Deep RL at the edge of the
statistical precipice" (the statistics the `rliable` library implements), built on SciPy:

* interquartile mean (IQM): ``scipy.stats.trim_mean(scores, 0.25)`` over all runs of all tasks;
* median, mean, optimality gap (``mean(max(1 - score, 0))`` on normalised scores);
* probability of improvement ``P(X > Y)``: per task the Mann-Whitney U statistic over ``n·m``
  (ties count one half), averaged over the tasks both groups ran;
* 95 % confidence intervals by the *stratified* bootstrap: the runs of each task are resampled
  independently (``scipy.stats.bootstrap`` with one sample per task, percentile method).

Scores are normalised per task so that the random policy maps to 0 and the reference score to 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

Array = NDArray[np.float64]
#: A statistic over strata: arrays of shape ``(..., n_i)`` in stratum order → shape ``(...)``.
StrataStatistic = Callable[[Sequence[Array]], Array]

CONFIDENCE = 0.95
RESAMPLES = 2000


# ------------------------------------------------------------------------- point estimates


def iqm(scores: ArrayLike, axis: int = -1) -> Array | float:
    """Interquartile mean: the mean of the middle 50 % (``scipy.stats.trim_mean(x, 0.25)``)."""
    out = stats.trim_mean(np.asarray(scores, dtype=np.float64), 0.25, axis=axis)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)


def optimality_gap(scores: ArrayLike, gamma: float = 1.0, axis: int = -1) -> Array | float:
    """How far normalised scores fall short of ``gamma`` on average: ``mean(max(γ - x, 0))``."""
    x = np.asarray(scores, dtype=np.float64)
    out = np.mean(gamma - np.minimum(x, gamma), axis=axis)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """``P(X > Y) + ½·P(X = Y)`` of one task: Mann-Whitney's U of ``x`` over ``len(x)·len(y)``."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return math.nan
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    return float(u) / (a.size * b.size)


def _poi_ranks(x: Array, y: Array) -> Array:
    """Vectorised `probability_of_improvement` over leading axes (the bootstrap's batches)."""
    n, m = x.shape[-1], y.shape[-1]
    ranks = stats.rankdata(np.concatenate([x, y], axis=-1), axis=-1)
    u = ranks[..., :n].sum(axis=-1) - n * (n + 1) / 2.0
    return np.asarray(u / (n * m), dtype=np.float64)


# ------------------------------------------------------------------------------ normalising


def normalise(score: ArrayLike, random: float, reference: float) -> Array | float:
    """``(score - random) / (reference - random)``: the random policy → 0, the reference → 1."""
    if not math.isfinite(random) or not math.isfinite(reference) or reference == random:
        raise ValueError(
            f"cannot normalise with random score {random} and reference score {reference}: "
            "they must be finite and differ"
        )
    out = (np.asarray(score, dtype=np.float64) - random) / (reference - random)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)


def denormalise(value: ArrayLike, random: float, reference: float) -> Array | float:
    """The inverse of `normalise`: ``random + value · (reference - random)``."""
    out = random + np.asarray(value, dtype=np.float64) * (reference - random)
    return float(out) if np.ndim(out) == 0 else np.asarray(out, dtype=np.float64)


# ------------------------------------------------------------------------------- bootstrap


def _bootstrap(
    strata: Sequence[ArrayLike],
    statistic: StrataStatistic,
    confidence: float,
    resamples: int,
    seed: int,
) -> tuple[Array, Array, Array]:
    """``(point, low, high)`` of a scalar or vector-valued statistic (see
    `stratified_bootstrap_ci`); vector statistics stack their values on the first axis."""
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in strata]
    if any(a.size == 0 for a in arrays):
        raise ValueError("every stratum needs at least one score")
    point = np.asarray(statistic(list(arrays)), dtype=np.float64)
    varying = [i for i, a in enumerate(arrays) if a.size >= 2]
    if not varying:
        return point, point.copy(), point.copy()

    def vectorised(*resampled: Array, axis: int = -1) -> Array:
        batch = resampled[0].shape[:-1]
        full: list[Array] = []
        it = iter(resampled)
        for i, a in enumerate(arrays):
            full.append(next(it) if i in varying else np.broadcast_to(a, (*batch, a.size)))
        return statistic(full)

    largest = max(sum(a.size for a in arrays), 1)
    batch = max(1, min(resamples, 4_000_000 // largest))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate data (all scores equal) is fine here
        result = stats.bootstrap(
            tuple(arrays[i] for i in varying),
            vectorised,
            vectorized=True,
            paired=False,
            axis=-1,
            n_resamples=resamples,
            batch=batch,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low = np.asarray(result.confidence_interval.low, dtype=np.float64)
    high = np.asarray(result.confidence_interval.high, dtype=np.float64)
    # Every resample equal (nothing varies): the interval is the point.
    return point, np.where(np.isfinite(low), low, point), np.where(np.isfinite(high), high, point)


def stratified_bootstrap_ci(
    strata: Sequence[ArrayLike],
    statistic: StrataStatistic,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile confidence interval of ``statistic`` by the stratified bootstrap.

    Each stratum (a task, or one group's runs on a task) is resampled with replacement on its
    own, as ``scipy.stats.bootstrap`` does with several independent samples. A stratum of a
    single value cannot vary under resampling and is passed through unchanged. ``statistic``
    receives the strata in their order, each of shape ``(..., n_i)``.
    """
    _, low, high = _bootstrap(strata, statistic, confidence, resamples, seed)
    return float(low), float(high)


def _pooled(statistic: Callable[[Array], Array | float]) -> StrataStatistic:
    def pooled(strata: Sequence[Array]) -> Array:
        return np.asarray(statistic(np.concatenate(list(strata), axis=-1)), dtype=np.float64)

    return pooled


#: Pooled statistics over every run of every task (rliable's aggregate metrics).
AGGREGATES: dict[str, Callable[[Array], Array | float]] = {
    "iqm": iqm,
    "median": lambda x: np.median(x, axis=-1),
    "mean": lambda x: np.mean(x, axis=-1),
    "optimality_gap": optimality_gap,
}


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        """``{"value", "low", "high"}``."""
        return {"value": self.value, "low": self.low, "high": self.high}


def aggregate(
    scores_by_task: Mapping[str, ArrayLike],
    metric: str = "iqm",
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """An aggregate metric (`AGGREGATES`: iqm, median, mean, optimality_gap) over the pooled
    normalised scores of every task, with its stratified-bootstrap interval."""
    strata = [np.asarray(v, dtype=np.float64).ravel() for v in scores_by_task.values()]
    strata = [s for s in strata if s.size]
    if not strata:
        return Estimate(math.nan, math.nan, math.nan)
    statistic = _pooled(AGGREGATES[metric])
    value = float(statistic(strata))
    low, high = stratified_bootstrap_ci(
        strata, statistic, confidence=confidence, resamples=resamples, seed=seed
    )
    return Estimate(value, low, high)


def aggregate_many(
    scores_by_task: Mapping[str, ArrayLike],
    metrics: Sequence[str] = ("iqm", "median", "mean", "optimality_gap"),
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Estimate]:
    """Several aggregate metrics from one stratified bootstrap (the same resamples for all)."""
    strata = [np.asarray(v, dtype=np.float64).ravel() for v in scores_by_task.values()]
    strata = [s for s in strata if s.size]
    if not strata:
        return {m: Estimate(math.nan, math.nan, math.nan) for m in metrics}
    functions = [AGGREGATES[m] for m in metrics]

    def statistic(parts: Sequence[Array]) -> Array:
        pooled = np.concatenate(list(parts), axis=-1)
        return np.stack([np.asarray(f(pooled), dtype=np.float64) for f in functions])

    point, low, high = _bootstrap(strata, statistic, confidence, resamples, seed)
    return {
        m: Estimate(float(point[i]), float(low[i]), float(high[i])) for i, m in enumerate(metrics)
    }


def improvement(
    x_by_task: Mapping[str, ArrayLike],
    y_by_task: Mapping[str, ArrayLike],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Average probability of improvement ``P(X > Y)`` over the tasks both groups have, with a
    stratified-bootstrap interval (each group's runs on each task resampled independently)."""
    tasks = [
        t
        for t in x_by_task
        if t in y_by_task and np.size(x_by_task[t]) > 0 and np.size(y_by_task[t]) > 0
    ]
    if not tasks:
        return Estimate(math.nan, math.nan, math.nan)
    strata = [np.asarray(x_by_task[t], dtype=np.float64).ravel() for t in tasks] + [
        np.asarray(y_by_task[t], dtype=np.float64).ravel() for t in tasks
    ]
    k = len(tasks)

    def statistic(parts: Sequence[Array]) -> Array:
        values = [_poi_ranks(parts[i], parts[k + i]) for i in range(k)]
        return np.asarray(np.mean(values, axis=0), dtype=np.float64)

    value = float(np.mean([probability_of_improvement(strata[i], strata[k + i]) for i in range(k)]))
    low, high = stratified_bootstrap_ci(
        strata, statistic, confidence=confidence, resamples=resamples, seed=seed
    )
    return Estimate(value, low, high)


def curve_band(
    curves: ArrayLike,
    *,
    confidence: float = CONFIDENCE,
    resamples: int = 500,
    seed: int = 0,
) -> tuple[Array, Array, Array]:
    """IQM across runs at each point of a common grid, with a bootstrap band.

    ``curves`` has shape ``(runs, points)``; returns ``(iqm, low, high)``, each ``(points,)``.
    """
    data = np.asarray(curves, dtype=np.float64)
    centre = np.asarray(iqm(data, axis=0), dtype=np.float64)
    if data.shape[0] < 2:
        return centre, centre.copy(), centre.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (data,),
            lambda x, axis=-1: stats.trim_mean(x, 0.25, axis=axis),
            vectorized=True,
            axis=0,
            n_resamples=resamples,
            batch=max(1, min(resamples, 4_000_000 // max(data.size, 1))),
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    low = np.asarray(result.confidence_interval.low, dtype=np.float64)
    high = np.asarray(result.confidence_interval.high, dtype=np.float64)
    low = np.where(np.isfinite(low), low, centre)
    high = np.where(np.isfinite(high), high, centre)
    return centre, low, high
