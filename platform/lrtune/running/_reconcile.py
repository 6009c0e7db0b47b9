"""Closing what a driver left open: MLflow runs and Optuna trials no live Tune trial owns.

A driver killed with SIGKILL (or one whose disk filled up) leaves its MLflow trial runs and its
Optuna trials RUNNING. The next run of the same experiment (it holds the experiment's lock, so
no other driver is live) closes them here before Tune starts, and every run closes anything
still open when it ends. A trial Tune will resume keeps its run open (the tracking callback
re-attaches to it); a trial Tune already ended gets the status its last result gives; a trial
Tune never heard of (created after Tune's last snapshot, lost with the driver) ends ``stopped``.

MLflow is asked with bounded retries and timeouts (the client's default is minutes per call to
a server that is down); when it cannot be asked, one line says so and the next run reconciles.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lrtune.vocabulary import (
    PARENT_TAG,
    RUN_STATUS,
    TAG_DIVERGED,
    TAG_EXPERIMENT,
    TAG_LOST,
    TAG_PARENT_KEY,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
    TRUE,
    RunRole,
    TrialStatus,
)


@contextlib.contextmanager
def bounded_mlflow_calls() -> Iterator[None]:
    """MLflow calls bounded as the tracking journal bounds its own (`bound_http_calls`: one
    retry, 5 s per request, unless the user set MLflow's variables)."""
    from lrtune.tracking._journal import bound_http_calls

    bound_http_calls()
    yield


def _status_tags_and_state(status: str) -> tuple[dict[str, str], str]:
    tags = {TAG_STATUS: status}
    if status == TrialStatus.DIVERGED:
        tags[TAG_DIVERGED] = TRUE
    return tags, RUN_STATUS.get(status, "KILLED")


def reconcile_mlflow(
    tracking_uri: str,
    experiment_name: str,
    job_name: str,
    *,
    live: set[str],
    ended: Mapping[str, str],
    keep_parent: str | None,
    parent_status: str | None,
    say: Callable[[str], None],
    keep_parent_key: str | None = None,
) -> int | None:
    """Close the RUNNING runs of a job's MLflow experiment that no live trial owns.

    ``live``: trial ids Tune runs or will resume (left open). ``ended``: trial id → lrtune
    status of trials Tune knows as ended (closed with it); any other trial run ends ``stopped``.
    Parent runs of the job other than this run's own end KILLED; its own (run id
    ``keep_parent``, or tagged with ``keep_parent_key``, the journal's key for it) ends with
    ``parent_status`` when that is given. The key matters where the journal created the parent
    after the driver stopped waiting for its id (a slow or late store): by id alone, the run
    killed its own parent. Returns how many runs were closed, or None when MLflow could not be
    asked (one line is said; the next run reconciles).
    """
    from mlflow.tracking import MlflowClient

    closed = 0
    try:
        with bounded_mlflow_calls():
            client = MlflowClient(tracking_uri=tracking_uri)
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                return 0
            ids = [experiment.experiment_id]
            parents = _search_all(
                client,
                ids,
                f"tags.`{TAG_EXPERIMENT}` = '{job_name}' and "
                f"tags.`{TAG_ROLE}` = '{RunRole.EXPERIMENT}'",
            )
            for parent in parents:
                run_id = parent.info.run_id
                trials = _search_all(
                    client,
                    ids,
                    f"tags.`{PARENT_TAG}` = '{run_id}' and attributes.status = 'RUNNING'",
                )
                for run in trials:
                    trial_id = run.data.tags.get(TAG_TRIAL_ID, "")
                    if trial_id in live:
                        continue
                    status = ended.get(trial_id, TrialStatus.STOPPED)
                    tags, state = _status_tags_and_state(status)
                    if trial_id not in ended:
                        # Lost with a killed driver: Tune never saved it and will not resume it.
                        tags[TAG_LOST] = TRUE
                    for key, value in tags.items():
                        client.set_tag(run.info.run_id, key, value)
                    client.set_terminated(run.info.run_id, status=state)
                    closed += 1
                if parent.info.status != "RUNNING":
                    continue
                own = run_id == keep_parent or (
                    keep_parent_key is not None
                    and parent.data.tags.get(TAG_PARENT_KEY) == keep_parent_key
                )
                if not own:
                    client.set_terminated(run_id, status="KILLED")
                    closed += 1
                elif parent_status is not None:
                    client.set_terminated(run_id, status=parent_status)
    except Exception as exc:  # the store may be down or on a full disk: never end the run here
        say(
            f"could not reconcile MLflow runs of '{job_name}' at {_redact(tracking_uri)} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "the next run of this experiment closes what is left open"
        )
        return None
    return closed


def _search_all(client: Any, experiment_ids: list[str], query: str) -> list[Any]:
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            experiment_ids, filter_string=query, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _redact(uri: str) -> str:
    from lrtune.running._run import redact_uri

    return redact_uri(uri)


def mlflow_has_experiment_run(
    tracking_uri: str, experiment_name: str, job_name: str
) -> bool | None:
    """Whether the store at ``tracking_uri`` holds this job's parent run (None: cannot ask)."""
    from mlflow.tracking import MlflowClient

    try:
        with bounded_mlflow_calls():
            client = MlflowClient(tracking_uri=tracking_uri)
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                return False
            runs = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`{TAG_EXPERIMENT}` = '{job_name}' and "
                f"tags.`{TAG_ROLE}` = '{RunRole.EXPERIMENT}'",
                max_results=1,
            )
            return bool(runs)
    except Exception:
        return None


def close_study_trials(storage_url: str, study_name: str, say: Callable[[str], None]) -> int:
    """Close every RUNNING Optuna trial of the study as ``stopped`` (FAIL); 0 when none."""
    from lrtune.running._search import close_running_trials

    try:
        return close_running_trials(storage_url, study_name)
    except Exception as exc:  # a full disk under the study: say so, the next run closes them
        say(
            f"could not close the RUNNING Optuna trials of '{study_name}' ({type(exc).__name__}); "
            "the next run of this experiment closes them"
        )
        return 0
