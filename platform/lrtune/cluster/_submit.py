"""`lrtune submit`: a job file → ``lrtune run JOB`` as a Ray Job, after checks that fail fast.

The order: validate the job and its ``cluster:`` section, resolve the address, check the
tracking URI and paths (all offline) → find the token, check the cluster answers and accepts
it, count its nodes, look for the same experiment already running → stage lrtune and the
user's packages → submit through `JobSubmissionClient`. Nothing is submitted when a check fails.

The entrypoint is idempotent: the experiment's name and storage path are fixed by the job, so a
resubmission (after a failure, a stop, or on a fresh cluster over the same storage) resumes
through Tune's restore, with one MLflow run per trial (`lrtune.running.run_job`).
"""

from __future__ import annotations

import fnmatch
import os
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrtune.agents import require_env_id
from lrtune.cluster._client import ClusterClient, resolve_address
from lrtune.cluster._package import StagedPackage, lrtune_source_root, stage_lrtune
from lrtune.cluster._package import stage_user_package as _stage_user_package
from lrtune.cluster._spec import ClusterError, ClusterSpec, parse_cluster
from lrtune.specs import JobSpec, load_job, load_yaml
from lrtune.tracking._redact import has_password, redact_uri
from lrtune.vocabulary import (
    META_EXPERIMENT,
    META_JOB,
    META_JOB_FILE,
    META_JOB_HASH,
    META_PROBE,
    META_STORAGE,
    META_TRACKING_URI,
)

# Left out of the uploaded working directory (gitignore syntax, as Ray reads them): VCS and
# caches, virtualenvs, build outputs, results, Tune storage, MLflow stores and checkpoints.
WORKING_DIR_EXCLUDES = (
    ".git/",
    ".hg/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".mypy_cache/",
    ".ruff_cache/",
    ".pytest_cache/",
    ".hypothesis/",
    ".tox/",
    "node_modules/",
    "*.egg-info/",
    "/build/",
    "/dist/",
    "/.whl/",
    "results/",
    "ray_results/",
    "mlruns/",
    "mlartifacts/",
    "mlflow.db",
    "*.ckpt",
    "checkpoint_*/",
)
PROJECT_MARKERS = ("pyproject.toml", "setup.py", ".git")
LOCAL_TRACKING_SCHEMES = ("sqlite", "file")
REMOTE_TRACKING_PREFIXES = ("databricks",)  # `databricks`, `databricks://profile`
# The Ray job metadata keys are lrtune.vocabulary's (these two names kept for callers).
METADATA_HASH = META_JOB_HASH
METADATA_STORAGE = META_STORAGE


@dataclass
class Submission:
    """Everything `lrtune submit` decided before talking to the cluster."""

    job: JobSpec
    job_path: Path
    overrides: tuple[str, ...]
    spec: ClusterSpec
    address: str
    address_source: str
    working_dir: Path
    entrypoint: str
    experiment: str
    tracking_uri: str
    storage_path: str
    warnings: list[str] = field(default_factory=list)

    @property
    def job_hash(self) -> str:
        """The job's resolved hash (what makes a resubmission a resume)."""
        return self.job.resolved_hash()


@dataclass
class Submitted:
    """What a submission produced, for the user: ids and addresses, never the token."""

    submission_id: str
    dashboard: str
    experiment: str
    tracking_uri: str
    storage_path: str
    nodes: int
    packages: list[str]
    working_dir: str
    warnings: list[str]


def cluster_spec_of(job: JobSpec, label: str = "<job>") -> ClusterSpec:
    """The job's ``cluster:`` section as a `ClusterSpec` (raw dicts are validated here)."""
    raw: Any = job.cluster
    if isinstance(raw, ClusterSpec):
        return raw
    if raw is not None and not isinstance(raw, Mapping):
        raw = raw.model_dump() if hasattr(raw, "model_dump") else raw
    return parse_cluster(raw, label)


def prepare_submission(
    job_file: str | Path,
    overrides: Sequence[str] = (),
    *,
    cli_address: str | None = None,
    allow_local_tracking: bool = False,
    env: Mapping[str, str] | None = None,
) -> Submission:
    """Validate the job and everything about it that needs no cluster; `LRTuneError` if not."""
    env = os.environ if env is None else env
    job_path = Path(job_file).expanduser()
    job = load_job(job_path, overrides=overrides)  # SpecError names file and field
    job_path = job_path.resolve()
    spec = cluster_spec_of(job, str(job_file))
    address, source = resolve_address(cli_address, env, spec.address)
    working_dir = _working_dir(job_path, spec)
    warnings: list[str] = []
    _check_paths(job, working_dir)
    _check_references(job_path, working_dir)
    if ":" not in job.env.id:
        # The agent's action kinds against the env's, here and not in the job's logs on the
        # cluster. A gymnasium or lrtune id builds here too; a user module's id
        # (``pkg.mod:Name-v0``) may need the cluster's packages, so the run checks it there;
        # likewise an env that does not build here (a package only the cluster has).
        require_env_id(job.env.id, job.agent, env_config=job.env.config, must_build=False)
    uri = job.tracking.resolved_uri
    if _is_local_tracking(uri):
        if not allow_local_tracking:
            raise ClusterError(
                f"{job_file}: tracking URI {redact_uri(uri)} is a local MLflow store: the job's "
                "driver runs on the cluster's head node and would write it there, out of your "
                "reach (and SQLite takes one writer). Point tracking.uri at an MLflow server the "
                "cluster reaches (--set tracking.uri=http://mlflow:5000; k8s/mlflow.yaml runs "
                "one), or pass --allow-local-tracking."
            )
        if job.tracking.uri is None:
            warnings.append(
                "tracking.uri is unset: MLflow will write sqlite mlflow.db in the job's "
                "temporary working directory on the head node, which Ray removes later"
            )
    for name, ref in spec.secret_env().items():
        warnings.append(
            f"cluster.env_vars {name} comes from Kubernetes Secret {ref.secret} (key {ref.key}) "
            "and is not sent with a Ray Job (Ray stores and shows a job's environment): the "
            "cluster's pods must set it, as the RayCluster of `lrtune k8s render --raycluster` "
            "does"
        )
    for item in overrides:
        if has_password(item.partition("=")[2].strip()):
            raise ClusterError(
                f"--set {redact_uri(item.partition('=')[2].strip())}: a URI with a password "
                "would be part of the Ray Job's entrypoint, which the cluster stores and shows "
                "to anyone who can list its jobs. Give the URI without the password and put "
                "the login in the job file's tracking.uri, or in MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD on the cluster's nodes."
            )
    rel_job = job_path.relative_to(working_dir).as_posix()
    command = [spec.python, "-m", "lrtune", "run", rel_job]
    for item in overrides:
        command += ["--set", item]
    return Submission(
        job=job,
        job_path=job_path,
        overrides=tuple(overrides),
        spec=spec,
        address=address,
        address_source=source,
        working_dir=working_dir,
        # Ray runs the entrypoint with `sh -c` and SIGTERMs the shell with the driver on a stop:
        # the trap keeps the shell until the driver has saved and exited (an untrapped one died at
        # once, leaving an orphan that Ray waited on for the whole stop wait wherever nothing
        # reaps orphans, e.g. a container whose PID 1 does not). Not `exec`: the shell's fork
        # unblocks SIGINT, which Ray blocks and the driver's SIGTERM-as-Ctrl-C relies on.
        entrypoint="trap : TERM; " + shlex.join(command),
        experiment=job.experiment_name,
        tracking_uri=uri,
        storage_path=job.storage_path,
        warnings=warnings,
    )


def check_cluster(
    sub: Submission, client: ClusterClient, *, allow_local_storage: bool = False
) -> list[dict[str, Any]]:
    """Checks that need the cluster: storage every node reaches, the experiment not already
    running there, GPUs for GPU trials (a warning: autoscalers add nodes). Returns the nodes."""
    nodes = client.nodes()
    local = "://" not in sub.storage_path
    if local and len(nodes) > 1 and not allow_local_storage:
        raise ClusterError(
            f"storage_path {sub.storage_path} is a local path and the cluster at "
            f"{client.address} has {len(nodes)} nodes: Tune on the other nodes could not "
            "reach it (checkpoints, restores, the experiment's state). Mount shared storage "
            "(NFS, a ReadWriteMany volume) at that path on every node and pass "
            "--allow-local-storage, or use a storage path on storage every node reaches."
        )
    for other in client.jobs():
        meta = other.metadata or {}
        status = str(other.status.value)
        if (
            meta.get(METADATA_HASH) == sub.job_hash
            and meta.get(METADATA_STORAGE) == sub.storage_path
            and status in ("PENDING", "RUNNING")
        ):
            raise ClusterError(
                f"experiment '{sub.job.name}' is already {status.lower()} on the cluster as "
                f"job {other.submission_id}: two drivers would write the same experiment. "
                f"Follow it (lrtune jobs logs {other.submission_id} --follow) or stop it "
                f"(lrtune jobs stop {other.submission_id}) first."
            )
    gpus = sum(float(n.get("resources_total", {}).get("GPU", 0)) for n in nodes)
    if sub.job.resources.gpus > 0 and gpus == 0:
        sub.warnings.append(
            f"trials ask for {sub.job.resources.gpus} GPU each and no node has a GPU now; they "
            "will wait until the cluster adds GPU nodes"
        )
    return nodes


#: Modules lrtune's driver imports on the cluster, by import name (pyproject's dependencies).
DRIVER_IMPORTS = (
    "ray",
    "torch",
    "gymnasium",
    "optuna",
    "mlflow",
    "pydantic",
    "yaml",
    "numpy",
    "scipy",
)
#: How long the Python check may wait for its probe job (a cold cluster may install pip deps).
PROBE_TIMEOUT_S = 300.0
_MISSING = "lrtune-probe-missing="
_EXECUTABLE = "lrtune-probe-python="


def check_python(
    sub: Submission, client: ClusterClient, timeout_s: float = PROBE_TIMEOUT_S
) -> None:
    """Before the job: run ``cluster.python`` on the cluster as a tiny Ray Job (same pip
    packages and entrypoint resources) that looks for lrtune's dependencies.

    A ``python`` that lacks one (a head started outside the virtualenv) would otherwise run the
    job to a traceback in its logs; here it is refused (`ClusterError`, exit 2) naming
    ``cluster.python`` and the missing modules. A probe that does not end in ``timeout_s``
    (no free CPU for it yet) is stopped and noted as a warning, not refused.
    """
    spec = sub.spec
    code = (  # one line: `lrtune jobs list` shows the start of each entrypoint
        "import importlib.util as u, sys; "
        f"missing = [n for n in {DRIVER_IMPORTS!r} if u.find_spec(n) is None]; "
        f"print({_EXECUTABLE!r} + sys.executable); "
        f"print({_MISSING!r} + ','.join(missing)); "
        "sys.exit(1 if missing else 0)"
    )
    runtime_env: dict[str, Any] = {}
    if spec.pip:
        runtime_env["pip"] = {"packages": list(spec.pip), "pip_check": False}
    probe = client.submit(
        entrypoint=shlex.join([spec.python, "-c", code]),
        runtime_env=runtime_env,
        metadata={META_PROBE: "python", META_JOB: sub.job.name},
        submission_id=f"lrtune-probe-{sub.job.name}-{secrets.token_hex(4)}",
        **spec.entrypoint_resources.submit_kwargs(),
    )
    status = client.wait(probe, timeout_s=timeout_s)
    if status == "SUCCEEDED":
        return
    if status not in ("FAILED", "STOPPED"):
        client.stop(probe)
        sub.warnings.append(
            f"the check of cluster.python ({spec.python}) did not finish in {timeout_s:.0f} s "
            f"(job {probe} was {status}); the job is submitted unchecked"
        )
        return
    logs = client.logs(probe)
    lines = logs.splitlines()
    found = [line.removeprefix(_MISSING) for line in lines if line.startswith(_MISSING)]
    where = [line.removeprefix(_EXECUTABLE) for line in lines if line.startswith(_EXECUTABLE)]
    exe = f" ({where[-1]})" if where else ""
    if found and found[-1]:
        raise ClusterError(
            f"cluster.python: `{spec.python}` on the cluster{exe} cannot import "
            f"{found[-1].replace(',', ', ')}, which lrtune's driver needs: the job would die at "
            "its first import. Set cluster.python to the interpreter of an environment that has "
            "lrtune's dependencies (the one `ray start` ran from, e.g. /opt/venv/bin/python), "
            "or add the missing packages to cluster.pip."
        )
    last = next((line for line in reversed(lines) if line.strip()), "no output")
    raise ClusterError(
        f"cluster.python: `{spec.python}` could not be run on the cluster (the check job "
        f"{probe} {status.lower()}: {last[:300]}). Set cluster.python to a Python command that "
        "exists on the nodes (the one `ray start` ran from)."
    )


def build_runtime_env(
    sub: Submission, stage_user_package: Any = _stage_user_package
) -> tuple[dict[str, Any], list[StagedPackage]]:
    """The job's runtime environment: working directory and its excludes, lrtune and the
    user's packages as ``py_modules``, extra pip packages, env vars (the stop wait included)."""
    spec = sub.spec
    packages: list[StagedPackage] = []
    if spec.install == "wheel":
        packages.append(stage_lrtune())
    for entry in spec.py_modules:
        path = Path(entry).expanduser()
        if not path.is_absolute():
            path = sub.job_path.parent / path
        packages.append(stage_user_package(path.resolve()))
    excludes = list(WORKING_DIR_EXCLUDES)
    excludes += _anchored(sub.working_dir, sub.job.storage_path, sub.job.results_dir)
    source = lrtune_source_root()
    if spec.install == "wheel" and source is not None:
        # lrtune's source travels as the wheel: not twice, and never ahead of it on the path.
        excludes += _anchored(sub.working_dir, str(source / "platform"))
    excludes += list(spec.working_dir_excludes)
    env_vars = spec.plain_env()  # secret ones never travel with a Ray Job (see the warning)
    env_vars["RAY_JOB_STOP_WAIT_TIME_S"] = str(spec.stop_wait_s)
    rel_job = sub.job_path.relative_to(sub.working_dir).as_posix()
    hit = next((p for p in excludes if _excluded(rel_job, p)), None)
    if hit is not None:
        raise ClusterError(
            f"the job file {sub.job_path} is in a folder that is not uploaded (exclude "
            f"{hit!r}): copy it out, e.g. to jobs/, and submit that copy."
        )
    runtime_env: dict[str, Any] = {
        "working_dir": str(sub.working_dir),
        "excludes": excludes,
        "env_vars": env_vars,
    }
    modules = [m for p in packages for m in p.modules]
    if modules:
        runtime_env["py_modules"] = modules
    if spec.pip:
        runtime_env["pip"] = {"packages": list(spec.pip), "pip_check": False}
    return runtime_env, packages


def submit(
    sub: Submission,
    client: ClusterClient,
    nodes: Sequence[Mapping[str, Any]],
    stage_user_package: Any = _stage_user_package,
) -> Submitted:
    """Stage the packages and submit ``lrtune run`` as a Ray Job."""
    runtime_env, packages = build_runtime_env(sub, stage_user_package)
    metadata = {
        META_JOB: sub.job.name,
        META_JOB_HASH: sub.job_hash,
        META_STORAGE: sub.storage_path,
        META_EXPERIMENT: sub.experiment,
        META_TRACKING_URI: redact_uri(sub.tracking_uri),
        META_JOB_FILE: sub.job_path.relative_to(sub.working_dir).as_posix(),
    }
    submission_id = f"lrtune-{sub.job.name}-{secrets.token_hex(4)}"
    submission_id = client.submit(
        entrypoint=sub.entrypoint,
        runtime_env=runtime_env,
        metadata=metadata,
        submission_id=submission_id,
        **sub.spec.entrypoint_resources.submit_kwargs(),
    )
    return Submitted(
        submission_id=submission_id,
        dashboard=client.address,
        experiment=sub.experiment,
        tracking_uri=redact_uri(sub.tracking_uri),
        storage_path=sub.storage_path,
        nodes=len(nodes),
        packages=[p.label for p in packages],
        working_dir=str(sub.working_dir),
        warnings=list(sub.warnings),
    )


# ------------------------------------------------------------------------------------ helpers


def _is_local_tracking(uri: str) -> bool:
    """A store on this machine's disk: ``sqlite:``, ``file:`` or a plain folder path."""
    if uri.lower().startswith(("sqlite:", "file:")):
        return True
    if "://" in uri:
        return uri.split("://", 1)[0].lower().split("+", 1)[0] in LOCAL_TRACKING_SCHEMES
    return not uri.lower().startswith(REMOTE_TRACKING_PREFIXES)


def _working_dir(job_path: Path, spec: ClusterSpec) -> Path:
    if spec.working_dir is not None:
        folder = Path(spec.working_dir).expanduser()
        if not folder.is_absolute():
            folder = job_path.parent / folder
        folder = folder.resolve()
        if not folder.is_dir():
            raise ClusterError(f"cluster.working_dir: {folder} is not a folder.")
        if not job_path.is_relative_to(folder):
            raise ClusterError(
                f"cluster.working_dir: the job file {job_path} is not inside {folder}; the "
                "working directory must hold the job file."
            )
        return folder
    for folder in job_path.parents:
        if any((folder / marker).exists() for marker in PROJECT_MARKERS):
            return folder
    return job_path.parent


def _check_paths(job: JobSpec, working_dir: Path) -> None:
    for name in ("storage_path", "results_dir"):
        value = getattr(job, name)
        if "://" in value or Path(value).expanduser().is_absolute():
            continue
        raise ClusterError(
            f"{name} {value!r} is relative: on the cluster it would land in the job's "
            "temporary working directory on the head node, removed later, and a resubmission "
            f"could not resume from it. Give an absolute path on storage every node mounts "
            f"(--set {name}=/mnt/shared/{Path(value).name})."
        )


def _check_references(job_path: Path, working_dir: Path) -> None:
    """The files the job names (space, policy) must reach the cluster, resolved the same way:
    inside the working directory, at the same place relative to the job file."""
    _, raw = load_yaml(job_path)
    if not isinstance(raw, Mapping):
        return
    for key in ("space", "policy"):
        value = raw.get(key)
        if not isinstance(value, str):
            continue
        path = Path(value).expanduser()
        here = [path] if path.is_absolute() else [job_path.parent / path, Path.cwd() / path]
        there = [path] if path.is_absolute() else [job_path.parent / path, working_dir / path]
        local = next((p.resolve() for p in here if p.is_file()), None)
        remote = next((p.resolve() for p in there if p.is_file()), None)
        if local is None:
            continue  # load_job has reported it already
        if not local.is_relative_to(working_dir) or remote != local:
            raise ClusterError(
                f"{job_path}: {key} file {value!r} ({local}) would not be found on the cluster: "
                f"only the working directory {working_dir} travels, and there the job's "
                f"folder and the working directory are searched. Move it inside and give "
                "its path relative to the job file."
            )


def _excluded(rel: str, pattern: str) -> bool:
    """Whether the working-directory path ``rel`` falls under a gitignore-style ``pattern``
    (the common forms: ``name``, ``name/``, ``/anchored/path/``, globs in one component)."""
    anchored = pattern.startswith("/")
    body = pattern.strip("/")
    parts = rel.split("/")
    if not body:
        return False
    if anchored or "/" in body:
        size = len(body.split("/"))
        return fnmatch.fnmatch("/".join(parts[:size]), body) and (
            len(parts) > size or not pattern.endswith("/")
        )
    names = parts[:-1] if pattern.endswith("/") else parts
    return any(fnmatch.fnmatch(name, body) for name in names)


def _anchored(working_dir: Path, *paths: str) -> list[str]:
    """Gitignore patterns, anchored at the working directory, for the paths inside it."""
    out = []
    for value in paths:
        if "://" in value:
            continue
        path = Path(value).expanduser()
        path = path if path.is_absolute() else working_dir / path
        path = path.resolve()
        if path.is_relative_to(working_dir) and path != working_dir:
            out.append("/" + path.relative_to(working_dir).as_posix() + "/")
    return out
