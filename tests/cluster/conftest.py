"""Fixtures for cluster tests; the helpers themselves live in cluster_helpers.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cluster_helpers import FakeDashboard, write_job  # type: ignore[import-not-found]


@pytest.fixture()
def job_file() -> Any:
    """`write_job`, as a fixture."""
    return write_job


@pytest.fixture()
def make_dashboard() -> Any:
    """`FakeDashboard` itself, to build one with other settings."""
    return FakeDashboard


@pytest.fixture()
def fake_dashboard() -> Iterator[FakeDashboard]:
    """A fake dashboard on 127.0.0.1 that wants ``Authorization: Bearer good-token``."""
    with FakeDashboard() as dash:
        yield dash
