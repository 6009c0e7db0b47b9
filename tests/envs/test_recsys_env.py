"""Single-user recommender env: API conformance, registration, determinism, dynamics, config."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lrtune.envs as envs
from lrtune.envs import RECSYS_HARD_ID, RECSYS_ID, RecSysConfig, RecSysEnv

SMALL: dict[str, Any] = {"num_items": 200, "num_users": 50}


def _rollout(env: RecSysEnv, seed: int, steps: int) -> list[tuple[Any, ...]]:
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out: list[tuple[Any, ...]] = [(obs,)]
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(int(rng.integers(int(env.action_space.n))))
        out.append((obs, r, term, trunc))
        if term or trunc:
            obs, _ = env.reset()
            out.append((obs,))
    return out


def test_check_env_default_and_hard() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Through gym.make so that the env has a spec (check_env then also tries render modes).
        check_env(gym.make(RECSYS_ID).unwrapped)
        check_env(gym.make(RECSYS_HARD_ID).unwrapped)
        ansi = gym.make(RECSYS_ID, reward="engagement", render_mode="ansi", **SMALL)
        check_env(ansi.unwrapped)
        ansi.reset(seed=0)
        assert "budget=" in str(ansi.render())


def test_registered_ids_make_and_spaces() -> None:
    env = gym.make(RECSYS_ID)
    base = env.unwrapped
    assert isinstance(base, RecSysEnv)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs.dtype == np.float32 and obs.ndim == 1
    assert isinstance(env.action_space, gym.spaces.Discrete)
    t, k = base.model.num_topics, base.model.num_candidates
    assert obs.shape == (t + 2 + k * (t + 1),)
    assert "user" in info
    hard = gym.make(RECSYS_HARD_ID).unwrapped
    assert isinstance(hard, RecSysEnv)
    assert hard.config.preset == "hard"
    assert hard.model.num_items > base.model.num_items
    assert hard.config.clickbait_fraction > base.config.clickbait_fraction
    # kwargs through gym.make override the preset; the module-qualified form works too.
    small = gym.make("lrtune.envs:lrtune/RecSys-v0", num_items=50, num_candidates=4)
    assert small.action_space.n == 4  # type: ignore[attr-defined]


def test_registration_is_idempotent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        envs.register_envs()
        envs.register_envs()
        importlib.reload(envs)
    assert RECSYS_ID in gym.registry and RECSYS_HARD_ID in gym.registry


def test_module_qualified_id_in_fresh_process() -> None:
    code = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("error")
        import gymnasium as gym
        assert "lrtune.envs" not in sys.modules
        env = gym.make("lrtune.envs:lrtune/RecSys-v0")
        obs, _ = env.reset(seed=1)
        env.step(0)
        vec = gym.make_vec("lrtune.envs:lrtune/RecSysHard-v0", num_envs=3,
                           vectorization_mode="vector_entry_point")
        o, _ = vec.reset(seed=1)
        print(obs.shape[0], o.shape)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "122"


def test_seeded_reset_is_deterministic() -> None:
    a = _rollout(RecSysEnv(**SMALL), seed=7, steps=300)
    b = _rollout(RecSysEnv(**SMALL), seed=7, steps=300)
    c = _rollout(RecSysEnv(**SMALL), seed=8, steps=300)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c, strict=False))
    # Re-seeding the same env instance reproduces its own first session.
    env = RecSysEnv(**SMALL)
    first = _rollout(env, seed=3, steps=40)
    again = _rollout(env, seed=3, steps=40)
    np.testing.assert_array_equal(first[-1][0], again[-1][0])


def test_observations_stay_in_space_and_sessions_end() -> None:
    env = RecSysEnv(**SMALL)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(3000):
        obs, r, term, trunc, info = env.step(int(rng.integers(int(env.action_space.n))))
        assert env.observation_space.contains(obs)
        assert r in (0.0, 1.0) and info == {}
        if term or trunc:
            ends["terminated" if term else "truncated"] += 1
            obs, _ = env.reset()
    assert ends["terminated"] > 10


def test_truncation_at_step_limit() -> None:
    env = RecSysEnv(budget=1000.0, max_steps=7, **SMALL)
    env.reset(seed=0)
    flags = [env.step(0)[2:4] for _ in range(7)]
    assert flags[-1] == (False, True)
    assert all(f == (False, False) for f in flags[:-1])


def test_observation_does_not_alias_internal_buffers() -> None:
    env = RecSysEnv(**SMALL)
    obs0, _ = env.reset(seed=0)
    keep = obs0.copy()
    env.step(0)
    np.testing.assert_array_equal(obs0, keep)


def test_step_dynamics_follow_the_model() -> None:
    env = RecSysEnv(**SMALL)
    env.reset(seed=5)
    m = env.model
    for _ in range(200):
        items = env.candidate_items()
        interest, hist = env.interest, env._hist.copy()
        budget = env.remaining_budget
        logits = env.click_logits()
        x = m.topics[items[0]].astype(np.float64)
        expected = m.w_int * interest @ x - m.w_bore * hist @ x + m.app_logit[items[0]]
        assert logits[0] == pytest.approx(expected, rel=1e-5, abs=1e-5)
        obs, r, term, trunc, _ = env.step(0)
        q = float(m.catalog.quality[items[0]])
        t = m.num_topics
        if r == 1.0:
            assert env.remaining_budget == pytest.approx(budget + m.gain_q[items[0]] - 1.0)
            np.testing.assert_allclose(env.interest, 0.95 * interest + 0.05 * x, atol=1e-6)
            np.testing.assert_allclose(obs[:t], 0.8 * hist + x, atol=1e-5)
            assert abs(q) <= 1
        else:
            assert env.remaining_budget == pytest.approx(budget - 1.0)
            np.testing.assert_array_equal(env.interest, interest)
            np.testing.assert_allclose(obs[:t], 0.8 * hist, atol=1e-6)
        if term or trunc:
            env.reset()


def test_engagement_reward_is_consumed_time() -> None:
    env = RecSysEnv(reward="engagement", **SMALL)
    env.reset(seed=2)
    seen = 0
    for _ in range(500):
        item = int(env.candidate_items()[0])
        _, r, term, trunc, _ = env.step(0)
        if r != 0.0:
            q = float(env.model.catalog.quality[item])
            assert r == pytest.approx(1.0 + q)
            seen += 1
        if term or trunc:
            env.reset()
    assert seen > 20


def test_hidden_state_is_not_observed() -> None:
    env = RecSysEnv(**SMALL)
    obs, _ = env.reset(seed=0)
    t, k = env.model.num_topics, env.model.num_candidates
    cand = obs[t + 2 :].reshape(k, t + 1)
    items = env.candidate_items()
    np.testing.assert_allclose(cand[:, :t], env.model.topics[items])
    np.testing.assert_allclose(cand[:, t], env.model.catalog.appeal[items])
    assert len(set(items.tolist())) == k  # distinct candidates


class _FakeEnvContext(dict):  # type: ignore[type-arg]
    """Mimics RLlib's EnvContext: a dict subclass with extra attributes."""

    worker_index = 1
    vector_index = 0


def test_config_sources_and_precedence() -> None:
    env = RecSysEnv(_FakeEnvContext(num_items=60, num_candidates=6), num_candidates=3)
    assert env.action_space.n == 3
    assert env.model.num_items == 60
    env2 = RecSysEnv(RecSysConfig(num_items=40, num_candidates=2))
    assert env2.action_space.n == 2
    hard = RecSysEnv({"preset": "hard", "num_items": 500})
    assert hard.config.clickbait_fraction == 0.4 and hard.model.num_items == 500


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_items": 5, "num_candidates": 6}, "num_candidates"),
        ({"budget": -1.0}, "budget"),
        ({"budget": 0}, "budget"),
        ({"step_cost": 0.0}, "step_cost"),
        ({"boredom_decay": 1.0}, "boredom_decay"),
        ({"interest_drift": 1.5}, "interest_drift"),
        ({"clickbait_fraction": -0.1}, "clickbait_fraction"),
        ({"reward": "dwell"}, "reward"),
        ({"num_candidates": 0}, "num_candidates"),
        ({"num_items": 2.5}, "num_items"),
        ({"max_steps": True}, "max_steps"),
        ({"budget": float("nan")}, "budget"),
        ({"preset": "extreme"}, "preset"),
        ({"num_itmes": 10}, "num_itmes"),
    ],
)
def test_invalid_config_raises_clear_value_error(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RecSysEnv(**kwargs)


def test_invalid_action_and_config_type() -> None:
    env = RecSysEnv(**SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(10)
    with pytest.raises(ValueError, match="mapping"):
        RecSysEnv(config=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user"):
        env.reset(options={"user": 10_000})


def test_large_catalog_builds_quickly() -> None:
    env = RecSysEnv(num_items=100_000, num_users=10)
    env.reset(seed=0)
    for _ in range(100):
        _, _, term, trunc, _ = env.step(1)
        if term or trunc:
            env.reset()
    assert env.model.num_items == 100_000
