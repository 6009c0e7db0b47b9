"""``lrtune validate PATH...``: check job and search-space files without running anything."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lrtune.registry import LRTuneError

EXIT_OK, EXIT_BAD_INPUT = 0, 2
_SUFFIXES = (".yaml", ".yml")


def add_validate_parser(subparsers: Any) -> None:
    """Register the ``validate`` sub-command on an argparse sub-parsers object."""
    p = subparsers.add_parser(
        "validate",
        help="check job and search-space files (and the spaces jobs point to)",
        description="Validate each PATH as a job (a mapping with `agent:`) or a search space. "
        "A folder stands for the *.yaml files in it. Exit code 2 if any file is invalid.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="YAML files or folders")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a job field before validating (e.g. budget.trial_env_steps=2e4); "
        "applies to every job given",
    )
    p.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Validate every path; print ``ok  PATH (job|space|policy)`` or the error paragraph."""
    failed = False
    for path in _expand(args.paths):
        try:
            kind, warning = validate_file(path, args.overrides)
        except LRTuneError as exc:
            print(f"lrtune: error: {exc}", file=sys.stderr)
            failed = True
            continue
        except RecursionError:
            print(f"lrtune: error: {path}: nested too deeply; refused.", file=sys.stderr)
            failed = True
            continue
        except Exception as exc:  # never a traceback, whatever the file holds
            print(
                f"lrtune: error: {path}: internal error while validating ({type(exc).__name__}: "
                f"{str(exc)[:200]}); please report it.",
                file=sys.stderr,
            )
            failed = True
            continue
        print(f"ok  {path} ({kind})")
        if warning:
            print(f"lrtune: warning: {path}: {warning}", file=sys.stderr)
    return EXIT_BAD_INPUT if failed else EXIT_OK


def validate_file(path: str, overrides: Sequence[str] = ()) -> tuple[str, str | None]:
    """``(kind, warning)`` for a valid file; raises `LRTuneError` (one paragraph) otherwise.

    A mapping with ``agent`` is a job, one whose slots are single references an LR policy,
    anything else a search space.
    """
    from lrtune.search import sampler_warning
    from lrtune.specs import SpecError, load_yaml, parse_job, parse_policy, parse_space

    file = Path(path)
    try:
        is_file = file.is_file()
    except (OSError, ValueError):
        is_file = False
    if not is_file:
        if file.is_dir():
            raise SpecError(f"{path}: a folder without *.yaml files; nothing to validate.")
        raise SpecError(f"{path}: no such file. Check the path (relative to {Path.cwd()}).")
    label, data = load_yaml(file)
    if isinstance(data, dict) and "agent" in data:
        job = parse_job(data, label, base_dir=file.parent, overrides=overrides)
        return "job", sampler_warning(job)
    if _looks_like_policy(data):
        parse_policy(data, label)
        return "policy", None
    parse_space(data, label)
    return "space", None


def _looks_like_policy(data: Any) -> bool:
    """An LR policy file (``jobs/policies/*.yaml``): slots are single references
    (``schedule: {name: cosine}``) rather than families, or feedback is a list."""
    if not isinstance(data, Mapping):
        return False
    for slot in ("schedule", "optimizer", "gradients"):
        value = data.get(slot)
        if isinstance(value, str) or (isinstance(value, Mapping) and "name" in value):
            return True
    return isinstance(data.get("feedback"), list | str)


def _expand(paths: Sequence[str]) -> list[str]:
    out: list[str] = []
    for path in paths:
        p = Path(path)
        try:
            is_dir = p.is_dir()
        except (OSError, ValueError):
            is_dir = False
        if is_dir:
            found = sorted(str(f) for f in p.iterdir() if f.suffix in _SUFFIXES and f.is_file())
            out.extend(found or [path])
        else:
            out.append(path)
    return out
