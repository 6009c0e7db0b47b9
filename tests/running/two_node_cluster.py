"""A two-node Ray cluster on loopback whose worker node a test can remove, run as its own process.

``python two_node_cluster.py INFO_FILE --temp-dir DIR [--cpus 1]`` starts a
`ray.cluster_utils.Cluster` (a head and one worker node, each ``--cpus`` CPUs, both bound to
127.0.0.1), writes ``{"pid", "gcs_address", "head_node_id", "worker_node_id"}`` to INFO_FILE
(JSON) and waits. SIGUSR1 removes the worker node at once, as a machine that dies
(``Cluster.remove_node(..., allow_graceful=False)``: its raylet and workers are killed), and
writes INFO_FILE + ``.removed``; SIGTERM (or SIGINT) shuts the cluster down and exits 0.
Token authentication is whatever the environment says (the test sets it for this process).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # bind 127.0.0.1 (see STACK.md)
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, report it, remove the worker on SIGUSR1, shut down on SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("info_file")
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--cpus", type=float, default=1)
    args = parser.parse_args(argv)
    os.environ["RAY_TMPDIR"] = args.temp_dir
    # Ray's fixed default ports may be taken by another Ray on this machine.
    os.environ["DASHBOARD_METRIC_PORT"] = str(free_port())

    stop, remove = threading.Event(), threading.Event()

    def on_stop(signum: int, frame: Any) -> None:
        stop.set()

    def on_remove(signum: int, frame: Any) -> None:
        remove.set()

    from ray.cluster_utils import Cluster

    common = {
        "node_ip_address": "127.0.0.1",
        "num_cpus": args.cpus,
        "object_store_memory": 100 * 1024 * 1024,
    }
    cluster = Cluster()
    try:
        head_temp = Path(args.temp_dir) / "ray"
        head_temp.mkdir(parents=True, exist_ok=True)
        head = cluster.add_node(
            **common,
            temp_dir=str(head_temp),
            dashboard_host="127.0.0.1",
            dashboard_port=free_port(),
            dashboard_agent_listen_port=free_port(),
            metrics_export_port=free_port(),
        )
        # Its own temp dir, as on a separate machine.
        worker_temp = Path(args.temp_dir) / "node1"
        worker_temp.mkdir(exist_ok=True)
        worker = cluster.add_node(**common, temp_dir=str(worker_temp))
        cluster.wait_for_nodes(timeout=180)
        # Ray's Node objects install their own SIGTERM handler: ours again.
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGUSR1, on_remove)
        info = {
            "pid": os.getpid(),
            "gcs_address": cluster.address,
            "head_node_id": head.node_id,
            "worker_node_id": worker.node_id,
        }
        tmp = Path(args.info_file + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(args.info_file)
        while not stop.wait(0.2):
            if remove.is_set():
                remove.clear()
                started = time.monotonic()
                cluster.remove_node(worker, allow_graceful=False)
                Path(args.info_file + ".removed").write_text(
                    json.dumps({"seconds": time.monotonic() - started})
                )
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
