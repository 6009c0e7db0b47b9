"""The one formatter of validation errors: pydantic errors as ``field.path: problem`` sentences,
joined into one-paragraph spec errors that name file and field."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import AfterValidator, BaseModel, ValidationError, model_validator
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from lrtune.registry import SLOTS, LRTuneError
from lrtune.specs._yaml import SpecError

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def short(value: Any) -> str:
    """``repr(value)``, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def error_message(err: ErrorDetails | Mapping[str, Any], plain: bool = False) -> str:
    """One pydantic error's problem as a sentence (without its location), with the value given;
    ``plain``: pydantic's message alone (callers that say the value themselves)."""
    msg = str(err["msg"]).removeprefix("Value error, ")
    if plain:
        return msg
    if err["type"] == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if err["type"] not in ("missing", "value_error") and "input" in err:
        msg = f"{msg} (got {short(err['input'])})"
    return msg


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One ``field.path: problem`` string per error.

    Messages that start with ``params.`` (plugin parameter errors) are joined to their field's
    path with a dot, so they read ``schedule.params.t_max: ...``.
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = error_message(err)
        sep = "." if msg.startswith("params.") else ": "
        lines.append(f"{loc}{sep}{msg}" if loc else msg)
    return lines


def spec_error(label: str, kind: str, exc: ValidationError) -> SpecError:
    """A `SpecError` for ``kind`` (e.g. ``LR policy``) loaded from ``label``."""
    return SpecError(f"{label}: invalid {kind}: " + "; ".join(describe_validation_error(exc)))


def raise_problems(title: str, problems: Iterable[Problem]) -> None:
    """Raise a pydantic `ValidationError` with one error per ``(loc, message)``.

    Raised inside a validator, pydantic prefixes each ``loc`` with the validator's own position,
    so nested models report full paths (``space.schedule.cosine.min_factor``).
    """
    details: list[InitErrorDetails] = []
    for loc, message in dict.fromkeys(problems):  # each problem once, in order
        error = PydanticCustomError("value_error", "{problem}", {"problem": message})
        details.append(InitErrorDetails(type=error, loc=loc, input=None))
    if details:
        raise ValidationError.from_exception_data(title, details)


def problem_check(check: Callable[[Any], Iterable[Problem]]) -> Any:
    """A pydantic after-validator from a model's check written as a generator of ``(loc,
    message)`` problems: it raises them all, each located at its field (`raise_problems`)."""

    def validate(self: BaseModel) -> BaseModel:
        raise_problems(type(self).__name__, check(self))
        return self

    return model_validator(mode="after")(validate)


def registered(slot: str) -> AfterValidator:
    """A field validator (``Annotated[str, registered("schedulers")]``): the name of an entry
    of registry slot ``slot``; an unknown name gets the registry's message (its suggestions)."""

    def check(name: str) -> str:
        try:
            SLOTS[slot].get(name)
        except LRTuneError as exc:
            raise ValueError(str(exc)) from None
        return name

    return AfterValidator(check)


def complete_params(
    spec: Any, slot: str, name: str, prefix: Loc = ("params",), *, defaults: bool = False
) -> list[Problem]:
    """Validate ``spec.params`` by the parameter model of entry ``name`` of ``slot`` and store
    them typed (the keys given; with ``defaults``, every parameter); else one problem per bad
    key, under ``prefix``."""
    model = SLOTS[slot].get(name).params_model
    try:
        validated = model.model_validate(dict(spec.params))
    except ValidationError as exc:
        problems: list[Problem] = []
        for err in exc.errors():
            msg = error_message(err)
            if err["type"] == "extra_forbidden":
                msg = (
                    f"{slot[:-1]} {name!r} has no parameter {err['loc'][0]!r} (it takes: "
                    f"{', '.join(model.model_fields) or 'none'}; see `lrtune plugins {slot}`)"
                )
            problems.append(((*prefix, *err["loc"]), msg))
        return problems
    dumped = validated.model_dump(mode="json", exclude_unset=not defaults)
    object.__setattr__(spec, "params", dumped)  # the spec is frozen
    return []
