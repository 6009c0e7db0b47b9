"""Running jobs on a Ray cluster: Ray Jobs submission and job control, token lookup, KubeRay
manifest rendering. lrtune uses Ray's own machinery (Ray Jobs, token authentication, KubeRay's
RayCluster and RayJob) and adds no scheduler or transport of its own."""

from lrtune.cluster._client import (
    ClusterClient,
    check_transport,
    connect,
    dashboard_url,
    resolve_address,
)
from lrtune.cluster._k8s import WorkerPlan, cluster_job, plan_workers, render, write_manifests
from lrtune.cluster._package import StagedPackage, cache_dir, stage_lrtune, stage_user_package
from lrtune.cluster._spec import ClusterError, ClusterSpec, EntrypointResources, parse_cluster
from lrtune.cluster._submit import (
    WORKING_DIR_EXCLUDES,
    Submission,
    Submitted,
    build_runtime_env,
    check_cluster,
    check_python,
    cluster_spec_of,
    prepare_submission,
    redact_uri,
    submit,
)
from lrtune.cluster._token import AuthToken, find_token, redact

__all__ = [
    "WORKING_DIR_EXCLUDES",
    "AuthToken",
    "ClusterClient",
    "ClusterError",
    "ClusterSpec",
    "EntrypointResources",
    "StagedPackage",
    "Submission",
    "Submitted",
    "WorkerPlan",
    "build_runtime_env",
    "cache_dir",
    "check_cluster",
    "check_python",
    "check_transport",
    "cluster_job",
    "cluster_spec_of",
    "connect",
    "dashboard_url",
    "find_token",
    "parse_cluster",
    "plan_workers",
    "prepare_submission",
    "redact",
    "redact_uri",
    "render",
    "resolve_address",
    "stage_lrtune",
    "stage_user_package",
    "submit",
    "write_manifests",
]
