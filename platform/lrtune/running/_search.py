"""Search algorithm and early-stopping scheduler of a job, from Tune and Optuna as they are.

`LRTuneOptunaSearch` changes one thing in Ray's `OptunaSearch`: how a finished trial is told to
Optuna. Ray tells a NaN value (which leaves the Optuna trial RUNNING forever) and calls a trial
stopped early COMPLETE. Here a diverged trial is COMPLETE with the value it reported, the job's
worst value (`MetricSpec.worst_value`), and the user attribute ``lrtune_status: diverged``: a
FAIL trial is in neither of TPE's good and bad sets, so TPE would never learn that a region
diverges, while a worst-valued one lands in its bad set. lrtune's own choice of the best trial
(`pick_best`, finalize) goes by lrtune's status and never takes a diverged trial. A trial
stopped before its budget is PRUNED, one that failed (or reported no finite value) FAIL, and a
trial whose Optuna trial was closed as ``stopped`` (FAIL: an interrupted run, resumed) is added
afresh rather than lost; one already told (it ended after Tune's last snapshot of a killed
driver and ran again from its last checkpoint) is not told twice.

A driver killed with SIGKILL loses the Tune trials it created after Tune's last snapshot, but
their Optuna trials stay RUNNING in the study. The resumed searcher hands such a trial out again
as its next suggestion (the same Optuna trial, its parameters replayed), so a job of
``trials.num`` trials never leaves more than ``trials.num`` in the study.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from typing import Any

import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import BasicVariantGenerator
from ray.tune.search import ConcurrencyLimiter as _TuneConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from lrtune.vocabulary import STUDY_RESUMED_ATTR, STUDY_STATUS_ATTR, TrialStatus

log = logging.getLogger("lrtune.running")

#: What each trial reports as its clock for schedulers (env steps, not iterations).
TIME_ATTR = "env_steps"


class IntermediateValueWriter:
    """Stores the trials' intermediate values in the study from one background thread.

    Each `Trial.report` is one storage transaction (about 1 ms on SQLite in WAL mode, far more
    on a loaded disk or a remote database); made in Tune's driver it delays every result of
    every trial. `report` only queues the value; `flush` (called before a trial is told, and
    before the searcher is saved) waits until everything queued is stored, so the study reads
    the same as if each report had been made in place. Values are stored in the order given.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[optuna.trial.Trial, float, int]] = queue.Queue()
        self._thread: threading.Thread | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the searcher (tuner.pkl, its checkpoints); queued values are flushed
        # before a checkpoint, and a queue and a thread do not pickle.
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def report(self, trial: optuna.trial.Trial, value: float, step: int) -> None:
        """Queue one intermediate value (called by Tune's driver once per trial result)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._deliver, name="lrtune-optuna-reports", daemon=True
            )
            self._thread.start()
        self._queue.put((trial, value, step))

    def flush(self) -> None:
        """Wait until every queued value is stored (or failed to store, logged)."""
        if self._thread is not None:
            self._queue.join()

    def _deliver(self) -> None:
        while True:
            trial, value, step = self._queue.get()
            try:
                trial.report(value, step)
            except Exception as exc:  # a value lost is not worth the experiment
                log.debug("intermediate value not stored: %s", exc)
            finally:
                self._queue.task_done()


class LRTuneOptunaSearch(OptunaSearch):
    """Ray's `OptunaSearch` telling Optuna COMPLETE with the worst value for diverged trials
    (user attribute ``lrtune_status: diverged``), PRUNED for stopped and FAIL for failed ones;
    intermediate values are stored off Tune's driver thread (`IntermediateValueWriter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = IntermediateValueWriter()
        #: Storage ids of RUNNING Optuna trials no Tune trial owns (None: not looked up yet).
        self._orphans: list[int] | None = None
        #: Tune trial id → the number of the orphaned Optuna trial it took over.
        self.reused: dict[str, int] = {}

    def save(self, checkpoint_path: str) -> None:
        """Tune's searcher state, once every queued intermediate value is stored."""
        self._writer.flush()
        super().save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """Tune's searcher state, then a fresh look for orphaned Optuna trials."""
        super().restore(checkpoint_path)
        if not hasattr(self, "_writer"):  # state saved before values were written off-thread
            self._writer = IntermediateValueWriter()
        self._orphans = None
        if not hasattr(self, "reused"):  # state saved before lrtune re-used trials
            self.reused = {}

    def _find_orphans(self) -> list[int]:
        study: optuna.Study = self._ot_study  # type: ignore[assignment]  # set once set up
        owned = {ot_trial._trial_id for ot_trial in self._ot_trials.values()}
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if t._trial_id not in owned]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """Ray's suggestion, except that a RUNNING Optuna trial left by a killed driver (its
        Tune trial lost) is handed out again first: its parameters, the same trial number."""
        if trial_id not in self._ot_trials and callable(self._space) and self._ot_study is not None:
            if self._orphans is None:
                try:
                    self._orphans = self._find_orphans()
                except Exception as exc:  # the study unreadable: suggest afresh
                    log.warning("could not look for orphaned Optuna trials: %s", exc)
                    self._orphans = []
            if self._orphans:
                study: optuna.Study = self._ot_study
                orphan = optuna.trial.Trial(study, self._orphans.pop(0))
                self._ot_trials[trial_id] = orphan
                self.reused[trial_id] = orphan.number
                log.info("trial %s resumes Optuna trial %d", trial_id, orphan.number)
        suggestion: dict[str, Any] | None = super().suggest(trial_id)
        return suggestion

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Called by Tune once per trial when it ends (normally, stopped, or failed)."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        ot_trial = self._ot_trials[trial_id]
        study: optuna.Study = self._ot_study  # type: ignore[assignment]  # set once set up
        self._writer.flush()  # a PRUNED trial's value is its last intermediate one
        value = None if result is None else result.get(self.metric)
        state = TrialState.COMPLETE
        attrs: dict[str, Any] = {}
        if error or value is None or not math.isfinite(float(value)):
            state, value = TrialState.FAIL, None
        elif result is not None and result.get("diverged"):
            # The trainable reports the job's finite worst value as the score of a diverged
            # trial; told as COMPLETE it is a (bad) observation the sampler learns from.
            attrs[STUDY_STATUS_ATTR] = TrialStatus.DIVERGED.value
        elif result is not None and not result.get("budget_reached"):
            state = TrialState.PRUNED
        try:
            frozen = study._storage.get_trial(ot_trial._trial_id)
            if frozen.state in (TrialState.COMPLETE, TrialState.PRUNED):
                # Told before a killed driver's last snapshot caught up: it ran again from its
                # last checkpoint to the same end; telling it twice would count it twice.
                pass
            elif frozen.state.is_finished():
                # Closed while the experiment was interrupted: record the outcome as a new trial.
                study.add_trial(
                    optuna.trial.create_trial(
                        params=frozen.params,
                        distributions=frozen.distributions,
                        value=value if state == TrialState.COMPLETE else None,
                        state=state,
                        user_attrs={**frozen.user_attrs, **attrs, STUDY_RESUMED_ATTR: True},
                        intermediate_values=frozen.intermediate_values,
                    )
                )
            else:
                for key, attr in attrs.items():
                    ot_trial.set_user_attr(key, attr)
                if state == TrialState.PRUNED:
                    study.tell(ot_trial, state=state)
                else:
                    study.tell(ot_trial, value, state=state)
        except Exception as exc:  # never lose the experiment over the study's bookkeeping
            log.warning("could not record trial %s in Optuna: %s", trial_id, exc)
        self._completed_trials.add(trial_id)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Report intermediate values at the env-step count (not the iteration)."""
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        value = result.get(self.metric)
        if value is not None and math.isfinite(float(value)):
            step = int(result.get(TIME_ATTR, 0))
            self._writer.report(self._ot_trials[trial_id], float(value), step)


class ConcurrencyLimiter(_TuneConcurrencyLimiter):
    """Tune's `ConcurrencyLimiter` whose limit is the current command's, also after a resume.

    Tune restores a limiter's saved state over it (its ``max_concurrent`` and ``batch``
    included), so a resumed run would keep the first run's ``trials.max_concurrent``; this one
    keeps the limit and batching it was built with. Its class name is Tune's on purpose: Tune
    files the saved state of each wrapper under its class name, so experiments saved with
    either one restore with either.
    """

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore Tune's bookkeeping (live trials), keeping this run's limit and batching."""
        limit, batch = self.max_concurrent, self.batch
        super().set_state(state)
        self.max_concurrent, self.batch = limit, batch


class VariantGenerator(BasicVariantGenerator):
    """Tune's generator of fixed and grid trials, keeping the current command's concurrency
    limit after a resume (Tune restores the saved generator's limit over it)."""

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore Tune's bookkeeping, keeping this run's limit."""
        limit = self.max_concurrent
        super().set_state(state)
        self.max_concurrent = limit


def study_storage(url: str) -> optuna.storages.RDBStorage:
    """The Optuna storage of an experiment's study; a SQLite file is put in WAL mode.

    The searcher stores every intermediate score (one transaction per result, in the Tune
    driver); SQLite's default rollback journal syncs each commit (2.6-3.3 ms per report
    measured here, far more on a loaded disk), WAL with ``synchronous=NORMAL`` 0.8-0.9 ms. A
    killed driver loses nothing committed (only a power cut can lose the last commits).
    """
    storage = optuna.storages.RDBStorage(url)
    if url.startswith("sqlite:"):
        from sqlalchemy import event

        def wal(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        event.listen(storage.engine, "connect", wal)
        storage.engine.dispose()  # connections opened before the listener are not reused
    return storage


def close_running_trials(storage_url: str, study_name: str) -> int:
    """Mark every RUNNING trial of a persisted study FAIL (after an interrupt); return how many."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url)
    except KeyError:
        return 0
    closed = 0
    storage = study._storage
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(frozen._trial_id, STUDY_STATUS_ATTR, TrialStatus.STOPPED.value)
        storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)
        closed += 1
    return closed


def make_scheduler(job: Any) -> TrialScheduler:
    """The job's early-stopping scheduler (its ``schedulers`` entry, `lrtune.search.schedulers`),
    on env steps."""
    from lrtune.search import SchedulerSetup

    budget = job.budget.trial_env_steps
    setup = SchedulerSetup(
        time_attr=TIME_ATTR,
        budget=budget,
        grace=max(1, min(job.grace_period_steps, budget)),
        reduction_factor=job.scheduler.reduction_factor,
    )
    scheduler: TrialScheduler = job.scheduler.plugin().scheduler(setup)
    return scheduler
