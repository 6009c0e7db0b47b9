"""How long `lrtune compare` takes over a big MLflow store (issue: under 10 s on local sqlite).

Builds a throw-away store shaped like lrtune's (one parent run, RUNS trial runs nested under it,
each with POINTS points of ``score``, ``episode_return_mean`` and ``lr``; params and tags like
the trial recorder's) plus a ``results/bench/summary.json`` that points at it, then times:

* ``lrtune compare bench --by family`` as a subprocess (interpreter start, imports, bulk
  ``search_runs``, bootstrap intervals, fANOVA importance) on the sqlite store;
* the metric-history reads a report needs (``episode_return_mean`` and ``lr`` of every run):
  lrtune's bulk read against MLflow's public per-run ``get_metric_history``;
* the same two against an ``mlflow server`` on 127.0.0.1 (started here, stopped by its pid).

Last line: ``seconds=<wall time of lrtune compare on the sqlite store>``.

Run: ``.venv/bin/python benchmarks/compare.py [--runs 500] [--points 100] [--no-server]``
(``--store DIR`` keeps the store there and reuses it next time).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

FAMILIES = ("constant", "step", "cosine", "one_cycle")
OPTIMIZERS = ("sgd", "adam", "rmsprop", "adagrad")


def build_store(folder: Path, runs: int, points: int) -> tuple[str, float]:
    """The sqlite store and results folder; returns (tracking URI, seconds it took)."""
    import numpy as np
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("bench", artifact_location=str(folder / "artifacts"))
    parent = client.create_run(
        exp_id, run_name="bench", tags={"lrtune.role": "experiment", "lrtune.experiment": "bench"}
    ).info.run_id
    results = folder / "results" / "bench"
    results.mkdir(parents=True)
    job = {
        "name": "bench",
        "agent": "dqn",
        "env": {"id": "lrtune/RecSys-v0", "config": {}},
        "budget": {"trial_env_steps": points * 100},
        "metric": {"name": "env_runners/episode_return_mean", "mode": "max"},
    }
    (results / "job.yaml").write_text(json.dumps(job))
    client.log_artifact(parent, str(results / "job.yaml"))
    rng = np.random.default_rng(0)
    now = int(time.time() * 1000)
    for i in range(runs):
        family, optimizer = FAMILIES[i % 4], OPTIMIZERS[(i // 4) % 4]
        lr = float(10 ** rng.uniform(-4, -2))
        final = 10.0 + 40.0 * rng.random() + (5.0 if optimizer != "sgd" else 0.0)
        tags = {
            "mlflow.parentRunId": parent,
            "lrtune.role": "trial",
            "lrtune.trial_id": f"bench_{i:05d}",
            "lrtune.status": "completed",
            "schedule_family": family,
            "optimizer": optimizer,
            "gating": "clip_global_norm",
            "feedback": "none",
            "baseline": "false",
            "lrtune.policy": f"{optimizer} {lr:.0e} {family}",
        }
        run = client.create_run(exp_id, run_name=f"trial_bench_{i:05d}", tags=tags).info.run_id
        params = [
            Param("policy.lr", repr(lr)),
            Param("policy.schedule.name", family),
            Param("policy.optimizer.name", optimizer),
            Param("policy.gradients.params.max_norm", "10.0"),
            Param("seeds", "0"),
            Param("trial_env_steps", str(points * 100)),
        ]
        metrics = []
        for p in range(1, points + 1):
            step, frac = p * 100, p / points
            value = 10.0 + (final - 10.0) * frac + float(rng.normal(0, 1))
            metrics += [
                Metric("score", value, now, step),
                Metric("episode_return_mean", value, now, step),
                Metric("lr", lr * (1 - 0.9 * frac), now, step),
            ]
        for chunk in range(0, len(metrics), 900):
            client.log_batch(
                run, metrics=metrics[chunk : chunk + 900], params=params if not chunk else []
            )
        client.set_terminated(run)
    client.set_terminated(parent)
    summary = {"name": "bench", "tracking_uri": uri, "parent_run_id": parent, "trials": []}
    (results / "summary.json").write_text(json.dumps(summary))
    return uri, time.perf_counter() - start


def time_compare(folder: Path, uri: str | None) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system) of ``lrtune compare bench`` as a subprocess, and
    its output. On a shared machine the wall time includes waiting for a core; the CPU time
    is what the command itself spent."""
    command = [sys.executable, "-m", "lrtune", "compare", "bench", "--by", "family"]
    if uri:
        command += ["--tracking-uri", uri]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"lrtune compare failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, cpu, done.stdout


def time_histories(uri: str, per_run: bool) -> tuple[float, int]:
    """Seconds to read episode_return_mean and lr of every trial run (bulk or per run)."""
    from mlflow.tracking import MlflowClient

    from lrtune.analysis import load_experiment, metric_histories

    exp = load_experiment("bench", uri)
    ids = [r.run_id for r in exp.trials()]
    start = time.perf_counter()
    points = 0
    for key in ("episode_return_mean", "lr"):
        if per_run:
            client = MlflowClient(uri)
            points += sum(len(client.get_metric_history(run_id, key)) for run_id in ids)
        else:
            points += sum(len(s) for s, _ in metric_histories(uri, ids, key, 200).values())
    return time.perf_counter() - start, points


def best_of(uri: str, repeats: int = 2) -> tuple[float, float, int]:
    """(bulk seconds, per-run seconds, points): the best of ``repeats`` runs, interleaved (bulk,
    per-run, bulk, per-run...) so that cache warmth and machine load hit both alike."""
    bulk, slow, points = [], [], 0
    for _ in range(repeats):
        seconds, points = time_histories(uri, per_run=False)
        bulk.append(seconds)
        slow.append(time_histories(uri, per_run=True)[0])
    return min(bulk), min(slow), points


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(folder: Path, uri: str) -> tuple[subprocess.Popen[bytes], str]:
    """An ``mlflow server`` on 127.0.0.1 over the sqlite store; waits until it answers."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            uri,
            "--default-artifact-root",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "server.log", "wb"),
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return server, url
        except OSError:
            time.sleep(0.5)
        if server.poll() is not None:
            raise SystemExit(f"mlflow server exited: {(folder / 'server.log').read_text()[-2000:]}")
    raise SystemExit("mlflow server did not start within 120 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """Stop the server and its workers (its own process group)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    """Build the store, time compare and history reads (sqlite, then server)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--no-server", action="store_true", help="skip the mlflow server part")
    parser.add_argument(
        "--store", help="keep the store in this folder and reuse it when it is there already"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lrtune-bench-") as tmp:
        folder = Path(args.store).resolve() if args.store else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["LRTUNE_CACHE_DIR"] = str(folder / "cache")
        if (folder / "results" / "bench" / "summary.json").exists():
            uri, setup = f"sqlite:///{folder / 'mlflow.db'}", 0.0
            print(f"store: reusing {folder}")
        else:
            uri, setup = build_store(folder, args.runs, args.points)
        print(f"store: {args.runs} trial runs × {args.points} points × 3 metrics ({setup:.1f} s)")
        load = os.getloadavg()[0]
        seconds, cpu, output = time_compare(folder, None)
        print(output.rstrip())
        bulk, slow, n_points = best_of(uri)
        print(
            f"sqlite histories (2 keys × {args.runs} runs, {n_points} points, best of 2): lrtune"
            f" bulk {bulk:.2f} s, public per-run get_metric_history {slow:.2f} s"
        )
        if not args.no_server:
            server, url = start_server(folder, uri)
            try:
                from mlflow.tracking import MlflowClient

                warm = time.perf_counter()
                MlflowClient(url).search_experiments()  # the server opens its store lazily
                print(
                    f"server {url}: first request (store opened) {time.perf_counter() - warm:.1f} s"
                )
                server_seconds, server_cpu, _ = time_compare(folder, url)
                sbulk, sslow, _ = best_of(url)
            finally:
                stop_server(server)
            print(
                f"server {url}: lrtune compare {server_seconds:.2f} s wall, "
                f"{server_cpu:.2f} s CPU (client side)"
            )
            print(
                f"server histories (2 keys × {args.runs} runs, best of 2): lrtune bulk "
                f"(get-history-bulk) {sbulk:.2f} s, public per-run get_metric_history "
                f"{sslow:.2f} s"
            )
        print(
            f"sqlite: lrtune compare {seconds:.2f} s wall, {cpu:.2f} s CPU "
            f"(load average {load:.1f} on {os.cpu_count()} cores when it started)"
        )
        print(f"seconds={seconds:.2f}")


if __name__ == "__main__":
    main()
