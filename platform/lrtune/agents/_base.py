"""The base of every ``agents`` entry: what lrtune needs to know to tune one RLlib algorithm.

An entry is declared without importing Ray or torch (a job is validated against it); the RLlib
classes it names are imported when a trial builds its algorithm (`AgentPlugin.config_class`,
`AgentPlugin.learner_class`). The entry is the one place that says, for its algorithm:

* which RLlib config and lrtune learner classes build it;
* its optimizer *roles* (PPO and DQN: one, ``model``; SAC: ``actor``, ``critic``, ``alpha``),
  each a set of RLlib optimizer names whose rate one LR policy owns (`LRPolicySpec.roles`);
* the hyper-parameters lrtune owns for it (setting them would bypass the LR policy);
* the learner metrics whose non-finite value marks a diverged update;
* its network defaults and its presets (`lrtune presets AGENT` prints them with sources);
* the rate that a search's baseline trial uses.
"""

from __future__ import annotations

import importlib
from abc import ABC
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lrtune.registry import PluginParams

#: The single role of an agent with one optimizer per module (PPO, DQN).
MODEL_ROLE = "model"

#: Hyper-parameters lrtune owns for every agent: setting them would bypass the LR policy or
#: the trial's own process.
COMMON_OWNED: Mapping[str, str] = {
    "lr": "the learning rate comes from the LR policy (lr and its schedule)",
    "lr_schedule": "the learning rate comes from the LR policy's schedule",
    "grad_clip": "gradient clipping is the LR policy's `gradients` entry (e.g. clip_global_norm)",
    "grad_clip_by": "gradient clipping is the LR policy's `gradients` entry",
    "_torch_lr_scheduler_classes": "torch LR schedulers are not checkpointed; use a schedule",
    "num_env_runners": "lrtune samples in the trial's own process (extra env-runner actors "
    "oversubscribe the cores)",
    "num_learners": "lrtune trains in the trial's own process",
}


#: The kinds of action space an agent can declare in `AgentPlugin.action_spaces`, each with
#: the gymnasium spaces it covers (`action_kind` names an env's kind).
ACTION_KINDS: Mapping[str, str] = {
    "discrete": "Discrete",
    "continuous": "Box (1-D, floats)",
    "multi_discrete": "MultiDiscrete",
    "composite": "Tuple or Dict of those",
}


def action_kind(space: Any) -> str | None:
    """The `ACTION_KINDS` key of a gymnasium action space; None where no kind covers it
    (MultiBinary, Text, a Box of integers or of more than one dimension, a Tuple holding one of
    those): RLlib has no action distribution for it."""
    import numpy as np
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return "discrete"
    if isinstance(space, spaces.Box):
        # RLlib's distributions take a 1-D Box ("Action space has multiple dimensions") of
        # floats ("Box(..., `int`) action spaces are not supported").
        floats = np.issubdtype(space.dtype, np.floating)
        return "continuous" if len(space.shape) <= 1 and floats else None
    if isinstance(space, spaces.MultiDiscrete):
        return "multi_discrete"
    if isinstance(space, spaces.Tuple | spaces.Dict):
        parts = space.spaces.values() if isinstance(space, spaces.Dict) else space.spaces
        kinds = [action_kind(part) for part in parts]
        return "composite" if kinds and None not in kinds else None
    return None


def _first_leaf(space: Any, is_bad: Callable[[Any], bool], path: str = "") -> str | None:
    """The first leaf of ``space`` (Tuple and Dict parts walked) for which ``is_bad`` holds,
    as ``"<path> <leaf>"`` (``"['cell'] Discrete(5, start=3)"``); None where there is none."""
    from gymnasium import spaces

    if isinstance(space, spaces.Tuple | spaces.Dict):
        items = space.spaces.items() if isinstance(space, spaces.Dict) else enumerate(space.spaces)
        for key, part in items:
            found = _first_leaf(part, is_bad, f"{path}[{key!r}]")
            if found is not None:
                return found
        return None
    return f"{path} {space}".strip() if is_bad(space) else None


def _starts_off_zero(space: Any) -> bool:
    import numpy as np
    from gymnasium import spaces

    discrete = isinstance(space, spaces.Discrete | spaces.MultiDiscrete)
    return discrete and bool(np.any(np.asarray(space.start) != 0))


def offset_part(space: Any) -> str | None:
    """The first Discrete or MultiDiscrete in ``space`` (Tuple and Dict parts included) whose
    values do not start at 0 (gymnasium's ``start``), as ``"<path> <part>"``; None where there
    is none. RLlib ignores ``start``: it samples actions 0..n-1 and one-hot encodes
    observations as if they began at 0, so every trial sends invalid actions or fails to
    encode its observations (SB3 refuses such spaces too)."""
    return _first_leaf(space, _starts_off_zero)


def _not_bounded(space: Any) -> bool:
    import numpy as np
    from gymnasium import spaces

    return isinstance(space, spaces.Box) and not bool(
        np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))
    )


def unbounded_part(space: Any) -> str | None:
    """The first Box in an action space (Tuple and Dict parts included) with an infinite bound,
    as ``"<path> <part>"``; None where every Box is bounded on both sides. RLlib maps a policy's
    [-1, 1] onto a Box's bounds only where both are finite: elsewhere its actions go to the env
    as they are (a squashing agent's never leave [-1, 1]), unclipped."""
    return _first_leaf(space, _not_bounded)


#: Observation spaces RLlib's default networks read (after lrtune's flattening).
READABLE_OBSERVATIONS = "Box, Discrete, MultiDiscrete, MultiBinary and Tuple or Dict of those"


def _unreadable(space: Any) -> bool:
    from gymnasium import spaces

    readable = spaces.Box | spaces.Discrete | spaces.MultiDiscrete | spaces.MultiBinary
    return not isinstance(space, readable)


def unreadable_part(space: Any) -> str | None:
    """The first part of an observation space that RLlib's networks cannot read (Text,
    Sequence, Graph, OneOf: anything but `READABLE_OBSERVATIONS`), as ``"<path> <part>"``;
    None where every part is readable. RLlib fails every trial on them ("could not convert
    string to float", "list index out of range")."""
    return _first_leaf(space, _unreadable)


@dataclass(frozen=True)
class AgentPresets:
    """An agent's preset hyper-parameters in three layers, later ones winning: the agent's
    defaults, the continuous-action family (used when the env's actions are a Box) and one
    entry per environment id (without a module prefix)."""

    defaults: Mapping[str, Any]
    continuous: Mapping[str, Any] = field(default_factory=dict)
    by_env: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Model settings (`lrtune.learners.ModelSettings` fields) the continuous-action family
    #: turns on where the job's model section leaves them out (PPO: ``normalize_rewards``).
    continuous_model: Mapping[str, Any] = field(default_factory=dict)


def load_attribute(path: str) -> Any:
    """Import ``"package.module:Attr"`` and return the attribute."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


class AgentPlugin(ABC):
    """Base of every ``agents`` entry; a subclass sets the class attributes below.

    The registry builds the entry (``agents.build(name)``) when a job is validated and when a
    trial is built; nothing here runs RLlib.

    Class attributes:
        config_class_path, learner_class_path, presets_path: ``"module:Attr"`` of the RLlib
            ``AlgorithmConfig`` subclass, of lrtune's learner for it (a subclass of
            `lrtune.learners.LRPolicyLearner`) and of its `AgentPresets`; imported on use.
        baseline_lr: the rate of a search's baseline trial (built-ins: Stable-Baselines3's
            default for PPO and SAC, 1e-3 for DQN, measured on classic control).
        roles: role name -> the RLlib optimizer names (``register_optimizer``'s
            ``optimizer_name``) whose rate that role's LR policy owns. The first role is the
            one reported as ``lr``; every role is also reported as ``lr.<role>`` when there are
            several. ``("*",)`` means every optimizer of the module.
        action_spaces: the `ACTION_KINDS` the agent acts in (``"discrete"``, ``"continuous"``,
            ``"multi_discrete"``, ``"composite"``); a run on an env with another kind is
            refused at its start (exit 2).
        loss_metrics: learner metrics (under ``learners/<module>/``) that a diverged update
            leaves non-finite.
        owned_hyperparams: hyper-parameters lrtune owns for this agent beyond `COMMON_OWNED`
            (e.g. SAC's ``actor_lr``), each with the reason shown in the error.
        hidden, activation: the network's default hidden sizes and activation.
        initializers: the initialisations the agent supports, its default first
            (``"orthogonal"``: SB3/CleanRL PPO's; ``"torch"``: torch's default).
        separate_value_network: whether ``model.vf_share_layers`` means anything (PPO).
        scales_rewards: whether ``model.normalize_rewards`` can be on (PPO: its learner scales
            the rewards of on-policy batches; a replay buffer's order is not a return stream).
        explorations: the ``model.exploration`` kinds the agent's module has for a 1-D Box
            of actions (PPO: ``gaussian``, ``gsde``); a job of another agent that sets one is
            refused.
        reports_kl: whether the learner reports the policy's KL (feedback ``kl_adaptive``).
        squashes_actions: whether the policy squashes its actions into a Box's bounds (SAC's
            tanh): a run on actions with an infinite bound (`unbounded_part`) is refused at its
            start, as such an agent would only ever act in [-1, 1]. Other agents' actions are
            clipped to such a Box's bounds instead (Stable-Baselines3's PPO does the same).
        module_casts_observations: whether the agent's RLlib module casts integer (or 16-bit
            float) observations to float32 itself
            (`lrtune.learners._modules.cast_observations_to_float32`), so episodes and replay
            keep uint8 images as uint8. Otherwise lrtune's connector casts them before they are
            stored (float32: four times the bytes).
        iteration_batch_key: the hyper-parameter that fixes one training iteration's env steps
            (PPO's ``train_batch_size_per_learner``), or None.
        agent_settings: the fields of a space's ``agent_settings`` (`lrtune.specs.AgentSettings`)
            that apply to this agent; a job of another agent that sets one is refused.
    """

    config_class_path: ClassVar[str]
    learner_class_path: ClassVar[str]
    presets_path: ClassVar[str]
    baseline_lr: ClassVar[float]
    roles: ClassVar[Mapping[str, tuple[str, ...]]] = {MODEL_ROLE: ("*",)}
    action_spaces: ClassVar[frozenset[str]] = frozenset({"discrete", "continuous"})
    loss_metrics: ClassVar[tuple[str, ...]] = ("total_loss",)
    owned_hyperparams: ClassVar[Mapping[str, str]] = {}
    hidden: ClassVar[tuple[int, ...]] = (256, 256)
    activation: ClassVar[str] = "relu"
    initializers: ClassVar[tuple[str, ...]] = ("torch",)
    separate_value_network: ClassVar[bool] = False
    scales_rewards: ClassVar[bool] = False
    explorations: ClassVar[tuple[str, ...]] = ()
    reports_kl: ClassVar[bool] = False
    squashes_actions: ClassVar[bool] = False
    module_casts_observations: ClassVar[bool] = False
    iteration_batch_key: ClassVar[str | None] = None
    agent_settings: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: PluginParams | None = None) -> None:
        self.params = params

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @property
    def default_initializer(self) -> str:
        """The initialisation used when a job's model section leaves it out."""
        return self.initializers[0]

    def owned(self) -> dict[str, str]:
        """Every hyper-parameter lrtune owns for this agent, with the reason."""
        return {**COMMON_OWNED, **self.owned_hyperparams}

    def config_class(self) -> Any:
        """The RLlib ``AlgorithmConfig`` subclass (imports RLlib)."""
        return load_attribute(self.config_class_path)

    def learner_class(self) -> Any:
        """lrtune's learner class for this agent (imports RLlib and torch)."""
        return load_attribute(self.learner_class_path)

    def presets(self) -> AgentPresets:
        """The agent's preset layers (imports what the presets reference, e.g. connectors)."""
        presets = load_attribute(self.presets_path)
        if not isinstance(presets, AgentPresets):
            raise TypeError(f"{self.presets_path} is not an lrtune.agents.AgentPresets")
        return presets

    def optimizer_roles(self) -> dict[str, str]:
        """RLlib optimizer name -> role (``"*"`` for a role that takes every optimizer)."""
        return {name: role for role, names in self.roles.items() for name in names}

    def configure(self, config: Any, *, initializer: str) -> Any:
        """Agent-specific wiring of the RLlib config after lrtune's common settings (e.g. PPO's
        orthogonally initialised module). Called when a trial builds its algorithm; the
        default changes nothing."""
        return config
