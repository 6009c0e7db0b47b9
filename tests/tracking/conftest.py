"""Fixtures of the tracking tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tracking_helpers import RestartableServer  # type: ignore[import-not-found]


@pytest.fixture()
def restartable_server(tmp_path: Path) -> Iterator[RestartableServer]:
    """A stopped `RestartableServer` in its own folder; killed at the end of the test."""
    base = tmp_path / "server"
    base.mkdir()
    server = RestartableServer(base)
    try:
        yield server
    finally:
        server.kill()
