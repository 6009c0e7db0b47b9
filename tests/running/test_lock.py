"""One driver per experiment: a live lock refuses `lrtune run` (exit 2, naming the holder), a
stale one is taken over with a line saying so, and the lock goes away when the run ends."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lrtune.cli._main import main
from lrtune.running._lock import ExperimentLock, ExperimentLockedError, lock_path
from lrtune.running._run import experiment_paths
from lrtune.specs import load_job


@pytest.fixture()
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not this one (the holder of a lock)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # exited and reaped: the pid names no process
    return proc.pid


def _write_lock(
    path: Path, pid: int, host: str | None = None, started: float | None = None
) -> None:
    import psutil

    if started is None:
        try:
            started = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            started = 1.0
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": host or socket.gethostname(), "since": "2026-12-02T10:00:00Z"}
    path.write_text(json.dumps({**holder, "pid_started": started}))


def test_a_live_lock_refuses_a_second_run_and_restart_naming_the_holder(
    tmp_path: Path, job_file: Any, sleeper: subprocess.Popen[bytes], capsys: Any
) -> None:
    path = job_file(tmp_path, "locked", policy={"lr": 3e-4})
    experiment_dir, _ = experiment_paths(load_job(path))
    experiment_dir.mkdir(parents=True)
    (experiment_dir / "keep.txt").write_text("the first driver's files")
    lock = lock_path(experiment_dir)
    _write_lock(lock, sleeper.pid)

    for extra in ([], ["--restart"]):
        assert main(["run", str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert f"pid {sleeper.pid}" in err and socket.gethostname() in err, err
        assert "since 2026-12-02T10:00:00Z" in err and str(lock) in err
    # Nothing was touched: --restart waited for the lock too.
    assert (experiment_dir / "keep.txt").exists()
    assert json.loads(lock.read_text())["pid"] == sleeper.pid


def test_a_stale_lock_is_taken_over_with_a_line_and_released(tmp_path: Path) -> None:
    experiment_dir = tmp_path / "ray_results" / "exp"
    lock = lock_path(experiment_dir)
    dead = _dead_pid()
    _write_lock(lock, dead)
    said: list[str] = []
    taken = ExperimentLock(experiment_dir, "exp")
    taken.acquire(said.append)
    assert len(said) == 1 and f"pid {dead}" in said[0] and "stale" in said[0], said
    import os

    assert json.loads(lock.read_text())["pid"] == os.getpid()
    # A second driver (this same process, a second lock object) is refused while it is held.
    with pytest.raises(ExperimentLockedError, match=f"pid {os.getpid()}"):
        ExperimentLock(experiment_dir, "exp").acquire(said.append)
    taken.release()
    assert not lock.exists()


def test_a_reused_pid_is_stale_and_another_hosts_lock_is_never_taken(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    experiment_dir = tmp_path / "exp"
    lock = lock_path(experiment_dir)
    # The pid runs, but started long after the lock was written: a reused number.
    _write_lock(lock, sleeper.pid, started=1.0)
    said: list[str] = []
    ExperimentLock(experiment_dir, "exp").acquire(said.append)
    assert said and "stale" in said[0]

    lock.unlink()
    _write_lock(lock, _dead_pid(), host="some-other-host")
    with pytest.raises(ExperimentLockedError, match="some-other-host"):
        ExperimentLock(experiment_dir, "exp").acquire(said.append)


def test_a_torn_lock_file_is_refused_while_fresh(tmp_path: Path) -> None:
    experiment_dir = tmp_path / "exp"
    lock = lock_path(experiment_dir)
    lock.write_text("")  # a driver between creating the file and writing it
    with pytest.raises(ExperimentLockedError, match="writing the lock now"):
        ExperimentLock(experiment_dir, "exp").acquire(lambda line: None)
    import os

    os.utime(lock, (1.0, 1.0))  # long ago: cut off while being written
    said: list[str] = []
    ExperimentLock(experiment_dir, "exp").acquire(said.append)
    assert said and "cut off" in said[0]
