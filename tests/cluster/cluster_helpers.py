"""Helpers for cluster tests (imported by name; tests folders have no __init__.py): tiny job
files, a fake Ray dashboard, the KubeRay CRD schemas made strict."""

from __future__ import annotations

import copy
import json
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
# The KubeRay CRDs are vendored in the repository (k8s/schemas/README.md says from where).
SCHEMAS = ROOT / "k8s" / "schemas"


def write_job(folder: Path, name: str, store: Path | None = None, **fields: Any) -> Path:
    """A tiny job YAML in ``folder`` (absolute storage and results under ``store``)."""
    store = store or folder.parent / "store"
    defaults = {"policy": {"lr": 3e-4}, "tracking": {"uri": "http://127.0.0.1:5000"}}
    return write_yaml(folder, name, tiny_job(name, store, **{**defaults, **fields}))


class FakeDashboard:
    """A stand-in for Ray's dashboard: /api/version behind token auth, /api/v0/nodes."""

    def __init__(self, token: str | None = "good-token", ray: bool = True) -> None:
        self.token = token
        self.ray = ray
        self.nodes: list[dict[str, Any]] = [{"node_id": "a" * 56, "state": "ALIVE"}]
        self.requests: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, dict(self.headers)))
                if owner.token is not None:
                    given = self.headers.get("Authorization")
                    if not given:
                        return self._send(401, "Unauthorized: Missing authentication token")
                    if given != f"Bearer {owner.token}":
                        return self._send(403, "Forbidden: Invalid authentication token")
                if not owner.ray:
                    return self._send(200, "<html>hello</html>")
                if self.path.startswith("/api/version"):
                    return self._send(200, json.dumps({"version": "4", "ray_version": "2.60.0"}))
                if self.path.startswith("/api/v0/nodes"):
                    body = {"result": True, "data": {"result": {"result": owner.nodes}}}
                    return self._send(200, json.dumps(body))
                if self.path.startswith("/api/jobs/"):
                    return self._send(200, "[]")
                return self._send(404, "not found")

            def _send(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeDashboard:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@cache
def crd_schema(kind: str, version: str = "v1") -> dict[str, Any]:
    """The ``openAPIV3Schema`` of a KubeRay CRD (RayCluster, RayJob) from k8s/schemas (vendored)."""
    name = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml"}[kind]
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are megabytes of YAML
    crd = yaml.load((SCHEMAS / name).read_text(), Loader=loader)
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{kind} has no version {version}")


def strict(schema: Any) -> Any:
    """A copy of ``schema`` with ``additionalProperties: false`` on every object that lists
    its properties and says nothing of others, except under x-kubernetes-preserve-unknown-fields
    (free-form by design). Maps (``additionalProperties: {...}``) stay maps."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict) or node.get("x-kubernetes-preserve-unknown-fields"):
            return
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key in ("properties", "patternProperties", "definitions"):
                for sub in value.values():
                    walk(sub)
            elif isinstance(value, dict | list):
                walk(value)

    walk(schema)
    return schema


@cache
def strict_validator(kind: str) -> Any:
    """A reusable validator for the strict schema of a KubeRay kind (built once: the CRDs are
    large, and `jsonschema.validate` would check the schema itself on every call)."""
    import jsonschema

    schema = strict(crd_schema(kind))
    return jsonschema.validators.validator_for(schema)(schema)
