"""Spec files: safe YAML loading, LR policy files (jobs and search spaces come next)."""

from lrtune.specs._errors import describe_validation_error, spec_error
from lrtune.specs._policy import dump_policy, load_policy, parse_policy
from lrtune.specs._yaml import MAX_BYTES, MAX_DEPTH, SpecError, load_yaml, read_source

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "SpecError",
    "describe_validation_error",
    "dump_policy",
    "load_policy",
    "load_yaml",
    "parse_policy",
    "read_source",
    "spec_error",
]
