"""One driver per experiment: a lock file next to the experiment's Tune folder.

``<storage>/<name>.lrtune.lock`` holds the driver's pid, host, the pid's start time and when it
took the lock. It is created with ``O_CREAT | O_EXCL`` (one creator wins); the check-and-take-over
of a stale lock runs under ``flock`` on a guard file, so two drivers that both find a dead
holder cannot both take it. The lock lives beside the experiment folder, not inside it, because
``--restart`` deletes that folder and must not delete the lock that guards it.

A lock is stale when its host is this host and its pid is gone (or is a newer process that
reused the number: its start time differs). A lock held on another host is never taken over:
this host cannot see whether that driver still runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lrtune.registry import LRTuneError

#: A lock file that is empty or unreadable for longer than this was cut off while being written.
TORN_GRACE_S = 10.0


class ExperimentLockedError(LRTuneError):
    """Another live driver runs the same experiment."""


@dataclass(frozen=True)
class LockHolder:
    """What a lock file says about the driver holding it."""

    pid: int
    host: str
    since: str
    pid_started: float | None = None

    def describe(self) -> str:
        """``pid 123 on host h since 2026-12-02T13:00:00Z``."""
        return f"pid {self.pid} on host {self.host} since {self.since}"


def lock_path(experiment_dir: Path) -> Path:
    """The lock file of an experiment (beside its Tune folder, which --restart deletes)."""
    return experiment_dir.parent / f"{experiment_dir.name}.lrtune.lock"


def _process_start(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def _alive(holder: LockHolder) -> bool:
    """Whether the holder (on this host) still runs; a reused pid is not the holder."""
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    started = _process_start(holder.pid)
    if started is None:
        # A zombie (exited, not yet reaped) holds no lock any more.
        return False
    if holder.pid_started is not None and abs(started - holder.pid_started) > 1.0:
        return False
    return True


def read_holder(path: Path) -> LockHolder | None:
    """The holder a lock file names, or None when it is empty or not lrtune's format."""
    try:
        data: Any = json.loads(path.read_text())
        return LockHolder(
            pid=int(data["pid"]),
            host=str(data["host"]),
            since=str(data["since"]),
            pid_started=float(data["pid_started"]) if data.get("pid_started") else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ExperimentLock:
    """The lock of one experiment; `acquire` takes it (or raises), `release` gives it back."""

    def __init__(self, experiment_dir: Path, name: str) -> None:
        self.path = lock_path(experiment_dir)
        self.name = name
        self.held = False
        self._mine: LockHolder | None = None

    def acquire(self, say: Callable[[str], None]) -> None:
        """Take the lock; ``say`` gets one line when a stale lock is taken over.

        Raises `ExperimentLockedError` naming the holder when a live driver has it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        guard = self.path.with_name(self.path.name + ".guard")
        with open(guard, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file closes
            try:
                self._create()
                return
            except FileExistsError:
                pass
            holder = read_holder(self.path)
            if holder is None:
                age = time.time() - self._mtime()
                if age < TORN_GRACE_S:
                    raise ExperimentLockedError(self._refusal(None)) from None
                say(
                    f"taking over the lock of experiment '{self.name}' ({self.path}): the file "
                    "was cut off while being written"
                )
            elif holder.host != socket.gethostname() or _alive(holder):
                raise ExperimentLockedError(self._refusal(holder)) from None
            else:
                say(
                    f"taking over the stale lock of experiment '{self.name}' "
                    f"({holder.describe()}: that process is gone)"
                )
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._create()

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _create(self) -> None:
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        pid = os.getpid()
        mine = LockHolder(
            pid=pid,
            host=socket.gethostname(),
            since=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            pid_started=_process_start(pid),
        )
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(mine.__dict__, handle)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise
        self._mine = mine
        self.held = True

    def _refusal(self, holder: LockHolder | None) -> str:
        who = holder.describe() if holder is not None else "a driver that is writing the lock now"
        return (
            f"experiment '{self.name}' is being run by another lrtune driver ({who}; lock file "
            f"{self.path}). Wait for it to end, or stop it, then rerun; two drivers on one "
            "experiment would mix their trials and records (--restart waits for the lock too). "
            "If that driver is gone for good (another host, or the file outlived it), delete "
            "the lock file."
        )

    def release(self) -> None:
        """Give the lock back (only if the file still names this driver)."""
        if not self.held:
            return
        self.held = False
        holder = read_holder(self.path)
        if holder is not None and self._mine is not None and holder.pid == self._mine.pid:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
