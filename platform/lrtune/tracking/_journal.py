"""Tracking that survives the tracker: a write-ahead journal on local disk, delivered to MLflow
by one background thread.

The Tune driver only appends to the journal (a JSON line per call, written and flushed: well
under a millisecond); the writer thread fsyncs it, delivers it to MLflow in order (metrics
batched with ``log_batch``) and records how far it got. When MLflow is unreachable the entries
wait in the journal and are delivered when it is back, by this run, by the next run of the same
experiment, or by ``lrtune sync NAME``.

Runs are named in the journal by references, never by MLflow run ids it would have to know:
``parent:<key>`` (the experiment's parent run, found again by its ``lrtune.parent_key`` tag),
``trial:<trial id>`` (found by the ``lrtune.trial_id`` tag) or ``run:<id>`` (a run that exists).

Replays are idempotent. A run is searched for before it is created, and a search that fails
keeps the entry waiting (it is never read as "no run"), so one trial never gets two runs. A
metric point carries the time it was recorded: a point already in the run's history with that
step and time is a replay and is skipped; a later point at a step not above the last one logged
is an iteration re-run after a restore and is skipped too, unless it starts a new segment (a
population member restored from another member's checkpoint, ``reset``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import math
import os
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Any, TextIO

from lrtune._files import atomic_write_text
from lrtune.registry import LRTuneError
from lrtune.tracking._redact import redact_uri, scrub
from lrtune.tracking._stores import artifact_location
from lrtune.vocabulary import PARENT_TAG, TAG_PARENT_KEY, TAG_TRIAL_ID

log = logging.getLogger("lrtune.tracking")

#: The journal's folder inside an experiment's results folder.
JOURNAL_DIR = "tracking-journal"
JOURNAL_FILE = "journal.jsonl"
DELIVERED_FILE = "delivered.json"
META_FILE = "meta.json"
PARENT_KEY_FILE = "parent.json"
LOCK_FILE = "lock"
# TAG_PARENT_KEY (lrtune.vocabulary) names the parent run of one run of an experiment (the
# journal's ``parent:<key>``).
#: The longest the end of a run waits for the journal to reach MLflow, all drains together.
DRAIN_SECONDS = 30.0
DRAIN_ENV = "LRTUNE_TRACKING_DRAIN_S"
#: lrtune's own bounds on one MLflow HTTP call (one retry, 5 s per request) unless the user set
#: MLflow's variables: MLflow's defaults (7 retries, backoff 2) block a call ~4 min. MLflow's
#: "View run … at" line on every ended run is left out too: the writer thread would print it
#: in the middle of the driver's progress (the run prints where to browse its records).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
_MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit
_BATCH_ENTRIES = 5000  # entries taken per delivery cycle
_COMPACT_BYTES = 8 << 20  # a fully delivered journal larger than this is emptied mid-run
_COALESCE_S = 0.05
_PERMANENT_CODES = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "BAD_REQUEST",
    "INVALID_STATE",
    "MALFORMED_REQUEST",
}


def bound_http_calls() -> None:
    """Bound MLflow's HTTP retries and timeout for this process, keeping any value the user set
    in the environment (MLflow reads these variables at every call)."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


WRITER_THREAD = "lrtune-tracking-writer"


class _NotFromTheWriter(logging.Filter):
    """Drops the HTTP libraries' per-attempt warnings raised in the writer thread: an outage is
    said once, by the writer, not once per retry."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != WRITER_THREAD


_QUIET = _NotFromTheWriter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "mlflow.utils.rest_utils"):
    logging.getLogger(_name).addFilter(_QUIET)


class JournalBusyError(LRTuneError):
    """Another process holds the experiment's tracking journal."""


class _Transient(Exception):
    """MLflow could not be asked (down, timed out, overloaded): keep the entry, retry later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_transient(exc: BaseException) -> bool:
    """Whether a failed MLflow call may succeed later (the entry stays in the journal).

    The server refusing a request on its merits (a bad value, a deleted run) is permanent: the
    entry is dropped with a warning rather than blocking the journal for good.
    """
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return str(getattr(exc, "error_code", "")) not in _PERMANENT_CODES
    return isinstance(exc, OSError)  # connection errors (requests' are OSErrors), full disks


def short_reason(exc: BaseException, uri: str) -> str:
    """One short phrase for a failed call (``Connection refused``, ``timed out``), no secrets."""
    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if errno:
        reason = errno.group(1).strip()
    elif "timeout" in text.lower() or "timed out" in text.lower():
        reason = "timed out"
    else:
        reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:160]
    return scrub(reason, uri)


# --- the file --------------------------------------------------------------------------------


class JournalFile:
    """The journal on disk: ``journal.jsonl`` (one entry a line) and ``delivered.json`` (the
    sequence number delivered up to). ``path`` None keeps it in memory only."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self.written = 0  # bytes appended by this process since the last compaction

    def load(self) -> tuple[list[dict[str, Any]], int]:
        """(entries not delivered yet, next sequence number); a torn last line (a kill in the
        middle of an append) is cut off, so later appends start on a line of their own."""
        if self.path is None or not (self.path / JOURNAL_FILE).exists():
            return [], 1
        raw = (self.path / JOURNAL_FILE).read_bytes()
        entries: list[dict[str, Any]] = []
        good = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                entry = json.loads(line)
            except ValueError:
                break  # torn: only the last line can be (appends are sequential)
            entries.append(entry)
            good += len(line)
        if good < len(raw):
            with open(self.path / JOURNAL_FILE, "r+b") as handle:
                handle.truncate(good)
        delivered = self.delivered()
        next_seq = max((int(e["seq"]) for e in entries), default=delivered) + 1
        return [e for e in entries if int(e["seq"]) > delivered], next_seq

    def delivered(self) -> int:
        """The sequence number delivered up to (0: nothing)."""
        if self.path is None:
            return 0
        try:
            return int(json.loads((self.path / DELIVERED_FILE).read_text())["seq"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def append(self, entries: Iterable[dict[str, Any]]) -> None:
        """Append entries and flush them to the OS (a killed process loses none of them)."""
        if self.path is None:
            return
        if self._handle is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path / JOURNAL_FILE, "a", encoding="utf-8")
        text = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
        self._handle.write(text)
        self._handle.flush()
        self.written += len(text)

    def sync(self) -> None:
        """fsync what was appended (the writer thread does this, off the driver's path)."""
        handle = self._handle
        if handle is not None:
            with contextlib.suppress(OSError, ValueError):
                os.fsync(handle.fileno())

    def mark(self, seq: int) -> None:
        """Record that every entry up to ``seq`` was delivered."""
        if self.path is not None:
            atomic_write_text(self.path / DELIVERED_FILE, json.dumps({"seq": seq}))

    def compact(self) -> None:
        """Empty a fully delivered journal (the marker goes first: a kill between the two steps
        leaves entries that replay idempotently, never new entries read as delivered)."""
        self.written = 0
        if self.path is None:
            return
        self.close()
        with contextlib.suppress(FileNotFoundError):
            (self.path / DELIVERED_FILE).unlink()
        with contextlib.suppress(FileNotFoundError):
            (self.path / JOURNAL_FILE).unlink()

    def close(self) -> None:
        """Close the append handle."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


# --- the journal and its writer ----------------------------------------------------------------


class _History:
    """What a run's metric history holds, read once per metric (idempotent replays)."""

    def __init__(self, fresh: bool) -> None:
        self.fresh = fresh  # created by this writer: nothing to read
        self.loaded: set[str] = set()
        self.points: dict[str, set[tuple[int, int]]] = {}
        self.last: tuple[int, int] | None = None  # (timestamp, step) of the latest point

    def see(self, key: str, step: int, timestamp: int, *, latest: bool = True) -> None:
        """A point of ``key``; ``latest`` False: an event logged after the fact (a backfill),
        which does not move where the run's history has reached."""
        self.points.setdefault(key, set()).add((step, timestamp))
        if latest and (self.last is None or timestamp >= self.last[0]):
            self.last = (timestamp, step)


def parent_key(ref: str) -> str | None:
    """The key a parent reference (`TrackingJournal.parent`'s return) tags its run with
    (``lrtune.parent_key``); None for another reference."""
    kind, _, key = ref.partition(":")
    return key if kind == "parent" else None


class TrackingJournal:
    """The per-experiment tracking journal and the thread that delivers it to MLflow.

    Methods that record (`parent`, `trial`, `log_metrics`, `set_tags`, `log_params`,
    `log_artifact`, `end_run`) only append and return at once; `drain` waits (bounded) for
    delivery, `close` drains, stops the thread and says what is left.
    """

    def __init__(
        self,
        directory: Path | None,
        tracking_uri: str,
        experiment_name: str,
        *,
        stream: TextIO | None = None,
        quiet: bool = False,
        drain_seconds: float | None = None,
    ) -> None:
        bound_http_calls()
        self.directory = directory
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.shown_uri = redact_uri(tracking_uri)
        self._stream = stream
        self._quiet = quiet
        if drain_seconds is None:
            drain_seconds = float(os.environ.get(DRAIN_ENV, DRAIN_SECONDS))
        self._drain_left = drain_seconds
        self._lock_handle: IO[str] | None = None
        self._file_failed = False
        self._busy = False  # the writer is in a delivery cycle
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._take_lock(directory)
        self._file = JournalFile(directory)
        loaded, self._next_seq = self._file.load()
        self.leftover = len(loaded)  # entries an earlier process left undelivered
        if directory is not None:
            if not loaded:
                self._file.compact()
            atomic_write_text(
                directory / META_FILE,
                json.dumps({"experiment": experiment_name, "tracking_uri": self.shown_uri}),
            )
        self._pending: deque[dict[str, Any]] = deque(loaded)
        self._last_at = max((int(e.get("at", 0)) for e in loaded), default=0)
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._delivered_seq = self._file.delivered()
        self.delivered_count = 0
        self.dropped_count = 0
        self.down = False
        self.last_error: str | None = None
        self._replayed_since_down = 0
        # Writer-thread state (only the writer touches these, except the read-only `run_id`).
        self._client: Any = None
        self._experiment_id: str | None = None
        self._runs: dict[str, str] = {}
        self._trial_parent: dict[str, str | None] = {}
        self._histories: dict[str, _History] = {}
        if self._pending:
            self._start()

    # -- locking -----------------------------------------------------------------------------

    def _take_lock(self, directory: Path) -> None:
        handle = open(directory / LOCK_FILE, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise JournalBusyError(
                f"the tracking journal {directory} is in use by another lrtune process (a run "
                "of this experiment, or `lrtune sync`); wait for it to end, then run "
                "`lrtune sync` again if anything is left."
            ) from None
        self._lock_handle = handle

    # -- recording (the driver's side: append only) -------------------------------------------

    @property
    def path(self) -> str:
        """Where the journal is, for messages."""
        return str(self.directory) if self.directory is not None else "memory (no folder)"

    def pending(self) -> int:
        """How many entries wait for delivery."""
        with self._cond:
            return len(self._pending)

    def append(self, *ops: dict[str, Any]) -> None:
        """Journal calls (written and flushed before returning) and wake the writer."""
        with self._cond:
            # Strictly increasing times: a point's (step, time) names it for idempotent
            # replays, and MLflow orders a history by time.
            now = max(int(time.time() * 1000), self._last_at + 1)
            self._last_at = now
            entries = []
            for op in ops:
                entries.append({"seq": self._next_seq, "at": now, **op})
                self._next_seq += 1
            try:
                self._file.append(entries)
            except OSError as exc:  # a full disk: keep tracking, in memory only, and say so once
                if not self._file_failed:
                    self._file_failed = True
                    log.warning(
                        "tracking: the journal %s cannot be written (%s); tracking "
                        "goes on in memory, without the journal's protection",
                        self.path,
                        exc.strerror or exc,
                    )
            self._pending.extend(entries)
            self._cond.notify_all()
        self._start()

    def parent(
        self,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
        *,
        resume: bool,
        context: Mapping[str, str] | None = None,
    ) -> str:
        """Create (or, resuming, re-attach) the experiment's parent run; returns its reference.

        ``tags`` identify the experiment's parent when resuming; ``context`` tags are only set
        on a new run. The key stays in the journal folder so a resumed run names the same parent.
        """
        key = self._parent_key(resume)
        self.append(
            {
                "op": "parent",
                "key": key,
                "name": name,
                "tags": dict(tags),
                "context": dict(context or {}),
                "params": {k: str(v)[:6000] for k, v in params.items()},
                "resume": resume,
            }
        )
        return f"parent:{key}"

    def _parent_key(self, resume: bool) -> str:
        key_file = self.directory / PARENT_KEY_FILE if self.directory is not None else None
        if resume and key_file is not None and key_file.exists():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                return str(json.loads(key_file.read_text())["key"])
        key = uuid.uuid4().hex
        if key_file is not None:
            atomic_write_text(key_file, json.dumps({"key": key}))
        return key

    def trial(
        self,
        trial_id: str,
        parent: str | None,
        name: str,
        tags: Mapping[str, str],
        params: Mapping[str, Any],
    ) -> str:
        """Create or re-attach the run of a trial; returns its reference ``trial:<id>``."""
        self.append(
            {
                "op": "trial",
                "trial": trial_id,
                "parent": parent,
                "name": name,
                "tags": {k: str(v)[:5000] for k, v in tags.items()},
                "params": {k: str(v)[:6000] for k, v in params.items()},
            }
        )
        return f"trial:{trial_id}"

    def log_metrics(
        self,
        ref: str,
        metrics: Mapping[str, Any],
        step: int,
        *,
        reset: bool = False,
        backfill: bool = False,
    ) -> None:
        """Metrics at ``step`` (finite numbers only); ``reset``: a new segment of the history
        starts here (a population member continuing another member's history); ``backfill``:
        an event recorded after the fact at an earlier step than the run's latest point, logged
        once per (metric, step) however often it is journalled."""
        values = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }
        if values:
            op: dict[str, Any] = {"op": "metrics", "run": ref, "step": int(step), "values": values}
            if reset:
                op["reset"] = True
            if backfill:
                op["backfill"] = True
            self.append(op)

    def set_tags(self, ref: str, tags: Mapping[str, Any]) -> None:
        """Set tags on a run."""
        self.append({"op": "tags", "run": ref, "tags": {k: str(v)[:5000] for k, v in tags.items()}})

    def log_params(self, ref: str, params: Mapping[str, Any]) -> None:
        """Log params on a run (values as strings, truncated to MLflow's limit)."""
        self.append(
            {"op": "params", "run": ref, "params": {k: str(v)[:6000] for k, v in params.items()}}
        )

    def log_artifact(self, ref: str, path: str, artifact_path: str | None = None) -> None:
        """Upload a file or folder (it is read when delivered, so it must stay where it is)."""
        self.append(
            {"op": "artifact", "run": ref, "path": str(Path(path)), "artifact_path": artifact_path}
        )

    def end_run(self, ref: str, status: str) -> None:
        """End a run with MLflow status FINISHED, FAILED or KILLED."""
        self.append({"op": "end", "run": ref, "status": status})

    def run_id(self, ref: str | None) -> str | None:
        """The MLflow run id a reference was delivered to, if it has been."""
        if ref is None:
            return None
        if ref.startswith("run:"):
            return ref[4:]
        return self._runs.get(ref)

    # -- draining and closing -----------------------------------------------------------------

    def drain(
        self, timeout: float | None = None, *, while_up: bool = False, budgeted: bool = True
    ) -> bool:
        """Wait until everything journalled is delivered, at most ``timeout`` seconds and, when
        ``budgeted``, at most what is left of this journal's drain budget (what the end of a run
        may wait, all drains together); ``while_up``: stop waiting once MLflow is found down.
        True when nothing is pending."""
        limit = self._drain_left if budgeted else math.inf
        budget = limit if timeout is None else min(timeout, limit)
        start = time.monotonic()
        deadline = start + max(budget, 0.0)
        with self._cond:
            while (self._pending or self._busy) and self._thread_alive():
                left = deadline - time.monotonic()
                if left <= 0 or (while_up and self.down):
                    break
                if not while_up:
                    self._wake.set()  # down: retry now rather than after the back-off
                self._cond.wait(min(left, 0.25))
            done = not self._pending
        if budgeted:
            self._drain_left -= time.monotonic() - start
        return done

    def _thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def writing(self) -> bool:
        """Whether the writer thread runs (it stops once closed, or with nothing to deliver)."""
        return self._thread_alive()

    def close(self, *, replay_hint: bool = True) -> int:
        """Drain (bounded), stop the writer, release the journal; returns how many entries
        were not delivered (they stay on disk, and the driver says how to replay them)."""
        self.drain()
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=max(min(self._drain_left, 10.0), 1.0))
        left = self.pending()
        alive = self._thread_alive()
        if left == 0 and not alive:
            self._file.compact()
        else:
            self._file.sync()
            self._file.close()
        if left and replay_hint:
            self._say(self._leftover_line(left))
        if not alive and self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None
        _OPEN.pop(str(self.directory), None)
        return left

    def _leftover_line(self, left: int) -> str:
        if self.directory is None:
            return (
                f"lrtune: tracking: {left} calls could not be delivered to MLflow at "
                f"{self.shown_uri} and are lost (this recorder has no journal folder)"
            )
        results = self.directory.parent
        command = f"lrtune sync {results.name} --results-dir {results.parent}"
        return (
            f"lrtune: tracking: {left} calls not delivered to MLflow at {self.shown_uri} stay in "
            f"{self.directory}; replay them with `{command}` (or the next `lrtune run` of this "
            "experiment does)"
        )

    def _say(self, line: str) -> None:
        if self._quiet:
            return
        stream = self._stream or sys.stdout
        with contextlib.suppress(OSError, ValueError):
            stream.write(line + "\n")
            stream.flush()

    # -- the writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or (not self._thread.is_alive() and not self._stop):
            self._thread = threading.Thread(target=self._loop, name=WRITER_THREAD, daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        backoff = 0.5
        while True:
            with self._cond:
                if not self._pending and self._file.written > _COMPACT_BYTES:
                    self._file.compact()  # all delivered: a long run's journal stays small
                while not self._pending and not self._stop:
                    self._cond.wait()
                if not self._pending:
                    return
                if not self._stop and not self.down:
                    self._cond.wait(_COALESCE_S)  # let results arriving together share a batch
                self._busy = True
            try:
                delivered = self._cycle()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
            if delivered:
                backoff = 0.5
                continue
            with self._cond:
                if self._stop:
                    return  # closing while MLflow is down: what is left stays journalled
            self._wake.wait(backoff)  # a drain sets it: retry now
            self._wake.clear()
            backoff = min(backoff * 2, 5.0)

    def _cycle(self) -> bool:
        """One delivery attempt; False when MLflow could not be reached (said once per outage)."""
        try:
            delivered, whole = self._deliver()
        except _Transient as exc:
            self.last_error = exc.reason
            if not self.down:
                self.down = True
                self._replayed_since_down = 0
                self._say(
                    f"lrtune: tracking: MLflow at {self.shown_uri} unreachable "
                    f"({exc.reason}); journalling to {self.path}"
                )
            return False
        if self.down:
            self._replayed_since_down += delivered
            if whole:
                self.down = False
                self._say(
                    f"lrtune: tracking: MLflow back; replayed {self._replayed_since_down} calls"
                )
        return True

    def _client_for(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        """One MLflow call: a transient failure raises `_Transient`; a permanent one re-raises."""
        try:
            return call()
        except Exception as exc:
            if is_transient(exc):
                raise _Transient(short_reason(exc, self.tracking_uri)) from None
            raise

    def _deliver(self) -> tuple[int, bool]:
        """Deliver what is pending, in order: (entries delivered, whether that was all of it)."""
        self._file.sync()
        with self._cond:
            batch = list(self._pending)[:_BATCH_ENTRIES]
        buffered: dict[str, list[Any]] = {}
        held = False  # metrics entries taken since `done` whose points are not sent yet
        done = 0
        try:
            for index, entry in enumerate(batch):
                if entry.get("op") == "metrics":
                    self._buffer_guarded(entry, buffered)
                    held = True
                    if sum(map(len, buffered.values())) >= _MAX_METRICS_PER_BATCH - 50:
                        self._flush_metrics(buffered)
                        done, held = self._mark(batch, index + 1, done), False
                    continue
                if held:  # in order: a run's points go before its next tags, end or artifact
                    self._flush_metrics(buffered)
                    done, held = self._mark(batch, index, done), False
                self._apply_guarded(entry)
                done = self._mark(batch, index + 1, done)
            if held:
                self._flush_metrics(buffered)
                done = self._mark(batch, len(batch), done)
        except _Transient:
            # What was buffered was counted as logged: read those runs' histories again.
            for run_id in buffered:
                self._histories[run_id] = _History(fresh=False)
            raise
        finally:
            self._persist_mark()
        return done, len(batch) < _BATCH_ENTRIES

    def _mark(self, batch: list[dict[str, Any]], upto: int, done: int) -> int:
        """Entries ``batch[done:upto]`` are delivered: take them off the queue."""
        if upto <= done:
            return done
        with self._cond:
            for _ in range(upto - done):
                self._pending.popleft()
            self._delivered_seq = int(batch[upto - 1]["seq"])
            self.delivered_count += upto - done
            self._cond.notify_all()
        return upto

    def _persist_mark(self) -> None:
        with contextlib.suppress(OSError):
            self._file.mark(self._delivered_seq)

    def _buffer_guarded(self, entry: dict[str, Any], buffered: dict[str, list[Any]]) -> None:
        try:
            self._buffer_metrics(entry, buffered)
        except _Transient:
            raise
        except Exception as exc:  # refused, or a damaged entry: drop it rather than block
            self.dropped_count += 1
            log.warning(
                "tracking: metrics entry %s skipped (%s)",
                entry.get("seq"),
                scrub(f"{type(exc).__name__}: {exc}", self.tracking_uri)[:300],
            )

    def _apply_guarded(self, entry: dict[str, Any]) -> None:
        try:
            self._apply(entry)
        except _Transient:
            raise
        except Exception as exc:  # refused on its merits: drop it rather than block the rest
            self.dropped_count += 1
            log.warning(
                "tracking: MLflow refused %s (%s); skipped it",
                entry.get("op"),
                scrub(f"{type(exc).__name__}: {exc}", self.tracking_uri)[:300],
            )

    # -- resolving runs (writer thread) ----------------------------------------------------------

    def _experiment(self) -> str:
        if self._experiment_id is None:
            client = self._client_for()
            found = self._call(
                "experiment", lambda: client.get_experiment_by_name(self.experiment_name)
            )
            if found is not None:
                if found.lifecycle_stage == "deleted":
                    self._call("experiment", lambda: client.restore_experiment(found.experiment_id))
                self._experiment_id = str(found.experiment_id)
            else:
                self._experiment_id = str(
                    self._call(
                        "experiment",
                        lambda: client.create_experiment(
                            self.experiment_name,
                            artifact_location(self.tracking_uri, self.experiment_name),
                        ),
                    )
                )
        return self._experiment_id

    def _search(self, tags: Mapping[str, str]) -> str | None:
        """The newest run of the experiment with all ``tags``; None only when MLflow answered
        that there is none (a failed search raises `_Transient`)."""
        experiment = self._experiment()
        query = " and ".join(
            f"tags.`{k}` = '{str(v).replace(chr(39), chr(92) + chr(39))}'" for k, v in tags.items()
        )
        client = self._client_for()
        runs = self._call(
            "search",
            lambda: client.search_runs(
                [experiment],
                filter_string=query,
                max_results=1,
                order_by=["attributes.start_time DESC"],
            ),
        )
        return str(runs[0].info.run_id) if runs else None

    def _resolve(self, ref: str | None) -> str | None:
        """The run id of a reference (searched once, then remembered); None: no such run."""
        if ref is None:
            return None
        if ref.startswith("run:"):
            return ref[4:]
        if ref in self._runs:
            return self._runs[ref]
        kind, _, name = ref.partition(":")
        found: str | None = None
        if kind == "parent":
            found = self._search({TAG_PARENT_KEY: name})
        elif kind == "trial":
            tags = {TAG_TRIAL_ID: name}
            parent = self._resolve(self._trial_parent.get(name))
            if parent is not None:
                tags[PARENT_TAG] = parent
            found = self._search(tags)
        if found is not None:
            self._runs[ref] = found
            self._histories.setdefault(found, _History(fresh=False))
        return found

    def _create(self, name: str, tags: Mapping[str, str]) -> str:
        experiment = self._experiment()
        client = self._client_for()
        run = self._call(
            "create run",
            lambda: client.create_run(experiment, run_name=name, tags=dict(tags)),
        )
        run_id = str(run.info.run_id)
        self._histories[run_id] = _History(fresh=True)
        return run_id

    def _reopen(self, run_id: str) -> None:
        client = self._client_for()
        self._call("reopen", lambda: client.update_run(run_id, status="RUNNING"))

    # -- applying entries (writer thread) --------------------------------------------------------

    def _apply(self, entry: dict[str, Any]) -> None:
        op = entry.get("op")
        client = self._client_for()
        if op == "parent":
            self._apply_parent(entry)
        elif op == "trial":
            self._apply_trial(entry)
        else:
            run_id = self._resolve(entry.get("run"))
            if run_id is None:
                raise LookupError(f"no MLflow run for {entry.get('run')}")
            if op == "tags":
                self._log_batch(run_id, tags=entry["tags"])
            elif op == "params":
                self._log_batch(run_id, params=entry["params"])
            elif op == "end":
                self._call("end run", lambda: client.set_terminated(run_id, status=entry["status"]))
            elif op == "artifact":
                self._upload(run_id, entry["path"], entry.get("artifact_path"))
            else:
                raise ValueError(f"unknown journal entry {op!r}")

    def _apply_parent(self, entry: dict[str, Any]) -> None:
        ref = f"parent:{entry['key']}"
        run_id = self._resolve(ref)
        if run_id is None and entry.get("resume"):
            run_id = self._search(entry["tags"])
            if run_id is not None:
                self._log_batch(run_id, tags={TAG_PARENT_KEY: entry["key"]})
        if run_id is not None:
            self._reopen(run_id)
            self._params_if_missing(run_id, entry.get("params") or {})
        else:
            tags = {**entry["tags"], **entry.get("context", {}), TAG_PARENT_KEY: entry["key"]}
            run_id = self._create(entry["name"], tags)
            self._runs[ref] = run_id
            self._log_batch(run_id, params=entry.get("params") or {})
        self._runs[ref] = run_id

    def _apply_trial(self, entry: dict[str, Any]) -> None:
        trial_id = str(entry["trial"])
        ref = f"trial:{trial_id}"
        self._trial_parent[trial_id] = entry.get("parent")
        parent = self._resolve(entry.get("parent"))
        self._runs.pop(ref, None)  # search again: the parent may differ from a cached guess
        run_id = self._resolve(ref)
        if run_id is not None:
            self._reopen(run_id)
            self._params_if_missing(run_id, entry.get("params") or {})
            return
        tags = {**entry["tags"], TAG_TRIAL_ID: trial_id}
        if parent is not None:
            tags[PARENT_TAG] = parent
        run_id = self._create(entry["name"], tags)
        self._runs[ref] = run_id
        self._log_batch(run_id, params=entry.get("params") or {})

    def _params_if_missing(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log a found run's params if it has none (its creation was cut off before them);
        params are written once: MLflow refuses a changed value."""
        if not params:
            return
        client = self._client_for()
        run = self._call("get run", functools.partial(client.get_run, run_id))
        if not run.data.params:
            self._log_batch(run_id, params=params)

    def _log_batch(
        self,
        run_id: str,
        *,
        tags: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Param, RunTag

        client = self._client_for()
        tag_list = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        param_list = [Param(k, str(v)) for k, v in sorted((params or {}).items())]
        for start in range(0, len(tag_list), 100):
            chunk = tag_list[start : start + 100]
            self._call("tags", functools.partial(client.log_batch, run_id, tags=chunk))
        for start in range(0, len(param_list), 100):
            chunk_p = param_list[start : start + 100]
            self._call("params", functools.partial(client.log_batch, run_id, params=chunk_p))

    def _upload(self, run_id: str, path: str, artifact_path: str | None) -> None:
        client = self._client_for()
        if os.path.isdir(path):
            self._call("artifacts", lambda: client.log_artifacts(run_id, path, artifact_path))
        elif os.path.exists(path):
            self._call("artifacts", lambda: client.log_artifact(run_id, path, artifact_path))
        else:
            raise FileNotFoundError(f"artifact {path} is gone")

    # -- metrics (writer thread) -----------------------------------------------------------------

    def _history(self, run_id: str, keys: Iterable[str], *, backfill: bool = False) -> _History:
        history = self._histories.setdefault(run_id, _History(fresh=False))
        client = self._client_for()
        for key in keys:
            if key in history.loaded:
                continue
            if not history.fresh:
                points = self._call(
                    "history", functools.partial(client.get_metric_history, run_id, key)
                )
                for point in points:
                    history.see(key, int(point.step), int(point.timestamp), latest=not backfill)
            history.loaded.add(key)
        return history

    def _buffer_metrics(self, entry: dict[str, Any], buffered: dict[str, list[Any]]) -> None:
        from mlflow.entities import Metric

        run_id = self._resolve(entry["run"])
        if run_id is None:
            self.dropped_count += 1
            log.warning("tracking: no MLflow run for %s; metrics skipped", entry["run"])
            return
        values: dict[str, float] = entry["values"]
        step, stamp, reset = int(entry["step"]), int(entry["at"]), bool(entry.get("reset"))
        backfill = bool(entry.get("backfill"))
        history = self._history(run_id, values, backfill=backfill)
        high = history.last[1] if history.last is not None else None
        if backfill:  # an event after the fact: once per (metric, step)
            fresh_keys = [
                k for k in values if step not in {s for s, _ in history.points.get(k, ())}
            ]
        elif not reset and high is not None and step <= high:
            fresh_keys = []  # an iteration re-run after a restore (or a replay)
        else:
            fresh_keys = [k for k in values if (step, stamp) not in history.points.get(k, ())]
        out = buffered.setdefault(run_id, [])
        for key in fresh_keys:
            out.append(Metric(key, values[key], stamp, step))
            history.see(key, step, stamp, latest=not backfill)
        if reset:  # a new segment: later points are compared with this one
            history.last = (stamp, step)

    def _flush_metrics(self, buffered: dict[str, list[Any]]) -> None:
        client = self._client_for()
        for run_id in list(buffered):
            points = buffered[run_id]
            while points:
                chunk = points[:_MAX_METRICS_PER_BATCH]
                try:
                    self._call(
                        "metrics",
                        functools.partial(client.log_batch, run_id, metrics=chunk),
                    )
                except _Transient:
                    raise
                except Exception as exc:
                    self.dropped_count += len(chunk)
                    log.warning(
                        "tracking: MLflow refused %d metric points (%s); skipped them",
                        len(chunk),
                        scrub(str(exc), self.tracking_uri)[:300],
                    )
                del points[: len(chunk)]
            del buffered[run_id]


# --- one journal per experiment folder in a process ----------------------------------------------

_OPEN: dict[str, TrackingJournal] = {}
_OPEN_LOCK = threading.Lock()


def journal_dir(results_dir: str | os.PathLike[str]) -> Path:
    """The journal folder of an experiment's results folder."""
    return Path(results_dir) / JOURNAL_DIR


def open_journal(
    directory: str | os.PathLike[str] | None,
    tracking_uri: str,
    experiment_name: str,
    *,
    stream: TextIO | None = None,
) -> tuple[TrackingJournal, bool]:
    """The process's journal for ``directory`` (opened, and its leftovers queued, if it is not
    open yet); returns ``(journal, opened_here)``. ``directory`` None: a journal in memory."""
    if directory is None:
        return TrackingJournal(None, tracking_uri, experiment_name, stream=stream), True
    key = str(Path(directory).resolve())
    with _OPEN_LOCK:
        if key in _OPEN:
            return _OPEN[key], False
        journal = TrackingJournal(Path(key), tracking_uri, experiment_name, stream=stream)
        _OPEN[key] = journal
        return journal, True
