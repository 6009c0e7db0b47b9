"""The cluster commands stay light: `lrtune jobs stop` and `--help` import neither Ray Tune nor
torch (they took 5 s to start when the CLI imported the driver module for one exception class,
and a `jobs stop` on a loaded head node landed that much later)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "ray.tune", "ray.rllib", "lrtune.running._run")

PROBE = """
import sys
from lrtune.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("HEAVY", [m for m in {heavy!r} if m in sys.modules])
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["jobs", "stop", "--help"], ["jobs", "list", "--help"], ["--version"]]
)
def test_the_cli_starts_without_ray_tune_or_torch(argv: list[str]) -> None:
    probe = PROBE.format(argv=argv, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout[-500:]
