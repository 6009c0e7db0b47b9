"""Turn pydantic validation errors into one-paragraph spec errors that name file and field."""

from __future__ import annotations

from pydantic import ValidationError

from lrtune.specs._yaml import SpecError


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One ``field.path: problem`` string per error.

    Messages that start with ``params.`` (plugin parameter errors) are joined to their field's
    path with a dot, so they read ``schedule.params.t_max: ...``.
    """
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = str(err["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling"
        elif err["type"] not in ("missing", "value_error") and "input" in err:
            got = repr(err["input"])
            msg = f"{msg} (got {got[:60] + '...' if len(got) > 60 else got})"
        if msg.startswith("params."):
            lines.append(f"{loc}.{msg}" if loc else msg)
        else:
            lines.append(f"{loc}: {msg}" if loc else msg)
    return lines


def spec_error(label: str, kind: str, exc: ValidationError) -> SpecError:
    """A `SpecError` for ``kind`` (e.g. ``LR policy``) loaded from ``label``."""
    problems = describe_validation_error(exc)
    return SpecError(f"{label}: invalid {kind}: " + "; ".join(problems))
