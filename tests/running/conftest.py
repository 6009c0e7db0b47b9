"""Helpers for experiment tests: tiny jobs written to a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]


def write_job(folder: Path, name: str, **fields: Any) -> Path:
    """A job YAML in ``folder`` with tiny defaults; ``fields`` override top-level keys."""
    return write_yaml(folder, name, tiny_job(name, folder, **fields))


@pytest.fixture()
def job_file() -> Any:
    """`write_job`, as a fixture (test folders have no __init__.py to import from)."""
    return write_job
