"""KubeRay manifests for a job: a RayJob (its own RayCluster, token auth, shared storage) and,
when asked, a standalone RayCluster to submit to with `lrtune submit`.

Worker groups are sized from the job: concurrent trials = `JobSpec.concurrent_trials`
(``trials.max_concurrent``, at most the trials the run starts; every member of a population),
each holding ``resources.cpus`` CPUs and ``resources.gpus`` GPUs (a fraction packs several
trials on one GPU). A KubeRay retry (``backoffLimit``) starts a fresh cluster, so Tune's
storage lives on a ReadWriteMany volume and MLflow on its own server (``k8s/mlflow.yaml``): the
retried ``lrtune run`` resumes the experiment from there.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from lrtune.cluster._spec import ClusterError, ClusterSpec
from lrtune.specs import JobSpec

RAY_VERSION = "2.60.0"
DEFAULT_IMAGE = "lrtune:0.1.0-cpu"
DEFAULT_GPU_IMAGE = "lrtune:0.1.0-cuda"
STORAGE_CLAIM = "lrtune-storage"
STORAGE_MOUNT = "/mnt/lrtune"
JOB_MOUNT = "/etc/lrtune/job"
MLFLOW_URI = "http://lrtune-mlflow:5000"
MLFLOW_PORT = 5000
# The Secret of k8s/mlflow.yaml's basic-auth admin: jobs that use that server log in with it.
MLFLOW_AUTH_SECRET = "lrtune-mlflow-auth"
MLFLOW_CREDENTIAL_VARS = {
    "MLFLOW_TRACKING_USERNAME": "username",
    "MLFLOW_TRACKING_PASSWORD": "password",
}
# The pod label k8s/mlflow.yaml's NetworkPolicy admits to the MLflow port (Ray head and workers).
MLFLOW_CLIENT_LABEL = ("lrtune/mlflow-client", "true")
CPU_POD_CPUS = 4  # CPU worker pods hold up to this many CPUs' worth of trials
MEMORY_PER_TRIAL_GI = 3
BACKOFF_LIMIT = 2


@dataclass(frozen=True)
class WorkerPlan:
    """One worker group sized for a job's concurrent trials."""

    group: str
    replicas: int
    trials_per_pod: int
    cpus_per_pod: int
    gpus_per_pod: int
    memory_gi: int


def plan_workers(cpus: float, gpus: float, concurrent: int) -> WorkerPlan:
    """The worker group that runs ``concurrent`` trials of ``cpus`` CPUs and ``gpus`` GPUs."""
    if cpus <= 0 or gpus < 0 or concurrent < 1:
        raise ClusterError("trials need cpus > 0, gpus >= 0 and at least one trial at a time.")
    if gpus > 0:
        gpus_per_pod = max(1, math.ceil(gpus - 1e-9))
        trials = max(1, math.floor(gpus_per_pod / gpus + 1e-9))
        group = "gpu"
    else:
        gpus_per_pod = 0
        trials = max(1, math.floor(CPU_POD_CPUS / cpus + 1e-9))
        group = "cpu"
    trials = min(trials, concurrent)
    return WorkerPlan(
        group=group,
        replicas=math.ceil(concurrent / trials),
        trials_per_pod=trials,
        cpus_per_pod=max(1, math.ceil(trials * cpus - 1e-9)),
        gpus_per_pod=gpus_per_pod,
        memory_gi=trials * MEMORY_PER_TRIAL_GI + 1,
    )


def k8s_name(name: str, prefix: str = "lrtune-", limit: int = 40) -> str:
    """A DNS-1123 label from a job name (lowercase, ``-``, at most ``limit`` characters)."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "job"
    return (prefix + text)[:limit].rstrip("-")


def cluster_job(job: JobSpec, tracking_uri: str | None = None) -> dict[str, Any]:
    """The job as the cluster runs it: space inlined, storage and results on the shared
    volume, MLflow on the server (the resolved hash is unchanged: these fields are excluded)."""
    data = job.to_yaml_dict()
    data["space_path"] = None
    data["space_files"] = []  # local paths: the space itself is inlined
    data["cluster"] = None
    data["storage_path"] = f"{STORAGE_MOUNT}/ray_results"
    data["results_dir"] = f"{STORAGE_MOUNT}/results"
    uri = tracking_uri or job.tracking.uri
    if not tracking_uri and not _reachable_in_cluster(uri):
        uri = MLFLOW_URI
    if uri and urlsplit(uri).password:
        raise ClusterError(
            "the tracking URI holds a password, which would be stored in plain text in the "
            "job's ConfigMap: give the URI without credentials (--tracking-uri or tracking.uri) "
            "and the credentials from a Kubernetes Secret as cluster.env_vars: "
            "{MLFLOW_TRACKING_USERNAME: {secret: <secret>, key: username}, "
            "MLFLOW_TRACKING_PASSWORD: {secret: <secret>, key: password}}."
        )
    data["tracking"] = {**(data.get("tracking") or {}), "uri": uri}
    return data


def render(
    job: JobSpec,
    spec: ClusterSpec,
    *,
    gpus_per_trial: float | None = None,
    image: str = DEFAULT_IMAGE,
    gpu_image: str = DEFAULT_GPU_IMAGE,
    namespace: str | None = None,
    tracking_uri: str | None = None,
    with_raycluster: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """``{file name: documents}``: ``rayjob-<name>.yaml`` (ConfigMap with the job + RayJob)
    and, with ``with_raycluster``, ``raycluster-<name>.yaml``."""
    gpus = job.resources.gpus if gpus_per_trial is None else float(gpus_per_trial)
    if gpus < 0 or not math.isfinite(gpus):
        raise ClusterError(f"--gpus-per-trial must be a finite number >= 0, got {gpus}.")
    data = cluster_job(job, tracking_uri)
    data["resources"] = {**data["resources"], "gpus": gpus}
    name = k8s_name(job.name)
    concurrent = job.concurrent_trials
    plan = plan_workers(job.resources.cpus, gpus, concurrent)
    meta = {"name": name, "labels": {"app.kubernetes.io/part-of": "lrtune", "lrtune/job": name}}
    if namespace:
        meta["namespace"] = namespace
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**meta, "name": f"{name}-job"},
        "data": {"job.yaml": yaml.safe_dump(data, sort_keys=False)},
    }
    secret_env = pod_secret_env(spec, data["tracking"]["uri"])
    cluster_spec = ray_cluster_spec(
        plan,
        image=image,
        worker_image=gpu_image if plan.gpus_per_pod else image,
        job_config_map=f"{name}-job",
        head_cpus=spec.entrypoint_resources.num_cpus or 0.0,
        secret_env=secret_env,
    )
    # Only plain values go in the runtime env (Ray stores and shows it); secrets reach the
    # pods' environment from their Secrets, and Ray's workers inherit it.
    env_vars = {**spec.plain_env(), "RAY_JOB_STOP_WAIT_TIME_S": str(spec.stop_wait_s)}
    ray_job: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": meta,
        "spec": {
            # Ray runs it with `sh -c`: the trap keeps the shell until the driver has saved
            # and exited on a stop (see `lrtune.cluster._submit.prepare_submission`).
            "entrypoint": f"trap : TERM; python -m lrtune run {JOB_MOUNT}/job.yaml",
            "runtimeEnvYAML": yaml.safe_dump({"env_vars": env_vars}, sort_keys=True),
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 600,
            # A retry is a fresh RayCluster over the same storage and MLflow: it resumes.
            "backoffLimit": BACKOFF_LIMIT,
            "rayClusterSpec": cluster_spec,
        },
    }
    entry = spec.entrypoint_resources
    if entry.num_cpus is not None:
        ray_job["spec"]["entrypointNumCpus"] = entry.num_cpus
    if entry.num_gpus is not None:
        ray_job["spec"]["entrypointNumGpus"] = entry.num_gpus
    if entry.resources:
        # `ray job submit --entrypoint-resources` takes JSON
        ray_job["spec"]["entrypointResources"] = json.dumps(dict(entry.resources))
    files = {f"rayjob-{job.name}.yaml": [config_map, ray_job]}
    if with_raycluster:
        standalone = ray_cluster_spec(
            plan,
            image=image,
            worker_image=gpu_image if plan.gpus_per_pod else image,
            job_config_map=None,
            head_cpus=entry.num_cpus or 0.0,
            secret_env=secret_env,
        )
        files[f"raycluster-{job.name}.yaml"] = [
            {
                "apiVersion": "ray.io/v1",
                "kind": "RayCluster",
                "metadata": meta,
                "spec": standalone,
            }
        ]
    return files


def pod_secret_env(spec: ClusterSpec, tracking_uri: str | None) -> list[dict[str, Any]]:
    """Container ``env`` entries read from Kubernetes Secrets: the job's secret
    ``cluster.env_vars`` and, for k8s/mlflow.yaml's server, its login (unless the job sets
    those variables itself)."""
    refs = {name: (ref.secret, ref.key) for name, ref in spec.secret_env().items()}
    if tracking_uri == MLFLOW_URI:
        for name, key in MLFLOW_CREDENTIAL_VARS.items():
            if name not in spec.env_vars:
                refs[name] = (MLFLOW_AUTH_SECRET, key)
    return [
        {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for name, (secret, key) in sorted(refs.items())
    ]


def ray_cluster_spec(
    plan: WorkerPlan,
    *,
    image: str,
    worker_image: str,
    job_config_map: str | None,
    head_cpus: float = 0.0,
    secret_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A RayCluster ``spec``: token auth, a head that runs the driver (no trials), one worker
    group sized by ``plan``, the shared storage volume on every pod, ``secret_env`` in every
    container, and the label k8s/mlflow.yaml's NetworkPolicy admits to MLflow."""
    labels = {MLFLOW_CLIENT_LABEL[0]: MLFLOW_CLIENT_LABEL[1]}
    head_mounts: list[dict[str, Any]] = [{"name": "storage", "mountPath": STORAGE_MOUNT}]
    head_volumes: list[dict[str, Any]] = [
        {"name": "storage", "persistentVolumeClaim": {"claimName": STORAGE_CLAIM}}
    ]
    if job_config_map:
        head_mounts.append({"name": "job", "mountPath": JOB_MOUNT, "readOnly": True})
        head_volumes.append({"name": "job", "configMap": {"name": job_config_map}})
    head_cpu = max(2, math.ceil(head_cpus) + 1)
    head: dict[str, Any] = {
        "rayStartParams": {"num-cpus": _num(head_cpus), "dashboard-host": "0.0.0.0"},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "ray-head",
                        "image": image,
                        "ports": [
                            {"containerPort": 6379, "name": "gcs"},
                            {"containerPort": 8265, "name": "dashboard"},
                            {"containerPort": 10001, "name": "client"},
                        ],
                        "resources": _resources(head_cpu, 8, 0),
                        "volumeMounts": head_mounts,
                    }
                ],
                "volumes": head_volumes,
            },
            "metadata": {"labels": dict(labels)},
        },
    }
    worker_container: dict[str, Any] = {
        "name": "ray-worker",
        "image": worker_image,
        "resources": _resources(plan.cpus_per_pod, plan.memory_gi, plan.gpus_per_pod),
        "volumeMounts": [{"name": "storage", "mountPath": STORAGE_MOUNT}],
    }
    if secret_env:
        worker_container["env"] = [dict(e) for e in secret_env]
        head["template"]["spec"]["containers"][0]["env"] = [dict(e) for e in secret_env]
    pod_spec: dict[str, Any] = {
        "containers": [worker_container],
        "volumes": [{"name": "storage", "persistentVolumeClaim": {"claimName": STORAGE_CLAIM}}],
    }
    start: dict[str, str] = {"num-cpus": str(plan.cpus_per_pod)}
    if plan.gpus_per_pod:
        start["num-gpus"] = str(plan.gpus_per_pod)
        pod_spec["tolerations"] = [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    group = {
        "groupName": plan.group,
        "replicas": plan.replicas,
        "minReplicas": 0,
        "maxReplicas": plan.replicas,
        "rayStartParams": start,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }
    return {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": True,
        "authOptions": {"mode": "token"},
        "headGroupSpec": head,
        "workerGroupSpecs": [group],
    }


def write_manifests(files: dict[str, list[dict[str, Any]]], folder: Path) -> list[Path]:
    """Write each file's documents as multi-document YAML; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, docs in files.items():
        path = folder / name
        path.write_text(dump_documents(docs))
        out.append(path)
    return out


def dump_documents(docs: list[dict[str, Any]]) -> str:
    """Documents as one YAML stream (``---`` between them), keys in the order written."""
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def _reachable_in_cluster(uri: str | None) -> bool:
    """A tracking URI that pods can use: a server or database, not a local file or loopback."""
    if not uri or "://" not in uri:
        return False
    scheme = uri.split("://", 1)[0].lower().split("+", 1)[0]
    if scheme not in ("http", "https", "postgresql", "mysql", "mssql", "databricks"):
        return False
    host = (urlsplit(uri).hostname or "").lower()
    return host not in ("localhost", "::1") and not host.startswith("127.")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _resources(cpus: int, memory_gi: int, gpus: int) -> dict[str, Any]:
    amount: dict[str, Any] = {"cpu": str(cpus), "memory": f"{memory_gi}Gi"}
    limits = dict(amount)
    if gpus:
        limits["nvidia.com/gpu"] = str(gpus)
    return {"requests": amount, "limits": limits}
