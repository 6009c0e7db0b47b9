"""Helpers for population tests: tiny population jobs written to a temporary folder."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

TINY_PPO = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "num_envs_per_env_runner": 1,
}

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
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": 768},
        "scheduler": {"name": "none"},
        "hyperparams": dict(TINY_PPO),
        "policy": copy.deepcopy(POLICY),
        "population": copy.deepcopy(POPULATION),
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    data.update(fields)
    return data


def write(folder: Path, name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``folder/name.yaml``."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture()
def make_job() -> Any:
    """`population_job`, as a fixture (test folders have no __init__.py to import from)."""
    return population_job


@pytest.fixture()
def write_job() -> Any:
    """`write`, as a fixture."""
    return write


@pytest.fixture()
def workdir(tmp_path: Path) -> Iterator[Path]:
    """Run in a temporary folder."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
