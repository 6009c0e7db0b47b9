"""Batched recommender env: gymnasium vector API, NEXT_STEP autoreset, agreement with one env."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from lrtune.envs import RECSYS_ID, BatchedRecSysEnv, RecSysEnv

SMALL: dict[str, Any] = {"num_items": 200, "num_users": 50}


def test_vector_api_shapes_and_spaces() -> None:
    venv = BatchedRecSysEnv(16, **SMALL)
    assert isinstance(venv, gym.vector.VectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, info = venv.reset(seed=0)
    assert obs.shape == (16, *venv.single_observation_space.shape)  # type: ignore[misc]
    assert obs.dtype == np.float32 and info == {}
    assert venv.observation_space.contains(obs)
    for _ in range(300):
        actions = venv.action_space.sample()
        obs, rew, term, trunc, info = venv.step(actions)
        assert venv.observation_space.contains(obs)
        assert rew.shape == term.shape == trunc.shape == (16,)
        assert rew.dtype == np.float32 and term.dtype == trunc.dtype == np.bool_
        assert not np.any(term & trunc)
    venv.close()


def test_make_vec_uses_vector_entry_point() -> None:
    venv = gym.make_vec(RECSYS_ID, num_envs=4, vectorization_mode="vector_entry_point", **SMALL)
    assert isinstance(venv.unwrapped, BatchedRecSysEnv)
    obs, _ = venv.reset(seed=1)
    assert obs.shape[0] == 4
    venv.close()


def test_next_step_autoreset_semantics() -> None:
    venv = BatchedRecSysEnv(64, budget=3.0, budget_jitter=0.0, **SMALL)
    venv.reset(seed=0)
    actions = np.zeros(64, dtype=np.int64)
    ended_before = np.zeros(64, dtype=bool)
    saw_reset = False
    for _ in range(40):
        obs, rew, term, trunc, _ = venv.step(actions)
        t = venv.model.num_topics
        if ended_before.any():
            saw_reset = True
            # Users whose session ended last step restart now: reward 0, fresh state.
            assert np.all(rew[ended_before] == 0.0)
            assert not np.any(term[ended_before] | trunc[ended_before])
            np.testing.assert_array_equal(obs[ended_before, :t], 0.0)
            np.testing.assert_allclose(obs[ended_before, t + 1], 1.0)
        ended_before = term | trunc
        np.testing.assert_array_equal(venv.session_done, ended_before)
    assert saw_reset


def test_batched_matches_single_env_for_one_user() -> None:
    single = RecSysEnv(**SMALL)
    venv = BatchedRecSysEnv(1, **SMALL)
    o1, _ = single.reset(seed=11)
    ov, _ = venv.reset(seed=11)
    np.testing.assert_allclose(ov[0], o1, atol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = int(rng.integers(int(single.action_space.n)))
        o1, r1, t1, u1, _ = single.step(a)
        ov, rv, tv, uv, _ = venv.step(np.array([a]))
        np.testing.assert_allclose(ov[0], o1, atol=1e-5)
        assert (r1, t1, u1) == (float(rv[0]), bool(tv[0]), bool(uv[0]))
        if t1 or u1:
            break


def test_batched_seeded_determinism_and_fresh_observations() -> None:
    def run(seed: int) -> list[np.ndarray]:
        venv = BatchedRecSysEnv(32, **SMALL)
        obs, _ = venv.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = [obs]
        for _ in range(100):
            obs, rew, *_ = venv.step(rng.integers(venv.model.num_candidates, size=32))
            out += [obs, rew]
        return out

    a, b = run(3), run(3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.shares_memory(a[1], a[3])  # every step returns a fresh observation array


def test_batched_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="num_envs"):
        BatchedRecSysEnv(0)
    venv = BatchedRecSysEnv(4, **SMALL)
    with pytest.raises(RuntimeError, match="reset"):
        venv.step(np.zeros(4, dtype=np.int64))
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="actions"):
        venv.step(np.full(4, 99))
    with pytest.raises(ValueError, match="num_candidates"):
        BatchedRecSysEnv(4, num_items=3, num_candidates=5)


def test_partial_reset_with_mask() -> None:
    venv = BatchedRecSysEnv(8, **SMALL)
    venv.reset(seed=0)
    for _ in range(5):
        obs, *_ = venv.step(np.zeros(8, dtype=np.int64))
    mask = np.zeros(8, dtype=bool)
    mask[:3] = True
    obs, _ = venv.reset(options={"reset_mask": mask})
    t = venv.model.num_topics
    np.testing.assert_allclose(obs[:3, t + 1], 1.0)
    assert np.all(obs[3:, t + 1] < 1.0)
