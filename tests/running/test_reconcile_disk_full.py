"""Full disks mid-run, each on a real small tmpfs filled by another program's file once a trial
runs:

- the results folder's disk: a driver-side OSError ends `lrtune run` with exit 1 and one
  paragraph naming the path and the free space, every MLflow run closed, the lock released;
- the storage path's disk (Tune's trial and experiment files): the same exit 1 and paragraph
  (Tune's torn files are not a traceback), and after space is freed the experiment resumes, or,
  where Tune's own experiment state was cut off, is refused naming that file (not restarted
  silently with fewer trials), and ``--restart`` runs it whole;
- the sqlite MLflow store's disk: the run ends normally with every undelivered tracking call in
  its journal, and after space is freed ``lrtune sync`` leaves every metric step once and no
  run RUNNING.

CI runs as root, so each test mounts its own tmpfs (`fs_helpers.mounted_tmpfs`); elsewhere they
skip, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from fs_helpers import mounted_tmpfs  # type: ignore[import-not-found]
from lrtune.testing import start_lrtune

ITERATION = 128  # env steps per iteration of the tests' tiny PPO jobs

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
        # One at a time: the second trial starts on the first one's re-used actor, where Tune
        # wraps a callback's OSError in a TuneError (once printed as a traceback).
        trials={"num": 2, "max_concurrent": 1, "max_failures": 1},
        results_dir=str(tiny_disk / "results"),
    )
    done = run_filling(path, tmp_path, tiny_disk)
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-3000:])
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("lrtune: error: the lrtune driver could not write "), last
    assert str(tiny_disk) in last and "bytes free on the file system of" in last, last
    assert "Traceback" not in done.stderr.split("lrtune: error:")[-1]
    # A trial whose start could not be described has no run: nothing tags or ends one.
    assert "MLflow refused" not in done.stdout + done.stderr, done.stderr[-3000:]

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("full")
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    assert len(parent) == 1 and parent[0].info.status == "FAILED", [r.info for r in runs]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    assert not (tmp_path / "ray_results" / "full.lrtune.lock").exists()


def run_filling(job: Path, cwd: Path, disk: Path) -> subprocess.CompletedProcess[str]:
    """``lrtune run job``; once a trial runs (its records are open), ``disk`` fills up with
    another program's file, so the run's next write there fails."""
    proc = start_lrtune("run", str(job), cwd=cwd, stderr_apart=True)
    assert proc.stdout is not None
    head = []
    for line in proc.stdout:
        head.append(line)
        if line.rstrip().endswith(" running"):
            break
    # SQLite deletes its rollback journal after each transaction, which can free a few
    # blocks just after the disk filled: fill again until none is free.
    for _ in range(50):
        try:
            with open(disk / "filler", "ab") as filler:
                while True:
                    filler.write(b"x" * 4096)
                    filler.flush()
        except OSError:
            pass
        if os.statvfs(disk).f_bavail == 0:
            break
        time.sleep(0.05)
    assert os.statvfs(disk).f_bavail == 0
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(head) + stdout, stderr)


def lrtune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m lrtune *args`` to its end."""
    proc = start_lrtune(*args, cwd=cwd, stderr_apart=True)
    stdout, stderr = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def runs_of(uri: str, name: str) -> list[Any]:
    """Every MLflow run of experiment ``name`` (deleted ones too)."""
    from mlflow.entities import ViewType

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    return list(client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL))


def test_a_full_storage_path_exits_1_with_one_paragraph_then_resumes_or_refuses_by_name(
    tmp_path: Path, tiny_disk: Path, job_file: Any
) -> None:
    storage = tiny_disk / "ray_results"
    path = job_file(
        tmp_path,
        "store",
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 1280},
        storage_path=str(storage),
    )
    done = run_filling(path, tmp_path, tiny_disk)
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-3000:])
    last = [line for line in done.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("lrtune: error: the lrtune driver could not write "), last
    assert str(storage) in last and "bytes free on the file system of" in last, last
    assert "Traceback" not in done.stderr.split("lrtune: error:")[-1]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = runs_of(uri, "store")
    assert not [r for r in runs if r.info.status == "RUNNING"], [r.info for r in runs]
    assert not (storage / "store.lrtune.lock").exists()

    (tiny_disk / "filler").unlink()
    again = lrtune("run", str(path), cwd=tmp_path)
    if "--restart: Tune's experiment state" in last:
        # Tune's experiment state was cut off: the rerun says so and changes nothing.
        assert again.returncode == 2, (again.stdout[-2000:], again.stderr[-3000:])
        message = again.stderr.strip().splitlines()[-1]
        assert "Tune's experiment state" in message and "--restart" in message, message
        assert str(storage / "store" / "experiment_state-") in message, message
        assert len(runs_of(uri, "store")) == len(runs)
        again = lrtune("run", str(path), "--restart", cwd=tmp_path)
    assert again.returncode == 0, (again.stdout[-3000:], again.stderr[-3000:])
    summary = json.loads((tmp_path / "results" / "store" / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["completed", "completed"], summary
    assert all(t["env_steps"] >= 1280 for t in summary["trials"]), summary
    assert not [r for r in runs_of(uri, "store") if r.info.status == "RUNNING"]


def test_a_full_sqlite_store_keeps_every_call_in_the_journal_and_sync_delivers_each_once(
    tmp_path: Path, tiny_disk: Path, job_file: Any
) -> None:
    uri = f"sqlite:///{tiny_disk / 'mlflow.db'}"
    path = job_file(
        tmp_path,
        "full-store",
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 1280},
        tracking={"uri": uri},
    )
    done = run_filling(path, tmp_path, tiny_disk)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    said = [line for line in done.stdout.splitlines() if line.startswith("lrtune: tracking")]
    assert any("not delivered to MLflow" in line and "lrtune sync" in line for line in said), (
        done.stdout[-3000:]
    )
    summary = json.loads((tmp_path / "results" / "full-store" / "summary.json").read_text())
    assert [t["env_steps"] for t in summary["trials"]] == [1280, 1280], summary

    (tiny_disk / "filler").unlink()
    synced = lrtune("sync", "full-store", "--results-dir", str(tmp_path / "results"), cwd=tmp_path)
    assert synced.returncode == 0, (synced.stdout, synced.stderr[-3000:])
    assert "the journal is empty" in synced.stdout, synced.stdout
    client = MlflowClient(uri)
    runs = runs_of(uri, "full-store")
    assert not [r for r in runs if r.info.status == "RUNNING"], [r.info for r in runs]
    trials = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    assert sorted(r.data.tags["lrtune.trial_id"] for r in trials) == sorted(
        t["trial_id"] for t in summary["trials"]
    )
    for run in trials:
        steps = [int(m.step) for m in client.get_metric_history(run.info.run_id, "score")]
        assert sorted(steps) == list(range(ITERATION, 1280 + 1, ITERATION)), steps
