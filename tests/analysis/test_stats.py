"""Statistics against known answers: IQM, optimality gap, probability of improvement, bootstrap
interval coverage, normalisation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lrtune.analysis import (
    aggregate,
    curve_band,
    denormalise,
    improvement,
    iqm,
    normalise,
    optimality_gap,
    probability_of_improvement,
    stratified_bootstrap_ci,
)


def test_iqm_of_fixed_arrays() -> None:
    assert iqm(np.arange(1.0, 9.0)) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([0, 0, 1, 1, 1, 1, 100, 100]) == pytest.approx(1.0)  # outliers trimmed
    assert iqm([5.0, 5.0, 5.0, 5.0]) == pytest.approx(5.0)
    assert iqm(np.arange(12.0)) == pytest.approx(np.mean(np.arange(3.0, 9.0)))
    rows = np.vstack([np.arange(1.0, 9.0), np.arange(1.0, 9.0) * 2])
    assert np.allclose(iqm(rows, axis=-1), [4.5, 9.0])


def test_optimality_gap_known_values() -> None:
    assert optimality_gap([0.0, 0.5, 1.0, 2.0]) == pytest.approx((1 + 0.5 + 0 + 0) / 4)
    assert optimality_gap([1.5, 3.0]) == pytest.approx(0.0)


def test_probability_of_improvement_matches_pair_counting_with_ties() -> None:
    x, y = [1.0, 2.0, 3.0, 3.0], [0.5, 3.0, 4.0]
    pairs = list(itertools.product(x, y))
    brute = sum((a > b) + 0.5 * (a == b) for a, b in pairs) / len(pairs)
    assert probability_of_improvement(x, y) == pytest.approx(brute)


def test_probability_of_improvement_identical_and_separated_groups() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(size=40)
    p = improvement({"task": same}, {"task": same.copy()}, resamples=1000)
    assert p.value == pytest.approx(0.5)
    assert p.low < 0.5 < p.high
    high, low = rng.normal(10, 1, 30), rng.normal(0, 1, 30)
    sep = improvement({"task": high}, {"task": low}, resamples=1000)
    assert sep.value == pytest.approx(1.0)
    assert sep.low > 0.99
    assert improvement({"task": low}, {"task": high}, resamples=200).value == pytest.approx(0.0)


def test_probability_of_improvement_averages_over_shared_tasks_only() -> None:
    x = {"a": [2.0, 3.0], "b": [0.0, 0.0], "only-x": [9.0]}
    y = {"a": [0.0, 1.0], "b": [1.0, 1.0]}
    assert improvement(x, y, resamples=100).value == pytest.approx(0.5)  # (1 + 0) / 2


def test_normalisation_round_trip() -> None:
    random, reference = 10.42, 67.15
    assert normalise(random, random, reference) == pytest.approx(0.0)
    assert normalise(reference, random, reference) == pytest.approx(1.0)
    scores = np.array([-3.0, 10.42, 25.0, 67.15, 80.0])
    back = denormalise(normalise(scores, random, reference), random, reference)
    assert np.allclose(back, scores)
    # Lower-is-better metrics: a reference below the random score still maps better → higher.
    assert normalise(50.0, 100.0, 0.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        normalise(1.0, 5.0, 5.0)


@pytest.mark.parametrize("metric", ["iqm", "mean"])
def test_interval_coverage_on_a_known_distribution(metric: str) -> None:
    """95 % intervals of the IQM / mean of N(3, 1) samples (true value 3 for both, by symmetry)
    cover the truth about 95 % of the time (percentile bootstrap, n=30; fixed seed)."""
    rng = np.random.default_rng(1234)
    repeats, covered = 300, 0
    for r in range(repeats):
        sample = rng.normal(3.0, 1.0, 30)
        est = aggregate({"t": sample}, metric, resamples=1000, seed=r)
        covered += est.low <= 3.0 <= est.high
    assert 0.89 <= covered / repeats <= 0.99


def test_stratified_bootstrap_resamples_each_task_on_its_own() -> None:
    # Task "a" never varies, so the pooled mean's interval comes from task "b" alone.
    a, b = np.zeros(10), np.arange(10.0)
    low, high = stratified_bootstrap_ci(
        [a, b], lambda parts: np.concatenate(list(parts), axis=-1).mean(axis=-1), resamples=2000
    )
    assert low < 4.5 / 2 < high
    # The interval of the mean of b alone is twice as wide as that of the pooled mean.
    blow, bhigh = stratified_bootstrap_ci([b], lambda p: p[0].mean(axis=-1), resamples=2000)
    assert (bhigh - blow) == pytest.approx(2 * (high - low), rel=0.15)


def test_single_value_strata_pass_through() -> None:
    low, high = stratified_bootstrap_ci([[4.0]], lambda p: p[0].mean(axis=-1))
    assert (low, high) == (4.0, 4.0)
    est = aggregate({"a": [1.0], "b": [3.0, 5.0]}, "mean", resamples=500)
    assert est.value == pytest.approx(3.0)
    assert est.low >= 1.0 and est.high <= 11.0 / 3 + 1e-9
    assert math.isnan(aggregate({}, "iqm").value)


def test_curve_band_brackets_the_iqm_curve() -> None:
    rng = np.random.default_rng(0)
    curves = np.linspace(0, 1, 20)[None, :] + rng.normal(0, 0.1, (15, 20))
    centre, low, high = curve_band(curves, resamples=300)
    assert centre.shape == low.shape == high.shape == (20,)
    assert np.all(low <= centre + 1e-12) and np.all(centre <= high + 1e-12)
    one, lo1, hi1 = curve_band(curves[:1])
    assert np.allclose(one, lo1) and np.allclose(one, hi1)


def test_aggregate_many_matches_one_metric_at_a_time() -> None:
    from lrtune.analysis import aggregate_many

    rng = np.random.default_rng(5)
    data = {"a": rng.normal(0.5, 0.2, 12), "b": rng.normal(0.2, 0.1, 7)}
    many = aggregate_many(data, ("iqm", "median", "mean", "optimality_gap"), resamples=800)
    for metric, estimate in many.items():
        single = aggregate(data, metric, resamples=800)
        assert estimate.value == pytest.approx(single.value)
        assert (estimate.low, estimate.high) == pytest.approx((single.low, single.high))
