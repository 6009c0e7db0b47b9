"""Safe YAML loading with limits: no tags executed, no huge or deeply nested documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lrtune.registry import LRTuneError

MAX_BYTES = 1 << 20
MAX_DEPTH = 100
MAX_ALIASES = 1000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecError(LRTuneError, ValueError):
    """A spec file (policy, job, search space) that cannot be used; the message says why."""


def read_source(source: str | Path) -> tuple[str, str]:
    """Return ``(label, text)`` for a path to a YAML file, or for inline YAML text.

    A string that names an existing file is read from it; any other string is inline YAML.
    """
    path = Path(source) if not isinstance(source, Path) else source
    is_file = False
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # names too long or with NUL bytes are inline text
        is_file = False
    if is_file:
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
        for event in yaml.parse(text, Loader=_Loader):
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
        docs = list(yaml.load_all(text, Loader=_Loader))
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{label}: not valid YAML{where}: {problem}.") from None
    except RecursionError:
        raise SpecError(f"{label}: nested too deeply; refused.") from None
    if len(docs) != 1:
        raise SpecError(
            f"{label}: expected exactly one YAML document, found {len(docs)}; "
            "remove extra '---' separators."
        )
    return label, docs[0]
