"""``lrtune submit``, ``lrtune jobs list|status|logs|stop`` and ``lrtune k8s render``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lrtune.vocabulary import META_EXPERIMENT, META_JOB

EXIT_OK, EXIT_FAILED = 0, 1
START_WAIT_S = 600.0


def add_cluster_parsers(subparsers: Any) -> None:
    """Register ``submit``, ``jobs`` and ``k8s`` on an argparse sub-parsers object."""
    s = subparsers.add_parser(
        "submit",
        help="run a job on a Ray cluster (as a Ray Job: `lrtune run JOB` on the cluster)",
        description="Submit `lrtune run JOB` to a Ray cluster through Ray's Jobs API, with the "
        "project as working directory and lrtune (built into a wheel now) and the job's "
        "packages on every node. Checks first, exit code 2 when one fails: the address "
        "answers, the token is accepted, the job validates, storage is shared, MLflow is "
        "not a local store. Resubmitting the same job resumes it.",
    )
    s.add_argument("job", help="a job YAML file")
    _address_argument(s, "then $RAY_ADDRESS, then the job's cluster.address")
    _set_argument(s)
    mode = s.add_mutually_exclusive_group()
    mode.add_argument(
        "--follow", action="store_true", help="stream the logs; exit 0 if the job succeeds, else 1"
    )
    mode.add_argument("--no-wait", action="store_true", help="return right after submitting")
    s.add_argument(
        "--allow-local-storage",
        action="store_true",
        help="accept a local storage_path on a multi-node cluster (it is mounted on every node)",
    )
    s.add_argument(
        "--allow-local-tracking",
        action="store_true",
        help="accept a local MLflow store (sqlite:, a folder) written on the head node",
    )
    s.set_defaults(func=cmd_submit)

    j = subparsers.add_parser("jobs", help="list, inspect, follow and stop Ray jobs")
    jsub = j.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jl = jsub.add_parser("list", help="the cluster's jobs")
    _address_argument(jl)
    jl.add_argument("--format", choices=("table", "json"), default="table")
    jl.set_defaults(func=cmd_jobs_list)
    js = jsub.add_parser("status", help="one job's status")
    js.add_argument("id", help="the job's submission id")
    _address_argument(js)
    js.set_defaults(func=cmd_jobs_status)
    jg = jsub.add_parser("logs", help="one job's logs")
    jg.add_argument("id", help="the job's submission id")
    _address_argument(jg)
    jg.add_argument(
        "--follow", action="store_true", help="stream until the job ends; exit 0 if it succeeded"
    )
    jg.set_defaults(func=cmd_jobs_logs)
    jt = jsub.add_parser(
        "stop", help="stop a job gracefully (SIGTERM: Tune saves the experiment; resume later)"
    )
    jt.add_argument("id", help="the job's submission id")
    _address_argument(jt)
    jt.add_argument("--no-wait", action="store_true", help="do not wait for the job to end")
    jt.set_defaults(func=cmd_jobs_stop)

    k = subparsers.add_parser("k8s", help="KubeRay manifests for a job")
    ksub = k.add_subparsers(dest="k8s_command", required=True, metavar="ACTION")
    kr = ksub.add_parser(
        "render",
        help="write the RayJob (and, with --raycluster, a RayCluster) for a job",
        description="Render a ConfigMap holding the job (space inlined; storage and results on "
        "the shared volume, MLflow on the server of k8s/mlflow.yaml) and a RayJob whose "
        "worker group fits the job's concurrent trials and their CPUs and GPUs.",
    )
    kr.add_argument("job", help="a job YAML file")
    _set_argument(kr)
    kr.add_argument(
        "--gpus-per-trial", type=_non_negative, help="GPUs per trial (default resources.gpus)"
    )
    kr.add_argument("-o", "--output", help="folder to write into (default: print to stdout)")
    kr.add_argument("--raycluster", action="store_true", help="also write a RayCluster")
    kr.add_argument("--image", help="the lrtune image (CPU; head and CPU workers)")
    kr.add_argument("--gpu-image", help="the lrtune image for GPU workers (CUDA)")
    kr.add_argument("--namespace", help="metadata.namespace of every object")
    kr.add_argument("--tracking-uri", help="MLflow URI in the cluster (default the k8s server)")
    kr.set_defaults(func=cmd_k8s_render)


def _address_argument(parser: argparse.ArgumentParser, then: str = "then $RAY_ADDRESS") -> None:
    parser.add_argument(
        "--address",
        help=f"the cluster's dashboard URL, e.g. http://127.0.0.1:8265 ({then})",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="send the cluster's token over plain http to a non-loopback address (it can be "
        "read on the way; prefer https or a port-forward to 127.0.0.1)",
    )


def _set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a job field, e.g. --set tracking.uri=http://mlflow:5000 (repeatable)",
    )


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _connect(address: str | None, insecure: bool = False) -> Any:
    from lrtune.cluster import connect, find_token, resolve_address

    url, _ = resolve_address(address, os.environ, None)
    client = connect(url, find_token(), insecure=insecure)
    _warn(client.warnings)
    return client


def _warn(lines: list[str]) -> None:
    for line in lines:
        print(f"lrtune: warning: {line}", file=sys.stderr)


# --- submit ---------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    """Check, stage and submit; then return, wait for the start, or follow to the end."""
    from lrtune.cluster import (
        check_cluster,
        check_python,
        connect,
        find_token,
        prepare_submission,
        submit,
    )

    sub = prepare_submission(
        args.job,
        args.overrides,
        cli_address=args.address,
        allow_local_tracking=args.allow_local_tracking,
    )
    client = connect(sub.address, find_token(), insecure=args.insecure)
    _warn(client.warnings)
    nodes = check_cluster(sub, client, allow_local_storage=args.allow_local_storage)
    print(
        f"lrtune: checking that cluster.python ({sub.spec.python}) imports lrtune's dependencies",
        file=sys.stderr,
    )
    check_python(sub, client)
    done = submit(sub, client, nodes)
    for warning in done.warnings:
        print(f"lrtune: warning: {warning}", file=sys.stderr)
    follow = f"lrtune jobs logs {done.submission_id} --follow --address {done.dashboard}"
    _out(
        f"lrtune: submitted {done.submission_id} to {done.dashboard} ({done.nodes} nodes)\n"
        f"  ray job id: {done.submission_id}\n"
        f"  dashboard:  {done.dashboard}/#/jobs/{done.submission_id}\n"
        f"  experiment: {done.experiment} (MLflow {done.tracking_uri})\n"
        f"  storage:    {done.storage_path}\n"
        f"  packages:   {', '.join(done.packages) or 'none (preinstalled)'}\n"
        f"  follow:     {follow}\n"
    )
    if args.no_wait:
        return EXIT_OK
    if args.follow:
        return _follow(client, done.submission_id)
    status = client.wait(
        done.submission_id, START_WAIT_S, until=("RUNNING", "SUCCEEDED", "FAILED", "STOPPED")
    )
    _out(f"lrtune: {done.submission_id} is {status}\n")
    if status in ("FAILED", "STOPPED"):
        _out(client.info(done.submission_id).message or "")
        _out("\n")
        return EXIT_FAILED
    return EXIT_OK


def _follow(client: Any, job_id: str) -> int:
    status = client.follow(job_id, _out)
    info = client.info(job_id)
    _out(f"lrtune: {job_id} {status}" + (f": {info.message}" if info.message else "") + "\n")
    return EXIT_OK if status == "SUCCEEDED" else EXIT_FAILED


# --- jobs -----------------------------------------------------------------------------------


def cmd_jobs_list(args: argparse.Namespace) -> int:
    """Print the cluster's jobs (submission id, status, lrtune job, start, entrypoint)."""
    client = _connect(args.address, args.insecure)
    rows = [_job_row(j) for j in client.jobs()]
    if args.format == "json":
        _out(json.dumps(rows, indent=2) + "\n")
        return EXIT_OK
    _out(f"{'submission id':<34} {'status':<10} {'lrtune job':<20} {'started':<19}  entrypoint\n")
    for row in rows:
        _out(
            f"{row['submission_id'] or row['job_id'] or '-':<34} {row['status']:<10} "
            f"{row['lrtune_job'] or '-':<20} {row['started'] or '-':<19}  "
            f"{row['entrypoint'][:60]}\n"
        )
    return EXIT_OK


def cmd_jobs_status(args: argparse.Namespace) -> int:
    """Print one job's status, message, times and lrtune metadata."""
    client = _connect(args.address, args.insecure)
    info = client.info(args.id)
    row = _job_row(info)
    _out(f"{args.id}: {row['status']}\n")
    if info.message:
        _out(f"  message:    {info.message}\n")
    for key in ("started", "ended", "driver_exit_code", "entrypoint"):
        if row.get(key) is not None:
            _out(f"  {key + ':':<11} {row[key]}\n")
    for key, value in sorted((info.metadata or {}).items()):
        _out(f"  {key}: {value}\n")
    return EXIT_OK


def cmd_jobs_logs(args: argparse.Namespace) -> int:
    """Print a job's logs; with --follow, stream them and exit with the job's outcome."""
    client = _connect(args.address, args.insecure)
    if args.follow:
        return _follow(client, args.id)
    _out(client.logs(args.id))
    return EXIT_OK


def cmd_jobs_stop(args: argparse.Namespace) -> int:
    """Stop a job (SIGTERM, then SIGKILL after its stop wait) and wait for it to end."""
    client = _connect(args.address, args.insecure)
    info = client.info(args.id)
    if not client.stop(args.id):
        _out(f"lrtune: {args.id} had already ended ({client.status(args.id)})\n")
        return EXIT_OK
    wait_s = float((info.runtime_env or {}).get("env_vars", {}).get("RAY_JOB_STOP_WAIT_TIME_S", 3))
    _out(
        f"lrtune: stopping {args.id} (SIGTERM; Tune saves the experiment; SIGKILL after "
        f"{wait_s:.0f} s)\n"
    )
    if args.no_wait:
        return EXIT_OK
    status = client.wait(args.id, wait_s + 30.0)
    _out(f"lrtune: {args.id} {status}\n")
    return EXIT_OK


def _job_row(info: Any) -> dict[str, Any]:
    meta = info.metadata or {}
    return {
        "submission_id": info.submission_id,
        "job_id": info.job_id,
        "status": str(info.status.value),
        "lrtune_job": meta.get(META_JOB),
        "experiment": meta.get(META_EXPERIMENT),
        "started": _when(info.start_time),
        "ended": _when(info.end_time),
        "driver_exit_code": info.driver_exit_code,
        "entrypoint": info.entrypoint or "",
    }


def _when(ms: int | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else None


# --- k8s render -----------------------------------------------------------------------------


def cmd_k8s_render(args: argparse.Namespace) -> int:
    """Render the job's KubeRay manifests to a folder (or stdout)."""
    from lrtune.cluster import cluster_spec_of, render, write_manifests
    from lrtune.cluster._k8s import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE, dump_documents
    from lrtune.specs import load_job

    job = load_job(args.job, overrides=args.overrides)
    files = render(
        job,
        cluster_spec_of(job, args.job),
        gpus_per_trial=args.gpus_per_trial,
        image=args.image or DEFAULT_IMAGE,
        gpu_image=args.gpu_image or DEFAULT_GPU_IMAGE,
        namespace=args.namespace,
        tracking_uri=args.tracking_uri,
        with_raycluster=args.raycluster,
    )
    if args.output is None:
        _out("---\n".join(dump_documents(docs) for docs in files.values()))
        return EXIT_OK
    for path in write_manifests(files, Path(args.output)):
        _out(f"{path}\n")
    return EXIT_OK
