"""Talking to a Ray cluster's Jobs API through Ray's own `JobSubmissionClient`.

`connect` checks first (does the address answer, is it Ray, is the token accepted) and turns
every failure into a `ClusterError` that says what to do; the token is sent as a header only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lrtune.cluster._spec import ClusterError
from lrtune.cluster._token import AuthToken, redact

DEFAULT_DASHBOARD_PORT = 8265
CHECK_TIMEOUT_S = 10.0
SUBMIT_RETRY_S = 90.0
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# Ray's JobSubmissionClient prefers these variables over the address it is given.
_ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


def resolve_address(
    cli_address: str | None, env: Mapping[str, str], job_address: str | None
) -> tuple[str, str]:
    """``(address, where it came from)``: ``--address``, then ``RAY_ADDRESS``, then the job's
    ``cluster.address``."""
    for value, source in (
        (cli_address, "--address"),
        (env.get("RAY_ADDRESS"), "$RAY_ADDRESS"),
        (job_address, "the job's cluster.address"),
    ):
        if value and value.strip():
            return dashboard_url(value.strip(), source), source
    raise ClusterError(
        "no cluster address: pass --address http://HEAD:8265 (the Ray dashboard of the "
        "cluster), set RAY_ADDRESS, or give the job a `cluster: {address: ...}`."
    )


def dashboard_url(address: str, source: str = "the address") -> str:
    """The HTTP URL of the dashboard (``host:port`` gets ``http://``; ``ray://`` is refused)."""
    if "://" not in address:
        address = f"http://{address}"
    scheme = address.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ClusterError(
            f"{source} is {address!r}: lrtune submits through Ray's Jobs API, which is served "
            f"by the dashboard; give its URL, e.g. http://HEAD:{DEFAULT_DASHBOARD_PORT}."
        )
    return address.rstrip("/")


@contextlib.contextmanager
def _without_address_variables() -> Iterator[None]:
    """Ray's client takes ``RAY_ADDRESS`` over the address it is given: hide the variables
    while it is built, so the address lrtune resolved is the one used."""
    saved = {k: os.environ.pop(k) for k in _ADDRESS_VARIABLES if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (no name lookup)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(url: str, token: AuthToken, insecure: bool = False) -> str | None:
    """Refuse to send the token in clear text (``http://`` to another machine) unless
    ``insecure``; then the warning line to show. None when the transport is fine (https,
    loopback, or no token to send). Decided from the URL alone, before any connection."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if token.value is None or parts.scheme.lower() == "https" or is_loopback(host):
        return None
    if not insecure:
        raise ClusterError(
            f"{url} is plain http to another machine: the cluster's token (from {token.source}) "
            "would cross the network in clear text, for anyone on the path to read and reuse. "
            "Use the dashboard through https (a TLS ingress), or a tunnel to loopback "
            "(kubectl port-forward svc/<head service> 8265, ssh -L 8265:HEAD:8265, then "
            "--address http://127.0.0.1:8265), or pass --insecure on a network you trust."
        )
    return (
        f"sending the cluster's token over plain http to {host} (--insecure): anyone on the "
        "network path can read it"
    )


@dataclass
class ClusterClient:
    """A checked connection to one cluster's Jobs API (wraps `JobSubmissionClient`)."""

    address: str
    token: AuthToken
    ray_version: str
    client: Any
    #: Lines to show the user (an insecure transport accepted with ``--insecure``).
    warnings: list[str] = field(default_factory=list)

    # ---- the cluster

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's alive nodes (Ray's state API: node_id, node_ip, resources_total...)."""
        body = self._get_json("/api/v0/nodes?limit=10000&detail=false")
        rows = body.get("data", {}).get("result", {}).get("result", [])
        return [row for row in rows if row.get("state", "ALIVE") == "ALIVE"]

    def _get_json(self, path: str) -> dict[str, Any]:
        import requests

        try:
            response = requests.get(
                self.address + path, headers=self.token.headers(), timeout=CHECK_TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise ClusterError(f"the cluster at {self.address} stopped answering: {exc}") from None
        if response.status_code != 200:
            raise ClusterError(
                f"the cluster at {self.address} answered {path} with HTTP "
                f"{response.status_code}: {redact(response.text[:200], self.token)}"
            )
        data: dict[str, Any] = response.json()
        return data

    # ---- jobs

    def submit(self, *, entrypoint: str, runtime_env: dict[str, Any], **kwargs: Any) -> str:
        """Submit a job; retries while the head's job agent is still starting."""
        deadline = time.monotonic() + SUBMIT_RETRY_S
        while True:
            try:
                submission_id: str = self.client.submit_job(
                    entrypoint=entrypoint, runtime_env=runtime_env, **kwargs
                )
                return submission_id
            except RuntimeError as exc:
                text = redact(str(exc), self.token)
                if "No available agent" in text and time.monotonic() < deadline:
                    time.sleep(3)
                    continue
                raise ClusterError(
                    f"the cluster at {self.address} refused the job: {text}"
                ) from None

    def jobs(self) -> list[Any]:
        """Every job the cluster knows (Ray's `JobDetails`), oldest first."""
        jobs = list(self._call(self.client.list_jobs))
        return sorted(jobs, key=lambda j: j.start_time or 0)

    def info(self, job_id: str) -> Any:
        """Ray's `JobDetails` of one job; `ClusterError` if the cluster has no such job."""
        return self._call(self.client.get_job_info, job_id, job_id=job_id)

    def status(self, job_id: str) -> str:
        """The job's status name (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
        return str(self.info(job_id).status.value)

    def logs(self, job_id: str) -> str:
        """Everything the job's driver printed so far."""
        return str(self._call(self.client.get_job_logs, job_id, job_id=job_id))

    def stop(self, job_id: str) -> bool:
        """Ask Ray to stop the job (SIGTERM, SIGKILL after the job's stop wait); False if it
        had already ended."""
        return bool(self._call(self.client.stop_job, job_id, job_id=job_id))

    def follow(self, job_id: str, write: Callable[[str], None]) -> str:
        """Stream the job's logs through ``write`` until it ends; returns its final status."""
        self.info(job_id)  # a clear error for an unknown id

        async def tail() -> None:
            async for chunk in self.client.tail_job_logs(job_id):
                write(chunk)

        try:
            asyncio.run(tail())
        except Exception as exc:  # the stream broke (network, websocket): poll the status
            write(f"lrtune: log stream ended early ({redact(str(exc), self.token)})\n")
        return self.wait(job_id, timeout_s=60.0)

    def wait(
        self,
        job_id: str,
        timeout_s: float,
        until: tuple[str, ...] = TERMINAL,
        poll_s: float = 1.0,
    ) -> str:
        """Poll the job until its status is one of ``until`` (or the timeout); the status."""
        deadline = time.monotonic() + timeout_s
        status = self.status(job_id)
        while status not in until and time.monotonic() < deadline:
            time.sleep(poll_s)
            status = self.status(job_id)
        return status

    def _call(self, fn: Callable[..., Any], *args: Any, job_id: str | None = None) -> Any:
        try:
            return fn(*args)
        except RuntimeError as exc:
            text = redact(str(exc), self.token)
            if job_id is not None and ("404" in text or "does not exist" in text):
                raise ClusterError(
                    f"the cluster at {self.address} has no job {job_id!r} "
                    "(`lrtune jobs list` shows the ones it has)."
                ) from None
            raise ClusterError(f"the cluster at {self.address}: {text}") from None
        except ConnectionError as exc:
            raise ClusterError(
                f"the cluster at {self.address} stopped answering: {redact(str(exc), self.token)}"
            ) from None


def connect(
    address: str,
    token: AuthToken,
    timeout_s: float = CHECK_TIMEOUT_S,
    *,
    insecure: bool = False,
) -> ClusterClient:
    """Check the transport, the address and the token, then build Ray's client. `ClusterError`
    when the token would go over plain http to another machine (without ``insecure``), the
    address does not answer, is not a Ray dashboard, or refuses the token."""
    import requests

    url = dashboard_url(address)
    warning = check_transport(url, token, insecure)  # before any connection is opened
    try:
        response = requests.get(f"{url}/api/version", headers=token.headers(), timeout=timeout_s)
    except requests.RequestException as exc:
        kind = "timed out" if isinstance(exc, requests.Timeout) else "refused or unreachable"
        raise ClusterError(
            f"nothing answers at {url} ({kind}): is the cluster up, and is this its dashboard "
            f"address (port {DEFAULT_DASHBOARD_PORT} by default; the Jobs API needs "
            "ray[default] on the head node)? For KubeRay, port-forward the head service's "
            "dashboard port."
        ) from None
    if response.status_code in (401, 403):
        raise ClusterError(_auth_problem(url, token, response.status_code))
    version = None
    if response.status_code == 200:
        with contextlib.suppress(ValueError):
            version = response.json().get("ray_version")
    if not version:
        raise ClusterError(
            f"{url} answered (HTTP {response.status_code}) but is not a Ray dashboard with the "
            "Jobs API; check the address and port."
        )
    from ray.job_submission import JobSubmissionClient

    with _without_address_variables():
        try:
            client = JobSubmissionClient(url, headers=token.headers())
        except Exception as exc:  # Ray's own checks (version, auth) as one paragraph
            raise ClusterError(f"{url}: {redact(str(exc), token).splitlines()[0]}") from None
    return ClusterClient(
        address=url,
        token=token,
        ray_version=str(version),
        client=client,
        warnings=[warning] if warning else [],
    )


def _auth_problem(url: str, token: AuthToken, status: int) -> str:
    if token.value is None:
        return (
            f"the cluster at {url} requires a token (Ray token authentication) and lrtune "
            f"found none; it looked at: {token.where_looked()}. Set RAY_AUTH_TOKEN, or "
            "RAY_AUTH_TOKEN_PATH to a file holding it, or write it to ~/.ray/auth_token "
            "(`ray get-auth-token` prints the cluster's token on its head node; on KubeRay "
            "it is in the Secret named by authOptions)."
        )
    return (
        f"the cluster at {url} rejected the token (HTTP {status}) that lrtune took from "
        f"{token.source}; it looked at: {token.where_looked()}. Use the cluster's own token "
        "(`ray get-auth-token` on its head node; on KubeRay, the Secret named by authOptions)."
    )
