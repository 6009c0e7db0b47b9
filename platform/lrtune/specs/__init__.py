"""Spec files: safe YAML loading, LR policy files, search spaces and jobs."""

from lrtune.specs._cluster import ClusterSpec, EntrypointResources
from lrtune.specs._compile import CompiledSpace, compile_space
from lrtune.specs._errors import describe_validation_error, spec_error
from lrtune.specs._job import (
    BudgetSpec,
    EnvSpec,
    EvaluationSpec,
    JobSpec,
    MetricSpec,
    ModelSpec,
    ResourcesSpec,
    SchedulerSpec,
    SearchSpec,
    SeedsSpec,
    TrackingSpec,
    TrialsSpec,
)
from lrtune.specs._load import (
    apply_overrides,
    load_job,
    load_policy,
    load_space,
    parse_job,
    parse_policy,
    parse_space,
)
from lrtune.specs._point import TrialPoint
from lrtune.specs._population import MutableParam, PopulationCheckpointSpec, PopulationSpec
from lrtune.specs._space import AgentSettings, Dimension, SearchSpaceSpec
from lrtune.specs._yaml import MAX_BYTES, MAX_DEPTH, SpecError, load_yaml, read_source

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "AgentSettings",
    "BudgetSpec",
    "ClusterSpec",
    "CompiledSpace",
    "Dimension",
    "EntrypointResources",
    "EnvSpec",
    "EvaluationSpec",
    "JobSpec",
    "MetricSpec",
    "ModelSpec",
    "MutableParam",
    "PopulationCheckpointSpec",
    "PopulationSpec",
    "ResourcesSpec",
    "SchedulerSpec",
    "SearchSpaceSpec",
    "SearchSpec",
    "SeedsSpec",
    "SpecError",
    "TrackingSpec",
    "TrialPoint",
    "TrialsSpec",
    "apply_overrides",
    "compile_space",
    "describe_validation_error",
    "load_job",
    "load_policy",
    "load_space",
    "load_yaml",
    "parse_job",
    "parse_policy",
    "parse_space",
    "read_source",
    "spec_error",
]
