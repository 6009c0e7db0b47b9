"""The learning-rate policy: its file model (`LRPolicySpec`) and its compiled form (`LRPolicy`).

A policy is a base learning rate plus one entry of each LR slot, each a registry name with
parameters. The same model is a policy file of its own, is embedded in jobs, and is what the
learner receives (as a plain dict, through RLlib's ``learner_config_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from lrtune.policies._base import (
    FeedbackRule,
    FeedbackState,
    GradientGate,
    OptimizerPlugin,
    Schedule,
)
from lrtune.registry import SLOTS, LRTuneError, Registry, format_validation_error


class PolicyError(LRTuneError, ValueError):
    """An LR policy that is not valid as a whole (e.g. a rule that does not support the agent)."""


class PluginRef(BaseModel):
    """A reference to a registry entry: ``{name: cosine, params: {t_max: 100000}}``.

    A bare string (``cosine``) is accepted as a reference with default parameters. After
    validation ``params`` holds every parameter, defaults filled in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        return data

    def resolved(self, registry: Registry[Any]) -> PluginRef:
        """This reference with its name checked and its params validated and completed.

        Raises:
            ValueError: with a message that starts ``params.<field>:`` for a bad parameter,
                so that spec errors read ``schedule.params.t_max: ...``.
        """
        try:
            entry = registry.get(self.name)
        except LRTuneError as exc:
            raise ValueError(str(exc)) from None
        try:
            params = entry.params_model.model_validate(dict(self.params))
        except ValidationError as exc:
            raise ValueError(
                f"{format_validation_error(exc, prefix='params')} — {registry.slot} "
                f"'{self.name}' takes: {', '.join(entry.params_model.model_fields) or 'no params'}"
                f" (see `lrtune plugins {registry.slot}`)"
            ) from None
        return PluginRef(name=self.name, params=params.model_dump(mode="json"))

    def build(self, registry: Registry[Any], **context: Any) -> Any:
        """Build the plugin object this reference names."""
        return registry.get(self.name).build(self.params, **context)


def _ref_validator(slot: str) -> Any:
    def check(value: PluginRef | None) -> PluginRef | None:
        return None if value is None else value.resolved(SLOTS[slot])

    return check


def _rate_not_bool(value: Any) -> Any:
    """YAML's ``true`` is no learning rate (pydantic would read it as 1.0)."""
    if isinstance(value, bool):
        raise ValueError("must be a number such as 3e-4")
    return value


def _resolve_feedback(value: tuple[PluginRef, ...]) -> tuple[PluginRef, ...]:
    """Feedback references checked: each rule once, known, with valid params."""
    names = [ref.name for ref in value]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"feedback rule(s) {dupes} listed twice; list each rule once")
    return tuple(ref.resolved(SLOTS["feedback"]) for ref in value)


#: A policy's (and a space's) single-plugin fields -> the registry slot each names an entry of.
#: Feedback is apart: a list in a policy, free labels in a space.
PLUGIN_SLOTS: dict[str, str] = {
    "schedule": "schedules",
    "optimizer": "optimizers",
    "gradients": "gradients",
}


class RolePolicy(BaseModel):
    """One optimizer role's own LR-policy settings (`LRPolicySpec.roles`); a field left out is
    the shared policy's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lr: float | None = Field(default=None, gt=0.0, le=1e6, description="the role's base rate")
    schedule: PluginRef | None = None
    optimizer: PluginRef | None = None
    gradients: PluginRef | None = None
    feedback: tuple[PluginRef, ...] | None = None

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data

    _lr_number = field_validator("lr", mode="before")(_rate_not_bool)
    _check_schedule = field_validator("schedule")(_ref_validator("schedules"))
    _check_optimizer = field_validator("optimizer")(_ref_validator("optimizers"))
    _check_gradients = field_validator("gradients")(_ref_validator("gradients"))

    @field_validator("feedback", mode="before")
    @classmethod
    def _feedback_list(cls, value: Any) -> Any:
        if isinstance(value, (str, Mapping)):
            return (value,)
        return value

    @field_validator("feedback")
    @classmethod
    def _check_feedback(cls, value: tuple[PluginRef, ...] | None) -> tuple[PluginRef, ...] | None:
        return None if value is None else _resolve_feedback(value)


class LRPolicySpec(BaseModel):
    """A learning-rate policy file: base LR, schedule, optimizer, gradient gating, feedback.

    Example (YAML)::

        version: 1
        lr: 3e-4
        schedule: {name: warmup, params: {steps: 2000, then: {name: cosine}}}
        optimizer: {name: adam, params: {eps: 1e-5}}
        gradients: {name: clip_global_norm, params: {max_norm: 0.5}}
        feedback: [{name: kl_adaptive, params: {target: 0.01}}]
        roles: {alpha: {lr: 1e-3}}  # optional: one optimizer role's own settings

    ``roles`` gives an agent's optimizer roles (SAC: ``actor``, ``critic``, ``alpha``; PPO
    and DQN have one, ``model``) settings of their own; a role gets every field it leaves
    out from the shared ones above (`for_role`). Each role's rate is applied, read back and
    checkpointed on its own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    version: Literal[1] = 1
    lr: float = Field(gt=0.0, le=1e6, description="base learning rate")
    schedule: PluginRef = PluginRef(name="constant")
    optimizer: PluginRef = PluginRef(name="adam")
    gradients: PluginRef = PluginRef(name="none")
    feedback: tuple[PluginRef, ...] = ()
    roles: dict[str, RolePolicy] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _without_empty_roles(self, handler: SerializerFunctionWrapHandler) -> Any:
        # A policy without roles dumps as before roles existed (job hashes, files, best.yaml).
        data = handler(self)
        if isinstance(data, dict) and not data.get("roles"):
            data.pop("roles", None)
        return data

    _check_schedule = field_validator("schedule")(_ref_validator("schedules"))
    _check_optimizer = field_validator("optimizer")(_ref_validator("optimizers"))
    _check_gradients = field_validator("gradients")(_ref_validator("gradients"))
    _lr_number = field_validator("lr", mode="before")(_rate_not_bool)

    @field_validator("feedback", mode="before")
    @classmethod
    def _feedback_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, (str, Mapping)):
            return (value,)
        return value

    @field_validator("feedback")
    @classmethod
    def _check_feedback(cls, value: tuple[PluginRef, ...]) -> tuple[PluginRef, ...]:
        return _resolve_feedback(value)

    def agent_problems(self, agent: str) -> Iterator[tuple[tuple[str | int, ...], str]]:
        """(location, message) for each role that ``agent`` does not have and each plugin,
        of the shared policy or of a role's own settings, that does not support ``agent``.

        The location is the field's path inside this policy (``("roles", "critic",
        "feedback", 0)``). `check_agent` raises on the first; a job's validation yields every
        one under ``policy``, so the two report the same problems in the same words.
        """
        known = tuple(SLOTS["agents"].build(agent).roles)
        for role in self.roles:
            if role not in known:
                message = (
                    f"agent '{agent}' has no optimizer role {role!r}; its roles are "
                    f"{', '.join(known)}: rename the role or leave it out"
                )
                yield ("roles", role), message
        # A role's field left unset is the shared one, checked once above it.
        policies: list[tuple[tuple[str, ...], LRPolicySpec | RolePolicy]] = [((), self)]
        policies += [(("roles", role), own) for role, own in self.roles.items()]
        for where, policy in policies:
            refs: list[tuple[tuple[str | int, ...], str, PluginRef]] = [
                ((*where, field), slot, ref)
                for field, slot in PLUGIN_SLOTS.items()
                if (ref := getattr(policy, field)) is not None
            ]
            refs += [
                ((*where, "feedback", i), "feedback", ref)
                for i, ref in enumerate(policy.feedback or ())
            ]
            for loc, slot, ref in refs:
                if (problem := SLOTS[slot].agent_problem(ref.name, agent)) is not None:
                    yield loc, problem

    def check_agent(self, agent: str) -> None:
        """Raise `PolicyError` on the first of `agent_problems` (called before a trial's
        learner is built and by ``lrtune train``)."""
        for loc, message in self.agent_problems(agent):
            raise PolicyError(f"{'.'.join(map(str, loc))}: {message}.")

    def for_role(self, role: str) -> LRPolicySpec:
        """The complete policy of optimizer role ``role``: the shared fields with the role's
        own (`roles`) over them. A role not listed gets the shared policy."""
        override = self.roles.get(role)
        if override is None:
            return self.model_copy(update={"roles": {}})
        fields = type(override).model_fields
        changes = {k: getattr(override, k) for k in fields if getattr(override, k) is not None}
        return self.model_copy(update={**changes, "roles": {}})

    def build(self, *, budget: int | None = None) -> LRPolicy:
        """Compile to an `LRPolicy` (plugin objects), given the trial's env-step budget."""
        return LRPolicy(self, budget=budget)

    def short(self) -> str:
        """A one-line summary for progress views: ``adam 3e-04 warmup+cosine clip_global_norm``."""
        sched = self.schedule.name
        if sched == "warmup":
            inner = self.schedule.params.get("then") or {}
            sched = f"warmup+{inner.get('name', '?') if isinstance(inner, dict) else inner}"
        parts = [self.optimizer.name, f"{self.lr:.0e}", sched]
        if self.gradients.name != "none":
            parts.append(self.gradients.name)
        parts.extend(r.name for r in self.feedback)
        if self.roles:  # which roles have settings of their own: ``roles(alpha)``
            parts.append(f"roles({','.join(self.roles)})")
        return " ".join(parts)


class LRPolicy:
    """A compiled policy: plugin objects plus the learning-rate formula.

    ``lr(env_steps, states) = base_lr × schedule(env_steps) × Π rule.factor(state)``.
    """

    def __init__(self, spec: LRPolicySpec, *, budget: int | None = None) -> None:
        from lrtune.registry import feedback, gradients, optimizers, schedules

        self.spec = spec
        self.base_lr = float(spec.lr)
        self.schedule: Schedule = spec.schedule.build(schedules, budget=budget)
        self.optimizer: OptimizerPlugin = spec.optimizer.build(optimizers)
        self.gate: GradientGate = spec.gradients.build(gradients)
        self.rules: list[FeedbackRule] = [ref.build(feedback) for ref in spec.feedback]

    def initial_feedback_state(self) -> list[FeedbackState]:
        """One fresh state per feedback rule, in the rules' order."""
        return [rule.initial_state() for rule in self.rules]

    def feedback_factor(self, states: Sequence[FeedbackState]) -> float:
        """Product of the rules' factors in ``states``."""
        return math.prod(rule.factor(s) for rule, s in zip(self.rules, states, strict=True))

    def lr(self, env_steps: int, states: Sequence[FeedbackState] | None = None) -> float:
        """The learning rate to apply at lifetime env step ``env_steps``."""
        factor = self.feedback_factor(states) if states else 1.0
        return self.base_lr * self.schedule(int(env_steps)) * factor

    def __repr__(self) -> str:
        return (
            f"LRPolicy(lr={self.base_lr!r}, schedule={self.schedule!r}, "
            f"optimizer={self.optimizer!r}, gradients={self.gate!r}, feedback={self.rules!r})"
        )
