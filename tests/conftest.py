"""Shared fixtures: one embedded loopback Ray per test session, skips for CUDA-only tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

# Before anything imports Ray: bind the embedded Ray to loopback (see lrtune.running).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``gpu`` tests where CUDA is absent."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[Any]:
    """One embedded Ray (2 CPUs, loopback) shared by every test that needs it."""
    import ray

    from lrtune.running import init_local_ray

    context = init_local_ray(num_cpus=2)
    yield context
    ray.shutdown()
