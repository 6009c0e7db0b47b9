"""The layout: the source root `platform/` never shadows the standard library's `platform`
module, and `lrtune plugins` shows every registry slot."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_platform_dir_is_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_no_module_named_platform_py_under_source_root() -> None:
    offenders = [p for p in (ROOT / "platform").rglob("platform.py")]
    assert offenders == []


def test_stdlib_platform_works_under_pytest() -> None:
    assert platform.system() in {"Linux", "Darwin", "Windows"}
    assert "site-packages" not in str(platform.__file__)
    assert Path(platform.__file__).parent != ROOT / "platform"


def test_stdlib_platform_works_from_repo_root_in_a_fresh_interpreter() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import platform, lrtune; print(platform.system())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() in {"Linux", "Darwin", "Windows"}


def test_package_is_installed_not_path_hacked() -> None:
    import lrtune

    assert Path(lrtune.__file__).resolve().is_relative_to(ROOT / "platform" / "lrtune")


def test_lrtune_plugins_lists_every_slot_each_with_entries() -> None:
    # The slots of the design: the LR policy's four, populations, and agents, searchers and
    # early-stopping schedulers beside them; each entry in them passes the shared contract
    # (tests/registry/test_plugin_contract.py, tests/learners/test_agents.py).
    out = subprocess.run(
        [sys.executable, "-m", "lrtune", "plugins", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    slots: dict[str, list[str]] = {}
    for entry in json.loads(out.stdout):
        slots.setdefault(entry["slot"], []).append(entry["name"])
    from lrtune.registry import SLOTS  # its names are pinned in tests/registry/test_registry.py

    assert list(slots) == list(SLOTS)
    assert {"ppo", "dqn", "sac"} <= set(slots["agents"])
    assert {"tpe", "cmaes", "gp", "qmc", "random", "grid"} <= set(slots["searchers"])
    assert {"asha", "median", "hyperband", "none"} <= set(slots["schedulers"])
