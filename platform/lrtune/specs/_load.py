"""Loading job, search-space and LR policy files, with ``--set key.path=value`` overrides.

Every problem is a `SpecError` whose message is one paragraph:
``<file>: invalid job: <field.path>: <problem>; <field.path>: <problem>``.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from lrtune.policies import LRPolicySpec
from lrtune.specs._errors import raise_problems, spec_error
from lrtune.specs._job import JobSpec, resolve_reference
from lrtune.specs._space import SearchSpaceSpec, annotation_types
from lrtune.specs._yaml import YAML_LOADER, SpecError, guard_data, load_yaml

MAX_OVERRIDE_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)


def _mapping(data: Any, label: str, shape: str) -> Mapping[str, Any]:
    """``data``, checked to be a mapping (``shape`` says what it should hold) of sane size."""
    if not isinstance(data, Mapping):
        raise SpecError(f"{label}: {shape}, got {type(data).__name__}.")
    guard_data(label, data)
    return data


def _validated(model: type[M], data: Any, label: str, kind: str, shape: str) -> M:
    """``data`` validated as ``model``; `SpecError` names each bad field of the ``kind``."""
    try:
        return model.model_validate(dict(_mapping(data, label, shape)))
    except ValidationError as exc:
        raise spec_error(label, kind, exc) from None


# ------------------------------------------------------------------------- policies and spaces


def parse_policy(data: Any, label: str = "<policy>") -> LRPolicySpec:
    """Validate already-parsed data as an LR policy; `SpecError` names each bad field."""
    shape = "an LR policy is a mapping with at least `lr:` (e.g. `lr: 3e-4`)"
    return _validated(LRPolicySpec, data, label, "LR policy", shape)


def load_policy(source: str | Path) -> LRPolicySpec:
    """Load an LR policy from a YAML file path or from inline YAML text."""
    label, data = load_yaml(source)
    return parse_policy(data, label)


def parse_space(data: Any, label: str = "<space>") -> SearchSpaceSpec:
    """Validate already-parsed data as a search space; `SpecError` names each bad field."""
    shape = (
        "a search space is a mapping of slots (lr, schedule, optimizer, gradients, feedback, "
        "hyperparams) to their families"
    )
    return _validated(SearchSpaceSpec, data, label, "search space", shape)


def load_space(path: str | Path) -> SearchSpaceSpec:
    """Load a search-space file (``search_spaces/*.yaml``)."""
    label, data = load_yaml(Path(path))
    return parse_space(data, label)


# -------------------------------------------------------------------------------------- jobs


def parse_job(
    data: Any,
    label: str = "<job>",
    base_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> JobSpec:
    """Validate already-parsed data as a job, after applying ``overrides``.

    A ``space`` (or ``policy``) given as a path is tried relative to ``base_dir`` (the job
    file's folder), then to the current directory.
    """
    shape = "a job is a mapping with at least name, agent, env, budget and a space or a policy"
    data = apply_overrides(_mapping(data, label, shape), overrides, label, base_dir=base_dir)
    space_file = data.get("space") if isinstance(data.get("space"), str) else None
    try:
        return JobSpec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        message = str(spec_error(label, "job", exc))
        in_space = any(len(err["loc"]) > 1 and err["loc"][0] == "space" for err in exc.errors())
        if space_file is not None and in_space:
            message += f" (the space is the file {space_file!r})"
        raise SpecError(message) from None


def load_job(path: str | Path, overrides: Sequence[str] = ()) -> JobSpec:
    """Load a job file (``jobs/*.yaml``), applying ``key.path=value`` overrides first."""
    path = Path(path)
    label, data = load_yaml(path)
    return parse_job(data, label, base_dir=path.parent, overrides=overrides)


# --------------------------------------------------------------------------------- overrides

_FREE = "free"  # a mapping whose keys are not fixed (hyperparams, env.config, families...)
_LEAF = "leaf"  # a single value


def parse_override_value(text: str, label: str, item: str) -> Any:
    """The value of ``--set key=value``: one YAML scalar or flow collection."""
    if len(text.encode("utf-8", "surrogateescape")) > MAX_OVERRIDE_BYTES:
        raise SpecError(
            f"{label}: override --set {item[:60]}...: the value is over "
            f"{MAX_OVERRIDE_BYTES} bytes; put it in the file instead."
        )
    try:
        value = yaml.load(text, Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(
            f"{label}: override --set {item}: the value is not YAML ({problem}); quote "
            "strings that contain ':' or '#', e.g. --set env.id='\"pkg.mod:Env-v0\"'."
        ) from None
    except RecursionError:
        raise SpecError(f"{label}: override --set {item[:60]}: nested too deeply.") from None
    guard_data(f"{label}: override --set {item[:60]}", value)
    return value


def apply_overrides(
    data: Mapping[str, Any],
    overrides: Sequence[str],
    label: str,
    *,
    base_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``data`` (a job) with each ``key.path=value`` set (a copy; ``data`` is not changed).

    Keys are checked against `JobSpec` at every level; a ``space`` or ``policy`` given as a
    path is loaded when an override reaches inside it.
    """
    out = dict(data)
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        parts = key.split(".")
        if not sep or not key or any(not p for p in parts):
            raise SpecError(
                f"{label}: invalid override {item!r}: write KEY.PATH=VALUE, e.g. "
                "--set budget.trial_env_steps=2e4 or --set search.sampler=random."
            )
        _set(out, parts, parse_override_value(text, label, item), label, item, base_dir)
    return out


def _set(
    root: dict[str, Any],
    parts: list[str],
    value: Any,
    label: str,
    item: str,
    base_dir: str | Path | None,
) -> None:
    node = root
    kind: type[BaseModel] | str = JobSpec
    for i, part in enumerate(parts):
        path = ".".join(parts[: i + 1])
        if isinstance(kind, type):
            fields = kind.model_fields
            if part not in fields:
                where = f"under {'.'.join(parts[:i])}" if i else "at the top level"
                raise SpecError(
                    f"{label}: invalid job: {path}: unknown key (from --set {item}); valid "
                    f"keys {where}: {', '.join(fields)}."
                )
            next_kind = _kind_of(fields[part].annotation)
        elif kind == _LEAF:
            parent = ".".join(parts[:i])
            raise SpecError(
                f"{label}: invalid job: {parent}: takes a single value, not keys (from --set "
                f"{item}); set it whole: --set {parent}=VALUE."
            )
        else:
            next_kind = _FREE
        if i == len(parts) - 1:
            node[part] = value
            return
        if kind is JobSpec and part in ("space", "policy"):
            # A referenced file or a combined space: loaded (merged) first, so that overrides
            # reach into it.
            try:
                raise_problems("JobSpec", resolve_reference(node, part, base_dir))
            except ValidationError as exc:
                raise spec_error(label, "job", exc) from None
        child = node.get(part)
        if child is not None and not isinstance(child, Mapping):
            raise SpecError(
                f"{label}: invalid job: {path}: is {str(child)[:40]!r}, not a mapping (from "
                f"--set {item}); set it whole: --set {path}=VALUE."
            )
        node[part] = dict(child or {})
        node, kind = node[part], next_kind


def _kind_of(annotation: Any) -> type[BaseModel] | str:
    """The model a field holds (descend with its fields), or `_FREE` / `_LEAF`."""
    kinds = annotation_types(annotation)
    models = [k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel)]
    if models:
        return models[0]
    free = any(typing.get_origin(k) in (dict, Mapping) or k in (dict, Any) for k in kinds)
    return _FREE if free else _LEAF
