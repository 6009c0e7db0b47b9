"""A local multi-node Ray cluster for tests, run as its own process.

``python ray_cluster.py INFO_FILE --temp-dir DIR --dashboard-port P [--nodes 2] [--cpus 2]``
starts a `ray.cluster_utils.Cluster` (a head with the dashboard and Jobs API on 127.0.0.1,
plus worker nodes, every one bound to 127.0.0.1), writes its addresses to INFO_FILE (JSON)
and waits; SIGTERM (or SIGINT) shuts the cluster down with `Cluster.shutdown` and exits 0.

Token authentication is whatever the environment says (``RAY_AUTH_MODE=token`` with
``RAY_AUTH_TOKEN``): the test sets it for this process only, so the test's own process and
other Rays on the machine are untouched.
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
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no calls home: loopback only
os.environ["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"  # a test cluster: no 30 s drain


# Ports handed out (or given on the command line) but not bound yet: never handed out again.
# A CI run once got the dashboard's port back as the metrics port ("already occupied").
_TAKEN: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and this helper has not handed out."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _TAKEN:
            _TAKEN.add(port)
            return port


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, report its addresses, wait for a stop signal, shut it down."""
    parser = argparse.ArgumentParser()
    parser.add_argument("info_file")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--cpus", type=float, default=2)
    parser.add_argument("--temp-dir", required=True)
    parser.add_argument("--dashboard-port", type=int, required=True)
    args = parser.parse_args(argv)
    _TAKEN.add(args.dashboard_port)

    # Ray's session folders and its address file (`ray_current_cluster`) both go under
    # <temp-dir>/ray, where a submitted job's supervisor looks for the cluster to hand its
    # driver. Without the file Ray scans for any gcs_server process on the machine and may
    # pick another engineer's cluster.
    os.environ["RAY_TMPDIR"] = args.temp_dir
    ray_temp = Path(args.temp_dir) / "ray"
    ray_temp.mkdir(parents=True, exist_ok=True)
    # Ray's fixed default ports (agent 52365, dashboard metrics 44227) may be taken by another
    # Ray on this machine: the head node's agent (which runs submitted jobs) gets free ones.
    os.environ["DASHBOARD_METRIC_PORT"] = str(free_port())

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    from ray.cluster_utils import Cluster

    common = {
        "node_ip_address": "127.0.0.1",
        "num_cpus": args.cpus,
        "object_store_memory": 100 * 1024 * 1024,
    }
    started = time.monotonic()
    cluster = Cluster()
    try:
        cluster.add_node(
            **common,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=args.dashboard_port,
            temp_dir=str(ray_temp),
            dashboard_agent_listen_port=free_port(),
            metrics_export_port=free_port(),
        )
        for index in range(1, args.nodes):
            # Each node its own temp dir, as on separate machines: nodes sharing a session dir
            # share `runtime_resources/`, and a node that unpacks a job's working_dir
            # (overwrite=True) deletes the folder a running driver on another node sits in.
            node_temp = Path(args.temp_dir) / f"node{index}"
            node_temp.mkdir(exist_ok=True)
            cluster.add_node(**common, temp_dir=str(node_temp))
        cluster.wait_for_nodes(timeout=180)
        # Ray's Node objects install their own SIGTERM handler: ours again, so a stop goes
        # through Cluster.shutdown below.
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        info = {
            "pid": os.getpid(),
            "gcs_address": cluster.address,
            "dashboard_url": f"http://127.0.0.1:{args.dashboard_port}",
            "node_ids": [n.node_id for n in cluster.list_all_nodes()],
            "session_dir": cluster.head_node.get_session_dir_path(),
            "start_s": round(time.monotonic() - started, 1),
        }
        tmp = Path(args.info_file + ".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(args.info_file)
        while not stop.wait(0.5):
            pass
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
