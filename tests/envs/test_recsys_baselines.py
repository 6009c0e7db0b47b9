"""Baselines over many seeded sessions: the short-term/long-term trade-off exists, with CIs."""

from __future__ import annotations

import numpy as np
import pytest

from lrtune.envs import (
    BASELINES,
    BaselineResult,
    RecSysEnv,
    evaluate_baseline,
    greedy_action,
    oracle_action,
    random_action,
)

SESSIONS = 2000


def _separated(better: tuple[float, float, float], worse: tuple[float, float, float]) -> bool:
    """The 95% intervals (mean, low, high) do not overlap and ``better`` is above."""
    return better[1] > worse[2]


@pytest.fixture(scope="module")
def results() -> dict[str, BaselineResult]:
    return {name: evaluate_baseline(name, num_sessions=SESSIONS, seed=123) for name in BASELINES}


def test_greedy_beats_random_on_click_through_rate(results: dict[str, BaselineResult]) -> None:
    greedy, rand = results["greedy"].ctr_ci(), results["random"].ctr_ci()
    assert _separated(greedy, rand), (greedy, rand)
    assert greedy[0] > 1.5 * rand[0]  # clearly, not marginally


def test_oracle_beats_greedy_on_clicks_per_session(results: dict[str, BaselineResult]) -> None:
    oracle, greedy = results["oracle"].clicks_ci(), results["greedy"].clicks_ci()
    assert _separated(oracle, greedy), (oracle, greedy)
    assert oracle[0] > 2.0 * greedy[0]
    # The mechanism: the myopic policy clicks more per step but its users leave sooner.
    assert results["greedy"].ctr.mean() > results["oracle"].ctr.mean()
    assert results["greedy"].steps.mean() < results["oracle"].steps.mean()


def test_trade_off_holds_on_hard_variant() -> None:
    res = {
        name: evaluate_baseline(name, num_sessions=1000, seed=5, preset="hard")
        for name in BASELINES
    }
    assert _separated(res["greedy"].ctr_ci(), res["random"].ctr_ci())
    assert _separated(res["oracle"].clicks_ci(), res["greedy"].clicks_ci())


def test_single_env_baselines_agree_with_batched(results: dict[str, BaselineResult]) -> None:
    """The single-env policy functions reproduce the batched outcomes statistically."""
    env = RecSysEnv()
    rng = np.random.default_rng(0)
    policies = {
        "random": lambda: random_action(env, rng),
        "greedy": lambda: greedy_action(env),
        "oracle": lambda: oracle_action(env),
    }
    for name, policy in policies.items():
        clicks = []
        for s in range(150 if name != "oracle" else 60):
            env.reset(seed=10_000 + s)
            total, done = 0.0, False
            while not done:
                _, r, term, trunc, _ = env.step(policy())
                total += float(r)
                done = term or trunc
            clicks.append(total)
        mean, lo, hi = BaselineResult.mean_ci(np.asarray(clicks))
        ref = results[name].clicks_ci()
        assert lo - 0.5 < ref[0] < hi + 0.5, (name, (mean, lo, hi), ref)


def test_baseline_result_statistics() -> None:
    res = BaselineResult(
        "x", clicks=np.array([1.0, 3.0]), steps=np.array([2.0, 4.0]), returns=np.zeros(2)
    )
    mean, lo, hi = res.clicks_ci()
    assert mean == 2.0 and lo < 2.0 < hi
    np.testing.assert_allclose(res.ctr, [0.5, 0.75])
    assert "clicks/session" in res.summary()
    with pytest.raises(ValueError, match="baseline"):
        evaluate_baseline("smart")
    with pytest.raises(ValueError, match="num_sessions"):
        evaluate_baseline("random", num_sessions=1)
