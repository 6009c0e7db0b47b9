"""``lrtune sync NAME``: deliver what an experiment's tracking journal holds to MLflow.

A run whose MLflow server was down at its end leaves the calls it could not deliver in
``results/<name>/tracking-journal/``; this command replays them (idempotently: nothing that
reached MLflow is logged twice) and empties the journal. The next ``lrtune run`` of the same
experiment does the same on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lrtune.registry import LRTuneError

EXIT_OK, EXIT_FAILED = 0, 1


class SyncError(LRTuneError):
    """``lrtune sync`` was given an experiment it cannot find."""


def add_sync_parser(sub: Any) -> None:
    """Register ``lrtune sync``."""
    s = sub.add_parser(
        "sync",
        help="replay an experiment's tracking journal (calls MLflow missed) into MLflow",
        description=(
            "Deliver the MLflow calls an experiment's runs journalled while the tracking "
            "server was unreachable (results/<name>/tracking-journal/), without duplicating "
            "anything already delivered."
        ),
    )
    s.add_argument("name", help="the experiment's name (its folder under the results folder)")
    s.add_argument(
        "--results-dir",
        default="results",
        help="the folder holding the experiment's results folder (default: ./results)",
    )
    s.add_argument(
        "--tracking-uri",
        default=None,
        help=(
            "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the job's tracking.uri "
            "when it holds no password, else sqlite:///./mlflow.db as `lrtune run` uses)"
        ),
    )
    s.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="seconds to keep trying while MLflow is unreachable (default: 10)",
    )
    s.set_defaults(func=cmd_sync)


def sync_uri(explicit: str | None, results: Path) -> str:
    """The tracking URI `lrtune sync` replays to: ``--tracking-uri``, else
    ``$MLFLOW_TRACKING_URI``, else the stored job's ``tracking.uri`` when it holds no password,
    else ``sqlite:///<cwd>/mlflow.db`` (as `TrackingSpec.resolved_uri` falls back)."""
    from lrtune.tracking import has_password

    if explicit:
        return explicit
    from_env = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if from_env:
        return from_env
    stored = _stored_job(results).get("tracking") or {}
    uri = stored.get("uri") if isinstance(stored, dict) else None
    if isinstance(uri, str) and uri and not has_password(uri):
        return uri
    return f"sqlite:///{(Path.cwd() / 'mlflow.db').as_posix()}"


def _stored_job(results: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.safe_load((results / "job.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def cmd_sync(args: argparse.Namespace) -> int:
    """Replay the journal; 0 when everything reached MLflow (or nothing was left), 1 when MLflow
    is still unreachable (the journal keeps what was not delivered)."""
    from lrtune.tracking import JOURNAL_DIR, JournalBusyError, TrackingJournal, redact_uri
    from lrtune.tracking._journal import JOURNAL_FILE, META_FILE

    results = Path(args.results_dir).expanduser().resolve() / args.name
    folder = results / JOURNAL_DIR
    if not results.is_dir():
        raise SyncError(
            f"name: no experiment '{args.name}' in {results.parent} (no folder {results}); give "
            "the experiment's name as `lrtune run` printed it, and --results-dir the folder "
            "that holds its results folder (the job's results_dir)."
        )
    if not (folder / JOURNAL_FILE).exists():
        print(f"lrtune: sync: nothing to replay for '{args.name}' (no journal in {folder})")
        return EXIT_OK
    experiment = _journal_experiment(folder / META_FILE) or _stored_experiment(results, args.name)
    uri = sync_uri(args.tracking_uri, results)
    shown = redact_uri(uri)
    try:
        journal = TrackingJournal(folder, uri, experiment, quiet=True, drain_seconds=0)
    except JournalBusyError as exc:
        print(f"lrtune: sync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    waiting = journal.leftover
    # As long as MLflow answers, delivery goes on (a long journal, a store's first migration);
    # only the time it is unreachable counts against --wait.
    unreachable = 0.0
    while True:
        began = time.monotonic()
        if journal.drain(1.0, budgeted=False) or not journal.writing:
            break
        if journal.down:
            unreachable += time.monotonic() - began
            if unreachable >= args.wait:
                break
    left = journal.close(replay_hint=False)
    if left == 0:
        print(
            f"lrtune: sync: replayed {waiting} journalled calls of '{args.name}' to MLflow at "
            f"{shown} (experiment '{experiment}'); the journal is empty"
        )
        return EXIT_OK
    reason = journal.last_error or "no answer"
    print(
        f"lrtune: sync: MLflow at {shown} is still unreachable ({reason}); "
        f"{left} of {waiting} journalled calls of '{args.name}' stay in {folder}. "
        "Start the tracking server (or pass --tracking-uri, or set MLFLOW_TRACKING_URI, for "
        f"the store the experiment records to) and run `lrtune sync {args.name} --results-dir "
        f"{results.parent}` again.",
        file=sys.stderr,
    )
    return EXIT_FAILED


def _journal_experiment(meta: Path) -> str | None:
    try:
        value = json.loads(meta.read_text()).get("experiment")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def _stored_experiment(results: Path, name: str) -> str:
    job = _stored_job(results)
    tracking = job.get("tracking") or {}
    experiment = tracking.get("experiment") if isinstance(tracking, dict) else None
    return str(experiment or name)
