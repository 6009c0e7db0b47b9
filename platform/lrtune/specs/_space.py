"""Search spaces over LR policies (`SearchSpaceSpec`, the files in ``search_spaces/``), as
README's "Jobs and search spaces" describes them.

Per LR slot a space names the families (registered plugins) to choose from and, per family,
its parameters: each a constant or a *dimension* (a mapping with ``distribution`` and/or
``values``), checked against the plugin's own parameter model when the file is loaded, so a
space that could sample an invalid policy is refused before anything runs. ``hyperparams``,
``model`` (`ModelSpec` fields) and ``agent_settings`` (`AgentSettings`) search the agent;
a job may combine several spaces (`merge_space_parts`).
"""

from __future__ import annotations

import json
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from lrtune.agents._base import COMMON_OWNED
from lrtune.policies import PLUGIN_SLOTS, PluginRef
from lrtune.registry import SLOTS, LRTuneError
from lrtune.specs._errors import Loc, Problem, error_message, raise_problems, short
from lrtune.specs._yaml import Real, Whole, yaml_number

Distribution = Literal["uniform", "log_uniform", "int", "log_int", "categorical"]
DISTRIBUTIONS: tuple[str, ...] = typing.get_args(Distribution)
NUMERIC_DISTRIBUTIONS = tuple(d for d in DISTRIBUTIONS if d != "categorical")

#: Sections of a space that search the agent around the LR policy (flat keys, no families).
AGENT_SECTIONS = ("hyperparams", "model", "agent_settings")


def annotation_types(annotation: Any) -> list[Any]:
    """The types a pydantic field annotation admits: ``Annotated`` unwrapped, unions (and
    ``Optional``) flattened, ``None`` left out."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return annotation_types(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [t for a in typing.get_args(annotation) for t in annotation_types(a)]
    return [] if annotation is type(None) else [annotation]


def choice_label(value: Any) -> Any:
    """The Optuna-compatible form of a choice: itself when Optuna accepts it as it is (None,
    bool, int, float, str), else canonical JSON."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


# -------------------------------------------------------------------------------- dimensions


class Dimension(BaseModel):
    """A searched parameter: a distribution, and/or an explicit list of ``values``.

    * ``uniform`` / ``log_uniform``: floats in ``[low, high]`` (log: ``low > 0``), optional
      ``step`` (uniform only);
    * ``int`` / ``log_int``: whole numbers in ``[low, high]``, optional ``step`` (int only);
    * ``categorical``: one of ``choices``;
    * ``values``: the points of a grid search (required by ``search.algorithm: grid``); alone,
      it is a categorical over them. Beside a range, each value must lie in it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    distribution: Distribution | None = None
    low: Real | None = None
    high: Real | None = None
    step: Real | None = None
    choices: tuple[Any, ...] | None = None
    values: tuple[Any, ...] | None = None

    @field_validator("choices", "values", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"must be a list (got {short(value)})")
        if isinstance(value, Mapping):
            raise ValueError("must be a list, not a mapping")
        return tuple(yaml_number(v) for v in value)

    @model_validator(mode="after")
    def _check(self) -> Dimension:
        problems = [*self._problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> Iterator[str]:
        dist, low, high, step = self.distribution, self.low, self.high, self.step
        if dist is None and self.values is None:
            yield (
                "give `distribution` (one of " + ", ".join(DISTRIBUTIONS) + ") or "
                "an explicit list of `values`"
            )
        if dist not in NUMERIC_DISTRIBUTIONS:
            for key in ("low", "high", "step"):
                if getattr(self, key) is not None:
                    yield (
                        f"`{key}` belongs to numeric distributions (uniform, log_uniform, int, "
                        f"log_int), not to {dist or 'a `values` list'}"
                    )
        elif low is None or high is None:
            yield f"{dist} needs `low` and `high`"
        else:
            if not low < high:
                yield f"needs low < high (got low={low:g}, high={high:g})"
            if dist in ("log_uniform", "log_int") and low <= 0:
                yield (
                    f"{dist} needs low > 0 (got {low:g}), use uniform/int for ranges that include 0"
                )
            if dist in ("int", "log_int") and not (low.is_integer() and high.is_integer()):
                yield f"{dist} needs whole-number bounds (got {low:g}, {high:g})"
            if step is not None and dist not in ("uniform", "int"):
                yield f"`step` is allowed with uniform and int, not {dist}"
            elif step is not None and step <= 0:
                yield f"step must be > 0 (got {step:g})"
            elif step is not None and dist == "int" and not step.is_integer():
                yield f"an int step must be a whole number (got {step:g})"
        if dist == "categorical":
            if not self.choices:
                yield "categorical needs a non-empty `choices` list"
            elif len({choice_label(c) for c in self.choices}) != len(self.choices):
                yield "categorical `choices` lists a choice twice"
        elif self.choices is not None:
            yield "`choices` belongs to distribution: categorical"
        if self.values is not None and (problem := self._values_problem()) is not None:
            yield problem

    def _values_problem(self) -> str | None:
        """The first problem of ``values`` (the first bad value: one is enough to fix)."""
        values, dist, low, high = self.values or (), self.distribution, self.low, self.high
        labels = {choice_label(c) for c in self.choices or ()}
        if not values:
            return "`values` must list at least one value"
        if len({choice_label(v) for v in values}) != len(values):
            return "`values` lists a value twice"
        for v in values:
            if dist in NUMERIC_DISTRIBUTIONS:
                if isinstance(v, bool) or not isinstance(v, int | float):
                    return f"`values` of a {dist} range must be numbers (got {short(v)})"
                if dist in ("int", "log_int") and not float(v).is_integer():
                    return f"`values` of an {dist} range must be whole numbers (got {v!r})"
                if low is not None and high is not None and not low <= v <= high:
                    return f"value {v!r} lies outside [low, high] = [{low:g}, {high:g}]"
            elif dist == "categorical" and labels and choice_label(v) not in labels:
                return f"value {short(v)} is not one of the `choices`"
        return None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        out = {k: v for k, v in data.items() if v is not None}
        if self.distribution in ("int", "log_int"):  # whole numbers read better as ints
            for key in ("low", "high", "step"):
                if isinstance(out.get(key), float):
                    out[key] = int(out[key])
        return out

    # ---- views used by the checks and by the compiler

    @property
    def is_int(self) -> bool:
        """Whether the dimension samples whole numbers."""
        return self.distribution in ("int", "log_int")

    def grid(self) -> list[tuple[Any, Any]]:
        """``(Optuna-form value, actual value)`` for each of ``values`` (grid points); a range's
        values are numbers, their own Optuna form."""
        values = [int(v) if self.is_int else v for v in self.values or ()]
        return [(choice_label(v), v) for v in values]

    def check_points(self) -> list[tuple[str, Any]]:
        """``(what, value)`` for every point that must be a valid parameter value: the range's
        low and high, every choice and every value."""
        conv: Callable[[float], Any] = int if self.is_int else float
        bounds = [("the range's low", self.low), ("the range's high", self.high)]
        return (
            [(what, conv(bound)) for what, bound in bounds if bound is not None]
            + [("choice", c) for c in self.choices or ()]
            + [("value", conv(v) if self.is_int else v) for v in self.values or ()]
        )


def _param_value(value: Any) -> Any:
    """A family parameter (or hyper-parameter): a `Dimension` when it is a mapping with
    ``distribution`` or ``values``, otherwise a constant (exponent strings read as floats)."""
    if isinstance(value, Dimension):
        return value
    if isinstance(value, Mapping) and ("distribution" in value or "values" in value):
        return Dimension.model_validate(dict(value))
    return yaml_number(value)


#: One axis of a grid search: its alternatives, each ``(what it picks by name, the dimensions
#: it adds by location)`` (`SearchSpaceSpec.grid_axes`).
GridAxis = list[tuple[dict[str, str], list[tuple[Loc, Dimension]]]]

ParamValue = Annotated[Any, BeforeValidator(_param_value)]
"""A constant, or a `Dimension`."""

Family = dict[str, ParamValue]


def _lr_value(value: Any) -> Any:
    if value is None or isinstance(value, Dimension):
        return value
    if isinstance(value, Mapping):
        return Dimension.model_validate(dict(value))
    number = yaml_number(value)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise ValueError(f"lr must be a number (got {value!r})")
    return number


def _feedback_lists(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value
    out: dict[Any, Any] = {}
    for key, refs in value.items():
        # YAML 1.1 reads `off:`/`on:` (and yes/no) as booleans; labels are names.
        label = {False: "off", True: "on"}[key] if isinstance(key, bool) else key
        label = str(label) if isinstance(label, int | float) else label
        if refs is None:
            refs = ()
        elif isinstance(refs, str | Mapping):
            refs = (refs,)
        out[label] = refs
    return out


def check_candidates(
    params: Mapping[str, Any],
) -> Iterator[tuple[str | None, str, Any, dict[str, Any]]]:
    """The points a family's parameters are validated at: every dimension at its first point,
    then each dimension moved alone to each of its other check points. Yields ``(the moved
    dimension or None, which check point, its value, the whole candidate)``."""
    dims = dims_of(params)
    base = {**constants_of(params), **{k: d.check_points()[0][1] for k, d in dims.items()}}
    yield None, "", None, dict(base)
    for dim_key, dim in dims.items():
        for what, point in dim.check_points()[1:]:
            yield dim_key, what, point, {**base, dim_key: point}


def dims_of(params: Mapping[str, Any]) -> dict[str, Dimension]:
    """The dimensions among a family's parameters."""
    return {k: v for k, v in params.items() if isinstance(v, Dimension)}


def constants_of(params: Mapping[str, Any]) -> dict[str, Any]:
    """The constants among a family's parameters."""
    return {k: v for k, v in params.items() if not isinstance(v, Dimension)}


# ------------------------------------------------------------------------- agent settings


class AgentSettings(BaseModel):
    """Agent settings lrtune turns into RLlib's when a trial is sampled (`agent_hyperparams`
    in ``specs/_compile.py``), parametrised so that every sampled combination is valid. Which
    agent takes which setting is the agent entry's (`lrtune.agents.AgentPlugin.agent_settings`).

    PPO:

    * ``num_minibatches``: minibatches per epoch; ``minibatch_size`` becomes
      ``train_batch_size_per_learner // num_minibatches`` (the trial's batch, searched or not),
      so a minibatch is never larger than the train batch (rl-zoo3 samples ``batch_size`` and
      ``n_steps`` apart and discards the pairs where it is).

    DQN (an ε-greedy ramp from 1.0, as rl-zoo3's ``exploration_initial_eps``):

    * ``exploration_fraction``: the fraction of ``budget.trial_env_steps`` over which ε falls
      linearly (rl-zoo3's ``exploration_fraction``);
    * ``exploration_final_eps``: ε at the end of the ramp and after it;

    DQN and SAC:

    * ``buffer_size``: the replay buffer's capacity (``replay_buffer_config.capacity``, its other
      entries as the agent's presets or the job set them);
    * ``updates_per_env_step``: gradient updates per sampled env step (rl-zoo3's
      ``gradient_steps / train_freq``); ``training_intensity`` becomes this times the trial's
      train batch, so the number of updates does not fall as a searched batch grows.

    Either exploration setting left out keeps the agent's own ramp end (its ``epsilon``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_minibatches: Whole | None = Field(default=None, ge=1, le=4096)
    exploration_fraction: Real | None = Field(default=None, gt=0, le=1)
    exploration_final_eps: Real | None = Field(default=None, ge=0, le=1)
    buffer_size: Whole | None = Field(default=None, ge=100, le=100_000_000)
    updates_per_env_step: Real | None = Field(default=None, gt=0, le=64)


#: `AgentSettings` field -> the RLlib setting (a ``hyperparams`` key) it replaces.
AGENT_SETTING_REPLACES: dict[str, str] = {
    "num_minibatches": "minibatch_size",
    "exploration_fraction": "epsilon",
    "exploration_final_eps": "epsilon",
    "buffer_size": "replay_buffer_config",
    "updates_per_env_step": "training_intensity",
}


def check_settings(
    model: type[BaseModel], params: Mapping[str, Any], what: str
) -> Iterator[Problem]:
    """Check a section of constants and dimensions against a settings model (`ModelSpec`,
    `AgentSettings`): unknown keys, and every point of every dimension (the others at their
    first point) validated by the model. Locations are the keys of ``params``."""
    fields = model.model_fields
    unknown = [key for key in params if key not in fields]
    for extra in unknown:
        yield (extra,), f"not a {what} setting; the settings are {', '.join(fields)}"
    if unknown:
        return
    seen: set[Loc] = set()
    for key, where, point, err in _point_errors(model, params):
        field = str(err["loc"][0]) if err["loc"] else ""
        loc: Loc = (field,) if field in params else ()
        if loc not in seen:
            seen.add(loc)
            at = f" at {where} {short(point)}" if key == field and key is not None else ""
            yield loc, f"{error_message(err, plain=True)}{at} (got {short(err.get('input'))})"


def _point_errors(
    model: type[BaseModel], params: Mapping[str, Any]
) -> Iterator[tuple[str | None, str, Any, Any]]:
    """``(moved dimension, which point, its value, pydantic error)`` for every error of
    ``model`` at each point of `check_candidates` (lazily: a caller may stop early)."""
    for key, what, point, candidate in check_candidates(params):
        try:
            model.model_validate(candidate)
        except ValidationError as exc:
            for err in exc.errors():
                yield key, what, point, err


# ------------------------------------------------------------------------------------- space


class SearchSpaceSpec(BaseModel):
    """A search space over LR policies (and optionally other hyper-parameters).

    Slots left out (``None``) are fixed by the job's policy. ``lr`` is the base learning rate,
    used for every optimizer family that does not set its own ``lr``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    version: Literal[1] = 1
    description: str = ""
    lr: Annotated[Dimension | float | None, BeforeValidator(_lr_value)] = None
    schedule: dict[str, Family] | None = None
    optimizer: dict[str, Family] | None = None
    gradients: dict[str, Family] | None = None
    feedback: Annotated[
        dict[str, tuple[PluginRef, ...]] | None, BeforeValidator(_feedback_lists)
    ] = None
    hyperparams: dict[str, ParamValue] = Field(default_factory=dict)
    model: dict[str, ParamValue] | None = None
    agent_settings: dict[str, ParamValue] | None = None

    @field_validator("lr")
    @classmethod
    def _check_lr(cls, value: Dimension | float | None) -> Dimension | float | None:
        if value is not None:
            raise_problems("lr", check_lr(value, ()))
        return value

    @field_validator("schedule", "optimizer", "gradients", "feedback")
    @classmethod
    def _check_slot(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Any:
        slot = str(info.field_name)
        if value is None:
            return None
        if not value:
            raise ValueError(
                "lists no alternative: give at least one (e.g. `off: []`), or leave the slot out "
                "to use the job's policy"
                if slot == "feedback"
                else "lists no family: list at least one, or leave the slot out to use the job's "
                "policy for it"
            )
        if slot != "feedback":
            raise_problems(slot, (p for n, ps in value.items() for p in check_family(slot, n, ps)))
            return value
        problems: list[Problem] = []
        resolved: dict[str, tuple[PluginRef, ...]] = {}
        for label, refs in value.items():  # names checked, defaults filled
            names = [r.name for r in refs]
            resolved[label] = ()
            for i, ref in enumerate(refs):
                if names.count(ref.name) > 1:
                    twice = f"rule '{ref.name}' listed twice: list each rule once"
                    problems.append(((label, i), twice))
                    continue
                try:
                    resolved[label] += (ref.resolved(SLOTS["feedback"]),)
                except ValueError as exc:
                    problems.append(((label, i), str(exc)))
        raise_problems("feedback", problems)
        return resolved

    @field_validator(*AGENT_SECTIONS)
    @classmethod
    def _check_agent_section(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Any:
        from lrtune.specs._job import ModelSpec  # here: specs/_job.py imports this module

        section, params = str(info.field_name), value or {}
        if section == "hyperparams":  # an agent's own (SAC's actor_lr): the job checks them
            why = "lrtune sets this itself ({}), search it through the LR policy"
            owned = [key for key in params if key in COMMON_OWNED]
            problems: Iterable[Problem] = [((k,), why.format(COMMON_OWNED[k])) for k in owned]
        elif section == "model":
            problems = check_settings(ModelSpec, params, "model")
        else:
            problems = check_settings(AgentSettings, params, "lrtune agent")
        raise_problems(section, problems)
        return value

    # ---- views

    @property
    def is_conditional(self) -> bool:
        """Whether some slot chooses among more than one family (conditional parameters)."""
        return any(len(getattr(self, s) or {}) > 1 for s in (*PLUGIN_SLOTS, "feedback"))

    def needs_base_lr(self) -> bool:
        """Whether some trial uses the base ``lr`` (an optimizer family without its own)."""
        return self.optimizer is None or any("lr" not in ps for ps in self.optimizer.values())

    def dimensions(self) -> dict[Loc, Dimension]:
        """Every dimension by its location in the space (``("lr",)``, ``("schedule", "cosine",
        "min_factor")``, ``("hyperparams", "gamma")``): the base ``lr``, then `grid_axes`'."""
        found: dict[Loc, Dimension] = {("lr",): self.lr} if isinstance(self.lr, Dimension) else {}
        return found | {
            loc: dim for axis in self.grid_axes() for _, dims in axis for loc, dim in dims
        }

    def grid_axes(self) -> list[GridAxis]:
        """The axes a grid search crosses: per slot its families (the base ``lr`` with each
        optimizer family that has no ``lr`` of its own), then the feedback labels, then each
        agent dimension alone. `grid_size` counts the points, `CompiledSpace.grid_points` lists
        them."""
        base: list[tuple[Loc, Dimension]] = (
            [(("lr",), self.lr)] if isinstance(self.lr, Dimension) else []
        )
        axes: list[GridAxis] = []
        for slot in PLUGIN_SLOTS:
            families = getattr(self, slot) or {}
            axis: GridAxis = []
            for name in sorted(families):
                params = dict(families[name])
                own_lr = params.pop("lr", None) if slot == "optimizer" else None
                dims: list[tuple[Loc, Dimension]]
                dims = [((slot, name, k), d) for k, d in sorted(dims_of(params).items())]
                if isinstance(own_lr, Dimension):
                    dims.append((("optimizer", name, "lr"), own_lr))
                elif slot == "optimizer" and "lr" not in families[name]:
                    dims += base
                axis.append(({slot: name} if len(families) > 1 else {}, dims))
            if axis:
                axes.append(axis)
        if not self.optimizer and base:
            axes.append([({}, base)])
        if self.feedback and len(self.feedback) > 1:
            axes.append([({"feedback": label}, []) for label in sorted(self.feedback)])
        for section in AGENT_SECTIONS:
            for key, dim in sorted(dims_of(getattr(self, section) or {}).items()):
                axes.append([({}, [((section, key), dim)])])
        return axes

    def grid_size(self) -> int:
        """Number of points of a grid search over the ``values`` of every dimension (the
        alternatives of an axis add up, axes multiply)."""
        return math.prod(
            sum(math.prod(len(d.values or ()) for _, d in dims) for _, dims in axis)
            for axis in self.grid_axes()
        )


# -------------------------------------------------------------------------------- the checks


def check_lr(value: Dimension | float, loc: Loc) -> list[Problem]:
    """A base or per-optimizer learning rate: a number > 0, or a dimension of such numbers."""
    if isinstance(value, Dimension):
        for what, point in value.check_points():
            if isinstance(point, bool) or not isinstance(point, int | float) or point <= 0:
                return [
                    (loc, f"a learning rate must be a number > 0, but {what} is {short(point)}")
                ]
        return []
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return [(loc, f"a learning rate must be a number > 0 (got {short(value)})")]
    if not math.isfinite(value) or value > 1e6:
        return [(loc, f"a learning rate must be finite and at most 1e6 (got {value!r})")]
    return []


def _allowed(params_model: type[BaseModel], key: str) -> str:
    """What a plugin parameter allows: its type and bounds, from the JSON schema."""
    try:
        prop = params_model.model_json_schema().get("properties", {}).get(key, {})
    except Exception:  # a plugin whose schema cannot be rendered: say nothing more
        return ""
    symbols = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    bounds = " ".join(f"{symbols[k]}{prop[k]}" for k in symbols if k in prop)
    kind = prop.get("type") or "|".join(
        str(o.get("type", "?")) for o in prop.get("anyOf", []) if isinstance(o, dict)
    )
    text = " ".join(p for p in (str(kind or ""), bounds) if p)
    return f" (allowed: {text})" if text else ""


def check_family(slot: str, name: str, params: Mapping[str, Any]) -> Iterator[Problem]:
    """Check one family of a plugin slot against its registry entry, and its parameter model at
    every point of `check_candidates`: plugin defaults fill the parameters left out, exactly as
    they will when a trial is sampled (a required parameter left out is an error). Problems
    are located inside the slot (``cosine.min_factor``).
    """
    registry = SLOTS[PLUGIN_SLOTS[slot]]
    try:
        entry = registry.get(name)
    except LRTuneError as exc:
        yield (name,), str(exc)
        return
    params = dict(params)
    if slot == "optimizer" and "lr" in params:
        yield from check_lr(params.pop("lr"), (name, "lr"))
    model = entry.params_model
    takes = ", ".join(model.model_fields) or "no parameters"
    unknown = [k for k in params if k not in model.model_fields]
    for extra in unknown:
        yield (
            (name, extra),
            f"not a parameter of {registry.slot} '{name}', which takes {takes} (see `lrtune "
            f"plugins {registry.slot}`)",
        )
    if unknown:
        return
    dims = dims_of(params)
    base_failed = False
    for key, what, point, err in _point_errors(model, params):
        if key is not None and base_failed:  # every other point shares the base's problem
            return
        base_failed = key is None
        field = str(err["loc"][0]) if err["loc"] else ""
        if err["type"] == "missing":
            yield (
                (name, field),
                f"required by {registry.slot} '{name}': give a constant or a dimension",
            )
            continue
        if key is not None and field == key:
            source = f"{what} {short(point)}"
        elif field in dims:
            first, value = dims[field].check_points()[0]
            source = f"{first} {short(value)}"
        else:
            source = short(err.get("input"))
        if key is not None and field != key:
            source += f" (with {key} at {what} {short(point)})"
        at: Loc = (name, field) if field in model.model_fields else (name,)
        msg = f"{error_message(err, plain=True)}: got {source}{_allowed(model, field)}"
        yield at, f"{msg}, see `lrtune plugins {registry.slot}`"


# --------------------------------------------------------------------------- combined spaces


_ONE_PART = "a combined space takes each slot and setting from one part; remove it from one of them"


def merge_space_parts(
    parts: Sequence[tuple[str, Mapping[str, Any]]],
) -> tuple[dict[str, Any], list[Problem]]:
    """Merge the parts of a combined space (``space: [lr.yaml, ppo_agent.yaml]``) into one space.

    ``parts`` are ``(label, data)``: a file's path, or ``space[i] (inline)``. Each part is first
    validated alone, so a bad entry is reported with its field and its part's label. Then slots
    (``lr``, ``schedule``, ``optimizer``, ``gradients``, ``feedback``) are taken whole from the
    one part that sets them, and ``hyperparams``, ``model`` and ``agent_settings`` key by key;
    a slot or key set by two parts is refused, naming both. Descriptions are joined with `` + ``.
    Returns ``(merged data, problems)``; locations are inside the space.
    """
    problems: list[Problem] = []
    for label, data in parts:
        try:
            SearchSpaceSpec.model_validate(dict(data))
        except ValidationError as exc:
            problems.extend(
                (tuple(err["loc"]), f"{error_message(err)} (in {label})") for err in exc.errors()
            )
    if problems:
        return {}, problems
    merged: dict[str, Any] = {"version": 1}
    owner: dict[Loc, str] = {}
    descriptions = [str(data["description"]) for _, data in parts if data.get("description")]
    for label, data in parts:
        for key, value in data.items():
            if key in ("version", "description") or value is None:
                continue
            entries = value.items() if key in AGENT_SECTIONS else [(None, value)]
            for sub, entry in entries:
                loc: Loc = (key,) if sub is None else (key, sub)
                if loc in owner:
                    problems.append((loc, f"set by both {owner[loc]} and {label}: {_ONE_PART}"))
                elif sub is None:
                    merged[key] = entry
                else:
                    merged.setdefault(key, {})[sub] = entry
                owner.setdefault(loc, label)
    if descriptions:
        merged["description"] = " + ".join(descriptions)
    return merged, problems
