"""Helpers for population tests: tiny population jobs written to a temporary folder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]

POLICY = {"lr": 3e-4, "schedule": {"name": "cosine", "params": {"min_factor": 0.1}}}

POPULATION = {
    "name": "pbt",
    "size": 2,
    "interval": 256,
    "resample_probability": 0.0,
    "mutable": {
        "lr": {"low": 1e-5, "high": 1e-2},
        "schedule.min_factor": {"low": 0.0, "high": 0.5},
    },
}


def population_job(folder: Path, name: str, **fields: Any) -> dict[str, Any]:
    """A tiny population job (PPO CartPole, 128-step iterations) as plain data."""
    data = tiny_job(
        name,
        folder,
        budget={"trial_env_steps": 768},
        policy=copy.deepcopy(POLICY),
        population=copy.deepcopy(POPULATION),
    )
    data.pop("trials")  # a population sets it
    data.update(fields)
    return data


@pytest.fixture()
def make_job() -> Any:
    """`population_job`, as a fixture (test folders have no __init__.py to import from)."""
    return population_job


@pytest.fixture()
def write_job() -> Any:
    """`write_yaml`, as a fixture."""
    return write_yaml
