"""PPO reward scaling (``model.normalize_rewards``): the running return statistics against their
closed form on real RLlib episodes, its place in a real PPO learner's pipeline, the episode
returns it must leave alone, and its state through a checkpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.postprocessing.episodes import add_one_ts_to_episodes_and_truncate

from lrtune.learners import ModelSettings, build_algorithm_config
from lrtune.learners._learner import STATE_KEY
from lrtune.learners._presets import (
    CONTINUOUS_FAMILY,
    MODEL_DEFAULT,
    preset_hyperparams,
    resolve_presets,
)
from lrtune.learners._rewards import EPSILON, RewardScaling
from lrtune.policies import PolicyError

GAMMA = 0.9
PRIOR_COUNT = 1e-4  # SB3's RunningMeanStd starts at count ε, mean 0, variance 1


def chunk(episode_id: str, rewards: list[float], *, terminated: bool = False) -> Any:
    """An episode chunk as RLlib's env runner hands it over (observations one longer)."""
    n = len(rewards)
    return SingleAgentEpisode(
        id_=episode_id,
        observations=[np.zeros(1, np.float32) for _ in range(n + 1)],
        actions=[0] * n,
        rewards=list(rewards),
        terminated=terminated,
        len_lookback_buffer=0,
    )


def as_learner_sees(chunks: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The chunks after RLlib's PPO pieces ran before GAE: a bootstrap step with reward 0
    appended, ids suffixed with ``_<index>``, the rewards column built from them."""
    add_one_ts_to_episodes_and_truncate(chunks)
    for i, c in enumerate(chunks):
        c.id_ += f"_{i}"
    rewards = np.concatenate([np.asarray(c.get_rewards(), np.float32) for c in chunks])
    return chunks, {"default_policy": {Columns.REWARDS: rewards}}


def pooled_var(values: np.ndarray) -> float:
    """The variance of the SB3 prior (count ε, mean 0, variance 1) pooled with ``values``."""
    n, total = values.size, PRIOR_COUNT + values.size
    m2 = PRIOR_COUNT * 1.0 + ((values - values.mean()) ** 2).sum()
    m2 += values.mean() ** 2 * PRIOR_COUNT * n / total
    return float(m2 / total)


def returns_of(rewards: list[float], start: float = 0.0) -> list[float]:
    out, g = [], start
    for r in rewards:
        g = GAMMA * g + r
        out.append(g)
    return out


def test_scaling_follows_the_discounted_returns_across_chunks() -> None:
    piece = RewardScaling(gamma=GAMMA, clip=1e9)
    first_a, first_b = [1.0, 2.0, 3.0], [-4.0, 0.5]
    episodes, batch = as_learner_sees([chunk("a", first_a), chunk("b", first_b, terminated=True)])
    raw = batch["default_policy"][Columns.REWARDS].copy()
    piece(rl_module=None, batch=batch, episodes=episodes)
    seen = np.array(returns_of(first_a) + returns_of(first_b))
    var = pooled_var(seen)
    assert piece.moments.var == pytest.approx(var, rel=1e-9)
    assert piece.moments.count == pytest.approx(PRIOR_COUNT + 5)
    scaled = batch["default_policy"][Columns.REWARDS]
    np.testing.assert_allclose(scaled, raw / np.sqrt(var + EPSILON), rtol=1e-6)
    assert scaled[3] == 0 and scaled[-1] == 0  # the bootstrap steps stay 0
    # "b" terminated: forgotten. "a" was cut: its next chunk continues its return.
    assert set(piece.open_returns) == {"a"}
    assert piece.open_returns["a"] == pytest.approx(returns_of(first_a)[-1])

    second_a, new_c = [5.0, -1.0], [2.0]
    episodes, batch = as_learner_sees([chunk("a", second_a), chunk("c", new_c)])
    piece(rl_module=None, batch=batch, episodes=episodes)
    seen = np.concatenate(
        [seen, returns_of(second_a, start=returns_of(first_a)[-1]), returns_of(new_c)]
    )
    assert piece.moments.var == pytest.approx(pooled_var(seen), rel=1e-9)
    # An open episode that no batch carries any more (truncated by its env) is dropped.
    episodes, batch = as_learner_sees([chunk("c", [1.0])])
    piece(rl_module=None, batch=batch, episodes=episodes)
    assert set(piece.open_returns) == {"c"}


def test_rewards_are_clipped_and_the_state_round_trips() -> None:
    piece = RewardScaling(gamma=GAMMA, clip=0.5)
    episodes, batch = as_learner_sees([chunk("a", [100.0, -100.0, 1.0])])
    piece(rl_module=None, batch=batch, episodes=episodes)
    assert np.abs(batch["default_policy"][Columns.REWARDS]).max() == pytest.approx(0.5)
    again = RewardScaling(gamma=GAMMA, clip=0.5)
    again.set_state(piece.get_state())
    assert again.get_state() == piece.get_state()
    outputs = []
    for p in (piece, again):
        episodes, batch = as_learner_sees([chunk("a", [3.0, 0.2])])
        p(rl_module=None, batch=batch, episodes=episodes)
        outputs.append(batch["default_policy"][Columns.REWARDS])
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_presets_turn_it_on_for_continuous_ppo_only() -> None:
    rows = {r.key: (r.value, r.source) for r in resolve_presets("ppo", "Pendulum-v1")}
    assert rows["model.normalize_rewards"] == (True, CONTINUOUS_FAMILY)
    rows = {r.key: (r.value, r.source) for r in resolve_presets("ppo", "CartPole-v1")}
    assert rows["model.normalize_rewards"] == (False, MODEL_DEFAULT)
    rows = {r.key: (r.value, r.source) for r in resolve_presets("sac", "Pendulum-v1")}
    assert rows["model.normalize_rewards"] == (False, MODEL_DEFAULT)
    settings = build_algorithm_config("ppo", "Pendulum-v1", policy={"lr": 1e-3})
    assert settings.learner_config_dict["lrtune"]["normalize_rewards"] is True
    off = ModelSettings(normalize_rewards=False)
    settings = build_algorithm_config("ppo", "Pendulum-v1", policy={"lr": 1e-3}, model=off)
    assert settings.learner_config_dict["lrtune"]["normalize_rewards"] is False
    with pytest.raises(PolicyError, match=r"model\.normalize_rewards: dqn"):
        build_algorithm_config(
            "dqn",
            "CartPole-v1",
            policy={"lr": 1e-3},
            model=ModelSettings(normalize_rewards=True),
        )


@pytest.fixture(scope="module")
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def build_pendulum(seed: int = 0) -> Any:
    tiny = {"train_batch_size_per_learner": 400, "minibatch_size": 200, "num_epochs": 1}
    params = {**preset_hyperparams("ppo", "Pendulum-v1"), **tiny, "num_envs_per_env_runner": 1}
    config = build_algorithm_config(
        "ppo", "Pendulum-v1", policy={"lr": 3e-4}, hyperparams=params, budget=4000, seed=seed
    )
    return config.build_algo()


@pytest.mark.usefixtures("_ray")
def test_a_ppo_learner_scales_before_gae_reports_raw_returns_and_checkpoints_it(
    tmp_path: Path,
) -> None:
    algo = build_pendulum()
    try:
        learner = algo.learner_group._learner
        pieces = [type(p) for p in learner._learner_connector.connectors]
        at = pieces.index(RewardScaling)
        assert pieces[at + 1] is GeneralAdvantageEstimation
        for _ in range(2):
            result = algo.train()
        # Pendulum's rewards are in [-16.3, 0]: 200-step episodes of a barely trained agent
        # return about -1200. Scaled rewards (std of the return ~ tens) would sum to ~ -10.
        assert result["env_runners"]["episode_return_mean"] < -300
        state = learner.get_state()[STATE_KEY]["reward_scaling"]
        assert state["count"] == pytest.approx(PRIOR_COUNT + 800)
        assert state["var"] > 100
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    again = build_pendulum(seed=1)
    try:
        again.restore_from_path(tmp_path / "ckpt")
        restored = again.learner_group._learner.get_state()[STATE_KEY]["reward_scaling"]
        assert restored == state
    finally:
        again.stop()
