"""Agent presets: hyper-parameters around the LR policy that make the agent train well.

A search over learning-rate policies is only as good as the agent around it: with RLlib's own
PPO defaults (30 epochs, λ 1.0, a value loss clipped at 10 on a value head that shares the
policy's layers), LR-only searches on classic control can fail outright. The presets are
applied under every job's ``hyperparams`` (a job, or a space's ``hyperparams``, overrides any
of them) and come in three layers, later ones winning:

1. the agent's defaults (``PPO_DEFAULTS``, ``DQN_DEFAULTS``, ``SAC_DEFAULTS``), for every
   environment;
2. the action-space family: environments with a continuous (``gymnasium.spaces.Box``) action
   space get ``PPO_CONTINUOUS`` (observation normalisation, as rl-zoo3 normalises its
   continuous-control tasks). The family is read from ``gymnasium.make(env).action_space``
   (cached); an id gymnasium cannot build (say, a Tune-registered name) gets layer 1 only;
3. per-environment entries (``PPO_BY_ENV``, ``DQN_BY_ENV``), looked up by the gymnasium id
   without its module prefix (``lrtune.envs:lrtune/RecSys-v0`` -> ``lrtune/RecSys-v0``).

Sources, cited next to each value: rl-zoo3's ``hyperparams/ppo.yml`` and ``dqn.yml`` (tuned
for CartPole-v1, Acrobot-v1, Pendulum-v1), CleanRL's ``ppo.py`` / ``dqn.py`` defaults,
RLlib's tuned examples (``rllib/tuned_examples/ppo/cartpole_ppo.py``, ``.../dqn/cartpole_dqn.py``)
and measurements on this project's 2-CPU machine (RLlib 2.60 new API stack, torch CPU, one CPU
per trial, sampling in the trial's process): ``benchmarks/presets.py`` reruns them on any task
and its docstring lists what was measured.

What the PPO values rest on (``benchmarks/presets.py``, one seed each, Acrobot-v1 50k env
steps at lr 3e-4 with the agent defaults alone; its docstring has the table):

* The network, not the hyper-parameters, was what kept RLlib's PPO from learning: the value
  function needs its own hidden layers (``model.vf_share_layers: false``, as SB3, CleanRL and
  RLlib's PPO with a plain dict model config; RLlib's ``DefaultModelConfig`` shares them) and
  the layers need SB3/CleanRL's orthogonal initialisation (policy output gain 0.01; see
  ``lrtune.learners._modules``). Separate + orthogonal: −95 (seed 1: −97); shared +
  orthogonal: −500; separate + torch's initialisation: −500; shared + torch's (the old
  presets): −500. Both are model settings (``ModelSettings``), defaulted there.
* With separate networks and Adam the value-loss weight hardly matters (Adam rescales each
  parameter's gradient; 0.01 vs 0.5: −95/−105, and −164/−164 at batch 4096), so it is SB3's
  0.5, which keeps the critic learning under the non-adaptive optimizers (SGD) a search may
  pick. RLlib's ``vf_clip_param`` clamps the *squared* value error per sample, so its default
  10 stops the value head learning returns above ~3 (CartPole-v1 stayed ≤ 270 at 100k steps
  with it, reached 500 without it): it is effectively off, as SB3's ``clip_range_vf=None``.
* Observation normalisation (RLlib's ``MeanStdFilter``) cost learning on Acrobot-v1 (−500
  with it at vf 0.01 and 0.5, −95/−105 without), so the discrete defaults leave it off;
  continuous-action tasks keep it (rl-zoo3 normalises them).
* RLlib's PPO adds an adaptive KL penalty (``kl_coeff`` 0.2). rl-zoo3 and CleanRL use none,
  and lrtune's ``kl_adaptive`` feedback rule already steers on the KL, so ``kl_coeff`` is 0.0
  while ``use_kl_loss`` stays on: the learner still measures and reports the KL.
* Reward scale matters on Pendulum-v1 (rewards × 0.1 through a gymnasium wrapper: −175 raw
  at 100k env steps with the defaults and γ 0.99, against −800). So continuous-action PPO
  scales its rewards as SB3's ``VecNormalize`` does (``model.normalize_rewards``,
  ``lrtune.learners._rewards``; its statistics are in lrtune's learner checkpoint, which
  RLlib's leaves out). Measured with the defaults alone (γ 0.99; lr 1e-3, 100k env steps),
  final return without → with: seed 0 −800 → −672, seed 1 −958 → −213 (best −168); with the
  Pendulum-v1 entry (γ 0.9), seed 0: −178 without, −186 with.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

from lrtune._env_ids import env_name
from lrtune.agents import AgentPresets, get_agent
from lrtune.learners._config import ModelSettings
from lrtune.learners._modules import mean_std_filter
from lrtune.learners._replay import TRANSITION_REPLAY_TYPE

# ------------------------------------------------------------------------------------- PPO

PPO_DEFAULTS: dict[str, Any] = {
    # 16 envs vectorised in the trial's process: rl-zoo3 Acrobot-v1 (n_envs 16); measured here
    # ~4-6k env steps/s with one CPU on CartPole-v1.
    "num_envs_per_env_runner": 16,
    # 16 envs x 128 steps. rl-zoo3 CartPole-v1 uses 8 x 32 = 256 and 20 epochs; larger batches
    # cost fewer RLlib iterations (each one a Tune result and checkpoint). Acrobot-v1: 2048 x
    # 10 epochs -95 at 50k env steps against -164 with rl-zoo3's 4096 x 4 epochs, lambda 0.94.
    "train_batch_size_per_learner": 2048,
    "minibatch_size": 256,  # rl-zoo3 CartPole-v1 batch_size 256
    "num_epochs": 10,  # SB3/rl-zoo3 default n_epochs 10 (RLlib's default 30 overfits a batch)
    "lambda_": 0.95,  # SB3 default gae_lambda, CleanRL gae_lambda (RLlib's default is 1.0)
    # SB3/CleanRL default. CartPole-v1 at lr 3e-4, 50k env steps: 374 with 0.99 / lambda
    # 0.95, 273 with rl-zoo3's tuned 0.98 / 0.8 (which the old shared-layer presets needed).
    "gamma": 0.99,
    "entropy_coeff": 0.0,  # rl-zoo3 classic control ent_coef 0.0
    "clip_param": 0.2,  # SB3 clip_range / CleanRL clip_coef (RLlib's default 0.3)
    "vf_loss_coeff": 0.5,  # SB3 vf_coef / CleanRL vf_coef (separate value network; see above)
    "vf_clip_param": 1.0e4,  # effectively off, as SB3's clip_range_vf=None (see above)
    "use_kl_loss": True,  # keep measuring the KL (lrtune reports it; kl_adaptive reads it)...
    "kl_coeff": 0.0,  # ...without RLlib's KL penalty (rl-zoo3, CleanRL)
}

PPO_CONTINUOUS: dict[str, Any] = {
    # rl-zoo3 runs its continuous-control tasks with `normalize: true` (VecNormalize); RLlib's
    # tuned Pendulum PPO uses the same MeanStdFilter connector. Pendulum-v1 with the defaults
    # at lr 1e-3, 100k env steps: -1080 with it, -1081 without (neither learns; kept as
    # rl-zoo3 does, not because it was measured to help).
    "env_to_module_connector": mean_std_filter,
    # SB3's default batch_size 64 and CleanRL's continuous-action ppo (2048 / 32 minibatches):
    # 320 updates per 2048 env steps. Pendulum-v1 with the defaults (lr 1e-3, 100k env steps):
    # -800 against -1080 with 256, at ~1/4 of the env steps/s.
    "minibatch_size": 64,
}

# The recommender registers a native vector env (`lrtune.envs.BatchedRecSysEnv`): RLlib steps
# all envs in one call (`gym_env_vectorize_mode`), and `build_algorithm_config` gives it lrtune's
# batched module-to-env pipeline. benchmarks/recsys_train.py (PPO in training, one CPU, load
# 0.4-2, 2026-12-02): 7,342-8,095 env steps/s with this entry against 2,848 with the agent
# defaults in "sync"; quiet, 2026-12-04: 10,265-11,184 against 3,466. The minibatch, not the
# env, held the defaults back: the vector env at
# minibatch 256 ran 2,906 (64 envs) and 3,156 (256 envs).
_RECSYS_PPO: dict[str, Any] = {
    "gym_env_vectorize_mode": "vector_entry_point",
    # 64 envs (x 64 steps, minibatch / 8): 4,089 env steps/s; 1024 x 16 steps (the same batch):
    # 7,333; 1024 x 64: 8,411, but 65k env steps per iteration (one Tune result each).
    "num_envs_per_env_runner": 256,
    # 256 envs x 64 steps (2-3 sessions per env and iteration).
    "train_batch_size_per_learner": 16_384,
    # 8 minibatches x 10 epochs = 80 updates per iteration, as the defaults' 2048 / 256, so 8x
    # fewer updates per env step (epochs, clip, lambda unchanged). Learning, same wall time
    # (43 s): 13.39 clicks/session after 264k env steps against 13.29 after 82k with the
    # defaults; per env step it is slower (11.3 at 66k against 12.8).
    "minibatch_size": 2_048,
}

PPO_BY_ENV: dict[str, dict[str, Any]] = {
    # rl-zoo3 "Tuned" Pendulum-v1: n_envs 4 x n_steps 1024 = 4096, gamma 0.9, gae_lambda
    # 0.95, n_epochs 10, lr 1e-3 (and gSDE, which RLlib lacks); minibatch 64 and observation
    # normalisation come from layer 2. Measured here at lr 1e-3, 100k env steps: -178 (best
    # -171), against -800 with the defaults and layer 2 alone (gamma 0.99, batch 2048).
    "Pendulum-v1": {"train_batch_size_per_learner": 4096, "gamma": 0.9},
    "lrtune/RecSys-v0": _RECSYS_PPO,
    "lrtune/RecSysHard-v0": _RECSYS_PPO,
}

# ------------------------------------------------------------------------------------- DQN

DQN_DEFAULTS: dict[str, Any] = {
    # Cost model. With RLlib's EpisodeReplayBuffer (cProfile, CartPole-v1, RLlib 2.60, one
    # CPU) the CPU went to replayed items: ~0.25 ms each in the buffer's sample (one
    # SingleAgentEpisode slice per item) plus ~0.1 ms in the learner connector, a fixed ~5 ms
    # per update, ~0.5-0.8 ms per sampled env step, so the replay ratio set throughput.
    # lrtune's TransitionReplayBuffer (learners/_replay.py) makes an item nearly free: the
    # same 3,069 env steps and 352 updates profiled 2.9 s against 10.8 s, half of it RLlib's
    # env runner and half the updates (~3.5 ms each, gradient step included).
    # 8 envs x 4 steps = 32 env steps per training step: the per-call cost of sampling and of
    # a training step spreads over twice the steps of 4 envs (not measured apart from the
    # other changes below). rl-zoo3 dqn.yml uses 1 env.
    "num_envs_per_env_runner": 8,
    "rollout_fragment_length": 4,  # >= n_step (RLlib requires it)
    "train_batch_size_per_learner": 64,  # rl-zoo3 CartPole-v1 batch_size 64
    # Replayed / sampled env steps 32 -> 16 updates of 64 per 32 env steps (one per 2 env
    # steps): rl-zoo3's CartPole-v1 value (MountainCar-v0 64, Acrobot-v1 128; CleanRL 12.8;
    # Nature DQN 8). It was 8 while RLlib's episode buffer cost ~0.35 ms per replayed item;
    # with TransitionReplayBuffer an item costs ~0.05 ms. Measured 2026-12-05, these presets
    # otherwise, 50k env steps, final training return (benchmarks/presets.py docstring):
    # CartPole-v1 (lr 2e-3) 302 at 8 (6 seeds), 382 at 16, 467 at 32 (3 seeds each);
    # Acrobot-v1 (lr 1e-3) -139 at 8 (4 seeds), -122 at 16, -101 at 32 (3 seeds each);
    # ~500 env steps/s at 32 against ~1,050 at 8 (two runs at a time on 2 cores).
    "training_intensity": 32,
    "double_q": True,  # Double DQN (van Hasselt et al.; RLlib's tuned cartpole_dqn.py)
    "dueling": True,  # dueling heads (Wang et al.; RLlib's tuned cartpole_dqn.py)
    "n_step": 3,  # n-step returns (Rainbow's 3; RLlib's tuned cartpole_dqn.py samples 2..5)
    # Hard target update every 300 env steps: RLlib checks it once per 32-env-step round, so
    # every 320 env steps, 160 updates (rl-zoo3 syncs CartPole-v1 after every 128-update
    # burst, Acrobot-v1 every 250 updates, MountainCar-v0 every 300).
    # It was 1000 until 2026-12-07: these presets at lr 1e-3, paired seeds, greedy return at
    # the end (benchmarks/dqn_target_period.py docstring), periods 1000 / 300 / 100 env steps:
    # Acrobot-v1 (50k, 12 seeds) at the target (>= -100) on 6 / 10 / 11, every miss at 1000
    # -500; CartPole-v1 (50k, 12 seeds) at 475 or more on 8 / 12 / 7; MountainCar-v0 (120k,
    # 8 seeds) at -120 or better on 3 / 2 / 2 (means -147.7 / -167.1 / -159.4, not told apart).
    "target_network_update_freq": 300,
    # Uniform replay as rl-zoo3 and CleanRL, over lrtune's flat arrays (learners/_replay.py:
    # RLlib's EpisodeReplayBuffer slices an episode per replayed transition); capacity between
    # CleanRL's 10k and rl-zoo3's 100k.
    "replay_buffer_config": {"type": TRANSITION_REPLAY_TYPE, "capacity": 50_000},
    # Epsilon 1.0 -> 0.02 over the first 10k env steps (RLlib's tuned cartpole_dqn.py;
    # rl-zoo3: 8k steps to 0.04 on CartPole-v1, 12k to 0.1 on Acrobot-v1). The training
    # return is measured with this epsilon: at 0.05 a run whose greedy return was 500 at 30k
    # showed a training return of 124-220 from 10k to 30k on CartPole-v1.
    "epsilon": [(0, 1.0), (10_000, 0.02)],
    # Must not exceed one iteration's samples (DQN's min_sample_timesteps_per_iteration,
    # 1000): later starts leave the first iterations without an update.
    "num_steps_sampled_before_learning_starts": 1_000,
    "gamma": 0.99,
}

# Native vector env (see _RECSYS_PPO); the defaults' 8 envs, rollout, batch and replay ratio.
# DQN's time goes to replayed items, not env steps (see DQN_DEFAULTS), so it gains nothing
# measurable: benchmarks/recsys_train.py, one CPU, 2026-12-02: 221-344 env steps/s in "sync",
# 223-303 with the vector env (8 or 64 envs), within the run-to-run noise.
_RECSYS_DQN: dict[str, Any] = {"gym_env_vectorize_mode": "vector_entry_point"}

DQN_BY_ENV: dict[str, dict[str, Any]] = {
    "lrtune/RecSys-v0": _RECSYS_DQN,
    "lrtune/RecSysHard-v0": _RECSYS_DQN,
}

# --------------------------------------------------------------------------------- lookup

# SAC (RLlib's, twin Q) for continuous control: RLlib's tuned example
# (rllib/tuned_examples/sac/pendulum_sac.py) with one learner in the trial's process. Measured
# with RLlib alone, seed 0, 2-core VM at load 3-4 (a CI run beside it), 2026-12-03: return
# -1146 at 1k env steps, -630 at 15k, -124 at 17k, -131 at 21k (30 env steps/s). rl-zoo3's
# Pendulum-v1 SAC (lr 1e-3, one update per env step, uniform replay) ran at 8 env steps/s here
# and was still at -1448 after 4k steps (stopped).
SAC_DEFAULTS: dict[str, Any] = {
    "gamma": 0.99,
    "initial_alpha": 1.001,  # RLlib's tuned example (SB3's ent_coef "auto" starts at 1.0)
    "target_entropy": "auto",  # -|A|, as SB3 and the SAC paper
    # n-step returns sampled per batch from 2..4 (RLlib's tuned example's (2, 5): its replay
    # buffer draws rng.integers(2, 5), which excludes 5); RLlib then samples
    # rollout fragments of 5 env steps, one update per fragment.
    "n_step": (2, 5),
    "tau": 0.005,  # Polyak averaging of the target critics every update (SB3's default)
    "target_network_update_freq": 1,
    "train_batch_size_per_learner": 256,  # SB3 / rl-zoo3 batch_size 256
    # Uniform replay from lrtune's flat buffer, as SB3's SAC (RLlib's example: prioritized,
    # alpha 1, beta 0). Pendulum-v1, lr 1e-3, 20k env steps, seeds 0-2 (benchmarks/presets.py
    # docstring): final -238, -202, -195 against RLlib's buffer's -259, -193, -198, at 1.33x
    # the env steps/s side by side.
    "replay_buffer_config": {"type": TRANSITION_REPLAY_TYPE, "capacity": 100_000},
    "num_steps_sampled_before_learning_starts": 256,
    # 1,000 env steps per training iteration: one Tune result each, not one per 5 steps.
    "min_sample_timesteps_per_iteration": 1000,
    # No wall-clock floor (RLlib's SAC default: 1 s): an iteration is its env steps, so a seeded
    # run is the same run on any machine (a fast one would add steps to fill the second).
    "min_time_s_per_iteration": 0,
    "metrics_num_episodes_for_smoothing": 5,
}

SAC_BY_ENV: dict[str, dict[str, Any]] = {}

# Reward scaling (SB3's VecNormalize norm_reward, which rl-zoo3 turns on with `normalize: true`
# for its continuous-control tasks; lrtune.learners._rewards). Measured: the module docstring.
PPO_CONTINUOUS_MODEL: dict[str, Any] = {"normalize_rewards": True}

PPO_PRESETS = AgentPresets(PPO_DEFAULTS, PPO_CONTINUOUS, PPO_BY_ENV, PPO_CONTINUOUS_MODEL)
DQN_PRESETS = AgentPresets(DQN_DEFAULTS, {}, DQN_BY_ENV)
SAC_PRESETS = AgentPresets(SAC_DEFAULTS, {}, SAC_BY_ENV)


def has_continuous_actions(env: str, env_config: Mapping[str, Any] | None = None) -> bool | None:
    """Whether ``env``'s action space, built with ``env_config`` (a job's ``env.config``: it
    can choose the kind, as LunarLander's ``continuous`` does), is a ``gymnasium.spaces.Box``
    (None: cannot tell), from the one cached build that `lrtune.learners._config.env_facts`
    makes."""
    from lrtune.learners._config import env_facts

    facts = env_facts(env, env_config)
    return facts.continuous_actions if facts is not None else None


AGENT_DEFAULT = "agent default"
CONTINUOUS_FAMILY = "continuous-action family"
MODEL_DEFAULT = "model default"


def env_entry_source(env: str) -> str:
    """The source name of ``env``'s per-environment entry."""
    return f"per-env entry ({env_name(env)})"


class PresetSetting(NamedTuple):
    """One resolved setting: its name, value and the layer it comes from."""

    key: str
    value: Any
    source: str


def resolve_presets(
    agent: str, env: str | None = None, env_config: Mapping[str, Any] | None = None
) -> list[PresetSetting]:
    """What ``agent`` runs with on ``env`` (built with ``env_config``) before a job overrides
    anything, with sources.

    First the hyper-parameters (agent default < continuous-action family < per-env entry, in
    the agent defaults' key order, then keys only later layers add), then the model settings
    (``ModelSettings``' defaults; the initializer as the agent's default,
    ``normalize_observations`` as the presets' observation filter leaves it and
    ``normalize_rewards`` as the continuous-action family's model settings say).

    Raises:
        lrtune.registry.UnknownPluginError: an agent that is not an ``agents`` entry.
    """
    presets = get_agent(agent).presets()
    defaults, continuous, by_env = presets.defaults, presets.continuous, presets.by_env
    layers: list[tuple[str, Mapping[str, Any]]] = [(AGENT_DEFAULT, defaults)]
    family_model: Mapping[str, Any] = {}
    if env is not None:
        if (continuous or presets.continuous_model) and has_continuous_actions(env, env_config):
            layers.append((CONTINUOUS_FAMILY, continuous))
            family_model = presets.continuous_model
        layers.append((env_entry_source(env), by_env.get(env_name(env), {})))
    resolved: dict[str, PresetSetting] = {}
    for source, layer in layers:
        for key, value in layer.items():
            resolved[key] = PresetSetting(key, value, source)
    rows = list(resolved.values())
    model = ModelSettings()
    connector = resolved.get("env_to_module_connector")
    for field in dataclasses.fields(ModelSettings):
        value = getattr(model, field.name)
        source = MODEL_DEFAULT
        if field.name == "initializer":
            value = model.initializer_for(agent)
        elif field.name == "hidden":
            value = model.hidden_for(agent)
        elif field.name == "activation":
            value = model.activation_for(agent)
        elif field.name == "normalize_observations":
            if connector is not None and connector.value is mean_std_filter:
                value, source = True, connector.source
            else:
                value = False
        elif field.name == "normalize_rewards":
            value = bool(family_model.get(field.name, False))
            source = CONTINUOUS_FAMILY if field.name in family_model else MODEL_DEFAULT
        elif field.name == "conv_filters" and env is not None:
            value, source = _conv_filters_row(env, env_config)
        rows.append(PresetSetting(f"model.{field.name}", value, source))
    return rows


def _conv_filters_row(env: str, env_config: Mapping[str, Any] | None) -> tuple[Any, str]:
    """``model.conv_filters`` of ``env`` built with ``env_config``: lrtune's stack for its
    image size (`default_conv_filters`), None where the observations are no image."""
    from lrtune.learners._config import default_conv_filters, observation_shape
    from lrtune.learners._modules import channels_last_shape

    shape = observation_shape(env, env_config or {})
    if shape is None or len(shape) != 3:
        return None, MODEL_DEFAULT
    shape = channels_last_shape(shape)  # as the network reads it
    return default_conv_filters(shape), f"model default ({shape[0]}x{shape[1]} images)"


def preset_model_setting(
    agent: str, env: str | None, name: str, env_config: Mapping[str, Any] | None = None
) -> Any:
    """The preset value of model setting ``name`` (a `ModelSettings` field) of ``agent`` on
    ``env`` built with ``env_config``, as `resolve_presets` lists it."""
    key = f"model.{name}"
    return next(row.value for row in resolve_presets(agent, env, env_config) if row.key == key)


def preset_hyperparams(
    agent: str, env: str | None = None, env_config: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The preset hyper-parameters of ``agent`` on ``env`` built with ``env_config`` (a fresh
    copy; jobs override any).

    Layers, later ones winning: the agent's defaults, the continuous-action family (when
    ``env``'s action space is a Box), the entry of ``env``'s id (see `resolve_presets`)."""
    rows = resolve_presets(agent, env, env_config)
    # Deep copy the plain data (the connector function is shared, as functions are).
    return {
        row.key: row.value if callable(row.value) else copy.deepcopy(row.value)
        for row in rows
        if not row.key.startswith("model.")
    }


def over_presets(
    agent: str,
    env: str | None,
    env_config: Mapping[str, Any] | None,
    *layers: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The preset hyper-parameters of ``agent`` on ``env`` with ``layers`` over them, later
    layers winning. A setting whose value is a mapping in both (``replay_buffer_config``) is
    updated key by key, as RLlib updates its own defaults with a config's: a job's
    ``replay_buffer_config: {capacity: 10000}`` keeps the presets' buffer type, where a
    plain replacement would leave RLlib to fill the type in with its prioritized default. A
    mapping that names another ``type`` replaces the one below it whole, as RLlib's does (the
    settings of one buffer type mean nothing to another)."""
    merged = preset_hyperparams(agent, env, env_config)
    for layer in layers:
        for key, value in (layer or {}).items():
            base = merged.get(key)
            if (
                isinstance(value, Mapping)
                and isinstance(base, Mapping)
                and value.get("type", base.get("type")) == base.get("type")
            ):
                merged[key] = {**base, **value}
            else:
                merged[key] = value
    return merged
