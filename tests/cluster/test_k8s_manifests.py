"""Every manifest in k8s/ and every one `lrtune k8s render` writes, validated offline: KubeRay
objects against the CRD schemas vendored in k8s/schemas (strictly: unknown fields fail), core
objects against Kubernetes' own schemas (kubernetes-validate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cluster_helpers import (  # type: ignore[import-not-found]
    ROOT,
    SCHEMAS,
    crd_schema,
    strict_validator,
)

from lrtune.cli import main
from lrtune.cluster import ClusterSpec, parse_cluster, plan_workers, render
from lrtune.specs import load_job, parse_job

K8S = ROOT / "k8s"
KUBERAY_KINDS = ("RayCluster", "RayJob")
K8S_VERSION = "1.30.0"


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a manifest file (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def validate(doc: dict[str, Any]) -> None:
    """KubeRay kinds against the strict CRD schema; core kinds with kubernetes-validate."""
    if doc["kind"] in KUBERAY_KINDS:
        assert doc["apiVersion"] == "ray.io/v1"
        strict_validator(doc["kind"]).validate(doc)
        return
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def manifest_files() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def test_the_schemas_are_vendored_in_the_repository() -> None:
    assert SCHEMAS == ROOT / "k8s" / "schemas"
    assert (SCHEMAS / "ray.io_rayjobs.yaml").is_file()
    assert (SCHEMAS / "ray.io_rayclusters.yaml").is_file()


def test_k8s_holds_the_promised_objects() -> None:
    kinds = {
        (d["kind"], d["metadata"]["name"]) for path in manifest_files() for d in documents(path)
    }
    assert {
        ("RayCluster", "lrtune"),
        ("RayJob", "lrtune-example"),
        ("PersistentVolumeClaim", "lrtune-storage"),
        ("StatefulSet", "lrtune-postgres"),
        ("Deployment", "lrtune-mlflow"),
        ("Service", "lrtune-mlflow"),
        ("Service", "lrtune-postgres"),
        ("PersistentVolumeClaim", "lrtune-mlflow-artifacts"),
    } <= kinds


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_every_manifest_in_k8s_validates(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        validate(doc)


def test_shared_storage_is_read_write_many_and_the_cluster_uses_token_auth() -> None:
    (claim,) = documents(K8S / "storage.yaml")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    (cluster,) = documents(K8S / "raycluster.yaml")
    spec = cluster["spec"]
    assert spec["authOptions"]["mode"] == "token"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    gpu = groups["gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpu["nvidia.com/gpu"] == "1"
    assert groups["gpu"]["minReplicas"] <= groups["gpu"]["maxReplicas"]
    pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in groups.values()]
    for pod in pods:
        claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["spec"]["volumes"]]
        assert "lrtune-storage" in claims


def test_the_example_rayjob_runs_a_valid_job_that_resumes_after_a_retry() -> None:
    config_map, ray_job = documents(K8S / "rayjob.yaml")
    job = parse_job(yaml.safe_load(config_map["data"]["job.yaml"]), "rayjob.yaml")
    assert job.storage_path.startswith("/mnt/lrtune/")
    assert job.tracking.uri == "http://lrtune-mlflow:5000"
    spec = ray_job["spec"]
    assert spec["entrypoint"] == "trap : TERM; python -m lrtune run /etc/lrtune/job/job.yaml"
    assert spec["backoffLimit"] >= 1 and spec["shutdownAfterJobFinishes"] is True
    assert yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]["RAY_JOB_STOP_WAIT_TIME_S"] == "60"
    assert spec["rayClusterSpec"]["authOptions"] == {"mode": "token"}


def test_the_mlflow_server_uses_postgres_and_serves_artifacts() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(K8S / "mlflow.yaml")}
    container = docs["Deployment", "lrtune-mlflow"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["value"].startswith("postgresql+psycopg://")
    assert "--artifacts-destination=/mlartifacts" in container["args"]
    assert any(a.startswith("--allowed-hosts=lrtune-mlflow") for a in container["args"])
    assert docs["StatefulSet", "lrtune-postgres"]["spec"]["volumeClaimTemplates"]


def test_a_misspelled_field_fails_strict_validation() -> None:
    (_, ray_job) = documents(K8S / "rayjob.yaml")
    ray_job["spec"]["shutdownAfterJobFinish"] = ray_job["spec"].pop("shutdownAfterJobFinishes")
    # The CRD alone does not forbid unknown fields: plain jsonschema lets the typo through.
    plain = crd_schema("RayJob")
    jsonschema.validators.validator_for(plain)(plain).validate(ray_job)
    with pytest.raises(jsonschema.ValidationError, match="shutdownAfterJobFinish"):
        strict_validator("RayJob").validate(ray_job)
    (cluster,) = documents(K8S / "raycluster.yaml")
    cluster["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(jsonschema.ValidationError):
        strict_validator("RayCluster").validate(cluster)


def test_strict_leaves_maps_and_free_form_fields_open() -> None:
    (cluster,) = documents(K8S / "raycluster.yaml")
    cluster["metadata"]["annotations"] = {"any/key": "v"}
    cluster["spec"]["headGroupSpec"]["rayStartParams"]["block"] = "true"  # a map of strings
    strict_validator("RayCluster").validate(cluster)


def test_a_core_object_with_a_typo_fails() -> None:
    import kubernetes_validate

    (claim,) = documents(K8S / "storage.yaml")
    claim["spec"]["accesModes"] = claim["spec"].pop("accessModes")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(claim, K8S_VERSION, strict=True)


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "gpus", "concurrent", "expect"),
    [
        (1, 0, 4, ("cpu", 1, 4, 4, 0)),
        (1, 0, 8, ("cpu", 2, 4, 4, 0)),
        (3, 0, 4, ("cpu", 4, 1, 3, 0)),
        (1, 0.25, 8, ("gpu", 2, 4, 4, 1)),
        (2, 0.5, 3, ("gpu", 2, 2, 4, 1)),
        (1, 1, 3, ("gpu", 3, 1, 1, 1)),
        (4, 2, 2, ("gpu", 2, 1, 4, 2)),
        (1, 0.3, 2, ("gpu", 1, 2, 2, 1)),
    ],
)
def test_worker_groups_fit_the_trials(
    cpus: float, gpus: float, concurrent: int, expect: tuple[Any, ...]
) -> None:
    plan = plan_workers(cpus, gpus, concurrent)
    got = (plan.group, plan.replicas, plan.trials_per_pod, plan.cpus_per_pod, plan.gpus_per_pod)
    assert got == expect
    assert plan.replicas * plan.trials_per_pod >= concurrent
    if gpus:
        assert plan.trials_per_pod * gpus <= plan.gpus_per_pod + 1e-9


def _job(tmp_path: Path, job_file: Any, **fields: Any) -> Any:
    space = tmp_path / "space.yaml"
    lr = {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3}
    space.write_text(yaml.safe_dump({"version": 1, "lr": lr, "schedule": {"cosine": {}}}))
    fields.setdefault("space", "space.yaml")
    fields.setdefault("trials", {"num": 8, "max_concurrent": 4})
    return load_job(job_file(tmp_path, "Render_Me.v2", **fields))


def test_rendered_manifests_validate_and_fit_the_job(tmp_path: Path, job_file: Any) -> None:
    job = _job(tmp_path, job_file, resources={"cpus": 1, "gpus": 0.25})
    files = render(job, ClusterSpec(), with_raycluster=True, namespace="ml")
    assert set(files) == {"rayjob-Render_Me.v2.yaml", "raycluster-Render_Me.v2.yaml"}
    config_map, ray_job = files["rayjob-Render_Me.v2.yaml"]
    (cluster,) = files["raycluster-Render_Me.v2.yaml"]
    for doc in (config_map, ray_job, cluster):
        validate(yaml.safe_load(yaml.safe_dump(doc)))  # as written to disk
        assert doc["metadata"]["namespace"] == "ml"
    assert ray_job["metadata"]["name"] == "lrtune-render-me-v2"
    (group,) = ray_job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert group["groupName"] == "gpu" and limits["nvidia.com/gpu"] == "1"
    assert group["maxReplicas"] == 1 and group["rayStartParams"]["num-gpus"] == "1"
    assert group["template"]["spec"]["containers"][0]["image"].endswith("cuda")
    # The job the cluster runs: space inlined, storage on the shared volume, same hash.
    rendered = parse_job(yaml.safe_load(config_map["data"]["job.yaml"]), "rendered")
    assert rendered.space is not None and rendered.space_path is None
    assert rendered.storage_path == "/mnt/lrtune/ray_results"
    assert rendered.tracking.uri == "http://lrtune-mlflow:5000"
    assert rendered.resolved_hash() == job.resolved_hash()


def test_gpus_per_trial_overrides_the_job(tmp_path: Path, job_file: Any) -> None:
    job = _job(tmp_path, job_file)
    spec = parse_cluster(
        {"entrypoint_resources": {"num_cpus": 1, "resources": {"head": 1}}, "stop_wait_s": 120}
    )
    config_map, ray_job = render(job, spec, gpus_per_trial=0.5)["rayjob-Render_Me.v2.yaml"]
    (group,) = ray_job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == 2  # 4 trials at once, 2 per GPU
    assert yaml.safe_load(config_map["data"]["job.yaml"])["resources"]["gpus"] == 0.5
    assert ray_job["spec"]["entrypointNumCpus"] == 1
    assert json.loads(ray_job["spec"]["entrypointResources"]) == {"head": 1.0}
    env = yaml.safe_load(ray_job["spec"]["runtimeEnvYAML"])["env_vars"]
    assert env == {"RAY_JOB_STOP_WAIT_TIME_S": "120"}
    validate(ray_job)
    cpu_only = render(job, spec)["rayjob-Render_Me.v2.yaml"][1]
    (group,) = cpu_only["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["groupName"] == "cpu" and group["replicas"] == 1
    validate(cpu_only)


def test_k8s_render_cli_writes_files_that_validate(
    tmp_path: Path, job_file: Any, capsys: Any
) -> None:
    _job(tmp_path, job_file)
    path = tmp_path / "Render_Me.v2.yaml"
    out = tmp_path / "out"
    assert main(["k8s", "render", str(path), "--gpus-per-trial", "0.25", "-o", str(out),
                 "--raycluster"]) == 0  # fmt: skip
    written = sorted(p.name for p in out.iterdir())
    assert written == ["raycluster-Render_Me.v2.yaml", "rayjob-Render_Me.v2.yaml"]
    for file in out.iterdir():
        for doc in documents(file):
            validate(doc)
    capsys.readouterr()
    assert main(["k8s", "render", str(path)]) == 0
    printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["kind"] for d in printed] == ["ConfigMap", "RayJob"]
    assert main(["k8s", "render", str(tmp_path / "missing.yaml")]) == 2


def test_the_dockerfile_builds_cpu_and_cuda_variants() -> None:
    text = (K8S / "Dockerfile").read_text()
    assert "ARG VARIANT=cpu" in text and "FROM base-${VARIANT}" in text
    assert "AS base-cpu" in text and "AS base-cuda" in text
    assert "torch==${TORCH_VERSION}" in text and "psycopg[binary]" in text
