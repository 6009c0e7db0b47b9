"""Helpers of the tracking tests (imported by name): a real `mlflow server` that can be killed
(SIGKILL) and started again on the same port and store, and the trial stand-in the recorder
reads (our own callback's inputs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TrialStandIn:
    """The attributes of a Tune trial the recorder reads."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=dict)
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None


class RestartableServer:
    """`mlflow server` on 127.0.0.1 at a fixed port over a sqlite store in ``base``."""

    def __init__(self, base: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.base = base
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, limit: float = 300) -> float:
        """Start it and wait until /health answers; returns the seconds that took."""
        began = time.monotonic()
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", "1"]
        command += ["--backend-store-uri", f"sqlite:///{self.base / 'server.db'}"]
        command += ["--artifacts-destination", str(self.base / "artifacts")]
        log = open(self.base / "server.log", "ab")
        # No job runner: four processes tracking never uses (see lrtune.testing.NO_JOB_RUNNER).
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.proc = subprocess.Popen(
            command, stdout=log, stderr=log, start_new_session=True, cwd=self.base, env=env
        )
        log.close()
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return time.monotonic() - began
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() - began > limit:
                tail = (self.base / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mlflow server did not start:\n{tail}")
            time.sleep(0.25)

    def kill(self) -> None:
        """SIGKILL the server's whole process group (no clean shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


def dead_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}"
