"""Helpers for experiment tests: tiny jobs written to a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]

TINY_PPO = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "num_envs_per_env_runner": 1,
}


def write_job(folder: Path, name: str, **fields: Any) -> Path:
    """A job YAML in ``folder`` with tiny defaults; ``fields`` override top-level keys."""
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": 256},
        "trials": {"num": 2, "max_concurrent": 2, "max_failures": 1},
        "scheduler": {"name": "none"},
        "hyperparams": dict(TINY_PPO),
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    data.update(fields)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture()
def job_file() -> Any:
    """`write_job`, as a fixture (test folders have no __init__.py to import from)."""
    return write_job


@pytest.fixture()
def workdir(tmp_path: Path) -> Iterator[Path]:
    """Run in a temporary folder (results, ray_results and mlflow.db land there)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)
