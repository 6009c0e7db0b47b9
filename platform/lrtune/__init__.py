"""lrtune: find the best learning-rate policy for deep RL agents, at cluster scale.

The Python API the ``lrtune`` command is a thin layer over::

    import lrtune

    job = lrtune.load_job("jobs/quickstart.yaml", overrides=["trials.num=4"])
    outcome = lrtune.run_job(job)            # Tune trials, Optuna search, MLflow records
    outcome.best.policy, outcome.best.score  # the winning LR policy and its score
    summary = lrtune.read_results("results/quickstart")   # what a finished run left

Names are imported on first use, so ``import lrtune`` stays cheap (no Ray, no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_job": "lrtune.specs",
    "load_policy": "lrtune.specs",
    "load_space": "lrtune.specs",
    "JobSpec": "lrtune.specs",
    "LRPolicySpec": "lrtune.policies",
    "SpecError": "lrtune.specs",
    "run_job": "lrtune.running",
    "read_results": "lrtune.running",
    "RunOutcome": "lrtune.running",
    "build_algorithm_config": "lrtune.learners",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrtune' has no attribute {name!r}")
