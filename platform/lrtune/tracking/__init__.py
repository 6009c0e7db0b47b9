"""Tracking: MLflow runs per experiment and trial, and the context that reproduces a run."""

from lrtune.tracking._context import package_versions, run_context
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
    "PARENT_TAG",
    "RUN_STATUS",
    "TAG_EXPERIMENT",
    "TAG_JOB_HASH",
    "TAG_ROLE",
    "TAG_STATUS",
    "TAG_TRIAL_ID",
    "Tracker",
    "TrialRecorder",
    "flatten",
    "last_error_line",
    "package_versions",
    "run_context",
]
