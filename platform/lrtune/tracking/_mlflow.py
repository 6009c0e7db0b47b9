"""MLflow records: one parent run per experiment, one nested child run per trial, ever.

Unlike Ray's stock ``MLflowLoggerCallback`` (measured on this stack: a second run per trial
after ``Tuner.restore``, a run left RUNNING forever, params that change break it, an unreachable
server ends ``tuner.fit()``), this callback re-attaches to a trial's run by its Tune trial id,
ends every run with a final status, logs changing values as metrics, and never lets a tracking
failure end the experiment or hold up the driver: the recorder journals its calls on local disk
and one background thread delivers them (`lrtune.tracking._journal`), one writer per process
(no concurrent sqlite writers). `Tracker` is the direct, synchronous wrapper the end of a run
uses for what it reads back; its calls are bounded (one retry, 5 s per request).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune.callback import Callback

from lrtune.tracking._redact import has_password, redact_uri
from lrtune.tracking._stores import artifact_location
from lrtune.vocabulary import (
    PARENT_TAG,
    RUN_STATUS,
    TAG_DIVERGED,
    TAG_ERROR,
    TAG_EXPERIMENT,
    TAG_JOB_HASH,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
    TRUE,
    RunRole,
    TrialStatus,
)

if TYPE_CHECKING:
    from lrtune.tracking._journal import TrackingJournal

log = logging.getLogger("lrtune.tracking")
T = TypeVar("T")

# The tag names and statuses are lrtune.vocabulary's (re-exported: lrtune.tracking.TAG_* etc.).
__all__ = [
    "PARENT_TAG",
    "RUN_STATUS",
    "TAG_DIVERGED",
    "TAG_EXPERIMENT",
    "TAG_JOB_HASH",
    "TAG_ROLE",
    "TAG_STATUS",
    "TAG_TRIAL_ID",
    "Tracker",
    "TrialRecorder",
    "flatten",
    "last_error_line",
    "restored_from_another_trial",
]
#: Logged at every result; its history tells a re-attached run how far it was logged.
STEP_METRIC = "score"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


class Tracker:
    """Thin, failure-tolerant wrapper over `MlflowClient` for one experiment."""

    def __init__(self, tracking_uri: str, experiment_name: str) -> None:
        from lrtune.tracking._journal import bound_http_calls

        bound_http_calls()  # a dead server costs seconds per call, not MLflow's ~4 minutes
        if has_password(tracking_uri):  # MLflow prints each ended run's URL, password and all
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self._failed_kinds: set[str] = set()
        self._experiment: str | None = None

    @property
    def experiment_id(self) -> str | None:
        """The MLflow experiment's id (created if missing), or None while MLflow is unreachable;
        looked up on first use, so creating a Tracker costs no call."""
        if self._experiment is None:
            self._experiment = self.safe("experiment", self._experiment_id)
        return self._experiment

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return str(found.experiment_id)
        location = artifact_location(self.tracking_uri, self.experiment_name)
        return str(self.client.create_experiment(self.experiment_name, location))

    def safe(self, kind: str, call: Callable[[], T]) -> T | None:
        """Run an MLflow call; a failure is logged once per kind and the experiment goes on."""
        try:
            return call()
        except Exception as exc:  # the tracking server may be down: never end the experiment
            if kind not in self._failed_kinds:
                self._failed_kinds.add(kind)
                from lrtune.tracking._redact import scrub

                log.warning(
                    "MLflow %s failed (%s); going on without it",
                    kind,
                    scrub(f"{type(exc).__name__}: {exc}", self.tracking_uri)[:500],
                )
            return None

    def find_run(self, **tags: str) -> str | None:
        """The id of the newest run of this experiment with all ``tags``, or None."""
        experiment_id = self.experiment_id
        if experiment_id is None:
            return None
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())

        def search() -> str | None:
            runs = self.client.search_runs(
                [experiment_id],
                filter_string=query,
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )
            return runs[0].info.run_id if runs else None

        return self.safe("search", search)

    def reopen(self, run_id: str) -> None:
        """Mark a re-attached run RUNNING again (a resumed experiment)."""
        self.safe("reopen", lambda: self.client.update_run(run_id, status="RUNNING"))

    def last_step(self, run_id: str, metric: str) -> int | None:
        """The highest step at which ``metric`` was logged in the run, or None."""

        def highest() -> int | None:
            history = self.client.get_metric_history(run_id, metric)
            return max((int(m.step) for m in history), default=None)

        return self.safe("history", highest)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params once (values as strings, truncated to MLflow's limit)."""
        batch = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        for start in range(0, len(batch), 100):
            chunk = batch[start : start + 100]

            def log(chunk: list[Param] = chunk) -> None:
                self.client.log_batch(run_id, params=chunk)

            self.safe("params", log)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int) -> None:
        """Log finite metrics at ``step`` (env steps)."""
        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, int(step))
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        ]
        if batch:
            self.safe("metrics", lambda: self.client.log_batch(run_id, metrics=batch))

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set tags on a run."""
        batch = [RunTag(k, str(v)[:5000]) for k, v in tags.items()]
        self.safe("tags", lambda: self.client.log_batch(run_id, tags=batch))

    def log_artifact(self, run_id: str, path: str, artifact_path: str | None = None) -> None:
        """Upload a file or folder as an artifact."""
        if path.endswith("/"):
            path = path[:-1]
        import os

        if os.path.isdir(path):
            self.safe("artifacts", lambda: self.client.log_artifacts(run_id, path, artifact_path))
        else:
            self.safe("artifacts", lambda: self.client.log_artifact(run_id, path, artifact_path))

    def end_run(self, run_id: str, status: str) -> None:
        """End a run with MLflow status FINISHED, FAILED or KILLED."""
        self.safe("end run", lambda: self.client.set_terminated(run_id, status=status))


class TrialRecorder(Callback):
    """Tune callback: one MLflow child run per trial under the experiment's parent run.

    Called by Tune in the driver: `on_trial_start` (create, or re-attach after a restore),
    `on_trial_result` (metrics at the env-step count), `on_trial_complete` / `on_trial_error`
    (final status), `on_experiment_end` (anything still open ends ``KILLED``, tag ``stopped``).

    Every call only appends to the experiment's tracking journal (`TrackingJournal`, in
    ``journal_dir``; in memory when None) and returns: a background thread delivers it to
    MLflow, so a slow or unreachable server never holds Tune up, and what it missed is replayed
    later, idempotently. The parent run is ``parent_ref`` (a journal reference) or
    ``parent_run_id`` (an MLflow run that exists).

    A trial restored from its own checkpoint (a retry, or a resume after Ctrl-C) re-runs the
    iterations since that checkpoint; their results are not logged again, so a run's history has
    one point per env step. A population member restored from *another* member's checkpoint (an
    exploit) continues that member's history, which is logged as it comes.
    """

    def __init__(
        self,
        tracker_args: tuple[str, str],
        parent_run_id: str | None,
        *,
        describe: Callable[[Any], tuple[str, dict[str, str], dict[str, Any], str | None]],
        metrics_of: Callable[[Mapping[str, Any]], dict[str, float]],
        status_of: Callable[[Any, Mapping[str, Any] | None, bool], str],
        journal_dir: str | None = None,
        parent_ref: str | None = None,
    ) -> None:
        self.tracker_args = tracker_args
        self.parent_run_id = parent_run_id
        self.parent_ref = parent_ref or (f"run:{parent_run_id}" if parent_run_id else None)
        self.journal_dir = journal_dir
        self._journal: TrackingJournal | None = None
        self._owns_journal = False
        self._describe = describe
        self._metrics_of = metrics_of
        self._status_of = status_of
        self.announced: set[str] = set()
        self.statuses: dict[str, str] = {}
        self.last_results: dict[str, Mapping[str, Any]] = {}
        # Per trial: the highest env step already journalled (replayed iterations are skipped;
        # the writer skips those an earlier driver logged).
        self.logged_up_to: dict[str, int] = {}

    @property
    def journal(self) -> TrackingJournal:
        """The experiment's journal: the one `run_job` opened in this process, else its own
        (opened on first use: Tune pickles its callbacks)."""
        if self._journal is None:
            from lrtune.tracking._journal import open_journal

            self._journal, self._owns_journal = open_journal(self.journal_dir, *self.tracker_args)
        return self._journal

    @property
    def run_ids(self) -> dict[str, str]:
        """Trial id → MLflow run id, for the trials whose runs were delivered so far."""
        out = {}
        for trial_id in sorted(self.announced):
            run_id = self.journal.run_id(f"trial:{trial_id}")
            if run_id is not None:
                out[trial_id] = run_id
        return out

    def __getstate__(self) -> dict[str, Any]:
        # tuner.pkl holds the configuration only: no journal (thread, lock, file, client).
        state = dict(self.__dict__)
        state["_journal"] = None
        state["_owns_journal"] = False
        state["last_results"] = {}
        state["announced"] = set()
        state["logged_up_to"] = {}
        state["statuses"] = {}
        # Never a password on disk: a restored tuner gets this command's recorder instead.
        state["tracker_args"] = (redact_uri(self.tracker_args[0]), *self.tracker_args[1:])
        return state

    def flush(self, timeout: float | None = None) -> bool:
        """Wait (bounded) until everything recorded reached MLflow; True if it did."""
        return self.journal.drain(timeout)

    def _announce(self, trial: Any) -> str:
        trial_id = str(trial.trial_id)
        ref = f"trial:{trial_id}"
        if trial_id in self.announced:
            return ref
        # Announced only once its run is journalled: a description that fails (a full results
        # disk) leaves no run to tag or end when the experiment closes.
        name, extra_tags, params, artifact = self._describe(trial)
        self.journal.trial(
            trial_id, self.parent_ref, name, {**extra_tags, TAG_ROLE: RunRole.TRIAL}, params
        )
        self.announced.add(trial_id)
        if artifact is not None:
            self.journal.log_artifact(ref, artifact)
        return ref

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial (new, or restored from a checkpoint) starts running."""
        self._announce(trial)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        """A training iteration reported: journal its metrics at its env-step count."""
        trial_id = str(trial.trial_id)
        ref = self._announce(trial)
        self.last_results[trial_id] = result
        step = int(result.get("env_steps", result.get("training_iteration", 0)))
        reset = restored_from_another_trial(result, trial_id)
        if reset:
            self.logged_up_to.pop(trial_id, None)
        if step <= self.logged_up_to.get(trial_id, -1):
            return  # a replay of an iteration already logged (restored from its own checkpoint)
        self.logged_up_to[trial_id] = step
        self.journal.log_metrics(ref, self._metrics_of(result), step, reset=reset)

    def _finish(self, trial: Any, status: str, extra: Mapping[str, str] | None = None) -> None:
        ref = self._announce(trial)
        self.statuses[str(trial.trial_id)] = status
        tags = {TAG_STATUS: status, **(extra or {})}
        if status == TrialStatus.DIVERGED:  # a plain tag too, for searches: tags.diverged = 'true'
            tags[TAG_DIVERGED] = TRUE
        self.journal.set_tags(ref, tags)
        self.journal.end_run(ref, RUN_STATUS[status])

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial ended normally (its budget, an early stop, or divergence)."""
        result = self.last_results.get(str(trial.trial_id)) or trial.last_result
        self._finish(trial, self._status_of(trial, result, False))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """A trial failed for good (its retries, if any, are spent)."""
        self._finish(trial, TrialStatus.FAILED, {TAG_ERROR: last_error_line(trial)})

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        """The experiment ended (or was interrupted): end every run still open as stopped, then
        wait (bounded) for the journal to reach MLflow; a journal this recorder opened itself is
        closed here (what is left is said, with the command that replays it)."""
        for trial in trials:
            trial_id = str(trial.trial_id)
            if trial_id not in self.statuses and trial_id in self.announced:
                # A trial whose last result reached its budget (or diverged) ended as such
                # even when the experiment stopped (its env-step budget spent) on that same
                # result, before Tune told the trial complete; any other open trial stopped.
                last = self.last_results.get(trial_id) or trial.last_result or None
                status = self._status_of(trial, last, False)
                if status not in (
                    TrialStatus.COMPLETED,
                    TrialStatus.DIVERGED,
                    TrialStatus.OUT_OF_BUDGET,
                ):
                    status = TrialStatus.STOPPED
                self._finish(trial, status)
        if self._owns_journal:
            self.journal.close()
        else:
            self.journal.drain()


def restored_from_another_trial(result: Mapping[str, Any], trial_id: str) -> bool:
    """Whether this is the first result after a population exploit (another member's state)."""
    announce = (result.get("lineage") or {}).get("announce")
    if not announce:
        return False
    source = (json.loads(announce).get("restored_from") or {}).get("trial_id")
    return source is not None and str(source) != trial_id


_EXCEPTION_LINE = re.compile(
    r"^(?:\S+\.)?\w*(?:Error|Exception|Fault|Interrupt|Exit)\b(?::\s*(.*))?$"
)


def last_error_line(trial: Any) -> str:
    """The failed trial's exception in one line (not the traceback).

    Libraries re-raise (RLlib turns an env's error into a bare ``RuntimeError`` raised *from*
    it), so the last exception line that carries a message is preferred: the root cause.
    """
    text = ""
    path = getattr(trial, "error_file", None)
    if path:
        try:
            with open(path) as handle:
                text = handle.read()
        except OSError:
            text = ""
    if not text:
        text = str(getattr(trial, "error_msg", "") or "")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    candidates = [line for line in lines if _EXCEPTION_LINE.match(line)]
    with_message = [line for line in candidates if ": " in line]
    chosen = (with_message or candidates or lines)[-1]
    return chosen.removeprefix("ray.exceptions.")[:500]
