"""benchmarks/driver_load.py runs end to end at tiny numbers and prints its figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "driver_load.py"


def test_driver_load_benchmark_runs_every_result_through_the_real_path(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--trials", "2", "--results", "3", "--stores", "sqlite"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    store = next(line for line in lines if line.startswith("store=sqlite trials="))
    # Every synthetic result reached Tune's result processing, every trial finished.
    assert "trials=2 finished=2 results=6 " in store, store
    breakdown = next(line for line in lines if line.startswith("store=sqlite ms_per_result:"))
    assert "TrialRecorder=" in breakdown and "ProgressPrinter=" in breakdown, breakdown
    assert re.fullmatch(
        r"trials=2 results_per_s=[0-9.]+ driver_ms_per_result=[0-9.]+", lines[-1]
    ), lines[-1]
