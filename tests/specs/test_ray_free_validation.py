"""Validating a job (`lrtune validate`, `--dry-run`, `load_job`) starts nothing heavy: no Ray."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted((ROOT / "jobs").glob("*.yaml"))


@pytest.mark.parametrize("job", JOBS, ids=[j.stem for j in JOBS])
def test_loading_a_shipped_job_imports_no_ray(job: Path) -> None:
    code = (
        "import sys\n"
        "from lrtune.specs import load_job\n"
        f"job = load_job({str(job)!r})\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"{job.name} imported Ray: {done.stdout[:300]}"
