"""Loading LR policy files (`LRPolicySpec` in YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lrtune.policies import LRPolicySpec
from lrtune.specs._errors import spec_error
from lrtune.specs._yaml import SpecError, load_yaml


def parse_policy(data: Any, label: str = "<policy>") -> LRPolicySpec:
    """Validate already-parsed data as an LR policy; `SpecError` names each bad field."""
    if not isinstance(data, Mapping):
        raise SpecError(
            f"{label}: an LR policy is a mapping with at least `lr:` (e.g. `lr: 3e-4`), "
            f"got {type(data).__name__}."
        )
    try:
        return LRPolicySpec.model_validate(dict(data))
    except ValidationError as exc:
        raise spec_error(label, "LR policy", exc) from None


def load_policy(source: str | Path) -> LRPolicySpec:
    """Load an LR policy from a YAML file path or from inline YAML text."""
    label, data = load_yaml(source)
    return parse_policy(data, label)


def dump_policy(spec: LRPolicySpec) -> dict[str, Any]:
    """The policy as plain data (YAML-ready), every parameter resolved."""
    return spec.model_dump(mode="json")
