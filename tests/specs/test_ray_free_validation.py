"""Validating a job (`lrtune validate`, `--dry-run`, `load_job`) starts nothing heavy: no Ray,
no torch, no Optuna sampler, no MLflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JOBS = sorted((ROOT / "jobs").glob("*.yaml"))


def test_loading_each_shipped_job_imports_no_ray_torch_or_mlflow() -> None:
    # One fresh process per job would cost seconds each; one process loads them in turn and
    # records, after each, whether any ray, torch or mlflow module has appeared since the start.
    code = (
        "import json, sys\n"
        "from lrtune.specs import load_job\n"
        "seen = {}\n"
        f"for path in {[str(j) for j in JOBS]!r}:\n"
        "    load_job(path)\n"
        "    heavy = [m for m in sys.modules if m.split('.')[0] in ('ray', 'torch', 'mlflow')]\n"
        "    seen[path] = sorted(heavy)[:3]\n"
        "print(json.dumps(seen))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen) == len(JOBS) >= 8
    assert {Path(p).name: mods for p, mods in seen.items() if mods} == {}
