"""Tracking: MLflow runs per experiment and trial, the journal that carries them through tracker
outages, and the context that reproduces a run.

Names are imported on first use: the MLflow recorder imports Ray Tune and MLflow (seconds),
which `redact_uri`'s callers (cluster submission) should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lrtune.tracking._redact import has_password, redact_uri

# The tag names and statuses live in lrtune.vocabulary; these are aliases kept for callers.
from lrtune.vocabulary import (
    PARENT_TAG,
    RUN_STATUS,
    TAG_EXPERIMENT,
    TAG_JOB_HASH,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
)

if TYPE_CHECKING:
    from lrtune.tracking._context import package_versions, run_context
    from lrtune.tracking._journal import (
        JOURNAL_DIR,
        JournalBusyError,
        TrackingJournal,
        journal_dir,
        open_journal,
    )
    from lrtune.tracking._lineage import (
        LINEAGE_FILE,
        ancestry_segments,
        ancestry_text,
        trajectory,
    )
    from lrtune.tracking._mlflow import (
        Tracker,
        TrialRecorder,
        flatten,
        last_error_line,
    )

_WHERE = {
    "package_versions": "_context",
    "run_context": "_context",
    "JOURNAL_DIR": "_journal",
    "JournalBusyError": "_journal",
    "TrackingJournal": "_journal",
    "journal_dir": "_journal",
    "open_journal": "_journal",
    "LINEAGE_FILE": "_lineage",
    "ancestry_segments": "_lineage",
    "ancestry_text": "_lineage",
    "trajectory": "_lineage",
    "Tracker": "_mlflow",
    "TrialRecorder": "_mlflow",
    "flatten": "_mlflow",
    "last_error_line": "_mlflow",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'lrtune.tracking' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lrtune.tracking.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "JOURNAL_DIR",
    "LINEAGE_FILE",
    "PARENT_TAG",
    "RUN_STATUS",
    "TAG_EXPERIMENT",
    "TAG_JOB_HASH",
    "TAG_ROLE",
    "TAG_STATUS",
    "TAG_TRIAL_ID",
    "JournalBusyError",
    "Tracker",
    "TrackingJournal",
    "TrialRecorder",
    "ancestry_segments",
    "ancestry_text",
    "flatten",
    "has_password",
    "journal_dir",
    "last_error_line",
    "open_journal",
    "package_versions",
    "redact_uri",
    "run_context",
    "trajectory",
]
