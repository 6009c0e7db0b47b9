"""Getting lrtune (and the user's packages) onto every node through Ray's runtime environment.

A working directory alone puts neither lrtune's source root (``platform/``) on the path nor
any package's entry points (the plugin registry finds third-party plugins through them) in
place. So each project is built into a wheel at submit time (``pip wheel --no-deps``, offline,
cached by content), the wheel is unpacked (installing a pure-Python wheel is unpacking it), and
its top-level entries — the packages *and* the ``*.dist-info`` folder with the entry points —
go to the cluster as ``py_modules``. Ray uploads each one once (by content hash) and puts it on
``PYTHONPATH`` of the driver and every worker; dependencies (Ray, torch, ...) are expected on
the nodes already (the image in ``k8s/`` has them). ``py_modules`` holding a ``.whl`` would make
Ray run ``pip install --target``, which re-installs every dependency: lrtune avoids that.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lrtune.cluster._spec import ClusterError

# Never part of a shipped project or working directory (names, matched anywhere).
SKIP_DIRS = (
    ".git",
    ".hg",
    ".venv",
    "venv",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".tox",
    "node_modules",
    "*.egg-info",
    "build",
    "dist",
    ".whl",
    "results",
    "ray_results",
    "mlruns",
    "mlartifacts",
)
SKIP_FILES = ("*.pyc", "*.pyo", "mlflow.db", "*.ckpt", "*.whl")
COMPLETE = ".lrtune-complete"
# What building lrtune's own wheel needs from its checkout (tests and the rest stay behind).
LRTUNE_PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE*", "setup.cfg", "platform")
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class StagedPackage:
    """One package ready to ship: the local paths to pass as ``py_modules`` and a label."""

    label: str
    modules: tuple[str, ...]


def cache_dir() -> Path:
    """Where built and unpacked packages are kept: ``$LRTUNE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/lrtune``, else ``~/.cache/lrtune``."""
    if os.environ.get("LRTUNE_CACHE_DIR"):
        return Path(os.environ["LRTUNE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "lrtune"


def lrtune_source_root() -> Path | None:
    """The project folder lrtune runs from (``pyproject.toml`` beside ``platform/``), or None
    when lrtune is installed from a wheel."""
    import lrtune

    package = Path(lrtune.__file__).resolve().parent
    root = package.parent.parent
    pyproject = root / "pyproject.toml"
    if package.parent.name == "platform" and pyproject.is_file():
        if 'name = "lrtune"' in pyproject.read_text(encoding="utf-8"):
            return root
    return None


def stage_lrtune() -> StagedPackage:
    """lrtune itself: a wheel built from its source tree, or (installed from a wheel) the
    installed package and its ``.dist-info``."""
    root = lrtune_source_root()
    if root is not None:
        return stage_project(root, include=LRTUNE_PROJECT_FILES)
    import importlib.metadata

    import lrtune

    dist = importlib.metadata.distribution("lrtune")
    info = getattr(dist, "_path", None)
    modules = [str(Path(lrtune.__file__).resolve().parent)]
    if info is not None and Path(info).is_dir():
        modules.append(str(info))
    return StagedPackage(f"lrtune {dist.version} (installed)", tuple(modules))


def stage_user_package(path: Path) -> StagedPackage:
    """One entry of ``cluster.py_modules``: a project folder (built into a wheel), a ``.whl``,
    a package folder or a single ``.py`` module (both shipped as they are)."""
    if not path.exists():
        raise ClusterError(
            f"cluster.py_modules: {path} does not exist (paths are relative to the job file)."
        )
    if path.is_file() and path.suffix == ".whl":
        return _unpack(path, _digest_files([(path.name, path)]))
    if path.is_dir() and ((path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
        return stage_project(path)
    if path.is_dir() and (path / "__init__.py").is_file():
        return StagedPackage(f"{path.name} (package folder)", (str(path),))
    if path.is_file() and path.suffix == ".py":
        return StagedPackage(f"{path.name} (module)", (str(path),))
    raise ClusterError(
        f"cluster.py_modules: {path} is neither a project (pyproject.toml or setup.py), a "
        "wheel (.whl), a package folder (__init__.py) nor a .py module."
    )


def stage_project(root: Path, include: Iterable[str] | None = None) -> StagedPackage:
    """Build ``root`` into a wheel (offline, no dependencies; cached by the content of its
    files) and unpack it; entry points come along in its ``.dist-info``. ``include`` limits
    the project's top-level entries that take part (glob patterns)."""
    patterns = tuple(include) if include is not None else None
    files = [
        (rel, path)
        for rel, path in project_files(root)
        if patterns is None or _matches(rel.split("/", 1)[0], patterns)
    ]
    digest = _digest_files(files)
    target = cache_dir() / "modules" / f"{root.name}-{digest[:16]}"
    if (target / COMPLETE).is_file():
        return _staged(target, "wheel, cached")
    with tempfile.TemporaryDirectory(prefix="lrtune-wheel-") as tmp:
        src = Path(tmp) / "src"
        for rel, path in files:
            dest = src / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
        out = Path(tmp) / "out"
        command = [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            str(src),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            raise ClusterError(
                f"building a wheel of {root} took over {BUILD_TIMEOUT_S} s; build one yourself "
                "and list the .whl in cluster.py_modules."
            ) from None
        wheels = sorted(out.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise ClusterError(
                f"could not build a wheel of {root} (pip wheel --no-build-isolation: {tail}). "
                "Install its build backend here, or build the wheel yourself and list the .whl "
                "in cluster.py_modules."
            )
        return _unpack(wheels[0], digest, target=target, how="wheel, built now")


def project_files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(relative path, file)`` of a project's files, sorted, without caches, virtualenvs,
    build outputs, results, MLflow stores and checkpoints."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _matches(d, SKIP_DIRS))
        for name in sorted(names):
            path = Path(folder) / name
            if _matches(name, SKIP_FILES) or not path.is_file():
                continue
            yield path.relative_to(root).as_posix(), path


def _matches(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def _digest_files(files: Iterable[tuple[str, Path]]) -> str:
    sha = hashlib.sha256()
    for rel, path in files:
        sha.update(rel.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        sha.update(b"\0")
    return sha.hexdigest()


def _unpack(
    wheel: Path, digest: str, target: Path | None = None, how: str = "wheel"
) -> StagedPackage:
    """Unpack a wheel (an install of a pure-Python wheel) into the cache, once."""
    name = wheel.name.split("-")[0]
    target = target or cache_dir() / "modules" / f"{name}-{digest[:16]}"
    if (target / COMPLETE).is_file():
        return _staged(target, how)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                dest = (work / member).resolve()
                if not dest.is_relative_to(work.resolve()):
                    raise ClusterError(f"{wheel}: refusing an entry outside the wheel: {member}")
            archive.extractall(work)
        (work / COMPLETE).write_text(wheel.name)
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    except zipfile.BadZipFile:
        shutil.rmtree(work, ignore_errors=True)
        raise ClusterError(f"{wheel} is not a wheel (not a zip file).") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _staged(target, how)


def _staged(target: Path, how: str) -> StagedPackage:
    """The top-level entries of an unpacked wheel that Ray should ship as ``py_modules``:
    packages, single modules and ``.dist-info``; ``.data`` (scripts, headers) is left out."""
    modules = []
    for entry in sorted(target.iterdir()):
        if entry.name == COMPLETE or entry.name.endswith(".data"):
            continue
        if entry.is_dir() or entry.suffix == ".py":
            modules.append(str(entry))
    if not modules:
        raise ClusterError(f"the wheel unpacked in {target} holds no Python package.")
    parts = (target / COMPLETE).read_text().strip().split("-")
    label = f"{parts[0]} {parts[1]}" if len(parts) > 2 else target.name
    return StagedPackage(f"{label} ({how})", tuple(modules))
