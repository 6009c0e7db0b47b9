"""Safe YAML loading with limits (no tags executed, no huge or deeply nested documents), and
the one place numbers are read as YAML 1.2 reads them (`yaml_number`, `Whole`, `Real`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from lrtune.registry import SpecError

MAX_BYTES = 1 << 20
MAX_DEPTH = 100
MAX_ALIASES = 1000
MAX_NODES = 200_000

#: The safe loader (C-accelerated where available): never constructs objects from tags.
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: The configuration of a spec file's sections: unknown keys refused, frozen, defaults validated.
FROZEN = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# ------------------------------------------------------------------------------------ numbers

# PyYAML follows YAML 1.1, which reads exponents without a dot (`1e-4`, `2e4`) as strings;
# YAML 1.2 (and users) read them as floats.
_EXP_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def yaml_number(value: Any) -> Any:
    """``"1e-4"`` as the float meant (YAML 1.2); lists and mappings converted recursively;
    anything else unchanged. Every number of a spec file or a command line passes here."""
    if isinstance(value, str) and _EXP_NUMBER.match(value.strip()):
        return float(value)
    if isinstance(value, list | tuple):
        return [yaml_number(v) for v in value]
    if isinstance(value, Mapping):
        return {k: yaml_number(v) for k, v in value.items()}
    return value


def _number(value: Any, *, whole: bool = False) -> Any:
    """A number as YAML 1.2 reads it (``2e4``), booleans refused; ``whole``: ``20000.0`` as
    20000."""
    if isinstance(value, bool):
        raise ValueError(f"must be a {'whole ' * whole}number, not a boolean")
    value = yaml_number(value)
    if whole and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


#: A whole number field of a spec file (``2e4`` and ``20000.0`` accepted).
Whole = Annotated[int, BeforeValidator(lambda value: _number(value, whole=True))]
#: A finite real number field (``1e-4`` accepted, booleans refused).
Real = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]
#: A free mapping (plugin params, hyperparams, env config) whose numbers are read as YAML 1.2.
Settings = Annotated[
    dict[str, Any], BeforeValidator(lambda v: yaml_number(v) if isinstance(v, Mapping) else v)
]
_POSITIVE_WHOLE: TypeAdapter[int] = TypeAdapter(Annotated[Whole, Field(ge=1)])


def positive_whole(text: str) -> int:
    """A command-line whole number ≥ 1 read as a `Whole` field is (``8e4``, ``1e1``);
    ValueError otherwise."""
    try:
        return _POSITIVE_WHOLE.validate_python(text.strip())
    except ValidationError:
        raise ValueError(
            f"expected a positive whole number (like 8 or 8e4), got {text!r}"
        ) from None


def is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the OS refuses (too long, with NUL bytes)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_source(source: str | Path) -> tuple[str, str]:
    """Return ``(label, text)`` for a path to a YAML file, or for inline YAML text.

    A string that names an existing file is read from it; any other string is inline YAML.
    """
    path = Path(source)
    if is_file(path):
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise SpecError(
                f"{path}: the file is {size} bytes; spec files are limited to {MAX_BYTES} bytes "
                "(1 MiB). Split it, or point to large data by path instead of inlining it."
            )
        raw = path.read_bytes()
        label = str(path)
    else:
        if isinstance(source, Path) or (
            str(source).endswith((".yaml", ".yml")) and "\n" not in str(source)
        ):
            raise SpecError(f"{source}: no such file. Check the path (relative to {Path.cwd()}).")
        raw = str(source).encode("utf-8", "surrogateescape")
        label = "<inline>"
        if len(raw) > MAX_BYTES:
            raise SpecError(f"{label}: inline YAML over {MAX_BYTES} bytes is refused.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{label}: not UTF-8 text (byte {exc.start}); spec files are YAML documents."
        ) from None
    if "\x00" in text:
        raise SpecError(f"{label}: contains NUL bytes; spec files are YAML text.")
    return label, text


def load_yaml(source: str | Path) -> tuple[str, Any]:
    """Parse one YAML document safely; return ``(label, data)``.

    Refuses documents over 1 MiB, nested deeper than 100 levels or with more than 1000 aliases,
    before constructing anything; tags are never executed (safe loader).
    """
    label, text = read_source(source)
    try:
        depth = 0
        aliases = 0
        for event in yaml.parse(text, Loader=YAML_LOADER):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SpecError(
                        f"{label}: nested deeper than {MAX_DEPTH} levels; refused. Spec files "
                        "are a few levels deep."
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise SpecError(f"{label}: more than {MAX_ALIASES} YAML aliases; refused.")
        docs = list(yaml.load_all(text, Loader=YAML_LOADER))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{label}: not valid YAML{where}: {problem}.") from None
    except RecursionError:
        raise SpecError(f"{label}: nested too deeply; refused.") from None
    if len(docs) != 1:
        raise SpecError(
            f"{label}: expected exactly one YAML document, found {len(docs)}; "
            "remove extra '---' separators."
        )
    guard_data(label, docs[0])
    return label, docs[0]


def guard_data(label: str, data: Any) -> None:
    """Refuse documents that expand (through YAML aliases) to more than `MAX_NODES` values,
    or that refer to themselves; counted without recursion, stopping at the limit."""
    stack = [data]
    count = 0
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise SpecError(
                f"{label}: the document expands to more than {MAX_NODES} values (YAML aliases "
                "repeating large parts, or referring to themselves); refused. Write spec files "
                "out without aliases."
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
