"""Starting an embedded Ray that listens on loopback only."""

from __future__ import annotations

import logging
import os
from typing import Any

# Ray resolves 127.0.0.1 to the machine's interface address unless clusters are "disabled";
# with this variable set before Ray is imported, GCS, raylet and workers bind 127.0.0.1.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def prepare_loopback_env(force: bool = False) -> None:
    """Set the variables that keep a local Ray on loopback, and patch an imported Ray too.

    ``force`` (what starting the embedded Ray does) overrides a value the user's environment
    holds: a local run listens on loopback unless the user names a cluster address to join.
    """
    for key, value in LOOPBACK_ENV.items():
        if force:
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)
    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0":
        from ray._private import ray_constants

        # Ray reads the variable once, at import: an already imported Ray is patched as well.
        ray_constants.ENABLE_RAY_CLUSTER = False


def init_local_ray(num_cpus: int | None = None, num_gpus: int | None = None, **kwargs: Any) -> Any:
    """Start (or join the already started) embedded Ray, bound to 127.0.0.1, quietly.

    Always a new instance (``address="local"``): with no address, `ray.init` joins the cluster
    that the machine's last `ray start` (or a `ray.cluster_utils.Cluster`) recorded in
    ``<tmp>/ray/ray_current_cluster``, so a local run would land on someone else's cluster,
    possibly off loopback. Joining a cluster takes an explicit address (`connect_ray_for_tune`).
    """
    prepare_loopback_env(force=True)
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    return ray.init(
        address="local",
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        configure_logging=True,
        logging_level=logging.WARNING,
        log_to_driver=kwargs.pop("log_to_driver", False),
        **kwargs,
    )


def local_resource_problem(cpus: float, gpus: float, ray_address: str | None) -> str | None:
    """Why a trial asking for ``cpus`` and ``gpus`` could never start on the embedded Ray of
    this machine (None where it can, or where the run joins a cluster: ``ray_address`` or
    ``RAY_ADDRESS``, which may add nodes). Tune would otherwise keep such trials pending
    forever, with only a warning every minute."""
    if ray_address or os.environ.get("RAY_ADDRESS"):
        return None
    have = os.cpu_count() or 1
    if cpus > have:
        return (
            f"resources.cpus: {cpus:g} CPUs per trial, but this machine has {have}, so no trial "
            f"could start on the local Ray; ask for at most {have} (fractions allowed), or run "
            "the job on a cluster (lrtune submit)"
        )
    if gpus > 0:
        import torch

        if not torch.cuda.is_available():
            return (
                f"resources.gpus: {gpus:g} GPU per trial, but torch here sees no GPU "
                "(torch.cuda.is_available() is False), so no trial could start on the local "
                "Ray; set resources.gpus: 0 here, or run the job on a cluster with GPUs "
                "(lrtune submit)"
            )
    return None


def connect_ray_for_tune(ray_address: str | None = None) -> None:
    """Before a Tune run: join the Ray at ``ray_address`` (or ``RAY_ADDRESS``; a cluster job's
    driver) or start the embedded loopback one, with Tune's legacy output engine selected.

    The legacy engine honours ``verbose=0`` (the new one prints its own banner and table);
    lrtune's `ProgressPrinter` is the live view. Frequent checkpoints are intended where a job
    asks for them (``trials.checkpoint_seconds: 0``, populations), so Tune's warning about
    frequent experiment-checkpoint syncs is off.

    Trials keep the run's working folder (``RAY_CHDIR_TO_TRIAL_DIR=0``, which Tune passes to
    its trial actors): Tune's default moves each into its trial folder, so an env reading
    ``maps/level.txt`` built at the run-start check and then failed every trial with
    FileNotFoundError. lrtune writes nothing by relative path; on a cluster the folder is the
    uploaded project's root. A value the user set stands.
    """
    prepare_loopback_env()
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    address = ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
    else:
        init_local_ray()
