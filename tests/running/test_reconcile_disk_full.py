"""A driver-side OSError (the results folder's disk fills up mid-run) ends `lrtune run` with
exit 1 and one paragraph naming the path and the free space, every MLflow run closed, and the
experiment's lock released."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from fs_helpers import mounted_tmpfs  # type: ignore[import-not-found]
from lrtune.testing import start_lrtune

pytestmark = pytest.mark.slow


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs."""
    with mounted_tmpfs(tmp_path / "disk", "2m") as mount:
        yield mount


def test_a_full_results_disk_exits_1_with_one_paragraph_and_closes_the_runs(
    tmp_path: Path, tiny_disk: Path, job_file: Any
) -> None:
    path = job_file(
        tmp_path,
        "full",
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 1280},
        results_dir=str(tiny_disk / "results"),
    )
    proc = start_lrtune("run", str(path), cwd=tmp_path, stderr_apart=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.rstrip().endswith(" running"):  # a trial runs: its records are open
            break
    # Now the disk fills up (another program's file): the driver's next write there fails.
    try:
        with open(tiny_disk / "filler", "wb") as filler:
            while True:
                filler.write(b"x" * 4096)
                filler.flush()
    except OSError:
        pass
    assert os.statvfs(tiny_disk).f_bavail == 0
    stdout, stderr = proc.communicate(timeout=600)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-3000:])
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("lrtune: error: the lrtune driver could not write "), last
    assert str(tiny_disk) in last and "bytes free on the file system of" in last, last
    assert "Traceback" not in done.stderr.split("lrtune: error:")[-1]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("full")
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    assert len(parent) == 1 and parent[0].info.status == "FAILED", [r.info for r in runs]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert not (tmp_path / "ray_results" / "full.lrtune.lock").exists()
