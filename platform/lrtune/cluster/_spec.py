"""The job's ``cluster:`` section on the cluster side: its errors, and validation of a raw
mapping. The model itself (`ClusterSpec`) lives in `lrtune.specs` so that `lrtune validate`
checks the section with the rest of the job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from lrtune.registry import LRTuneError
from lrtune.specs import ClusterSpec, EntrypointResources, describe_validation_error
from lrtune.specs._cluster import DEFAULT_STOP_WAIT_S, RESERVED_ENV_VARS

__all__ = [
    "DEFAULT_STOP_WAIT_S",
    "RESERVED_ENV_VARS",
    "ClusterError",
    "ClusterSpec",
    "EntrypointResources",
    "parse_cluster",
]


class ClusterError(LRTuneError):
    """A cluster section, address, token or submission that cannot be used."""


def parse_cluster(raw: Mapping[str, Any] | None, label: str = "<job>") -> ClusterSpec:
    """Validate a job's raw ``cluster:`` mapping (None: all defaults); `ClusterError` if bad."""
    if raw is None:
        return ClusterSpec()
    try:
        return ClusterSpec.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(f"cluster.{p}" for p in describe_validation_error(exc))
        raise ClusterError(f"{label}: invalid job: {problems}") from None
