"""Tracking: MLflow runs per experiment and trial, and the context that reproduces a run."""

from lrtune.tracking._context import package_versions, run_context
from lrtune.tracking._lineage import LINEAGE_FILE, ancestry_segments, ancestry_text, trajectory
from lrtune.tracking._mlflow import (
    PARENT_TAG,
    RUN_STATUS,
    TAG_EXPERIMENT,
    TAG_JOB_HASH,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
    Tracker,
    TrialRecorder,
    flatten,
    last_error_line,
)

__all__ = [
    "LINEAGE_FILE",
    "PARENT_TAG",
    "RUN_STATUS",
    "TAG_EXPERIMENT",
    "TAG_JOB_HASH",
    "TAG_ROLE",
    "TAG_STATUS",
    "TAG_TRIAL_ID",
    "Tracker",
    "TrialRecorder",
    "ancestry_segments",
    "ancestry_text",
    "flatten",
    "last_error_line",
    "package_versions",
    "run_context",
    "trajectory",
]
