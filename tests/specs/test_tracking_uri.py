"""Where MLflow records: the command's --tracking-uri, the job's tracking.uri, then MLflow's own
MLFLOW_TRACKING_URI environment variable, then ./mlflow.db."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]
from lrtune.specs import parse_job


def _dry_run_uri(job_file: Path, cwd: Path, env: dict[str, str], *extra: str) -> str:
    """The tracking URI `lrtune run --dry-run` would record to (the real entry point)."""
    done = subprocess.run(
        [sys.executable, "-m", "lrtune", "run", str(job_file), "--dry-run", *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout[done.stdout.index("{") :])
    uri: str = plan["tracking_uri"]
    return uri


def test_the_environment_variable_is_the_default_when_the_job_names_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_job("uri", tmp_path, policy={"lr": 1e-3})
    del data["tracking"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert parse_job(data).tracking.resolved_uri == "http://127.0.0.1:5999"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert parse_job(data).tracking.resolved_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_the_job_file_and_the_command_line_win_over_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'from_env.db'}"}
    data = tiny_job("uri", tmp_path, policy={"lr": 1e-3})
    del data["tracking"]
    bare = write_yaml(tmp_path, "bare", data)
    assert _dry_run_uri(bare, tmp_path, env) == env["MLFLOW_TRACKING_URI"]
    named = write_yaml(tmp_path, "named", tiny_job("uri", tmp_path, policy={"lr": 1e-3}))
    assert _dry_run_uri(named, tmp_path, env) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    flag = f"sqlite:///{tmp_path / 'flag.db'}"
    assert _dry_run_uri(named, tmp_path, env, "--tracking-uri", flag) == flag
