"""Resume with what the user runs now: the experiment's env-step budget continues its count
from the trials' results (it does not restart from zero)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_the_experiment_budget_continues_its_count_after_a_resume(
    tmp_path: Path, job_file: Any, lrtune_process: Any
) -> None:
    path = job_file(
        tmp_path,
        "budgeted",
        policy={"lr": 3e-4},
        # Four trials one at a time, but the experiment pays for two: 2 × 512 env steps.
        budget={"trial_env_steps": 512, "experiment_env_steps": 1024},
        trials={"num": 4, "max_concurrent": 1, "max_failures": 1},
    )
    proc = lrtune_process.start(path, tmp_path)
    lines: list[str] = []
    seen: list[str] = []
    deadline = time.monotonic() + 400
    assert proc.stdout is not None
    while time.monotonic() < deadline and len(seen) < 2:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.rstrip().endswith(" running") and line.split()[1] not in seen:
            seen.append(line.split()[1])
    proc.send_signal(signal.SIGINT)  # the second trial has started: stop, then resume
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, ("".join(lines) + out)[-3000:]
    assert len(seen) == 2, "".join(lines)[-3000:]

    again = lrtune_process.start(path, tmp_path)
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out[-3000:]
    assert "resuming" in out
    summary = json.loads((tmp_path / "results" / "budgeted" / "summary.json").read_text())
    # The progress view shows a trial id's last 10 characters.
    steps = {t["trial_id"][-10:]: t["env_steps"] for t in summary["trials"]}
    # The first trial's 512 steps count after the resume: the second trial's 512 end the
    # experiment, and no third trial trains (a count from zero would have run one more).
    assert steps[seen[0]] == 512 and steps[seen[1]] == 512, steps
    assert sum(steps.values()) <= 1024 + 128, steps
