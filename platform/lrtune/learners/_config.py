"""One function from (agent, env, LR policy, hyper-parameters, resources) to an RLlib config."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from lrtune.learners._callbacks import LRTuneCallbacks
from lrtune.learners._learner import CONFIG_KEY, LEARNERS
from lrtune.learners._modules import OrthogonalPPOTorchRLModule, mean_std_filter
from lrtune.learners._vector import (
    VECTOR_ENTRY_POINT,
    batched_module_to_env,
    discrete_actions,
    vector_entry_point,
)
from lrtune.policies import LRPolicySpec, PolicyError

AGENTS: dict[str, type[AlgorithmConfig]] = {"ppo": PPOConfig, "dqn": DQNConfig}

# Hyper-parameters lrtune owns: setting them directly would bypass the LR policy.
_OWNED = {
    "lr": "the learning rate comes from the LR policy (policy.lr and its schedule)",
    "lr_schedule": "the learning rate comes from the LR policy's schedule",
    "grad_clip": "gradient clipping is the LR policy's `gradients` entry (e.g. clip_global_norm)",
    "grad_clip_by": "gradient clipping is the LR policy's `gradients` entry",
    "_torch_lr_scheduler_classes": "torch LR schedulers are not checkpointed; use a schedule",
    "num_env_runners": "lrtune samples in the trial's own process (extra env-runner actors "
    "oversubscribe the cores)",
    "num_learners": "lrtune trains in the trial's own process",
}
# Where a hyper-parameter goes, in the order tried.
_SECTIONS = ("training", "env_runners", "rl_module", "evaluation", "reporting", "debugging")


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
    """

    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    vf_share_layers: bool = False
    initializer: str | None = None
    normalize_observations: bool | None = None

    def __post_init__(self) -> None:
        if self.initializer is not None and self.initializer not in INITIALIZERS:
            raise ValueError(
                f"model.initializer must be one of {list(INITIALIZERS)} (got {self.initializer!r})"
            )

    def initializer_for(self, agent: str) -> str:
        """The initializer ``agent`` gets: the setting, else the agent's default."""
        return self.initializer or DEFAULT_INITIALIZER[agent]

    def hidden_for(self, agent: str) -> tuple[int, ...]:
        """The hidden sizes ``agent`` gets: the setting, else the agent's default."""
        return tuple(self.hidden) if self.hidden is not None else DEFAULT_HIDDEN[agent]

    def activation_for(self, agent: str) -> str:
        """The activation ``agent`` gets: the setting, else the agent's default."""
        return self.activation or DEFAULT_ACTIVATION[agent]


# SB3 and CleanRL initialise PPO's networks orthogonally and DQN's with torch's default.
DEFAULT_INITIALIZER = {"ppo": "orthogonal", "dqn": "torch"}
# Network size and activation per agent. DQN on Acrobot-v1 (lr 1e-3, 50k env steps, agent
# presets alone, benchmarks/presets.py): -96 with 256x256 relu (rl-zoo3's tuned CartPole-v1,
# Acrobot-v1 and MountainCar-v0 DQNs; SB3's QNetwork activation) against -198 with 64x64 tanh.
DEFAULT_HIDDEN: dict[str, tuple[int, ...]] = {"ppo": (64, 64), "dqn": (256, 256)}
DEFAULT_ACTIVATION = {"ppo": "tanh", "dqn": "relu"}


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
        agent: ``"ppo"`` or ``"dqn"``.
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
    if agent not in AGENTS:
        raise PolicyError(f"agent: unknown agent {agent!r}; choose one of {sorted(AGENTS)}.")
    spec = policy if isinstance(policy, LRPolicySpec) else LRPolicySpec.model_validate(policy)
    spec.check_agent(agent)
    resources = resources or TrialResources()
    model = model or ModelSettings()
    if agent != "ppo" and (model.initializer == "orthogonal" or model.vf_share_layers):
        raise PolicyError(
            f"model: initializer 'orthogonal' and vf_share_layers are PPO settings; {agent} "
            "has no separate value network and uses torch's initialisation."
        )

    config = (
        AGENTS[agent]()
        .framework("torch")
        .environment(env, env_config=dict(env_config or {}))
        .env_runners(num_env_runners=0)
        .learners(
            num_learners=0,
            num_cpus_per_learner=resources.cpus,
            num_gpus_per_learner=resources.gpus,
            learner_class=LEARNERS[agent],
            learner_config_dict={
                CONFIG_KEY: {
                    "policy": spec.model_dump(mode="json"),
                    "budget": budget,
                    "num_threads": max(1, int(resources.cpus)),
                }
            },
        )
        .resources(num_cpus_for_main_process=resources.cpus)  # type: ignore[arg-type]
        .training(lr=spec.lr, grad_clip=None)
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=list(model.hidden_for(agent)),
                fcnet_activation=model.activation_for(agent),
                vf_share_layers=model.vf_share_layers,
            )
        )
        .callbacks(LRTuneCallbacks)
    )
    if agent == "ppo" and model.initializer_for(agent) == "orthogonal":
        config = config.rl_module(
            rl_module_spec=RLModuleSpec(module_class=OrthogonalPPOTorchRLModule)
        )
    if seed is not None:
        config = config.debugging(seed=seed)
    for key, value in _with_observation_filter(hyperparams or {}, model).items():
        _set_hyperparam(config, key, value)
    _use_native_vector_env(config, env, hyperparams or {})
    return config


# Settings that mean a job builds its own module-to-env pipeline: lrtune's batched one stays out.
_OWN_MODULE_TO_ENV = ("module_to_env_connector", "add_default_connectors_to_module_to_env_pipeline")


def _use_native_vector_env(
    config: AlgorithmConfig, env: str, hyperparams: Mapping[str, Any]
) -> None:
    """Check ``gym_env_vectorize_mode: vector_entry_point`` against ``env``; give it the batched
    module-to-env pipeline (`lrtune.learners._vector`) when the actions are discrete."""
    if str(getattr(config.gym_env_vectorize_mode, "value", config.gym_env_vectorize_mode)) != (
        VECTOR_ENTRY_POINT
    ):
        return
    if vector_entry_point(env) is False:
        raise PolicyError(
            f"hyperparams.gym_env_vectorize_mode: {VECTOR_ENTRY_POINT!r} needs an env whose "
            f"gymnasium registration has a vector_entry_point (without additional_wrappers); "
            f"{env!r} has none. Leave the setting out (RLlib's 'sync') or register the env "
            "with gymnasium.register(..., vector_entry_point=...)."
        )
    if discrete_actions(env) and not any(key in hyperparams for key in _OWN_MODULE_TO_ENV):
        config.env_runners(
            module_to_env_connector=batched_module_to_env,
            add_default_connectors_to_module_to_env_pipeline=False,
        )


def _with_observation_filter(
    hyperparams: Mapping[str, Any], model: ModelSettings
) -> dict[str, Any]:
    """``hyperparams`` with the observation filter the model section asks for.

    None leaves the presets' choice; True adds RLlib's ``MeanStdFilter`` unless another
    ``env_to_module_connector`` is set; False removes the presets' filter (a job's own
    connector stays)."""
    out = dict(hyperparams)
    if model.normalize_observations is True:
        out.setdefault("env_to_module_connector", mean_std_filter)
    elif model.normalize_observations is False:
        if out.get("env_to_module_connector") is mean_std_filter:
            del out["env_to_module_connector"]
    return out


def _set_hyperparam(config: AlgorithmConfig, key: str, value: Any) -> None:
    if key in _OWNED:
        raise PolicyError(f"hyperparams.{key}: lrtune sets this itself ({_OWNED[key]}).")
    for section in _SECTIONS:
        if key in _section_parameters(type(config), section):
            getattr(config, section)(**{key: value})
            return
    raise PolicyError(
        f"hyperparams.{key}: not a setting of RLlib's {type(config).__name__} (looked in its "
        f"{', '.join(_SECTIONS)} sections). Check the spelling against RLlib's documentation."
    )


def _section_parameters(cls: type[AlgorithmConfig], section: str) -> set[str]:
    """Names a config section method accepts, across the class hierarchy (subclasses add some
    and pass the rest on through ``**kwargs``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        method = klass.__dict__.get(section)
        if method is not None:
            names.update(
                name
                for name, p in inspect.signature(method).parameters.items()
                if p.kind is not inspect.Parameter.VAR_KEYWORD and name != "self"
            )
    return names
