"""The ``population:`` section of a job: population-based training of the LR policy (README's
"Population-based schedules" describes it and shows every key).

Mutable parameters live in each trial's config as plain numbers ("coordinates"):
``log10(value)`` for log-scaled ones, the value itself otherwise, so that PB2's linear bounds
search a base LR in log space. `PopulationSpec.member_policy` turns a member's coordinates back
into its LR policy.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from lrtune.policies import PLUGIN_SLOTS, LRPolicySpec, PluginRef
from lrtune.registry import SLOTS, LRTuneError
from lrtune.specs._errors import (
    Loc,
    Problem,
    complete_params,
    describe_validation_error,
    problem_check,
    registered,
)
from lrtune.specs._space import annotation_types
from lrtune.specs._yaml import FROZEN, Real, Settings, Whole

#: Default PBT perturbation factors (a value is multiplied by one of them, chosen at random).
DEFAULT_FACTORS = (0.8, 1.25)
#: At most this many combinations of choices are checked against every mutable parameter.
MAX_COMBINATIONS = 64


class MutableParam(BaseModel):
    """One mutable number of the LR policy: its bounds, scale and (PBT) perturbation factors.

    ``scale`` defaults to ``log`` for the base LR and ``linear`` otherwise; a log-scaled
    parameter is searched (sampled, perturbed by PB2) as ``log10(value)``.
    """

    model_config = FROZEN

    low: Real
    high: Real
    scale: Literal["linear", "log"] | None = None
    factors: tuple[Annotated[Real, Field(gt=0)], ...] | None = Field(
        default=None, min_length=1, max_length=16
    )

    @problem_check
    def _ordered(self) -> Iterator[Problem]:
        if not self.low < self.high:
            yield ("high",), f"must be above low ({self.low}); got {self.high}"
        if self.scale == "log" and self.low <= 0:
            yield ("low",), f"a log-scaled parameter needs low > 0 (got {self.low})"

    def is_log(self, path: str) -> bool:
        """Whether the parameter is searched in log10 space (default: only ``lr``)."""
        if self.scale is not None:
            return self.scale == "log"
        return path == "lr" and self.low > 0

    def to_coord(self, path: str, value: float) -> float:
        """The config coordinate of ``value`` (log10 for log-scaled parameters)."""
        return math.log10(value) if self.is_log(path) else float(value)

    def to_value(self, path: str, coord: float) -> float:
        """The parameter value of a config coordinate."""
        return 10.0 ** float(coord) if self.is_log(path) else float(coord)

    def coord_bounds(self, path: str) -> tuple[float, float]:
        """``(low, high)`` in coordinates."""
        return self.to_coord(path, self.low), self.to_coord(path, self.high)

    def perturbation_factors(self) -> tuple[float, ...]:
        """The PBT factors (the default pair when none are given)."""
        return tuple(self.factors) if self.factors else DEFAULT_FACTORS


class PopulationCheckpointSpec(BaseModel):
    """Checkpoints of a population: how often (env steps) and how many each member keeps (for
    a donor's checkpoint to outlive a perturbation interval, at least ``ceil(interval /
    checkpoint.interval) + 2``). The population's scheduler also saves at perturbation points."""

    model_config = FROZEN

    interval: Whole | None = Field(default=None, gt=0)
    num_to_keep: Whole = Field(default=4, ge=1)


class PopulationSpec(BaseModel):
    """A population of trials whose LR policies are learned during training (PBT, PB2...).

    Keys other than the fields below are parameters of the population plugin
    (``quantile_fraction``, ``resample_probability``...); they are moved into ``params``.
    """

    model_config = FROZEN

    name: Annotated[str, Field(min_length=1), registered("populations")]
    size: Whole
    interval: Whole = Field(gt=0, description="env steps between two perturbations of a member")
    params: Settings = Field(default_factory=dict)
    mutable: dict[str, MutableParam] = Field(min_length=1)
    choices: dict[Literal["schedule", "optimizer", "gradients"], tuple[PluginRef, ...]] = Field(
        default_factory=dict
    )
    members: tuple[dict[str, Real], ...] = ()
    seed: Whole = 0
    checkpoint: PopulationCheckpointSpec = PopulationCheckpointSpec()

    @model_validator(mode="before")
    @classmethod
    def _plugin_params(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or set(data) <= set(cls.model_fields):
            return data
        out = {k: v for k, v in data.items() if k in cls.model_fields}
        params = dict(out["params"]) if isinstance(out.get("params"), Mapping) else {}
        out["params"] = params | {k: v for k, v in data.items() if k not in cls.model_fields}
        return out

    @problem_check
    def _check(self) -> Iterator[Problem]:
        entry = SLOTS["populations"].get(self.name)
        yield from complete_params(self, "populations", self.name, (), defaults=True)
        if self.size < 2:
            yield ("size",), f"a population needs at least 2 members (got {self.size})"
        by_factors = bool(getattr(entry.factory, "perturbs_by_factors", False))
        for path, param in self.mutable.items():
            if param.factors is not None and not by_factors:
                yield (
                    ("mutable", path, "factors"),
                    f"population '{self.name}' does not perturb by factors (it picks new values "
                    "within the bounds): remove `factors`",
                )
        if len(self.members) > self.size:
            yield (
                ("members",),
                f"{len(self.members)} members listed for a population of {self.size}",
            )
        for i, member in enumerate(self.members):
            for path, value in member.items():
                bounds, at = self.mutable.get(path), ("members", i, path)
                if bounds is None:
                    yield at, f"not a mutable parameter (mutable: {', '.join(self.mutable)})"
                elif not bounds.low <= value <= bounds.high:
                    yield at, f"{value} is outside the bounds [{bounds.low}, {bounds.high}]"
        resolved: dict[str, tuple[PluginRef, ...]] = {}
        for slot, refs in self.choices.items():
            if not refs:
                yield ("choices", slot), "list at least one entry"
            resolved[slot] = ()
            for i, ref in enumerate(refs):
                try:
                    resolved[slot] += (ref.resolved(SLOTS[PLUGIN_SLOTS[slot]]),)
                except ValueError as exc:
                    yield ("choices", slot, i), str(exc)
        object.__setattr__(self, "choices", resolved)

    # ---- views

    @property
    def checkpoint_interval(self) -> int:
        """Env steps between two regular checkpoints (default: the perturbation interval)."""
        return int(self.checkpoint.interval or self.interval)

    def coord_bounds(self) -> dict[str, tuple[float, float]]:
        """Each mutable parameter's bounds in config coordinates."""
        return {path: p.coord_bounds(path) for path, p in self.mutable.items()}

    def values(self, coords: Mapping[str, Any]) -> dict[str, float]:
        """The parameter values of a member's coordinates (what MLflow logs as metrics)."""
        return {
            path: self.mutable[path].to_value(path, float(coord))
            for path, coord in coords.items()
            if path in self.mutable
        }

    def member_policy(
        self, base_policy: Mapping[str, Any], coords: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The LR policy (plain data) of a member: its base policy with its coordinates set.

        Whole-number parameters are rounded. Raises `ValueError` for a path the policy lacks.
        """
        policy = _resolved(base_policy)
        for path, coord in coords.items():
            if path not in self.mutable:
                continue
            loc, kind = locate(policy, path)
            value = self.mutable[path].to_value(path, float(coord))
            _set(policy, loc, round(value) if kind is int else value)
        return policy

    def initial_members(self, base_policy: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every member's start: ``{"policy": base policy with its choices, "mutable": coords}``.

        Coordinates are drawn uniformly between the bounds (log10 space for log-scaled
        parameters) with a generator seeded by ``seed``, except those ``members`` gives;
        each slot's ``choices`` are dealt evenly over the members in a seeded random order.
        """
        rng = random.Random(self.seed)
        base = _resolved(base_policy)
        deal: dict[str, list[int]] = {}
        for slot, refs in self.choices.items():
            order = [i % len(refs) for i in range(self.size)]
            rng.shuffle(order)
            deal[slot] = order
        out = []
        for i in range(self.size):
            policy = copy.deepcopy(base)
            for part, order in deal.items():
                policy[part] = self.choices[part][order[i]].model_dump(mode="json")  # type: ignore[index]
            given = self.members[i] if i < len(self.members) else {}
            coords = {
                path: param.to_coord(path, given[path])
                if path in given
                else rng.uniform(*param.coord_bounds(path))
                for path, param in self.mutable.items()
            }
            out.append({"policy": policy, "mutable": coords})
        return out

    def combinations(self, base_policy: Mapping[str, Any]) -> list[tuple[Loc, dict[str, Any]]]:
        """``(where it comes from, policy)`` for each combination of choices (capped)."""
        base = _resolved(base_policy)
        slots = list(self.choices)
        options = [list(enumerate(self.choices[s])) for s in slots]
        out: list[tuple[Loc, dict[str, Any]]] = []
        for combo in itertools.islice(itertools.product(*options), MAX_COMBINATIONS):
            policy = copy.deepcopy(base)
            where: Loc = ("policy",)
            for name, (i, ref) in zip(slots, combo, strict=True):
                policy[name] = ref.model_dump(mode="json")
                where = ("population", "choices", name, i)
            out.append((where, policy))
        return out or [(("policy",), base)]

    def problems(self, base_policy: LRPolicySpec | None, budget: int) -> Iterator[Problem]:
        """What makes this population impossible for a job (locations under the job)."""
        here: Loc = ("population",)
        if base_policy is None:
            yield (
                ("policy",),
                "a population starts every member from the job's `policy:` (give one, e.g. "
                "`policy: {lr: 3e-4}`); the mutable parameters are set on it",
            )
            return
        burn_in = int(self.params.get("burn_in", 0) or 0)
        for key, steps in (("interval", self.interval), ("burn_in", burn_in)):
            if steps >= budget:
                yield (
                    (*here, key),
                    f"{steps} env steps is not below budget.trial_env_steps ({budget}): no "
                    "member would ever be perturbed: lower it",
                )
        needed = math.ceil(self.interval / self.checkpoint_interval) + 2
        if self.checkpoint.num_to_keep < needed:
            yield (
                (*here, "checkpoint", "num_to_keep"),
                f"{self.checkpoint.num_to_keep} cannot serve a perturbation interval of "
                f"{self.interval} env steps with a checkpoint every {self.checkpoint_interval}: "
                "a donor's checkpoint would be deleted before a weaker member restores it: "
                f"keep at least {needed}",
            )
        base = base_policy.model_dump(mode="json")
        for path, param in self.mutable.items():
            loc: Loc = (*here, "mutable", path)
            for where, policy in self.combinations(base):
                try:
                    at, kind = locate(policy, path)  # the same in every copy of policy
                except ValueError as exc:
                    origin = "" if where == ("policy",) else f" (with {'.'.join(map(str, where))})"
                    yield loc, f"{exc}{origin}"
                    break
                bad = False
                for bound in ("low", "high"):
                    value = float(getattr(param, bound))
                    trial = copy.deepcopy(policy)
                    _set(trial, at, round(value) if kind is int else value)
                    if (message := _policy_problem(trial, budget)) is not None:
                        bad = True
                        yield (
                            (*loc, bound),
                            f"{value} is outside what the plugin accepts: {message}",
                        )
                if bad:
                    break


# ------------------------------------------------------------------------------- policy paths


def _resolved(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy as plain data with every plugin parameter filled in."""
    return LRPolicySpec.model_validate(dict(policy)).model_dump(mode="json")


def _set(policy: dict[str, Any], loc: Loc, value: Any) -> None:
    node: Any = policy
    for key in loc[:-1]:
        node = node[key]
    node[loc[-1]] = value


def _policy_problem(policy: Mapping[str, Any], budget: int) -> str | None:
    try:
        spec = LRPolicySpec.model_validate(dict(policy))
        spec.build(budget=budget)
    except ValidationError as exc:
        return ", ".join(describe_validation_error(exc))
    except (ValueError, TypeError, LRTuneError) as exc:
        return str(exc)
    return None


def locate(policy: Mapping[str, Any], path: str) -> tuple[Loc, type]:
    """Where a mutable ``path`` sits in a resolved policy dict, and its type (int or float).

    Paths: ``lr``, ``schedule.<param>`` (``schedule.then.<param>`` inside warmup),
    ``optimizer.<param>``, ``gradients.<param>``, ``feedback.<rule>.<param>``.

    Raises:
        ValueError: the policy has no such numeric parameter (the message says what it has).
    """
    parts = path.split(".")
    if parts == ["lr"]:
        return ("lr",), float
    head, rest = parts[0], parts[1:]
    if head == "feedback":
        rules = list(policy.get("feedback") or [])
        if len(rest) < 2:
            raise ValueError(
                "a feedback parameter reads feedback.<rule>.<param>, e.g. feedback.kl_adaptive."
                "target"
            )
        names = [r["name"] for r in rules]
        if rest[0] not in names:
            raise ValueError(
                f"the policy has no feedback rule {rest[0]!r} "
                f"(its rules: {', '.join(names) or 'none'})"
            )
        index = names.index(rest[0])
        return _in_ref(rules[index], "feedback", rest[1:], ("feedback", index))
    if head in PLUGIN_SLOTS and rest:
        return _in_ref(policy[head], PLUGIN_SLOTS[head], rest, (head,))
    raise ValueError(
        f"{path!r} is not a policy parameter: mutable parameters are lr, schedule.<param>, "
        "optimizer.<param>, gradients.<param> or feedback.<rule>.<param>"
    )


def _in_ref(ref: Mapping[str, Any], slot: str, parts: list[str], loc: Loc) -> tuple[Loc, type]:
    entry = SLOTS[slot].get(ref["name"])
    fields = entry.params_model.model_fields
    name = parts[0]
    kind = SLOTS[slot].singular
    if name not in fields:
        raise ValueError(
            f"{kind} '{ref['name']}' has no parameter {name!r} "
            f"(its parameters: {', '.join(fields) or 'none'})"
        )
    value = (ref.get("params") or {}).get(name)
    if len(parts) > 1:
        if isinstance(value, Mapping) and "name" in value:
            return _in_ref(value, slot, parts[1:], (*loc, "params", name))
        raise ValueError(f"{kind} '{ref['name']}': {name!r} is a number, not a plugin")
    numbers = set(annotation_types(fields[name].annotation))  # Optional/Annotated allowed
    if numbers not in ({int}, {float}):
        raise ValueError(
            f"{kind} '{ref['name']}': {name!r} is not a single number, so it cannot be mutated"
        )
    return (*loc, "params", name), numbers.pop()
