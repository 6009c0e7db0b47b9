"""Where a new MLflow experiment keeps its artifacts, by the kind of tracking store."""

from __future__ import annotations

import re
from pathlib import Path

#: The artifact folder's name beside a sqlite store: MLflow's own default name (``./mlruns``).
ARTIFACT_FOLDER = "mlruns"


def artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """The artifact location lrtune gives an experiment it creates: for a sqlite store, a folder
    named after the experiment in the ``mlruns`` folder beside the database file (each run's
    artifacts in ``<run id>/artifacts`` there, as MLflow lays them out); None (MLflow's choice)
    for every other store.

    MLflow puts a sqlite store's artifacts in ``./mlruns`` of the process that creates the
    experiment, so a job whose ``tracking.uri`` names a database elsewhere scattered them into
    whatever folder it was started from. A server chooses its own artifact root, and a folder
    store (a path or ``file:``) keeps artifacts inside itself already.
    """
    if not tracking_uri.lower().startswith("sqlite:///"):
        return None
    database = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    folder = re.sub(r"[^A-Za-z0-9._-]", "_", experiment_name).strip(".") or "experiment"
    return (Path(database).resolve().parent / ARTIFACT_FOLDER / folder).as_uri()
