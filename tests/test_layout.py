"""The source root `platform/` must never shadow the standard library's `platform` module."""

from __future__ import annotations

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
