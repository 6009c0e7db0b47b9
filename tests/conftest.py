"""Shared fixtures: one embedded loopback Ray per test session, skips for CUDA-only tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
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


class LRTuneProcess:
    """`lrtune run JOB` as a child process (its own Ray), read line by line."""

    def start(
        self, path: Path, cwd: Path, env_overrides: dict[str, str | None] | None = None
    ) -> subprocess.Popen[str]:
        """Start ``python -m lrtune run path`` in ``cwd`` (not attached to a test's Ray);
        ``env_overrides`` sets (or, with None, removes) variables of the child's environment."""
        from lrtune.testing import start_lrtune  # late: after the Ray settings above

        return start_lrtune("run", str(path), cwd=cwd, env=env_overrides)

    def wait_for(
        self, proc: subprocess.Popen[str], needle: str, lines: list[str], limit: float
    ) -> None:
        """Read output into ``lines`` until a line holds ``needle`` (fail after ``limit`` s)."""
        assert proc.stdout is not None
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if needle in line:
                return
        raise AssertionError(f"never saw {needle!r}:\n{''.join(lines)[-3000:]}")


@pytest.fixture()
def lrtune_process() -> LRTuneProcess:
    """Start and read `lrtune run` processes (Ctrl-C and resume tests)."""
    return LRTuneProcess()


class PluginDistribution:
    """Builds a real third-party distribution with one lrtune entry point and pip-installs it
    into its own folder (not the venv); code then runs with that folder on ``PYTHONPATH``."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory

    def install(self, package: str, source: str, group: str, entry: str, attr: str) -> Path:
        """Install ``package`` (its ``__init__`` is ``source``) with the entry point
        ``entry = "package:attr"`` in ``group``; returns the folder it went to."""
        dist = package.replace("_", "-")
        src = self.factory.mktemp(f"{package}_src")
        (src / package).mkdir()
        (src / package / "__init__.py").write_text(source)
        (src / "pyproject.toml").write_text(
            "[build-system]\n"
            'requires = ["setuptools>=68"]\n'
            'build-backend = "setuptools.build_meta"\n'
            "[project]\n"
            f'name = "{dist}"\n'
            'version = "1.0"\n'
            f'[project.entry-points."{group}"]\n'
            f'{entry} = "{package}:{attr}"\n'
            "[tool.setuptools]\n"
            f'packages = ["{package}"]\n'
        )
        site = self.factory.mktemp(f"{package}_site")
        pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
        subprocess.run([*pip, "--target", str(site), str(src)], check=True, capture_output=True)
        assert list(site.glob(f"{package}-1.0.dist-info/entry_points.txt"))
        return site

    @staticmethod
    def pytest(site: Path, test_file: Path) -> subprocess.CompletedProcess[str]:
        """pytest on ``test_file`` (a plugin author's own) in a child process whose only plugin
        path is ``site``, without the variables this pytest set for its own run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(test_file)],
            cwd=test_file.parent,
            env={**env, "PYTHONPATH": str(site)},
            capture_output=True,
            text=True,
            timeout=300,
        )

    @staticmethod
    def run(site: Path, code: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``python -c code`` with the installed folder on ``PYTHONPATH``."""
        env = {**os.environ, "PYTHONPATH": str(site)}
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="session")
def plugin_distribution(tmp_path_factory: pytest.TempPathFactory) -> PluginDistribution:
    """Install third-party plugin distributions for entry-point tests."""
    return PluginDistribution(tmp_path_factory)


@pytest.fixture()
def workdir(tmp_path: Path) -> Iterator[Path]:
    """Run in a temporary folder (results, ray_results and mlflow.db land there)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


@contextlib.contextmanager
def running_mlflow_server(
    backend_uri: str, *, artifacts: Path | None = None, cwd: Path | None = None
) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 over ``backend_uri`` (`lrtune.testing`'s)."""
    from lrtune.testing import local_mlflow_server

    with local_mlflow_server(backend_uri, artifacts=artifacts, cwd=cwd) as url:
        yield url


@pytest.fixture()
def mlflow_server_on() -> Any:
    """`running_mlflow_server`, as a fixture (a context manager: ``with mlflow_server_on(uri)``)."""
    return running_mlflow_server
