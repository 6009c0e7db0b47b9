"""One function from (agent, env, LR policy, hyper-parameters, resources) to an RLlib config."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from lrtune._env_ids import register_lrtune_envs
from lrtune.agents import AgentPlugin, action_kind, get_agent, unbounded_part
from lrtune.learners._callbacks import LRTuneCallbacks
from lrtune.learners._env_runner import LRTuneEnvRunner
from lrtune.learners._learner import CONFIG_KEY
from lrtune.learners._modules import (
    EXPLORATION_KEY,
    ObservationConnectors,
    channels_last_shape,
    mean_std_filter,
)
from lrtune.learners._replay import check_flat_replay
from lrtune.learners._vector import (
    VECTOR_ENTRY_POINT,
    ActionsIntoBounds,
    batched_module_to_env,
    discrete_actions,
    vector_entry_point,
)
from lrtune.policies import LRPolicySpec, PolicyError
from lrtune.registry import LRTuneError

# Where a hyper-parameter goes, in the order tried.
SECTIONS = (
    "training",
    "env_runners",
    "rl_module",
    "evaluation",
    "reporting",
    "debugging",
    "fault_tolerance",
)


@dataclass(frozen=True)
class TrialResources:
    """Resources one trial holds: CPUs (torch threads follow them) and a GPU share."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus <= 0:
            raise ValueError(f"resources.cpus must be > 0 (got {self.cpus})")
        if not 0 <= self.gpus <= 8:
            raise ValueError(
                f"resources.gpus must be in [0, 8], fractions allowed (got {self.gpus})"
            )


INITIALIZERS = ("orthogonal", "torch")

#: ``model.exploration`` kinds (PPO, a 1-D Box of actions; `lrtune.learners._modules`):
#: ``gaussian``, one learned log-std per action dimension whatever the state (SB3's PPO
#: default, RLlib's ``free_log_std``); ``gsde``, generalized state-dependent exploration
#: (Raffin et al. 2021; SB3's ``use_sde``).
EXPLORATIONS = ("gaussian", "gsde")
#: ``model.log_std_init`` where an exploration kind is set and the setting is left out (SB3's
#: ``log_std_init`` default).
DEFAULT_LOG_STD_INIT = 0.0
#: ``model.sde_sample_freq`` where ``gsde`` is set and the setting is left out: new noise
#: only at the start of each ``sample()`` call (SB3's ``sde_sample_freq=-1``).
DEFAULT_SDE_SAMPLE_FREQ = -1
#: The bounds of ``model.log_std_init``: RLlib's policy heads clamp a log-std to ±20.
LOG_STD_INIT_BOUNDS = (-20.0, 20.0)

#: A convolution stack: ``(out_channels, kernel, stride)`` per layer, RLlib's ``conv_filters``
#: format (its CNN pads "same", so any stack fits any image size).
ConvFilters = tuple[tuple[int, int, int], ...]

#: Images of at least 36 pixels a side: the Nature DQN stack (Mnih et al. 2015; SB3's
#: NatureCNN), padded "same" as RLlib's new-stack CNN pads every layer.
NATURE_FILTERS: ConvFilters = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
#: Smaller images (grids such as MinAtar's 10x10 or MiniGrid's 7x7): 3x3 kernels, the first at
#: stride 1 so that no cell is skipped (MinAtar's network is one 16-channel 3x3 stride-1
#: layer), then two stride-2 layers to keep the dense layers small.
SMALL_IMAGE_FILTERS: ConvFilters = ((16, 3, 1), (32, 3, 2), (64, 3, 2))


def default_conv_filters(shape: tuple[int, ...]) -> ConvFilters | None:
    """lrtune's stack for an image observation of ``shape`` (height, width, channels; a
    channels-first shape is read as the network gets it, `channels_last_shape`), None where
    the observation is no image.

    Every size gets lrtune's stacks, also those RLlib has defaults for (its
    `get_filter_config`: 10, 42, 64, 84 and 96 pixels square). Those were written for the old
    API stack, whose last conv layer was unpadded: 84x84's ``[256, 11, 1]`` reduced 11x11 to
    1x1. RLlib's new-stack CNN pads every layer "same", so that layer keeps 11x11: 256 x 121
    outputs of 11 x 11 x 32 products each (about 120M multiply-adds per frame, against about
    12M for the whole Nature stack) and 30,976 features into the first dense layer.
    """
    if len(shape) != 3:
        return None
    height, width, _ = channels_last_shape(shape)  # what the network reads
    return NATURE_FILTERS if min(height, width) >= 36 else SMALL_IMAGE_FILTERS


@dataclass(frozen=True)
class EnvFacts:
    """What lrtune reads from one build of an env: its observations' shape (a Box's; None for
    other spaces), its time limit (gymnasium's ``max_episode_steps``; None when it has none),
    whether its actions are a Box (the presets' continuous-action family), whether a Box
    in its actions has an infinite bound (`lrtune.agents.unbounded_part`), whether they
    are one ``Discrete`` (the batched module-to-env pipeline) and whether they are one 1-D
    Box of floats (what ``model.exploration`` needs)."""

    observation_shape: tuple[int, ...] | None
    max_episode_steps: int | None
    continuous_actions: bool
    unbounded_actions: bool = False
    discrete_actions: bool = False
    vector_box_actions: bool = False


# (env id, its kwargs as JSON) -> its facts; None where it cannot be built here.
_ENV_FACTS: dict[tuple[str, str], EnvFacts | None] = {}


def _facts_key(env: str, env_config: Mapping[str, Any] | None) -> tuple[str, str]:
    return (env, json.dumps(dict(env_config or {}), sort_keys=True, default=repr))


def remember_env_facts(env: str, env_config: Mapping[str, Any] | None, made: Any) -> None:
    """Keep the `EnvFacts` of ``made``, an env just built from ``env`` and ``env_config``, so
    `env_facts` does not build it again (the run-start check builds it anyway)."""
    import gymnasium

    space, actions = made.observation_space, made.action_space
    box = isinstance(space, gymnasium.spaces.Box)
    _ENV_FACTS[_facts_key(env, env_config)] = EnvFacts(
        tuple(space.shape or ()) if box else None,
        made.spec.max_episode_steps if made.spec is not None else None,
        isinstance(actions, gymnasium.spaces.Box),
        unbounded_part(actions) is not None,
        isinstance(actions, gymnasium.spaces.Discrete),
        action_kind(actions) == "continuous",
    )


def known_env_facts() -> dict[tuple[str, str], EnvFacts]:
    """The `EnvFacts` this process has read, for the trials' processes (`adopt_env_facts`):
    each trial would otherwise build its env once more just to read them."""
    return {key: facts for key, facts in _ENV_FACTS.items() if facts is not None}


def adopt_env_facts(known: Mapping[tuple[str, str], EnvFacts] | None) -> None:
    """Take the driver's `known_env_facts` (a trial's setup); facts read here stay."""
    for key, facts in (known or {}).items():
        _ENV_FACTS.setdefault(key, facts)


def env_facts(env: str, env_config: Mapping[str, Any] | None) -> EnvFacts | None:
    """`EnvFacts` of ``env`` built with ``env_config`` (built once per id and kwargs, and not
    at all where the run-start check or the driver already read them), None where it cannot
    be built here (an id only RLlib/Tune knows; the trial reports what fails). ``lrtune/...``
    ids import `lrtune.envs`, which registers them."""
    import gymnasium

    key = _facts_key(env, env_config)
    if key not in _ENV_FACTS:
        register_lrtune_envs(env)
        try:
            made = gymnasium.make(env, **dict(env_config or {}))
        except Exception:
            _ENV_FACTS[key] = None
        else:
            try:
                remember_env_facts(env, env_config, made)
            finally:
                made.close()
    return _ENV_FACTS[key]


def observation_shape(env: str, env_config: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The shape of ``env``'s observations when they are a Box, else None."""
    facts = env_facts(env, env_config)
    return facts.observation_shape if facts is not None else None


def image_conv_filters(env: str, env_config: Mapping[str, Any] | None) -> ConvFilters | None:
    """`default_conv_filters` of ``env``'s observations (None: not an image, or RLlib has a
    default for its size)."""
    shape = observation_shape(env, env_config or {})
    return default_conv_filters(shape) if shape is not None else None


def exploration_problem(
    kind: str | None, log_std_init: float | None, sde_sample_freq: int | None
) -> tuple[str, str] | None:
    """(field, what is wrong) with the exploration settings of a model, on their own (the
    agent and the env are checked in `build_algorithm_config`); None where they fit."""
    if kind is not None and kind not in EXPLORATIONS:
        return "exploration", f"must be one of {list(EXPLORATIONS)} (got {kind!r})"
    if log_std_init is not None:
        low, high = LOG_STD_INIT_BOUNDS
        if kind is None:
            return "log_std_init", "needs model.exploration (gaussian or gsde); leave it out"
        if not low <= log_std_init <= high:
            return "log_std_init", f"must be in [{low:g}, {high:g}] (got {log_std_init!r})"
    if sde_sample_freq is not None:
        if kind != "gsde":
            return "sde_sample_freq", "needs model.exploration: gsde; leave it out"
        if sde_sample_freq == 0 or sde_sample_freq < -1:
            return "sde_sample_freq", (
                f"must be -1 (new noise at each sample() only) or a positive number of env "
                f"steps (got {sde_sample_freq!r})"
            )
    return None


@dataclass(frozen=True)
class ModelSettings:
    """The network around the LR policy: RLlib's default MLP and what feeds it.

    Attributes:
        hidden: hidden layer sizes. None: the agent's default (``DEFAULT_HIDDEN``: PPO 64, 64
            as SB3 / CleanRL classic control; DQN 256, 256 as rl-zoo3's tuned classic-control
            DQNs).
        activation: hidden activation (RLlib's names: tanh, relu, swish, elu, linear). None:
            the agent's default (``DEFAULT_ACTIVATION``: PPO tanh as SB3's ActorCriticPolicy,
            DQN relu as SB3's QNetwork).
        vf_share_layers: PPO: whether the value head shares the policy's hidden layers
            (RLlib's ``DefaultModelConfig`` default) or has its own (SB3, CleanRL, RLlib's
            PPO with a plain dict model config). DQN has no value network; ignored there.
        initializer: ``"orthogonal"`` (SB3 / CleanRL PPO: orthogonal weights, zero biases,
            gains √2 hidden, 0.01 policy output, 1 value output; PPO only) or ``"torch"``
            (torch's default, as RLlib, SB3's and CleanRL's DQN). None: the agent's default
            (``DEFAULT_INITIALIZER``).
        normalize_observations: normalise observations with a running mean and std (RLlib's
            ``MeanStdFilter`` connector, part of the checkpointed env-runner state). None:
            as the agent presets say (``env_to_module_connector`` in
            ``lrtune.learners._presets``); True / False override them.
        normalize_rewards: PPO: divide the rewards the learner sees by the running std of
            the discounted return (SB3's ``VecNormalize`` reward scaling; see
            ``lrtune.learners._rewards``); episode returns and scores stay in the task's
            units. None: as the agent presets say (PPO's continuous-action family: on);
            True / False override them.
        conv_filters: the convolution stack for image observations (a 3-D Box), as
            ``(out_channels, kernel, stride)`` per layer. None: `default_conv_filters`' for
            the image's size (RLlib alone stops with "No default CNN configuration" on most
            sizes, and its defaults for the others are costly on its new stack).
        exploration: PPO on a 1-D Box of actions: how the policy explores. None: RLlib's
            default (the policy head outputs a mean and a log-std for each state);
            ``"gaussian"``: one learned log-std per action dimension, whatever the state
            (SB3's PPO; RLlib's ``free_log_std``); ``"gsde"``: generalized state-dependent
            exploration (SB3's ``use_sde``; `lrtune.learners._modules.GSDE_EPSILON`).
        log_std_init: the initial log-std of ``exploration`` (gsde: every entry of its
            latent x action log-std matrix). None: ``DEFAULT_LOG_STD_INIT`` (SB3's 0.0).
        sde_sample_freq: gsde: draw new exploration noise every this many vector env steps
            as well; -1 (None: the default): only at the start of each ``sample()`` call of
            the env runner, as SB3 resets it at each rollout's start.
    """

    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    vf_share_layers: bool = False
    initializer: str | None = None
    normalize_observations: bool | None = None
    normalize_rewards: bool | None = None
    conv_filters: ConvFilters | None = None
    exploration: str | None = None
    log_std_init: float | None = None
    sde_sample_freq: int | None = None

    def __post_init__(self) -> None:
        if self.initializer is not None and self.initializer not in INITIALIZERS:
            raise ValueError(
                f"model.initializer must be one of {list(INITIALIZERS)} (got {self.initializer!r})"
            )
        problem = exploration_problem(self.exploration, self.log_std_init, self.sde_sample_freq)
        if problem is not None:
            raise ValueError(f"model.{problem[0]}: {problem[1]}")

    def exploration_settings(self) -> dict[str, Any] | None:
        """What lrtune's PPO module reads (`lrtune.learners._modules.EXPLORATION_KEY`): the
        kind, its initial log-std and (gsde) its resampling frequency, defaults filled in;
        None where ``exploration`` is not set."""
        if self.exploration is None:
            return None
        log_std_init = DEFAULT_LOG_STD_INIT if self.log_std_init is None else self.log_std_init
        freq = DEFAULT_SDE_SAMPLE_FREQ if self.sde_sample_freq is None else self.sde_sample_freq
        return {
            "kind": self.exploration,
            "log_std_init": float(log_std_init),
            "sde_sample_freq": int(freq),
        }

    def initializer_for(self, agent: str) -> str:
        """The initializer ``agent`` gets: the setting, else the agent's default."""
        return self.initializer or get_agent(agent).default_initializer

    def hidden_for(self, agent: str) -> tuple[int, ...]:
        """The hidden sizes ``agent`` gets: the setting, else the agent's default."""
        return tuple(self.hidden) if self.hidden is not None else get_agent(agent).hidden

    def activation_for(self, agent: str) -> str:
        """The activation ``agent`` gets: the setting, else the agent's default."""
        return self.activation or get_agent(agent).activation


def build_algorithm_config(
    agent: str,
    env: str,
    *,
    policy: LRPolicySpec | Mapping[str, Any],
    env_config: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    resources: TrialResources | None = None,
    model: ModelSettings | None = None,
    budget: int | None = None,
    seed: int | None = None,
) -> AlgorithmConfig:
    """Build the RLlib `AlgorithmConfig` of one trial, with lrtune's learner owning the LR.

    Args:
        agent: an ``agents`` entry (``"ppo"``, ``"dqn"``, ``"sac"``).
        env: a gymnasium id (``CartPole-v1``, ``mypkg.envs:MyEnv-v0``) or a Tune-registered name.
        policy: the LR policy (spec or its dict form).
        env_config: keyword arguments of the environment.
        hyperparams: other RLlib settings by name (``gamma``, ``train_batch_size_per_learner``,
            ``num_envs_per_env_runner``...), routed to the config section that takes them.
        resources: CPUs and GPU share of the trial.
        model: the network (sizes, activation, value layers, initialisation) and
            observation normalisation; see `ModelSettings`.
        budget: the trial's env-step budget (horizon of schedules that do not set one).
        seed: the trial's seed.

    Raises:
        PolicyError: an unknown agent, a policy entry that does not support the agent, or a
            hyper-parameter that lrtune owns or RLlib does not know.
    """
    try:
        plugin: AgentPlugin = get_agent(agent)
    except LRTuneError as exc:
        raise PolicyError(f"agent: {exc}") from None
    spec = policy if isinstance(policy, LRPolicySpec) else LRPolicySpec.model_validate(policy)
    spec.check_agent(agent)
    resources = resources or TrialResources()
    model = model or ModelSettings()
    initializer = model.initializer_for(agent)
    if initializer not in plugin.initializers or (
        model.vf_share_layers and not plugin.separate_value_network
    ):
        raise PolicyError(
            f"model: {agent} supports initializer {', '.join(plugin.initializers)}"
            + ("" if plugin.separate_value_network else " and has no value network to share")
            + "; leave these settings out for the agent's defaults."
        )
    normalize_rewards = model.normalize_rewards
    if normalize_rewards is None:
        from lrtune.learners._presets import preset_model_setting

        normalize_rewards = bool(preset_model_setting(agent, env, "normalize_rewards", env_config))
    if normalize_rewards and not plugin.scales_rewards:
        raise PolicyError(
            f"model.normalize_rewards: {agent} cannot scale rewards (only PPO can); leave it "
            "out or set it to false."
        )
    roles = {role: spec.for_role(role).model_dump(mode="json") for role in plugin.roles}
    facts = env_facts(env, env_config)
    exploration = model.exploration_settings()
    if exploration is not None:
        _check_exploration(plugin, agent, env, exploration["kind"], facts)
    default_model = DefaultModelConfig(
        fcnet_hiddens=list(model.hidden_for(agent)),
        fcnet_activation=model.activation_for(agent),
        vf_share_layers=model.vf_share_layers,
        conv_filters=_conv_filters(model, env, env_config),
        # Both kinds build RLlib's head of a mean per action dim and a free log-std (gsde
        # replaces the latter with its matrix).
        free_log_std=exploration is not None,
    )
    model_config: DefaultModelConfig | dict[str, Any] = default_model
    if exploration is not None:  # RLlib passes a dict model config's keys on to the module
        model_config = {**dataclasses.asdict(default_model), EXPLORATION_KEY: exploration}

    config = (
        plugin.config_class()()
        .framework("torch")
        .environment(env, env_config=dict(env_config or {}))
        .env_runners(num_env_runners=0)
        .learners(
            num_learners=0,
            num_cpus_per_learner=resources.cpus,
            num_gpus_per_learner=resources.gpus,
            learner_class=plugin.learner_class(),
            learner_config_dict={
                CONFIG_KEY: {
                    "policy": spec.model_dump(mode="json"),
                    "roles": roles,
                    "optimizer_roles": plugin.optimizer_roles(),
                    "budget": budget,
                    "num_threads": max(1, int(resources.cpus)),
                    "normalize_rewards": normalize_rewards,
                }
            },
        )
        .resources(num_cpus_for_main_process=resources.cpus)  # type: ignore[arg-type]
        .training(**_rates(plugin, spec), grad_clip=None)
        .rl_module(model_config=model_config)
        .callbacks(LRTuneCallbacks)
    )
    config = plugin.configure(config, initializer=initializer)
    if seed is not None:
        config = config.debugging(seed=seed)
    owned = plugin.owned()
    filtered = _with_observation_filter(
        hyperparams or {}, model, module_casts=plugin.module_casts_observations
    )
    for key, value in filtered.items():
        _set_hyperparam(config, key, value, owned)
    native = _use_native_vector_env(config, env)
    _batch_module_outputs(
        config,
        facts.discrete_actions if facts is not None else native and discrete_actions(env),
        hyperparams or {},
    )
    _batch_observations(config, filtered["env_to_module_connector"], hyperparams or {})
    _check_flat_replay(config)
    if not config.is_multi_agent and "env_runner_cls" not in (hyperparams or {}):
        config.env_runners(env_runner_cls=LRTuneEnvRunner)  # RLlib's, leaner per step
    if facts is not None and facts.unbounded_actions and not plugin.squashes_actions:
        _actions_into_bounds(config, hyperparams or {})
    return config


def _check_exploration(
    plugin: AgentPlugin, agent: str, env: str, kind: str, facts: EnvFacts | None
) -> None:
    """Refuse ``model.exploration`` for an agent without it or an env whose actions are not
    one 1-D Box of floats (`PolicyError`: exit 2 where a run starts). An env that cannot be
    built here (``facts`` None) is left to the module, which stops on such a space."""
    if kind not in plugin.explorations:
        raise PolicyError(
            f"model.exploration: {agent} has no exploration setting ({kind} is PPO's, for "
            f"continuous actions); leave model.exploration, log_std_init and sde_sample_freq "
            f"out for {agent}."
        )
    if facts is not None and not facts.vector_box_actions:
        raise PolicyError(
            f"model.exploration: {kind} needs continuous actions (one 1-D Box of floats), "
            f"and env {env!r} has other actions; leave model.exploration, log_std_init and "
            "sde_sample_freq out for this env, or choose an env with continuous actions."
        )


def _actions_into_bounds(config: AlgorithmConfig, hyperparams: Mapping[str, Any]) -> None:
    """RLlib maps [-1, 1] onto a Box's bounds only where both are finite, and then skips the
    clip too: a Box(0, inf) got negative actions. Clip such a Box to its bounds (acting in the
    env's units, as Stable-Baselines3's PPO does) and rescale the bounded Boxes beside it
    (`ActionsIntoBounds`); squashing agents are refused such spaces. A job that builds its own
    module-to-env pipeline gets RLlib's clip alone (its bounded Boxes are not rescaled)."""
    if any(key in hyperparams for key in _OWN_PIPELINE):
        config.environment(normalize_actions=False, clip_actions=True)
        return
    config.environment(normalize_actions=False, clip_actions=False)  # RLlib's piece: a no-op
    config.env_runners(module_to_env_connector=_actions_into_bounds_pipeline)


def _actions_into_bounds_pipeline(env: Any = None, spaces: Any = None) -> list[Any]:
    """``module_to_env_connector`` for `_actions_into_bounds` (a module-level function, so the
    config pickles)."""
    return [ActionsIntoBounds()]


def _check_flat_replay(config: AlgorithmConfig) -> None:
    """`check_flat_replay` here, where a bad setting exits 2, rather than in every trial
    where the buffer is built."""
    try:
        check_flat_replay(config)
    except ValueError as exc:
        raise PolicyError(f"hyperparams.{exc}") from None


def _conv_filters(
    model: ModelSettings, env: str, env_config: Mapping[str, Any] | None
) -> list[Any] | None:
    """RLlib's ``conv_filters``: the model's, else lrtune's default for the env's image size."""
    filters = model.conv_filters
    if filters is None:
        filters = image_conv_filters(env, env_config)
    return [list(layer) for layer in filters] if filters is not None else None


# Settings that mean a job builds its own module-to-env pipeline: lrtune adds no piece to it.
_OWN_PIPELINE = ("module_to_env_connector", "add_default_connectors_to_module_to_env_pipeline")
# ... or brings its own module (which may be stateful): lrtune's batched pipeline stays out.
_OWN_MODULE_TO_ENV = (*_OWN_PIPELINE, "rl_module_spec")


def _use_native_vector_env(config: AlgorithmConfig, env: str) -> bool:
    """Check ``gym_env_vectorize_mode: vector_entry_point`` against ``env``; whether the config
    asks for it."""
    if str(getattr(config.gym_env_vectorize_mode, "value", config.gym_env_vectorize_mode)) != (
        VECTOR_ENTRY_POINT
    ):
        return False
    if vector_entry_point(env) is False:
        raise PolicyError(
            f"hyperparams.gym_env_vectorize_mode: {VECTOR_ENTRY_POINT!r} needs an env whose "
            f"gymnasium registration has a vector_entry_point (without additional_wrappers); "
            f"{env!r} has none. Leave the setting out (RLlib's 'sync') or register the env "
            "with gymnasium.register(..., vector_entry_point=...)."
        )
    return True


def _batchable(
    config: AlgorithmConfig, hyperparams: Mapping[str, Any], own: tuple[str, ...]
) -> bool:
    """Whether the env runner's module is single-agent and memoryless and the job sets none of
    ``own`` (the settings by which it builds that pipeline or its module itself): what both
    batched pipelines need."""
    return (
        not config.is_multi_agent
        and not config.model_config.get("use_lstm")
        and not any(key in hyperparams for key in own)
    )


def _batch_module_outputs(
    config: AlgorithmConfig, discrete: bool, hyperparams: Mapping[str, Any]
) -> None:
    """Give a single-agent, memoryless module acting in a ``Discrete`` action space the batched
    module-to-env pipeline (`lrtune.learners._vector`: the same actions, without RLlib's
    per-episode split and re-stack), unless the job builds its own pipeline or module."""
    if discrete and _batchable(config, hyperparams, _OWN_MODULE_TO_ENV):
        config.env_runners(
            module_to_env_connector=batched_module_to_env,
            add_default_connectors_to_module_to_env_pipeline=False,
        )


# Settings that mean a job builds its own env-to-module pipeline or module.
_OWN_ENV_TO_MODULE = ("add_default_connectors_to_env_to_module_pipeline", "rl_module_spec")


def _batch_observations(
    config: AlgorithmConfig, connector: Any, hyperparams: Mapping[str, Any]
) -> None:
    """Give a single-agent, memoryless module whose env-to-module pipeline is lrtune's own
    (`ObservationConnectors`) the batched observation piece in place of RLlib's default pieces
    (`lrtune.learners._vector.BatchedObservations`: the same batch, one call per vector step),
    unless the job builds its own pipeline or module."""
    if isinstance(connector, ObservationConnectors) and _batchable(
        config, hyperparams, _OWN_ENV_TO_MODULE
    ):
        config.env_runners(
            env_to_module_connector=replace(connector, batched=True),
            add_default_connectors_to_env_to_module_pipeline=False,
        )


def _with_observation_filter(
    hyperparams: Mapping[str, Any], model: ModelSettings, *, module_casts: bool
) -> dict[str, Any]:
    """``hyperparams`` with the observation filter the model section asks for.

    None leaves the presets' choice; True adds RLlib's ``MeanStdFilter`` unless another
    ``env_to_module_connector`` is set; False removes the presets' filter (a job's own
    connector stays). Either way the filter goes into `ObservationConnectors`, which first
    flattens observations RLlib's default networks cannot read."""
    out = dict(hyperparams)
    if model.normalize_observations is True:
        out.setdefault("env_to_module_connector", mean_std_filter)
    elif model.normalize_observations is False:
        if out.get("env_to_module_connector") is mean_std_filter:
            del out["env_to_module_connector"]
    # lrtune's pipeline (observations RLlib's networks cannot read flattened first) unless a
    # job brings its own connector.
    connector = out.get("env_to_module_connector")
    if connector is None or connector is mean_std_filter:
        out["env_to_module_connector"] = ObservationConnectors(
            normalize=connector is mean_std_filter, module_casts=module_casts
        )
    return out


def _rates(plugin: AgentPlugin, spec: LRPolicySpec) -> dict[str, float | None]:
    """The rates RLlib's config is told (its own checks want them; lrtune's learner sets the
    rate it applies before every update): each role's RLlib ``<role>_lr`` setting where the
    agent has them (SAC's ``actor_lr``, ``critic_lr``, ``alpha_lr``; ``lr`` None), else
    ``lr``."""
    rates: dict[str, float | None] = {
        f"{role}_lr": spec.for_role(role).lr
        for role in plugin.roles
        if f"{role}_lr" in plugin.owned_hyperparams
    }
    # An agent with per-role settings refuses a shared ``lr`` (SAC: "set config.lr to None").
    rates["lr"] = None if rates else spec.lr
    return rates


def _set_hyperparam(
    config: AlgorithmConfig, key: str, value: Any, owned: Mapping[str, str]
) -> None:
    getattr(config, _section_of(type(config), key, owned))(**{key: value})


def section_parameters(cls: type[AlgorithmConfig], section: str) -> set[str]:
    """Names a config section method accepts, across the class hierarchy (subclasses add some
    and pass the rest on through ``**kwargs``). A parameter whose default is not RLlib's
    ``NotProvided`` is a deprecated one (RLlib raises when it is passed, e.g.
    ``env_runners(restart_failed_sub_environments=...)``, now a ``fault_tolerance`` setting),
    so it is left out and the next section is tried."""
    names: set[str] = set()
    for klass in cls.__mro__:
        method = klass.__dict__.get(section)
        if method is not None:
            names.update(
                name
                for name, p in inspect.signature(method).parameters.items()
                if p.kind is not inspect.Parameter.VAR_KEYWORD
                and name != "self"
                and p.default is NotProvided
            )
    return names


def check_hyperparam_names(agent: str, names: Iterable[str]) -> None:
    """Raise `PolicyError` naming the first of ``names`` that is no RLlib setting of
    ``agent``'s config (in `SECTIONS`) or that lrtune owns (values are not checked: a space
    samples them)."""
    plugin = get_agent(agent)
    config_class, owned = plugin.config_class(), plugin.owned()
    for key in names:
        _section_of(config_class, key, owned)


def _section_of(config_class: type[AlgorithmConfig], key: str, owned: Mapping[str, str]) -> str:
    if key in owned:
        raise PolicyError(f"hyperparams.{key}: lrtune sets this itself ({owned[key]}).")
    for section in SECTIONS:
        if key in section_parameters(config_class, section):
            return section
    # lrtune's subclasses (LRTuneSACConfig) add no settings: name the RLlib class users know.
    rllib_class = next(
        (k for k in config_class.__mro__ if k.__module__.startswith("ray.")), config_class
    )
    raise PolicyError(
        f"hyperparams.{key}: not a setting of RLlib's {rllib_class.__name__} (looked in its "
        f"{', '.join(SECTIONS)} sections). Check the spelling against RLlib's documentation."
    )
