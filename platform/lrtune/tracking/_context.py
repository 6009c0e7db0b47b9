"""What reproduces a run: versions, git commit, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("lrtune", "ray", "torch", "gymnasium", "optuna", "mlflow")


def package_versions() -> dict[str, str]:
    """Installed versions of lrtune and the stack it runs on."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(start: Path | None = None) -> str | None:
    """The git commit of the project checkout (the working tree's HEAD), or None outside git."""
    here = start or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def cpu_model() -> str:
    """The CPU model name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the CUDA devices torch sees (empty without CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def run_context() -> dict[str, str]:
    """Tags for the experiment's parent run."""
    tags = {f"version.{k}": v for k, v in package_versions().items()}
    commit = git_commit()
    if commit:
        tags["git.commit"] = commit
    tags["host.cpu"] = cpu_model()
    tags["host.cpus"] = str(os.cpu_count())
    tags["host.gpus"] = ", ".join(gpu_names()) or "none"
    tags["host.python"] = platform.python_version()
    return tags
