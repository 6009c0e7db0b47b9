"""Read an experiment's records from MLflow (any tracking URI): its parent run, every trial and
finalist run (tags, params, final metrics) in bulk, and metric histories in bulk.

Everything comes from MLflow, so a cluster's experiment (an ``http://`` tracking server) and a
laptop's (``sqlite:///mlflow.db``) are compared the same way. The local results folder
(``results/<name>``) is only used to find the experiment: its ``summary.json`` names the
tracking URI and the parent run.

Metric histories: MLflow's public client reads one run and one key per call. For a tracking
server, lrtune calls the server's ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk`` (what
MLflow's own UI charts with: one query for up to 100 runs; an answer cut at its 25000-point cap
is asked again in halves); for a database URI (sqlite, postgresql, mysql) it calls the store's
own ``get_metric_history_bulk``, the method behind that endpoint, never SQL of its own; anything
else (or a server without the endpoint) falls back to the public per-run call. Measured with
MLflow 3.17 on sqlite (benchmarks/compare.py): the documented
``/api/2.0/mlflow/metrics/get-history-bulk-interval`` runs one window query per run and was
slower than even the per-run calls, so it is not used.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import yaml
from mlflow.tracking import MlflowClient

from lrtune._stored_uri import recorded_tracking_uri
from lrtune.registry import LRTuneError

# The tag names are lrtune.vocabulary's (importing it costs nothing; lrtune.tracking would
# import Ray Tune); the names stay importable from here for the callers that use them.
from lrtune.vocabulary import (
    PARENT_TAG,
    TAG_BASELINE,
    TAG_EXPERIMENT,
    TAG_FINALIST,
    TAG_POPULATION,
    TAG_ROLE,
    TAG_ROUND,
    TAG_STATUS,
    TAG_TRIAL_ID,
    TRUE,
    RunRole,
)
from lrtune.vocabulary import (
    TAG_SEARCH_SCORE as TAG_SEARCH_SCORE,
)
from lrtune.vocabulary import (
    TAG_SOURCE_TRIAL as TAG_SOURCE_TRIAL,
)
from lrtune.vocabulary import (
    TAG_TEST_SEED as TAG_TEST_SEED,
)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
HISTORY_RUNS_PER_REQUEST = 100  # the server's limit of runs per bulk request
HISTORY_MAX_POINTS = 2500  # points per run and key kept for a chart, at most
BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
BULK_MAX_RESULTS = 25000  # the server's cap on one get-history-bulk answer

log = logging.getLogger("lrtune.analysis")


class ExperimentNotFoundError(LRTuneError):
    """No lrtune experiment of that name (or folder) in the tracking store."""


@dataclass(frozen=True)
class RunRecord:
    """One child run of an experiment (a search trial or a finalist), as MLflow holds it."""

    run_id: str
    name: str
    mlflow_status: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]

    @property
    def role(self) -> str:
        """``finalist`` or ``trial``."""
        if self.tags.get(TAG_FINALIST) == TRUE or self.tags.get(TAG_ROLE) == RunRole.FINALIST:
            return RunRole.FINALIST
        return self.tags.get(TAG_ROLE, RunRole.TRIAL)

    @property
    def status(self) -> str:
        """lrtune's status: a `TrialStatus` value ('' while running)."""
        return self.tags.get(TAG_STATUS, "")

    @property
    def score(self) -> float | None:
        """The last reported ``score`` (the job's metric, finite), or None."""
        value = self.metrics.get("score")
        return float(value) if value is not None and math.isfinite(value) else None

    @property
    def trial_id(self) -> str:
        """Tune's trial id of the run."""
        return self.tags.get(TAG_TRIAL_ID, self.run_id)

    @property
    def finalize_round(self) -> str:
        """The finalize round a finalist run belongs to ('' for trials)."""
        return self.tags.get(TAG_ROUND, "")

    @property
    def baseline(self) -> bool:
        """Whether the trial is the job's baseline policy."""
        return self.tags.get(TAG_BASELINE) == TRUE


@dataclass
class ExperimentData:
    """An lrtune experiment read back from MLflow."""

    name: str
    tracking_uri: str
    mlflow_experiment_id: str
    parent_run_id: str
    parent_tags: dict[str, str]
    parent_params: dict[str, str]
    job: dict[str, Any]
    runs: list[RunRecord]
    results_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def env_id(self) -> str:
        """The gymnasium id the experiment trained on."""
        env = self.job.get("env") or {}
        return str(env.get("id") or self.parent_params.get("env", "?"))

    @property
    def env_config(self) -> dict[str, Any]:
        """The env's keyword arguments."""
        env = self.job.get("env") or {}
        return dict(env.get("config") or {})

    @property
    def metric_mode(self) -> str:
        """``max`` or ``min``."""
        return str((self.job.get("metric") or {}).get("mode", "max"))

    @property
    def metric_name(self) -> str:
        """The job's metric (what ``score`` is)."""
        return str((self.job.get("metric") or {}).get("name", "env_runners/episode_return_mean"))

    @property
    def trial_env_steps(self) -> int | None:
        """A trial's env-step budget."""
        budget = (self.job.get("budget") or {}).get("trial_env_steps")
        if budget is None:
            budget = self.parent_params.get("trial_env_steps")
        return int(float(budget)) if budget is not None else None

    @property
    def population(self) -> bool:
        """Whether this is a population run (PBT/PB2)."""
        return bool(self.job.get("population")) or self.parent_tags.get(TAG_POPULATION) == TRUE

    def trials(self) -> list[RunRecord]:
        """The search's trial runs."""
        return [r for r in self.runs if r.role == RunRole.TRIAL]

    def finalists(self) -> list[RunRecord]:
        """The finalist runs of the latest finalize round (one run per config and test seed)."""
        runs = [r for r in self.runs if r.role == RunRole.FINALIST]
        if not runs:
            return []
        latest = max(r.finalize_round for r in runs)
        return [r for r in runs if r.finalize_round == latest]


# ------------------------------------------------------------------------- finding the runs


def results_folder(experiment: str) -> Path | None:
    """The results folder an argument names: a path to ``results/<name>``, or ``<name>`` under
    ``./results``; None when neither exists."""
    path = Path(experiment).expanduser()
    for candidate in (path, Path("results") / experiment):
        if candidate.is_dir() and any(
            (candidate / f).exists() for f in ("summary.json", "job.yaml")
        ):
            return candidate.resolve()
    return None


def _summary(results_dir: Path | None) -> dict[str, Any]:
    if results_dir is None or not (results_dir / "summary.json").exists():
        return {}
    try:
        data = json.loads((results_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resolve_tracking_uri(experiment: str, tracking_uri: str | None) -> str:
    """``tracking_uri``, else the experiment's summary.json ``tracking_uri``, else
    ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    if tracking_uri:
        return tracking_uri
    return _stored_uri(_summary(results_folder(experiment)), experiment)


def _stored_uri(summary: dict[str, Any], experiment: str) -> str:
    """summary.json's tracking URI (`lrtune._stored_uri.recorded_tracking_uri`: one whose
    password lrtune redacted gives way to ``MLFLOW_TRACKING_URI``, or to itself without
    credentials when MLflow's username and password variables are set); no summary (an
    experiment run on a cluster, or not here): ``MLFLOW_TRACKING_URI``, else the default."""
    return recorded_tracking_uri(
        None, [summary.get("tracking_uri")], DEFAULT_TRACKING_URI, experiment
    )


def search_all(
    client: MlflowClient,
    experiment_ids: Sequence[str],
    filter_string: str,
    order_by: Sequence[str] | None = None,
) -> list[Any]:
    """Every run matching a filter (all pages, 1000 runs per request)."""
    out: list[Any] = []
    token: str | None = None
    while True:
        page = client.search_runs(
            list(experiment_ids),
            filter_string=filter_string,
            max_results=1000,
            order_by=list(order_by or []),
            page_token=token,
        )
        out.extend(page)
        token = page.token
        if not token:
            return out


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def load_experiment(experiment: str, tracking_uri: str | None = None) -> ExperimentData:
    """An experiment's parent run and child runs, read from MLflow.

    ``experiment`` is a results folder (``results/<name>``), a name under ``./results``, or the
    lrtune experiment name as MLflow knows it (tag ``lrtune.experiment``).
    """
    results_dir = results_folder(experiment)
    summary = _summary(results_dir)
    name = str(summary.get("name") or (results_dir.name if results_dir else experiment))
    uri = tracking_uri or _stored_uri(summary, experiment)
    client = MlflowClient(tracking_uri=uri)
    parent = None
    parent_id = summary.get("parent_run_id")
    if parent_id:
        try:
            parent = client.get_run(str(parent_id))
        except Exception:  # deleted, or another store: search by tags below
            parent = None
    if parent is None:
        experiment_ids = [e.experiment_id for e in client.search_experiments()]
        found = (
            search_all(
                client,
                experiment_ids,
                f"tags.`{TAG_ROLE}` = '{RunRole.EXPERIMENT}' and "
                f"tags.`{TAG_EXPERIMENT}` = '{_quote(name)}'",
                order_by=["attributes.start_time DESC"],
            )
            if experiment_ids
            else []
        )
        if not found:
            raise ExperimentNotFoundError(
                f"no lrtune experiment {name!r} in the MLflow store at {uri} (no parent run "
                f"tagged {TAG_EXPERIMENT}={name}). Give the results folder (results/<name>), "
                "or the store with --tracking-uri."
            )
        parent = found[0]
    parent_run_id = parent.info.run_id
    exp_id = parent.info.experiment_id
    runs = [
        _record(run)
        for run in search_all(client, [exp_id], f"tags.`{PARENT_TAG}` = '{parent_run_id}'")
    ]
    job, notes = _job_of(client, parent_run_id, results_dir)
    log.info("read experiment %s: %d run%s", name, len(runs), "" if len(runs) == 1 else "s")
    return ExperimentData(
        name=name if summary else parent.data.tags.get(TAG_EXPERIMENT, name),
        tracking_uri=uri,
        mlflow_experiment_id=str(exp_id),
        parent_run_id=parent_run_id,
        parent_tags=dict(parent.data.tags),
        parent_params=dict(parent.data.params),
        job=job,
        runs=runs,
        results_dir=results_dir,
        notes=notes,
    )


def _record(run: Any) -> RunRecord:
    return RunRecord(
        run_id=run.info.run_id,
        name=run.info.run_name or run.info.run_id,
        mlflow_status=run.info.status,
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
    )


def read_artifact_text(client: MlflowClient, run_id: str, path: str) -> str | None:
    """The text of a run's artifact, or None when it is not there."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = client.download_artifacts(run_id, path, tmp)
            return Path(local).read_text()
    except Exception:  # missing artifact, unreachable artifact store
        return None


def _job_of(
    client: MlflowClient, parent_run_id: str, results_dir: Path | None
) -> tuple[dict[str, Any], list[str]]:
    text = read_artifact_text(client, parent_run_id, "job.yaml")
    notes: list[str] = []
    if text is None and results_dir is not None and (results_dir / "job.yaml").exists():
        text = (results_dir / "job.yaml").read_text()
        notes.append("job.yaml read from the results folder (not yet logged to MLflow)")
    if text is None:
        notes.append("no job.yaml in MLflow: env and metric taken from the parent run's params")
        return {}, notes
    data = yaml.safe_load(text)
    return (data if isinstance(data, dict) else {}), notes


# ---------------------------------------------------------------------------------- histories

History = tuple[np.ndarray, np.ndarray]


def metric_histories(
    tracking_uri: str,
    run_ids: Sequence[str],
    key: str,
    max_points: int = 200,
) -> dict[str, History]:
    """``{run_id: (steps, values)}`` of one metric for many runs, sorted by step; at most
    ``max_points`` evenly sampled points per run (the first and the last always kept)."""
    max_points = max(1, min(int(max_points), HISTORY_MAX_POINTS))
    ids = list(dict.fromkeys(run_ids))
    if not ids:
        return {}
    scheme = urlparse(tracking_uri).scheme.lower()
    rows: list[tuple[str, int, float]] | None = None
    with _fetch_progress(len(ids), key) as bar:
        if scheme in ("http", "https"):
            rows = _rest_bulk(tracking_uri, ids, key, max_points, bar)
        elif scheme and scheme.split("+")[0] in ("sqlite", "postgresql", "mysql", "mssql"):
            rows = _store_bulk(tracking_uri, ids, key, max_points, bar)
        if rows is None:
            bar.reset()
            rows = _per_run(tracking_uri, ids, key, max_points, bar)
    grouped: dict[str, list[tuple[int, float]]] = {}
    for run_id, step, value in rows:
        grouped.setdefault(run_id, []).append((step, value))
    out: dict[str, History] = {}
    for run_id, points in grouped.items():
        points.sort()
        steps = np.fromiter((p[0] for p in points), dtype=np.int64, count=len(points))
        values = np.fromiter((p[1] for p in points), dtype=np.float64, count=len(points))
        out[run_id] = (steps, values)
    return out


def _fetch_progress(runs: int, key: str) -> Any:
    """A progress bar over the runs whose ``key`` history is being read (tqdm, on stderr; off
    when stderr is not a terminal, or with ``-q``)."""
    from tqdm import tqdm

    quiet = not log.isEnabledFor(logging.INFO)
    return tqdm(
        total=runs, desc=f"reading {key}", unit="run", leave=False, disable=True if quiet else None
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _rest_bulk(
    uri: str, run_ids: Sequence[str], key: str, max_points: int, bar: Any
) -> list[tuple[str, int, float]] | None:
    """The server's ``get-history-bulk`` endpoint (the one MLflow's own UI charts with: one
    query for up to 100 runs, at most 25000 points per answer); None when it is missing."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    creds = get_default_host_creds(uri)
    per_run: dict[str, list[tuple[int, int, float]]] = {}
    rows: list[tuple[str, int, float]] = []
    pending = [list(chunk) for chunk in _chunks(run_ids, HISTORY_RUNS_PER_REQUEST)]
    while pending:
        chunk = pending.pop()
        response = http_request(
            creds,
            BULK_ENDPOINT,
            "GET",
            params={"run_id": chunk, "metric_key": key, "max_results": BULK_MAX_RESULTS},
        )
        if response.status_code == 404:
            return None  # a server without it: the per-run calls
        response.raise_for_status()
        metrics = response.json().get("metrics", [])
        if len(metrics) >= BULK_MAX_RESULTS:  # the answer was cut: ask for fewer runs at once
            if len(chunk) == 1:
                rows.extend(_per_run(uri, chunk, key, max_points, bar))
            else:
                pending += [chunk[: len(chunk) // 2], chunk[len(chunk) // 2 :]]
            continue
        bar.update(len(chunk))
        for m in metrics:
            per_run.setdefault(m["run_id"], []).append(
                (int(m.get("step", 0)), int(m.get("timestamp", 0)), float(m.get("value", "nan")))
            )
    for run_id, points in per_run.items():
        points.sort()
        rows.extend((run_id, step, value) for step, _, value in _thin(points, max_points))
    return rows


def _store_bulk(
    uri: str, run_ids: Sequence[str], key: str, max_points: int, bar: Any
) -> list[tuple[str, int, float]] | None:
    """One query per 100 runs through the store's own ``get_metric_history_bulk`` (the method
    the server's ``get-history-bulk`` endpoint runs); thinned to ``max_points`` per run here.

    Measured on sqlite: MLflow's ``get_metric_history_bulk_interval`` samples with one window
    query per run and was slower than the public per-run reads; this one query is not."""
    client = MlflowClient(tracking_uri=uri)
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    bulk = getattr(store, "get_metric_history_bulk", None)
    if bulk is None:
        return None
    per_run: dict[str, list[tuple[int, int, float]]] = {}
    for chunk in _chunks(run_ids, HISTORY_RUNS_PER_REQUEST):
        for m in bulk(run_ids=chunk, metric_key=key, max_results=2**62):
            per_run.setdefault(m.run_id, []).append((int(m.step), int(m.timestamp), float(m.value)))
        bar.update(len(chunk))
    rows: list[tuple[str, int, float]] = []
    for run_id, points in per_run.items():
        points.sort()
        rows.extend((run_id, step, value) for step, _, value in _thin(points, max_points))
    return rows


def _thin(points: Sequence[Any], max_points: int) -> list[Any]:
    """At most ``max_points`` evenly spaced items, the first and the last always kept."""
    if len(points) <= max_points:
        return list(points)
    if max_points == 1:
        return [points[-1]]
    picks = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
    return [points[i] for i in picks]


def _per_run(
    uri: str, run_ids: Sequence[str], key: str, max_points: int, bar: Any = None
) -> list[tuple[str, int, float]]:
    client = MlflowClient(tracking_uri=uri)
    rows: list[tuple[str, int, float]] = []
    for run_id in run_ids:
        history = sorted(
            client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp)
        )
        rows.extend((run_id, int(m.step), float(m.value)) for m in _thin(history, max_points))
        if bar is not None:
            bar.update(1)
    return rows
