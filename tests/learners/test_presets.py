"""Agent presets and model settings: the layered lookup, and tiny real RLlib builds with them.

Learning claims live in benchmarks/presets.py; these only check what the settings build."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.envs.classic_control import CartPoleEnv

from lrtune.learners import ModelSettings, build_algorithm_config
from lrtune.learners._modules import (
    LRTunePPOTorchRLModule,
    OrthogonalPPOTorchRLModule,
    channels_first,
    channels_last_shape,
    mean_std_filter,
)
from lrtune.learners._presets import (
    AGENT_DEFAULT,
    CONTINUOUS_FAMILY,
    MODEL_DEFAULT,
    PPO_BY_ENV,
    PPO_DEFAULTS,
    over_presets,
    preset_hyperparams,
    resolve_presets,
)
from lrtune.policies import PolicyError

POLICY = {"lr": 3e-4}
PRESET_N_STEP = 3  # DQN_DEFAULTS["n_step"]
# A few hundred env steps per iteration: smoke tests, not learning tests.
TINY = {"train_batch_size_per_learner": 256, "minibatch_size": 64, "num_epochs": 1}
TINY_DQN = {
    "min_sample_timesteps_per_iteration": 128,
    "num_steps_sampled_before_learning_starts": 64,
    # Replay as many items as are sampled (one update of 64 per 64 env steps), not 32 times as
    # many as the presets do: their updates were most of a DQN test's time.
    "training_intensity": 1,
}


def sources(agent: str, env: str | None) -> dict[str, tuple[Any, str]]:
    return {row.key: (row.value, row.source) for row in resolve_presets(agent, env)}


def test_layers_name_their_source() -> None:
    pendulum = sources("ppo", "Pendulum-v1")
    assert pendulum["clip_param"] == (PPO_DEFAULTS["clip_param"], AGENT_DEFAULT)
    assert pendulum["env_to_module_connector"] == (mean_std_filter, CONTINUOUS_FAMILY)
    assert pendulum["model.normalize_observations"] == (True, CONTINUOUS_FAMILY)
    assert pendulum["model.vf_share_layers"] == (False, MODEL_DEFAULT)
    assert pendulum["model.initializer"] == ("orthogonal", MODEL_DEFAULT)
    for key, value in PPO_BY_ENV.get("Pendulum-v1", {}).items():
        assert pendulum[key] == (value, "per-env entry (Pendulum-v1)")
    # The module prefix of an id is not part of the entry's name.
    assert sources("ppo", "gymnasium.envs:Pendulum-v1") == pendulum
    # No env: the agent defaults and the model defaults, nothing else.
    bare = sources("ppo", None)
    assert {src for _, src in bare.values()} == {AGENT_DEFAULT, MODEL_DEFAULT}
    assert bare["model.normalize_observations"] == (False, MODEL_DEFAULT)
    assert sources("dqn", None)["model.initializer"] == ("torch", MODEL_DEFAULT)
    # Network size and activation are the agent's: SB3 / CleanRL PPO, rl-zoo3's tuned DQNs.
    assert bare["model.hidden"] == ((64, 64), MODEL_DEFAULT)
    assert bare["model.activation"] == ("tanh", MODEL_DEFAULT)
    assert sources("dqn", None)["model.hidden"] == ((256, 256), MODEL_DEFAULT)
    assert sources("dqn", None)["model.activation"] == ("relu", MODEL_DEFAULT)
    # An id gymnasium cannot build: no family, and no entry either.
    assert sources("ppo", "NoSuchEnv-v0") == bare


def test_preset_hyperparams_are_the_non_model_rows_as_fresh_copies() -> None:
    rows = resolve_presets("dqn", "CartPole-v1")
    params = preset_hyperparams("dqn", "CartPole-v1")
    assert params == {r.key: r.value for r in rows if not r.key.startswith("model.")}
    params["replay_buffer_config"]["capacity"] = 1
    assert preset_hyperparams("dqn", "CartPole-v1")["replay_buffer_config"]["capacity"] != 1


def test_a_partial_replay_buffer_config_updates_the_presets_one_not_rllibs_default() -> None:
    job = {"replay_buffer_config": {"capacity": 10_000}, "gamma": 0.98}
    point = {"replay_buffer_config": {"capacity": 2_000}}
    merged = over_presets("dqn", "CartPole-v1", None, job, point)
    assert merged["replay_buffer_config"] == {
        "type": "lrtune.learners.TransitionReplayBuffer",
        "capacity": 2_000,
    }
    assert merged["gamma"] == 0.98 and merged["n_step"] == PRESET_N_STEP
    config = build_algorithm_config("dqn", "CartPole-v1", policy=POLICY, hyperparams=merged)
    assert config.replay_buffer_config["type"] == "lrtune.learners.TransitionReplayBuffer"
    # A whole buffer of another type is the job's (RLlib's own types stay available).
    other = {"replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", "alpha": 0.6}}
    merged = over_presets("dqn", "CartPole-v1", None, other)
    assert merged["replay_buffer_config"] == other["replay_buffer_config"]
    # ...and back: the flat buffer over SAC's prioritized presets keeps no alpha or beta.
    flat = {"replay_buffer_config": {"type": "lrtune.learners.TransitionReplayBuffer"}}
    merged = over_presets("sac", "Pendulum-v1", None, other, flat)
    assert merged["replay_buffer_config"] == flat["replay_buffer_config"]


def test_model_settings_refuse_an_unknown_initializer_and_ppo_only_settings_on_dqn() -> None:
    with pytest.raises(ValueError, match=r"model\.initializer"):
        ModelSettings(initializer="xavier")
    for model in (ModelSettings(initializer="orthogonal"), ModelSettings(vf_share_layers=True)):
        with pytest.raises(PolicyError, match="dqn supports initializer torch"):
            build_algorithm_config("dqn", "CartPole-v1", policy=POLICY, model=model)


@pytest.fixture(scope="module")
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def build(env: str, model: ModelSettings, **hyperparams: Any) -> Any:
    params = {**preset_hyperparams("ppo", env), **TINY, **hyperparams}
    config = build_algorithm_config(
        "ppo", env, policy=POLICY, hyperparams=params, model=model, budget=2048, seed=0
    )
    return config.build_algo()


def observation_pieces(algo: Any) -> list[str]:
    """The env-to-module pieces in front of the batching ones, RLlib's defaults or lrtune's
    `BatchedObservations` (lrtune's flattening and filter)."""
    names = [type(piece).__name__ for piece in algo.env_runner._env_to_module.connectors]
    last = "BatchedObservations" if "BatchedObservations" in names else None
    return names[: names.index(last or "AddObservationsFromEpisodesToBatch")]


def train_save_restore(config: Any, folder: Path, iterations: int = 2) -> dict[str, Any]:
    """Train ``iterations`` iterations of a fresh algorithm, save it, restore it into another
    and train that once; the first algorithm's last result."""
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            result: dict[str, Any] = algo.train()
        algo.save_to_path(folder / "ckpt")
    finally:
        algo.stop()
    again = config.build_algo()
    try:
        again.restore_from_path(folder / "ckpt")
        assert math.isfinite(float(again.train()["env_runners"]["num_env_steps_sampled_lifetime"]))
    finally:
        again.stop()
    return result


def linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


@pytest.mark.usefixtures("_ray")
def test_default_model_is_separate_and_orthogonal_and_survives_a_checkpoint(
    tmp_path: Path,
) -> None:
    algo = build("CartPole-v1", ModelSettings())
    try:
        module = algo.get_module()
        assert type(module) is OrthogonalPPOTorchRLModule
        assert hasattr(module.encoder, "critic_encoder")  # the value net's own layers
        pi_out = linears(module.pi)[-1]
        # Orthogonal with gain 0.01: every row of the 2 x 64 output has norm 0.01.
        norms = pi_out.weight.norm(dim=1)
        assert torch.allclose(norms, torch.full_like(norms, 0.01), atol=1e-6)
        assert all(not layer.bias.detach().any() for layer in linears(module.encoder))
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 256
        trained = {k: v.clone() for k, v in module.state_dict().items()}
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    again = build("CartPole-v1", ModelSettings())
    try:
        again.restore_from_path(tmp_path / "ckpt")
        restored = again.get_module().state_dict()
        assert all(torch.equal(trained[k], restored[k]) for k in trained)
    finally:
        again.stop()


@pytest.mark.usefixtures("_ray")
def test_shared_layers_torch_init_and_filter_override() -> None:
    model = ModelSettings(vf_share_layers=True, initializer="torch", normalize_observations=True)
    algo = build("CartPole-v1", model)
    try:
        module = algo.get_module()
        assert type(module) is LRTunePPOTorchRLModule
        assert not hasattr(module.encoder, "critic_encoder")
        assert observation_pieces(algo) == ["MeanStdFilter"]  # CartPole's Box: no flattening
    finally:
        algo.stop()


@pytest.mark.usefixtures("_ray")
def test_continuous_defaults_train_and_the_filter_can_be_switched_off() -> None:
    algo = build("Pendulum-v1", ModelSettings(normalize_observations=False))
    try:
        assert observation_pieces(algo) == []
        result = algo.train()
        loss = result["learners"]["default_policy"]["total_loss"]
        assert math.isfinite(float(loss))
    finally:
        algo.stop()


def _filter_count(env_runner: Any) -> int:
    """Observations the env runner's observation filter (RLlib's ``MeanStdFilter``) has seen."""
    (piece,) = [
        p for p in env_runner._env_to_module.connectors if type(p).__name__ == "MeanStdFilter"
    ]
    (stats,) = piece._filters.values()
    return int(stats.running_stats.n)


@pytest.mark.usefixtures("_ray")
def test_the_evaluation_normalises_observations_with_the_training_statistics() -> None:
    """RLlib 2.60 hands the observation filter's statistics to remote evaluation env runners
    only; lrtune evaluates in the trial's process, and its callback hands them over there
    (`share_connector_states_with_evaluation`). Without it the evaluation's filter starts
    from nothing and a trained Pendulum-v1 policy evaluated at about random play's return."""
    evaluation = {
        "evaluation_interval": 1000,  # only when asked (algo.evaluate() below)
        "evaluation_duration": 1,
        "evaluation_duration_unit": "episodes",
        "evaluation_num_env_runners": 0,
        "evaluation_config": {"explore": False, "num_envs_per_env_runner": 1},
    }
    algo = build("Pendulum-v1", ModelSettings(), **evaluation)
    try:
        algo.train()
        trained = _filter_count(algo.env_runner)
        assert trained >= 256
        algo.evaluate()
        # The training statistics, then the evaluation episode's 201 observations (reset + 200).
        assert _filter_count(algo.eval_env_runner) == trained + 201
        algo.train()
        algo.evaluate()  # handed over again: the training runner's count, not a sum of both
        assert _filter_count(algo.eval_env_runner) == _filter_count(algo.env_runner) + 201
    finally:
        algo.stop()


def test_the_network_follows_the_agent_unless_the_model_says_otherwise() -> None:
    dqn = build_algorithm_config("dqn", "CartPole-v1", policy=POLICY)
    assert dqn.model_config["fcnet_hiddens"] == [256, 256]
    assert dqn.model_config["fcnet_activation"] == "relu"
    ppo = build_algorithm_config("ppo", "CartPole-v1", policy=POLICY)
    assert ppo.model_config["fcnet_hiddens"] == [64, 64]
    assert ppo.model_config["fcnet_activation"] == "tanh"
    mine = ModelSettings(hidden=(32,), activation="elu")
    chosen = build_algorithm_config("dqn", "CartPole-v1", policy=POLICY, model=mine)
    assert chosen.model_config["fcnet_hiddens"] == [32]
    assert chosen.model_config["fcnet_activation"] == "elu"


class Grid2D(gymnasium.Env[Any, Any]):
    """Ten steps of a 3x4 observation; reward 1 for action 1."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (3, 4), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self.observation_space.sample(), float(action), self.t >= 10, False, {}


GRID_ID = "LRTuneTest/Grid2D-v0"
gymnasium.register(GRID_ID, entry_point=Grid2D)


@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize(
    ("agent", "env", "normalize", "width"),
    [
        ("ppo", "FrozenLake-v1", None, 16),  # Discrete(16): one-hot
        ("dqn", "Taxi-v3", None, 500),  # Discrete(500), through the replay buffer
        ("ppo", "Blackjack-v1", True, 32 + 11 + 2),  # Tuple of three Discrete, then the filter
        ("ppo", GRID_ID, None, 12),  # a 2-D Box
    ],
)
def test_observations_that_are_not_a_box_are_flattened_for_every_agent(
    agent: str, env: str, normalize: bool | None, width: int, tmp_path: Path
) -> None:
    """RLlib's default networks take only a Box ("No default encoder config for obs space"
    otherwise): gymnasium's toy-text tasks train, checkpoint and restore with the flat form."""
    tiny = TINY if agent == "ppo" else TINY_DQN
    params = {**preset_hyperparams(agent, env), **tiny}
    config = build_algorithm_config(
        agent,
        env,
        policy=POLICY,
        hyperparams=params,
        model=ModelSettings(normalize_observations=normalize),
        budget=2048,
        seed=0,
    )
    algo = config.build_algo()
    try:
        expected = ["FlattenObservations"] + (["MeanStdFilter"] if normalize else [])
        assert observation_pieces(algo) == expected
        assert algo.get_module().observation_space.shape == (width,)
    finally:
        algo.stop()
    result = train_save_restore(config, tmp_path)
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 256


class Picker(gymnasium.Env[Any, Any]):
    """Twenty steps of four random bits; the reward counts the action's parts that copy them
    (any of the action spaces PPO takes beyond Discrete and Box)."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (4,), np.float32)

    def __init__(self, action_space: gymnasium.spaces.Space[Any]) -> None:
        self.action_space = action_space

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        self.bits = self.np_random.integers(0, 2, 4)
        return self.bits.astype(np.float32), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        parts = action.values() if isinstance(action, dict) else action
        flat = np.concatenate([np.ravel(np.asarray(part)) for part in parts])
        reward = float(np.sum(np.round(flat[:4]) == self.bits[: len(flat[:4])]))
        self.t += 1
        self.bits = self.np_random.integers(0, 2, 4)
        return self.bits.astype(np.float32), reward, False, self.t >= 20, {}


PICKERS = {
    "LRTuneTest/PickerMultiDiscrete-v0": gymnasium.spaces.MultiDiscrete([2, 2, 2, 2]),
    "LRTuneTest/PickerTuple-v0": gymnasium.spaces.Tuple(
        (gymnasium.spaces.MultiDiscrete([2, 2]), gymnasium.spaces.Box(0.0, 1.0, (2,)))
    ),
    "LRTuneTest/PickerDict-v0": gymnasium.spaces.Dict(
        {"a": gymnasium.spaces.Discrete(2), "b": gymnasium.spaces.MultiDiscrete([2, 2, 2])}
    ),
}
for _id, _space in PICKERS.items():
    gymnasium.register(_id, entry_point=Picker, kwargs={"action_space": _space})


@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize("env", sorted(PICKERS))
def test_ppo_acts_in_multi_discrete_and_composite_action_spaces(env: str, tmp_path: Path) -> None:
    """PPO declares every `ACTION_KINDS` entry: each trains with lrtune's learner (the LR read
    back is the policy's), checkpoints and restores."""
    from lrtune.agents import action_kind, get_agent, require_env_id
    from lrtune.learners import RESULT_KEY

    assert action_kind(PICKERS[env]) in get_agent("ppo").action_spaces
    require_env_id(env, "ppo")
    config = build_algorithm_config(
        "ppo", env, policy=POLICY, hyperparams={**preset_hyperparams("ppo", env), **TINY}, seed=0
    )
    result = train_save_restore(config, tmp_path)
    assert result[RESULT_KEY]["lr"] == pytest.approx(3e-4)
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 512
    assert result["env_runners"]["episode_return_mean"] > 0


class Pixels(gymnasium.Env[Any, Any]):
    """Ten steps of a random image; reward 1 for action 1."""

    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, space: gymnasium.spaces.Box) -> None:
        self.observation_space = space

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.t += 1
        return self.observation_space.sample(), float(action), self.t >= 10, False, {}


PIXELS = {
    # uint8 0..255, no RLlib default for 12x12: lrtune's small-image stack, scaled to [0, 1].
    "LRTuneTest/Pixels12-v0": (gymnasium.spaces.Box(0, 255, (12, 12, 3), np.uint8), 255.0),
    # uint8 40x40: the Nature stack.
    "LRTuneTest/Pixels40-v0": (gymnasium.spaces.Box(0, 255, (40, 40, 1), np.uint8), 255.0),
    # Channels first, as gymnasium's FrameStackObservation stacks 4 grayscale frames: the
    # network reads (40, 40, 4), 4 input channels.
    "LRTuneTest/Frames40-v0": (gymnasium.spaces.Box(0, 255, (4, 40, 40), np.uint8), 255.0),
    # int64 counts on RLlib's own 10x10 size: RLlib's filters, cast to float without scaling.
    "LRTuneTest/Counts10-v0": (gymnasium.spaces.Box(0, 5, (10, 10, 2), np.int64), 1.0),
    # A 1-D Box of integers: an MLP, cast to float.
    "LRTuneTest/Counts-v0": (gymnasium.spaces.Box(0, 9, (6,), np.int32), 1.0),
    # 16-bit floats: RLlib casts only float64 ("got Half and Float").
    "LRTuneTest/Half-v0": (gymnasium.spaces.Box(-1, 1, (6,), np.float16), 1.0),
}
for _id, (_space, _scale) in PIXELS.items():
    gymnasium.register(_id, entry_point=Pixels, kwargs={"space": _space})


def conv_channels(module: torch.nn.Module) -> list[tuple[int, int, int]]:
    return [
        (m.out_channels, m.kernel_size[0], m.stride[0])
        for m in module.modules()
        if isinstance(m, torch.nn.Conv2d)
    ]


def network_outputs(module: Any, observations: np.ndarray) -> torch.Tensor:
    """PPO's action logits or DQN's Q-values for a batch of observations."""
    batch = {"obs": torch.as_tensor(observations)}
    if hasattr(module, "compute_q_values"):
        return module.compute_q_values(batch)["qf_preds"]
    return module.forward_inference(batch)["action_dist_inputs"]


@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize("agent", ["ppo", "dqn"])
@pytest.mark.parametrize("env", sorted(PIXELS))
def test_integer_and_image_observations_train_with_a_cnn_for_any_image_size(
    agent: str, env: str, tmp_path: Path
) -> None:
    """RLlib alone stops on these: no default CNN filters for most image sizes, and its
    networks take float32 input only. lrtune's modules cast integer (and 16-bit float) Boxes
    to float32 (uint8
    images scaled to [0, 1], as SB3 does), so episodes and replay keep the integers, and lrtune
    picks the filters for every image size; each builds, trains, checkpoints and
    restores."""
    from lrtune.learners import default_conv_filters
    from lrtune.learners._config import NATURE_FILTERS, SMALL_IMAGE_FILTERS

    space, scale = PIXELS[env]
    shape = tuple(space.shape)
    expected: Any = {
        "LRTuneTest/Pixels12-v0": SMALL_IMAGE_FILTERS,
        "LRTuneTest/Pixels40-v0": NATURE_FILTERS,
        "LRTuneTest/Frames40-v0": NATURE_FILTERS,
        "LRTuneTest/Counts10-v0": SMALL_IMAGE_FILTERS,  # a size RLlib has filters for
        "LRTuneTest/Counts-v0": None,
        "LRTuneTest/Half-v0": None,
    }[env]
    assert default_conv_filters(shape) == expected
    tiny = TINY if agent == "ppo" else TINY_DQN
    params = {**preset_hyperparams(agent, env), **tiny}
    config = build_algorithm_config(agent, env, policy=POLICY, hyperparams=params, seed=0)
    algo = config.build_algo()
    try:
        # The module casts (and scales) integer input itself: no connector piece writes
        # float32 copies into the episodes. A channels-first image has its axes moved.
        moved = channels_first(shape)
        assert observation_pieces(algo) == (["ChannelsLastObservations"] if moved else [])
        module = algo.get_module()
        seen = module.observation_space
        assert seen.dtype == space.dtype and seen.shape == channels_last_shape(shape)
        assert conv_channels(module) == list(expected or [])
        first = next((m for m in module.modules() if isinstance(m, torch.nn.Conv2d)), None)
        assert first is None or first.in_channels == seen.shape[-1]
        observations = np.stack([space.sample() for _ in range(4)])
        if moved:
            observations = np.moveaxis(observations, 1, -1)
        as_floats = observations.astype(np.float32) / np.float32(scale)
        assert torch.allclose(
            network_outputs(module, observations), network_outputs(module, as_floats), atol=1e-5
        )
        algo.train()  # DQN's loss: the target network too reads uint8 replay
        if agent == "dqn":  # the replay buffer keeps the env's dtype
            replayed = algo.local_replay_buffer.sample(4, n_step=1)
            assert replayed["obs"].dtype == replayed["new_obs"].dtype == space.dtype
    finally:
        algo.stop()
    result = train_save_restore(config, tmp_path)
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 128


class _FaultyCartPole(CartPoleEnv):
    """CartPole whose 5th step returns a NaN ``fault`` ("reward" or "observation")."""

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault, self.steps = fault, 0

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.steps == 5:
            if self.fault == "reward":
                reward = math.nan
            else:
                obs = obs.copy()
                obs[2] = -math.inf
        return obs, reward, terminated, truncated, info


for _fault in ("reward", "observation"):
    gymnasium.register(
        f"LRTuneTest/Faulty{_fault.title()}-v0",
        entry_point=_FaultyCartPole,
        kwargs={"fault": _fault},
        max_episode_steps=200,
    )


@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize("agent", ["ppo", "dqn"])
@pytest.mark.parametrize(("fault", "value"), [("reward", "nan"), ("observation", "-inf")])
def test_a_non_finite_reward_or_observation_is_named_as_the_envs_fault(
    agent: str, fault: str, value: str
) -> None:
    """A NaN reward used to reach the loss, and the trial was reported as diverged: the LR
    policy was blamed and the search told the region was bad. It is now caught when the
    sample ends, before the episodes are trained on (`LRTuneCallbacks.on_sample_end`). A NaN
    observation stops RLlib's sampling inside the action distribution (torch's "invalid
    multinomial distribution"); `sampling_problem` then finds it in the episodes being
    sampled, and the trainable raises `EnvOutputError` with it (tests/running/test_run.py)."""
    from lrtune.learners import EnvOutputError
    from lrtune.learners._callbacks import sampling_problem

    env = f"LRTuneTest/Faulty{fault.title()}-v0"
    tiny = TINY if agent == "ppo" else TINY_DQN
    params = {**preset_hyperparams(agent, env), **tiny}
    config = build_algorithm_config(agent, env, policy=POLICY, hyperparams=params, seed=0)
    algo = config.build_algo()
    message = rf"env\.id: the env returned an? {fault} holding {value}"
    crashed = False
    try:
        try:
            algo.train()
        except EnvOutputError as exc:  # caught when the sample ended
            text = str(exc)
        except RuntimeError:  # torch, inside the action distribution
            crashed, text = True, sampling_problem(algo) or ""
        else:
            pytest.fail("the trial trained on a non-finite env output")
    finally:
        algo.stop()
    assert re.match(message, text)
    # DQN's ReLU Q-network turns -inf into NaN and stops in the epsilon-greedy draw; PPO's tanh
    # saturates, so its sample ends and the callback finds the value.
    assert crashed == (agent == "dqn" and fault == "observation")
    healthy = build_algorithm_config("ppo", "CartPole-v1", policy=POLICY, hyperparams=TINY)
    algo = healthy.build_algo()
    try:
        algo.train()
        assert sampling_problem(algo) is None
    finally:
        algo.stop()


class _FlakyCartPole(CartPoleEnv):
    """CartPole whose 40th step in this process raises, once: a simulator losing its link."""

    steps = 0

    def step(self, action: Any) -> Any:
        _FlakyCartPole.steps += 1
        if _FlakyCartPole.steps == 40:
            raise ConnectionError("simulator connection lost")
        return super().step(action)


gymnasium.register("LRTuneTest/Flaky-v0", entry_point=_FlakyCartPole, max_episode_steps=200)


@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_an_env_that_raises_mid_trial_is_named_with_rllibs_remedy(agent: str) -> None:
    """The env's own step raising used to fail the trial with RLlib's bare ``RuntimeError``
    (raised from the env's, three frames of wrappers below); `env_raised` finds the env's
    method, class and line on the chained traceback, and names the RLlib setting that
    rebuilds a failed env, with which the same env trains through the failure."""
    from lrtune.learners._callbacks import env_raised

    env = "LRTuneTest/Flaky-v0"
    tiny = TINY if agent == "ppo" else TINY_DQN
    params = {**preset_hyperparams(agent, env), **tiny}
    _FlakyCartPole.steps = 0
    algo = build_algorithm_config(agent, env, policy=POLICY, hyperparams=params).build_algo()
    try:
        with pytest.raises(Exception) as failed:
            algo.train()
    finally:
        algo.stop()
    text = env_raised(failed.value) or ""
    assert re.match(
        r"env\.id: the env's step\(\) \(_FlakyCartPole\) raised ConnectionError: simulator "
        r"connection lost \(test_presets\.py line \d+\)\. If it fails only now and then",
        text,
    ), text
    assert "hyperparams: {restart_failed_sub_environments: true}" in text
    assert env_raised(RuntimeError("inside RLlib")) is None

    _FlakyCartPole.steps = 0
    params["restart_failed_sub_environments"] = True
    algo = build_algorithm_config(agent, env, policy=POLICY, hyperparams=params).build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    assert _FlakyCartPole.steps > 40  # it failed, was rebuilt and sampled on
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] > 0


@pytest.mark.usefixtures("_ray")
def test_lrtune_train_names_an_env_that_raises_as_a_trial_does() -> None:
    """`lrtune train` builds its algorithm in its own process; the env's fault is named the
    same way (`env_fault`), which the command prints as its error (exit 2)."""
    from lrtune.learners import EnvRaisedError
    from lrtune.running._single import train_single

    _FlakyCartPole.steps = 0
    with pytest.raises(EnvRaisedError, match=r"^env\.id: the env's step\(\) \(_FlakyCartPole\)"):
        train_single(POLICY, env="LRTuneTest/Flaky-v0", env_steps=512, hyperparams=TINY)


class _Switch(gymnasium.Env):  # type: ignore[type-arg]
    """Discrete(2) actions, or a Box with ``continuous=True`` (as LunarLander's keyword does)."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def __init__(self, continuous: bool = False) -> None:
        box = gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = box if continuous else gymnasium.spaces.Discrete(2)


gymnasium.register("LRTuneTest/Switch-v0", entry_point=_Switch)


def test_the_presets_family_follows_the_jobs_env_config() -> None:
    """An env whose keyword chooses its kind of actions: the presets were read from the env
    built without the job's ``env.config``, so a continuous-action job got the discrete
    presets (no observation or reward normalisation for PPO), silently."""
    from lrtune.learners._presets import PPO_CONTINUOUS, preset_model_setting

    env = "LRTuneTest/Switch-v0"
    continuous = preset_hyperparams("ppo", env, {"continuous": True})
    assert all(continuous[key] == value for key, value in PPO_CONTINUOUS.items())
    assert preset_model_setting("ppo", env, "normalize_rewards", {"continuous": True}) is True
    discrete = preset_hyperparams("ppo", env, {"continuous": False})
    assert discrete == preset_hyperparams("ppo", env)
    assert "env_to_module_connector" not in discrete
    assert preset_model_setting("ppo", env, "normalize_rewards") is False


class _Dose(gymnasium.Env):  # type: ignore[type-arg]
    """A half-bounded action (a dose: 0 or more) that raises on one outside its space."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gymnasium.spaces.Box(0.0, np.inf, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        return np.zeros(2, np.float32), {}

    def step(self, action: Any) -> Any:
        if not self.action_space.contains(np.asarray(action, np.float32)):
            raise ValueError(f"action {action} outside {self.action_space}")
        return np.zeros(2, np.float32), -abs(float(action[0]) - 3.0), False, False, {}


gymnasium.register("LRTuneTest/Dose-v0", entry_point=_Dose, max_episode_steps=20)


@pytest.mark.usefixtures("_ray")
def test_actions_of_a_box_with_an_infinite_bound_are_clipped_into_it() -> None:
    """RLlib maps a policy's [-1, 1] onto a Box only where both bounds are finite, and skips
    its clip with it: PPO sent a Box(0, inf) env negative actions (about half of them). lrtune
    turns RLlib's normalisation off for such a Box and clips to its bounds (SB3's PPO does);
    a bounded Box keeps RLlib's rescaling."""
    env = "LRTuneTest/Dose-v0"
    params = {**preset_hyperparams("ppo", env), **TINY}
    config = build_algorithm_config("ppo", env, policy=POLICY, hyperparams=params, seed=0)
    assert (config.normalize_actions, config.clip_actions) == (False, False)  # lrtune's piece
    algo = config.build_algo()
    try:
        result = algo.train()  # _Dose raises on the first action outside [0, inf)
    finally:
        algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 256
    bounded = build_algorithm_config("ppo", "Pendulum-v1", policy=POLICY, hyperparams=TINY)
    assert (bounded.normalize_actions, bounded.clip_actions) == (True, False)


class _DoseAndAngle(gymnasium.Env):  # type: ignore[type-arg]
    """A Dict of actions: a dose (0 or more) beside an angle bounded on both sides (10..20).
    Raises on an action outside its space and keeps the angles it was sent."""

    observation_space = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gymnasium.spaces.Dict(
        {
            "dose": gymnasium.spaces.Box(0.0, np.inf, (1,), np.float32),
            "angle": gymnasium.spaces.Box(10.0, 20.0, (1,), np.float32),
        }
    )
    angles: list[float] = []

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        return np.zeros(2, np.float32), {}

    def step(self, action: Any) -> Any:
        action = {key: np.asarray(value, np.float32) for key, value in action.items()}
        if not self.action_space.contains(action):
            raise ValueError(f"action {action} outside {self.action_space}")
        _DoseAndAngle.angles.append(float(action["angle"][0]))
        return np.zeros(2, np.float32), -abs(float(action["angle"][0]) - 15.0), False, False, {}


gymnasium.register("LRTuneTest/DoseAndAngle-v0", entry_point=_DoseAndAngle, max_episode_steps=20)


@pytest.mark.usefixtures("_ray")
def test_a_bounded_box_beside_a_half_bounded_one_keeps_its_rescaling() -> None:
    """RLlib rescales all of an action space or none of it: with a Box(0, inf) in a Dict,
    turning its rescaling off (for the clip) sent the Box(10, 20) beside it only 10.0 (the
    policy's actions around 0, clipped). lrtune's `ActionsIntoBounds` rescales the bounded
    part and clips both."""
    env = "LRTuneTest/DoseAndAngle-v0"
    params = {**preset_hyperparams("ppo", env), **TINY}
    _DoseAndAngle.angles.clear()
    config = build_algorithm_config("ppo", env, policy=POLICY, hyperparams=params, seed=0)
    algo = config.build_algo()
    try:
        algo.train()  # raises on the first dose below 0
    finally:
        algo.stop()
    angles = np.asarray(_DoseAndAngle.angles)
    assert len(angles) >= 256
    assert angles.min() >= 10.0 and angles.max() <= 20.0
    # A first policy's N(0, 1) actions, rescaled: about 16 % below -1 clip to 10 (all of them
    # did without the rescaling), the median near the middle.
    assert np.mean(angles == 10.0) < 0.3 and 13.0 < np.median(angles) < 17.0
    own = {**params, "add_default_connectors_to_module_to_env_pipeline": True}
    config = build_algorithm_config("ppo", env, policy=POLICY, hyperparams=own)
    assert (config.normalize_actions, config.clip_actions) == (False, True)  # RLlib's clip


def test_a_job_chooses_its_own_conv_filters() -> None:
    mine = ModelSettings(conv_filters=((8, 3, 2), (8, 3, 2)))
    config = build_algorithm_config("ppo", "LRTuneTest/Pixels40-v0", policy=POLICY, model=mine)
    assert config.model_config["conv_filters"] == [[8, 3, 2], [8, 3, 2]]
    rows = {row.key: row for row in resolve_presets("ppo", "LRTuneTest/Pixels12-v0")}
    from lrtune.learners._config import SMALL_IMAGE_FILTERS

    assert rows["model.conv_filters"].value == SMALL_IMAGE_FILTERS
    assert rows["model.conv_filters"].source == "model default (12x12 images)"
    assert resolve_presets("ppo", "CartPole-v1")[-1].value is None


@pytest.mark.parametrize(
    ("module_casts", "normalize", "pieces"),
    [
        (True, False, []),
        (False, False, ["FloatObservations"]),  # SAC, third-party agents
        (True, True, ["FloatObservations", "MeanStdFilter"]),  # the filter needs floats first
    ],
)
def test_the_connector_casts_integer_observations_only_for_modules_that_cannot(
    module_casts: bool, normalize: bool, pieces: list[str]
) -> None:
    from lrtune.learners._modules import ObservationConnectors

    env = Pixels(gymnasium.spaces.Box(0, 255, (12, 12, 3), np.uint8))
    built = ObservationConnectors(normalize=normalize, module_casts=module_casts)(env)
    assert [type(piece).__name__ for piece in built] == pieces


@pytest.mark.parametrize(
    ("shape", "first"),
    [
        ((4, 84, 84), True),  # FrameStackObservation of grayscale frames
        ((3, 64, 64), True),
        ((1, 28, 28), True),
        ((84, 84, 4), False),
        ((210, 160, 3), False),
        ((64, 3, 64), False),  # smallest in the middle: left as it is (SB3 warns)
        ((4, 4, 4), False),  # a tie: left as it is
        ((4, 84), False),
    ],
)
def test_channels_first_is_the_strictly_smallest_first_dimension(
    shape: tuple[int, ...], first: bool
) -> None:
    assert channels_first(shape) is first
    assert channels_last_shape(shape) == ((*shape[1:], shape[0]) if first else shape)


class _CountedCartPole(CartPoleEnv):
    """CartPole that counts its builds (a heavy simulator's cost is one per build)."""

    builds = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        type(self).builds += 1


gymnasium.register("LRTuneTest/Counted-v0", entry_point=_CountedCartPole, max_episode_steps=50)


def test_the_env_is_built_once_for_the_run_start_check_and_not_again_in_a_trial() -> None:
    """The run-start check (`env_problem`) builds the env; the presets and the trial's config
    read its facts from that build, and a trial's process takes the driver's facts
    (`adopt_env_facts`) instead of building the env once more (before: 2 builds in the driver,
    and one per trial on top of RLlib's own)."""
    from lrtune.agents._envs import env_problem
    from lrtune.learners import _config

    env, config = "LRTuneTest/Counted-v0", {"render_mode": None}
    _CountedCartPole.builds = 0
    assert env_problem(env, "ppo", config, must_build=True) == ("env.id", None)
    facts = _config.env_facts(env, config)
    assert facts is not None and facts.max_episode_steps == 50
    assert facts.observation_shape == (4,) and not facts.continuous_actions
    assert _CountedCartPole.builds == 1
    known = _config.known_env_facts()
    for key in known:  # a trial's process: a fresh cache, then the driver's facts
        _config._ENV_FACTS.pop(key)
    _config.adopt_env_facts(known)
    assert _config.env_facts(env, config) == facts and _CountedCartPole.builds == 1
    assert _config.env_facts(env, {}) == facts and _CountedCartPole.builds == 2  # other kwargs


def test_the_presets_conv_filters_follow_the_env_config_and_a_channels_first_shape() -> None:
    """`lrtune presets --env-config` builds the env with the job's keyword arguments, so the
    filters shown are the ones a trial gets; a channels-first shape is read as the network
    gets it."""
    from lrtune.learners._config import NATURE_FILTERS, SMALL_IMAGE_FILTERS
    from lrtune.learners._presets import resolve_presets

    def filters(env_config: dict[str, Any] | None) -> Any:
        rows = resolve_presets("dqn", "LRTuneTest/Pixels40-v0", env_config)
        return next(r.value for r in rows if r.key == "model.conv_filters")

    assert filters(None) == NATURE_FILTERS  # (40, 40, 1) as registered
    small = gymnasium.spaces.Box(0, 255, (12, 12, 3), np.uint8)
    assert filters({"space": small}) == SMALL_IMAGE_FILTERS
    frames = gymnasium.spaces.Box(0, 255, (4, 40, 40), np.uint8)  # read as (40, 40, 4)
    assert filters({"space": frames}) == NATURE_FILTERS


@pytest.mark.parametrize(
    ("shape", "nature"),
    [
        ((84, 84, 4), True),
        ((4, 84, 84), True),
        ((42, 42, 4), True),
        ((96, 96, 3), True),
        ((64, 64, 3), True),
        ((36, 50, 1), True),
        ((10, 10, 2), False),
        ((7, 7, 3), False),
    ],
)
def test_every_image_size_gets_lrtunes_filters_not_rllibs_legacy_ones(
    shape: tuple[int, ...], nature: bool
) -> None:
    """RLlib's defaults for 10, 42, 64, 84 and 96 pixels were written for the old API stack's
    unpadded last layer; its new-stack CNN pads every layer, so 84x84's [256, 11, 1] kept
    11x11 outputs (about 120M multiply-adds per frame). lrtune's stacks serve every size."""
    from lrtune.learners import default_conv_filters
    from lrtune.learners._config import NATURE_FILTERS, SMALL_IMAGE_FILTERS

    assert default_conv_filters(shape) == (NATURE_FILTERS if nature else SMALL_IMAGE_FILTERS)
