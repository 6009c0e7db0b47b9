"""A real `lrtune run` SIGKILLed at three points, rerun after each, ends with whole records.

The kill points: during sampling (at the first result line), between a result and its checkpoint
(at once on a result line of the resumed run: Tune saves the checkpoint after the callbacks that
print it), and during the final summary (as results/<name>/summary.json appears, before the
parent run is closed and the table printed). After each kill the driver's Ray processes are
killed by process id (`benchmarks/chaos.py`), and the same command runs again; the last run must
end normally with every trial finished once, one MLflow run per trial and none RUNNING, no
RUNNING Optuna trial, and each run's ``score`` steps every multiple of 128 (the iteration) up
to its final env steps, each once.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TRIALS, ENV_STEPS = 4, 640  # 5 iterations a trial: 20 result lines, kills land mid-run
ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _chaos_module() -> ModuleType:
    """benchmarks/chaos.py (benchmarks/ is not a package): its driver and checks."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "chaos.py"
    spec = importlib.util.spec_from_file_location("lrtune_chaos_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


chaos = _chaos_module()


def kill_at_result(driver: Any, nth: int, limit: float = 240) -> str:
    """SIGKILL ``driver`` as soon as it prints its ``nth`` result line; returns that line."""
    seen = 0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not driver.exited:
        for line in driver.poll_lines(0.05):
            if chaos.is_result_line(line):
                seen += 1
                if seen == nth:
                    driver.kill()
                    return str(line)
    driver.kill()
    raise AssertionError(f"no result line {nth} (saw {seen}):\n{driver.output()}")


def kill_at_file(driver: Any, path: Path, limit: float = 300) -> None:
    """SIGKILL ``driver`` as soon as ``path`` exists (polled every few milliseconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not driver.exited:
        if path.exists():
            driver.kill()
            return
        driver.poll_lines(0.005)
    driver.kill()
    raise AssertionError(f"{path} never appeared before the run ended:\n{driver.output()}")


def test_sigkill_during_sampling_before_a_checkpoint_and_in_the_summary_then_rerun(
    tmp_path: Path,
) -> None:
    job = chaos.chaos_job(tmp_path, "chaos", trials=TRIALS, env_steps=ENV_STEPS)
    summary = tmp_path / "results" / "chaos" / "summary.json"
    started = time.monotonic()

    first = chaos.Driver(job, tmp_path, ENV)
    kill_at_result(first, 1)  # during sampling: trials are mid-iteration
    assert not summary.exists()

    second = chaos.Driver(job, tmp_path, ENV)
    kill_at_result(second, 3)  # a result printed, its checkpoint not yet saved
    assert "resuming" in "".join(second.lines), second.output()

    third = chaos.Driver(job, tmp_path, ENV)
    kill_at_file(third, summary)  # every trial done; parent run and table not yet
    assert "resuming" in "".join(third.lines), third.output()

    last = chaos.Driver(job, tmp_path, ENV)
    code = last.wait(300)
    assert code == 0, last.output()
    assert "resuming" in "".join(last.lines), last.output()

    report = chaos.check_records(tmp_path, "chaos", TRIALS, ENV_STEPS)
    assert report.failures == [], "\n".join(report.failures)
    assert report.finished == TRIALS
    assert (report.duplicate_points, report.missing_points) == (0, 0)
    assert (report.zombie_runs, report.zombie_trials) == (0, 0)
    assert time.monotonic() - started < 600
