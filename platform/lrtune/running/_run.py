"""`run_job`: a validated job → Ray Tune trials (Optuna search, early stopping) → MLflow.

The road, top to bottom, with the experiment's lock held: check the experiment's storage
(resume the same job, refuse another one unless restarting) → start or join Ray →
**plan** (`plan_run`: searcher or population, scheduler, checkpoints, warnings; nothing recorded
yet) → **launch** (the job marker, the MLflow parent run, the tuner built or restored with this
command's settings, what a killed driver left open closed, ``fit``) → **record** (outcomes, open
Optuna trials and MLflow runs closed, summary.json, best.yaml, lineage, the parent's artifacts
and status). `job_trainable`, `job_run_config` and `fitted_trials` are the Tune set-up that
finalize shares.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import math
import os
import pickle
import shutil
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ray.tune.callback import Callback
from ray.tune.error import TuneError
from ray.tune.stopper import Stopper

from lrtune._files import atomic_write_text
from lrtune.registry import LRTuneError
from lrtune.registry._errors import DriverOSError
from lrtune.running._local_ray import connect_ray_for_tune, local_resource_problem
from lrtune.running._results import (
    RunOutcome,
    TrialOutcome,
    agent_label,
    model_label,
    outcome_of,
    pick_best,
    policy_groups,
    resolved_trial_job,
    stored_job_dict,
    summary_table,
    write_summary,
    write_yaml,
)
from lrtune.running._trainable import (
    LRTuneTrainable,
    check_trial_settings,
    evaluation_time_limit,
)
from lrtune.specs._point import TrialPoint
from lrtune.tracking._journal import parent_key
from lrtune.tracking._redact import redact_uri
from lrtune.vocabulary import (
    GROUPING_TAGS,
    TAG_AGENT,
    TAG_AGENT_SETTINGS,
    TAG_BASELINE,
    TAG_BEST_SCORE,
    TAG_BEST_TRIAL,
    TAG_ENV,
    TAG_EXPERIMENT,
    TAG_JOB_HASH,
    TAG_MODEL,
    TAG_ROLE,
    RunRole,
    TrialStatus,
)

JOB_MARKER = "lrtune_job.json"
STUDY_FILE = "optuna.db"
#: Free bytes under which a file system counts as full when Tune's torn files are explained:
#: Tune's writes that failed left files cut off, and a disk this close to full caused it.
_NEARLY_FULL_BYTES = 1 << 20


class ExperimentConflictError(LRTuneError):
    """The experiment's storage holds results of a different job."""


# --- what the callbacks need to know about a trial (module-level: the tuner pickles them) ---


def describe_trial(
    job: Any, results_dir: str, trial: Any
) -> tuple[str, dict[str, str], dict[str, Any], str | None]:
    """MLflow run name, tags, params and resolved-job artifact of a trial."""
    from lrtune.policies import LRPolicySpec
    from lrtune.tracking import flatten

    point = TrialPoint.from_config(trial.config)
    policy_data = point.member_policy(job)  # a population member: its mutable values applied
    policy = LRPolicySpec.model_validate(policy_data)
    tags = {
        TAG_AGENT: job.agent,
        TAG_ENV: job.env.id,
        # The policy's groups (compare --by family, optimizer, gating, feedback, policy).
        **{GROUPING_TAGS[name]: label for name, label in policy_groups(policy).items()},
        TAG_BASELINE: str(point.baseline).lower(),
        # The agent around the policy (compare --by model / --by agent).
        TAG_MODEL: model_label(job, point),
        TAG_AGENT_SETTINGS: agent_label(job, point),
    }
    # The agent settings a space searched are params too: the sampled `agent` values and the
    # `model` settings (their RLlib values are among the hyperparams).
    searched = {
        key: dict(value)
        for key, value in (("model", point.model), ("agent_settings", point.agent_settings))
        if value
    }
    params = flatten({"policy": policy_data, "hyperparams": dict(point.hyperparams), **searched})
    params.update(
        {
            "seeds": ",".join(map(str, job.seeds.tuning)),
            "trial_env_steps": job.budget.trial_env_steps,
        }
    )
    artifact = Path(results_dir) / "trials" / f"{trial.trial_id}.yaml"
    write_yaml(
        artifact,
        stored_job_dict(
            resolved_trial_job(
                job, policy_data, dict(point.hyperparams), model=dict(point.model) or None
            )
        ),
    )
    return f"trial_{trial.trial_id}", tags, params, str(artifact)


def trial_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The per-iteration metrics logged for a trial (the env-step count is the step)."""
    lr = result.get("lrtune", {}) or {}
    out = {
        "episode_return_mean": result.get("episode_return_mean"),
        # Not the worst value standing in before any episode ended: no point at all.
        "score": result.get("score") if result.get("scored", 1) else None,
        "env_steps_per_s": result.get("env_steps_per_s"),
        "diverged": result.get("diverged"),
        "evaluation_return": _finite_or_none(result.get("evaluation_return")),
    }
    for key in (
        "lr",
        "lr_min",  # over a trial's tuning seeds: feedback rules may cut one seed's rate alone
        "lr_max",
        "lr_env_step",  # the learner's env-step count when it last set the rate
        "grad_norm_pre_gating",
        "grad_norm_post_gating",
        "kl",
        "feedback_factor",
        "schedule_factor",
        "divergence_events",
        "skipped_updates",
    ):
        if key in lr:
            out[key] = lr[key]
    # Agents with several optimizer roles (SAC): each role's read-back rate, ``lr.<role>``.
    out.update({key: value for key, value in lr.items() if key.startswith("lr.")})
    # Several tuning seeds: each seed's values, ``by_seed.<seed>.<name>`` (finite ones only).
    for seed, values in (result.get("by_seed") or {}).items():
        for name, value in values.items():
            out[f"by_seed.{seed}.{name}"] = _finite_or_none(value)
    # Population members: the mutable LR-policy values change at exploits, so they are metrics.
    for path, value in (result.get("mutable") or {}).items():
        out[f"mutable.{path}"] = value
    return {k: float(v) for k, v in out.items() if v is not None}


def _finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (NaN means "not measured yet")."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def recorder_status(job: Any, trial: Any, result: Mapping[str, Any] | None, errored: bool) -> str:
    """lrtune status of a trial Tune reports complete (stopped, when the run was interrupted)."""
    from lrtune.running._results import has_experiment_budget, trial_status

    return trial_status(
        result or None,
        errored,
        job.budget.trial_env_steps,
        ended=not _INTERRUPTED.is_set(),
        experiment_budget=has_experiment_budget(job),
    )


def policy_label(trial: Any, job: Any = None) -> str:
    """One short string for the progress view (a population member's current values)."""
    return TrialPoint.from_config(trial.config).label(job)


def trial_dirname(trial: Any) -> str:
    """Short trial folder names (Tune's default embeds the whole config)."""
    return f"trial_{trial.trial_id}"


_INTERRUPTED = threading.Event()


class InterruptWatch(Callback):
    """Notes a Ctrl-C (or a forwarded SIGTERM) before Tune's own graceful-stop handler runs.

    Tune keeps its "interrupted" flag to itself and, after stopping, marks the stopped trials
    TERMINATED like finished ones; this callback's `setup` runs after Tune installs its SIGINT
    handler and chains in front of it, so `run_job` can tell an interrupted run from a done one.
    """

    def setup(
        self,
        stop: Stopper | None = None,
        num_samples: int | None = None,
        total_num_samples: int | None = None,
        **info: Any,
    ) -> None:
        """Called by Tune once, at the start of the run, in the driver's main thread."""
        _INTERRUPTED.clear()
        if threading.current_thread() is not threading.main_thread():
            return
        tune_handler = signal.getsignal(signal.SIGINT)

        def note_then_delegate(signum: int, frame: Any) -> None:
            _INTERRUPTED.set()
            if callable(tune_handler):
                tune_handler(signum, frame)

        signal.signal(signal.SIGINT, note_then_delegate)


#: The budget stopper of each experiment this process runs now, by experiment folder: an
#: unpickled copy (Tune restores the first run's from tuner.pkl and its snapshot) resolves to it.
_LIVE_BUDGETS: dict[str, ExperimentEnvStepBudget] = {}


class ExperimentEnvStepBudget(Stopper):
    """Tune stopper: stop every trial once all trials together used the experiment's env steps.

    ``key`` (the experiment folder) ties every copy Tune unpickles on a resume to the instance
    the current command built, which `run_job` seeds with each trial's last env steps: Tune
    would otherwise bring back the first run's stopper (its budget and a count as old as its
    last snapshot).
    """

    def __init__(
        self, total: int | None, key: str | None = None, steps: Mapping[str, int] | None = None
    ) -> None:
        self.total = total
        self.key = key
        self.steps: dict[str, int] = dict(steps or {})
        if key is not None:
            _LIVE_BUDGETS[key] = self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_budget_for, (self.total, self.key, dict(self.steps)))

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        """Called by Tune after each result: record the trial's env steps; stop no one trial."""
        self.steps[trial_id] = int(result.get("env_steps", 0))
        return False

    def stop_all(self) -> bool:
        """Called by Tune after each result: True once the experiment's budget is used."""
        return self.total is not None and sum(self.steps.values()) >= self.total


def _budget_for(
    total: int | None, key: str | None, steps: dict[str, int]
) -> ExperimentEnvStepBudget:
    """Unpickling an `ExperimentEnvStepBudget`: the current command's, when this process has one."""
    live = _LIVE_BUDGETS.get(key) if key is not None else None
    return live if live is not None else ExperimentEnvStepBudget(total, key, steps)


# --- the run ----------------------------------------------------------------------------------


class ResumeSettingError(LRTuneError):
    """A resumed experiment cannot honour a setting the current command changed."""


def experiment_paths(job: Any, storage_path: str | None = None) -> tuple[Path, Path]:
    """(Tune experiment folder, lrtune results folder) of a job."""
    storage = Path(storage_path or job.storage_path).expanduser().resolve()
    results = Path(job.results_dir).expanduser().resolve() / job.name
    return storage / job.name, results


def check_experiment(job: Any, experiment_dir: Path, restart: bool) -> bool:
    """True if the experiment exists and is the same job (resume). Raises on a different job."""
    marker = experiment_dir / JOB_MARKER
    if restart or not marker.exists():
        return False  # --restart discards whatever is there, a damaged marker included
    try:
        stored = json.loads(marker.read_text()).get("hash")
    except (OSError, ValueError, AttributeError) as exc:
        raise ExperimentConflictError(
            f"experiment '{job.name}': its marker {marker} cannot be read ({exc}); the earlier "
            "run was cut off while writing it. Rerun with --restart to discard that "
            f"experiment's results and start over, or give this job a new name "
            f"(--set name={job.name}-2)."
        ) from None
    if stored != job.resolved_hash():
        raise ExperimentConflictError(
            f"experiment '{job.name}' already has results in {experiment_dir} from a different "
            "job (its resolved job hash differs). Rerun with --restart to discard them and start "
            f"over, or give this job a new name (--set name={job.name}-2)."
        )
    resume = (experiment_dir / "tuner.pkl").exists()
    torn = torn_tune_state(experiment_dir) if resume else None
    if torn is not None:
        # Tune logs "Failed to restore the run state" and starts trials afresh beside the old
        # records (a 2-trial job came back with 1 trial): refuse rather than resume wrongly.
        raise ExperimentConflictError(
            f"experiment '{job.name}': Tune's experiment state {torn} is cut off (its disk "
            "filled up, or the driver was killed, while Tune wrote it), so Tune cannot resume "
            "the experiment's trials. Rerun with --restart to start over (free space first if "
            "the disk is full), or give this job a new name "
            f"(--set name={job.name}-2); the earlier run's MLflow runs stay in the store."
        )
    return resume


def torn_tune_state(experiment_dir: Path) -> Path | None:
    """Tune's newest experiment state file under ``experiment_dir`` (the one ``Tuner.restore``
    reads) if it is not whole JSON, else None."""
    states = sorted(experiment_dir.glob("experiment_state-*.json"))  # Tune takes the max name
    if not states:
        return None
    try:
        json.loads(states[-1].read_text())
    except (OSError, ValueError):
        return states[-1]
    return None


def run_job(
    job: Any,
    *,
    restart: bool = False,
    tracking_uri: str | None = None,
    storage_path: str | None = None,
    stream: TextIO | None = None,
    ray_address: str | None = None,
    trainable_class: type | None = None,
) -> RunOutcome:
    """Run (or resume) a job's experiment; returns every trial's outcome and the best one.

    One driver per experiment: the experiment's lock is held from before anything is written
    until the end, however the run ends (a second driver gets `ExperimentLockedError`). What a
    killed driver left open is reconciled first; settings the job hash leaves out (tracking,
    ``trials.max_concurrent``) come from this command on a resume. A driver-side `OSError`
    closes the run's records and is raised as `DriverOSError`.

    ``trainable_class`` replaces `LRTuneTrainable` (benchmarks of the driver's own cost run a
    synthetic trainable through this same path); it takes the same ``job`` parameter.
    """
    from lrtune.agents import require_env_id
    from lrtune.running._lock import ExperimentLock
    from lrtune.specs import SpecError

    # A user's env module is first imported here, not at validation; the env is built once.
    require_env_id(job.env.id, job.agent, env_config=job.env.config)
    check_trial_settings(job)  # RLlib's names for the hyper-parameters, before Ray starts
    problem = local_resource_problem(job.resources.cpus, job.resources.gpus, ray_address)
    if problem is not None:
        raise SpecError(problem)
    stream = stream or sys.stdout
    out: TextIO = stream
    experiment_dir, results_dir = experiment_paths(job, storage_path)
    resume = check_experiment(job, experiment_dir, restart)  # before anything is written
    uri = tracking_uri or job.tracking.resolved_uri

    def say(line: str) -> None:
        out.write(f"lrtune: {line}\n")
        out.flush()

    lock = ExperimentLock(experiment_dir, job.name)
    opened: dict[str, Any] = {}  # what the run opened so far, for closing after an OSError
    try:
        lock.acquire(say)
        if resume:
            _check_resume_settings(job, experiment_dir, results_dir, uri)
        return _run_locked(
            job,
            resume=resume,
            restart=restart,
            uri=uri,
            experiment_dir=experiment_dir,
            results_dir=results_dir,
            stream=stream,
            say=say,
            ray_address=ray_address,
            trainable_class=trainable_class,
            opened=opened,
        )
    except OSError as exc:
        _close_after_os_error(job, uri, results_dir, opened, say)
        raise DriverOSError(_os_error_paragraph(exc, results_dir, experiment_dir)) from exc
    finally:
        _LIVE_BUDGETS.pop(str(experiment_dir), None)
        lock.release()


@dataclass
class RunPlan:
    """What Tune will run for a job (`plan_run`): the trials' side, built before any record.

    Attributes:
        param_space: Tune's ``param_space`` (trial points; empty when a searcher proposes them).
        search_alg: the searcher (Optuna's, another, or the variant generator of fixed/grid).
        num_samples: Tune's ``num_samples``.
        scheduler: the early-stopping scheduler, or the population's.
        checkpoint_config: how often trials checkpoint and how many checkpoints stay.
        population: the population's plan (None for a search).
        opens_study: whether the run writes an Optuna study (closed again after an `OSError`).
        warnings: run-start warnings, printed under the run's header.
    """

    param_space: dict[str, Any]
    search_alg: Any
    num_samples: int
    scheduler: Any
    checkpoint_config: Any
    population: Any
    opens_study: bool
    warnings: list[str]


def plan_run(job: Any, results_dir: Path, *, resume: bool) -> RunPlan:
    """Build the searcher (or population), scheduler and checkpoint settings of a job's run.

    Called once per run, after Ray is up and before anything but the results folder (where an
    Optuna study lives) is written, so a plan that cannot be built leaves no records behind.
    """
    from ray.tune import CheckpointConfig

    from lrtune.running._search import VariantGenerator, make_scheduler

    results_dir.mkdir(parents=True, exist_ok=True)
    if job.population is not None:  # a population replaces the searcher and the scheduler
        from lrtune.running._populations import population_plan

        population = population_plan(job)
        warnings: list[str] = []
        if resume and job.population.params.get("synch"):
            # Tune rebuilds a population scheduler from the job on restore (its state is not
            # saved): a synchronous one can leave a member waiting at the sync point for good.
            warnings.append(
                "resuming a population with `synch: true`: Tune does not restore the "
                "scheduler's state, so a member that was waiting at the synchronisation point "
                "may end early (status pruned); asynchronous populations (the default) resume "
                "cleanly"
            )
        return RunPlan(
            param_space=population.param_space,
            search_alg=None,
            num_samples=1,
            scheduler=population.scheduler,
            checkpoint_config=CheckpointConfig(
                checkpoint_frequency=population.checkpoint_frequency,
                num_to_keep=population.num_to_keep,
                checkpoint_at_end=True,
            ),
            population=population,
            opens_study=(results_dir / STUDY_FILE).exists(),
            warnings=[*warnings, *start_warnings(job)],
        )
    param_space, search_alg, num_samples, warnings = _search_setup(job, results_dir)
    opens_study = (results_dir / STUDY_FILE).exists() or (
        search_alg is not None and job.search.algorithm == "optuna"
    )
    if search_alg is None:
        # Fixed and grid trials: a generator that keeps this command's concurrency limit when
        # Tune restores the saved one over it.
        search_alg = VariantGenerator(max_concurrent=job.concurrent_trials)
    return RunPlan(
        param_space=param_space,
        search_alg=search_alg,
        num_samples=num_samples,
        scheduler=make_scheduler(job),
        checkpoint_config=CheckpointConfig(
            checkpoint_frequency=_checkpoint_frequency(job), num_to_keep=2, checkpoint_at_end=True
        ),
        population=None,
        opens_study=opens_study,
        warnings=[*warnings, *start_warnings(job)],
    )


def job_trainable(job: Any, trainable_class: type, /, **parameters: Any) -> Any:
    """The trainable Tune runs, with the job's per-trial resources (a run's and finalize's);
    ``parameters`` go to the trainable's ``setup`` (`tune.with_parameters`)."""
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(trainable_class, **parameters),
        {"cpu": job.resources.cpus, "gpu": job.resources.gpus},
    )


def job_run_config(
    job: Any,
    *,
    name: str,
    experiment_dir: Path,
    checkpoint_config: Any,
    callbacks: list[Callback],
    stop: Stopper | None = None,
) -> Any:
    """Tune's RunConfig of a run or a finalize round: the job's failure budget, the interrupt
    watch, lrtune's callbacks, then Tune's result files (`result_loggers`); Tune's own console
    output off (lrtune's progress view replaces it)."""
    from ray.tune import FailureConfig, RunConfig

    return RunConfig(
        name=name,
        storage_path=str(experiment_dir.parent),
        stop=stop,
        failure_config=FailureConfig(max_failures=job.trials.max_failures),
        checkpoint_config=checkpoint_config,
        callbacks=[InterruptWatch(), *callbacks, *result_loggers()],
        verbose=0,
    )


class _NoResultFilesFilter(logging.Filter):
    """Drops Tune's "Failed to fetch metrics" warning when every trial it lists simply never
    wrote a result (a trial the experiment's budget ended before it started, or one that failed
    first): the run's own summary lists those trials with their status, and Tune's lines (a
    ``FileNotFoundError`` per trial) read as a fault. Any other failure still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop) for a warning whose every listed failure is a missing result file."""
        lines = record.getMessage().splitlines()
        if not lines or not lines[0].startswith("Failed to fetch metrics"):
            return True
        return not all("were not found at" in line for line in lines[1:])


def fitted_trials(tuner: Any, experiment_dir: Path) -> list[Any]:
    """Run ``tuner.fit()`` (SIGTERM handled as Ctrl-C) and return Tune's trials.

    When the disk of the storage path fills up, Tune logs its failed uploads and goes on, and
    ``fit`` then fails reading back a file the full disk cut off (an empty ``error.pkl``:
    EOFError): that is raised as the `OSError` it stands for, naming ``experiment_dir``.
    An `OSError` of lrtune's callbacks (a full results disk) that Tune's controller wrapped in
    a `TuneError` (it does so for callbacks run from a trial's result, such as the start of a
    trial on a re-used actor) is raised as itself.
    """
    analysis_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    quiet = _NoResultFilesFilter()
    analysis_log.addFilter(quiet)
    try:
        with _sigterm_as_sigint():
            grid = tuner.fit()
    except TuneError as exc:
        wrapped = _os_error_inside(exc)
        if wrapped is None:
            raise
        raise wrapped from exc
    except (EOFError, pickle.UnpicklingError, json.JSONDecodeError) as exc:
        where = experiment_dir if experiment_dir.exists() else experiment_dir.parent
        full = shutil.disk_usage(where).free < _NEARLY_FULL_BYTES
        raise OSError(
            errno.ENOSPC if full else errno.EIO,
            ("No space left on device" if full else "a file Tune wrote there is cut off")
            + f" (Tune's {type(exc).__name__} reading its trial files)",
            str(experiment_dir),
        ) from exc
    finally:
        analysis_log.removeFilter(quiet)
    return list(grid._experiment_analysis.trials)


def _os_error_inside(exc: BaseException) -> OSError | None:
    """The first `OSError` in ``exc``'s chain of causes and contexts (None if there is none)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _run_locked(
    job: Any,
    *,
    resume: bool,
    restart: bool,
    uri: str,
    experiment_dir: Path,
    results_dir: Path,
    stream: TextIO,
    say: Any,
    ray_address: str | None,
    trainable_class: type | None,
    opened: dict[str, Any],
) -> RunOutcome:
    """plan → launch → record, with the experiment's lock held."""
    if restart:
        shutil.rmtree(experiment_dir, ignore_errors=True)
        shutil.rmtree(results_dir, ignore_errors=True)
    connect_ray_for_tune(ray_address)
    plan = plan_run(job, results_dir, resume=resume)
    opened["study"] = plan.opens_study
    where = _RunPlace(resume, uri, experiment_dir, results_dir, stream, say)
    launch = _launch(
        job, plan, where, trainable_class=trainable_class or LRTuneTrainable, opened=opened
    )
    return _record(job, plan, launch, where)


@dataclass(frozen=True)
class _RunPlace:
    """Where and how a run records (one per `run_job` call), for `_launch` and `_record`."""

    resume: bool
    uri: str
    experiment_dir: Path
    results_dir: Path
    stream: TextIO
    say: Any


@dataclass
class _Launched:
    """What `_launch` hands `_record`: Tune's trials and the run's tracking handles."""

    trials: list[Any]
    journal: Any
    parent_ref: Any
    job_hash: str


def _launch(
    job: Any, plan: RunPlan, where: _RunPlace, *, trainable_class: type, opened: dict[str, Any]
) -> _Launched:
    """Write the experiment's marker, open its MLflow parent run, build (or restore) the
    tuner with this command's settings, close what a killed driver left open, and fit."""
    job_hash = _write_markers(job, where)
    journal, parent_ref, parent = _open_parent(job, where, job_hash)
    opened["parent"] = parent
    opened["parent_key"] = parent_key(parent_ref)
    where.stream.write(
        f"lrtune: experiment '{job.name}' ({'resuming' if where.resume else 'new'}), "
        f"{job.trial_count} trial{'s' if job.trial_count != 1 else ''} × "
        f"{job.budget.trial_env_steps} env steps, tracking {redact_uri(where.uri)}\n"
    )
    for warning in plan.warnings:
        where.stream.write(f"lrtune: warning: {warning}\n")
    where.stream.flush()
    run_config, tune_config, budget = _tune_settings(
        job, plan, where, trainable_class, parent=parent, parent_ref=parent_ref
    )
    trials = _fit(
        job, plan, where, trainable_class, run_config, tune_config, budget, parent, parent_ref
    )
    return _Launched(trials=trials, journal=journal, parent_ref=parent_ref, job_hash=job_hash)


def _write_markers(job: Any, where: _RunPlace) -> str:
    """Write the experiment's marker (what a resume checks) and the results' ``job.yaml``;
    return the job's hash."""
    job_hash = str(job.resolved_hash())
    where.experiment_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        where.experiment_dir / JOB_MARKER,
        json.dumps(
            {
                "hash": job_hash,
                "job": stored_job_dict(job.to_yaml_dict()),
                # What the hash leaves out but a resume must keep (see _check_resume_settings).
                "tracking_uri": redact_uri(where.uri),  # never a password on disk
                "mlflow_experiment": job.experiment_name,
                "results_dir": str(where.results_dir),
            },
            default=str,
        ),
    )
    write_yaml(where.results_dir / "job.yaml", stored_job_dict(job.to_yaml_dict()))
    return job_hash


def _open_parent(job: Any, where: _RunPlace, job_hash: str) -> tuple[Any, Any, Any]:
    """Open the experiment's journal and its MLflow parent run: (journal, the parent's
    journal reference, its MLflow id or None while MLflow is down).

    Tracking goes through the experiment's journal on local disk, delivered by a background
    thread (what an earlier driver left undelivered goes first); the parent run's MLflow id
    is known once delivered (a short wait, cut short when MLflow is down: it is created
    late)."""
    from lrtune.tracking import journal_dir, open_journal, run_context

    parent_tags = {TAG_EXPERIMENT: job.name, TAG_JOB_HASH: job_hash, TAG_ROLE: RunRole.EXPERIMENT}
    journal, _ = open_journal(
        journal_dir(where.results_dir), where.uri, job.experiment_name, stream=where.stream
    )
    parent_ref = journal.parent(
        job.name,
        parent_tags,
        {
            "agent": job.agent,
            "env": job.env.id,
            "trials": job.trial_count,
            "trial_env_steps": job.budget.trial_env_steps,
            "seeds.tuning": ",".join(map(str, job.seeds.tuning)),
            "seeds.test": ",".join(map(str, job.seeds.test)),
            "search": f"population/{job.population.name}"
            if job.population is not None
            else job.search.label,
            "scheduler": job.scheduler.name,
        },
        resume=where.resume,
        context=run_context(),
    )
    journal.drain(10.0, while_up=True, budgeted=False)
    return journal, parent_ref, journal.run_id(parent_ref)


def _tune_settings(
    job: Any,
    plan: RunPlan,
    where: _RunPlace,
    trainable_class: type,
    *,
    parent: Any,
    parent_ref: Any,
) -> tuple[Any, Any, ExperimentEnvStepBudget]:
    """This command's Tune settings: the run config (callbacks: MLflow recorder, progress,
    lineage; the experiment budget as stopper), the tune config and the budget stopper."""
    from ray.tune import TuneConfig

    from lrtune.running._progress import ProgressPrinter
    from lrtune.tracking import TrialRecorder, journal_dir

    extra_callbacks: list[Callback] = []
    if plan.population is not None:
        from lrtune.running._lineage import RECORDS_FILE, LineageRecorder

        records = str(where.results_dir / "population" / RECORDS_FILE)
        extra_callbacks.append(LineageRecorder(records))
    recorder = TrialRecorder(
        tracker_args=(where.uri, job.experiment_name),
        parent_run_id=parent,
        journal_dir=str(journal_dir(where.results_dir)),
        parent_ref=parent_ref,
        describe=functools.partial(describe_trial, job, str(where.results_dir)),
        metrics_of=trial_metrics,
        status_of=functools.partial(recorder_status, job),
    )
    budget = ExperimentEnvStepBudget(job.budget.experiment_env_steps, key=str(where.experiment_dir))
    run_config = job_run_config(
        job,
        name=job.name,
        experiment_dir=where.experiment_dir,
        checkpoint_config=plan.checkpoint_config,
        callbacks=[
            recorder,
            ProgressPrinter(functools.partial(policy_label, job=job), where.stream),
            *extra_callbacks,
        ],
        stop=budget,
    )
    tune_config = TuneConfig(
        metric="score",
        mode=job.metric.mode,
        num_samples=plan.num_samples,
        search_alg=plan.search_alg,
        scheduler=plan.scheduler,
        # The searcher's ConcurrencyLimiter (or the variant generator) bounds concurrency (Tune
        # warns on both); a population must have every member created at once (its scheduler
        # time-shares them).
        max_concurrent_trials=None,
        time_budget_s=job.budget.experiment_seconds,
        # A finished (or, in a population, paused) trial's actor takes on the next trial
        # through ``reset_config``: the algorithms are rebuilt, the worker process and its
        # imports are kept. An exploit restores the donor's checkpoint into the rebuilt ones.
        reuse_actors=_resets_itself(trainable_class),
        trial_dirname_creator=trial_dirname,
    )
    return run_config, tune_config, budget


def _fit(
    job: Any,
    plan: RunPlan,
    where: _RunPlace,
    trainable_class: type,
    run_config: Any,
    tune_config: Any,
    budget: ExperimentEnvStepBudget,
    parent: Any,
    parent_ref: str,
) -> list[Any]:
    """Build the tuner (or restore it with this command's settings), close the MLflow runs a
    killed driver left open, fit, and return Tune's trials."""
    from ray import tune

    from lrtune.learners._config import known_env_facts
    from lrtune.running._reconcile import reconcile_mlflow

    facts = {"env_facts": known_env_facts()} if issubclass(trainable_class, LRTuneTrainable) else {}
    trainable = job_trainable(job, trainable_class, job=job, **facts)
    live: set[str] = set()
    ended: dict[str, str] = {}
    with _sigterm_as_sigint():
        if where.resume:
            tuner = tune.Tuner.restore(
                str(where.experiment_dir),
                trainable=trainable,
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=False,
                param_space=plan.param_space,
            )
            live, ended = _adopt_current_settings(tuner, job, run_config, tune_config, budget)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=plan.param_space,
                tune_config=tune_config,
                run_config=run_config,
            )
        # What a killed driver left open, before Tune re-attaches to what it resumes.
        closed = reconcile_mlflow(
            where.uri,
            job.experiment_name,
            job.name,
            live=live,
            ended=ended,
            keep_parent=parent,
            keep_parent_key=parent_key(parent_ref),
            parent_status=None,
            say=where.say,
        )
        if closed:
            where.say(f"closed {closed} MLflow run(s) a stopped driver had left open")
        return fitted_trials(tuner, where.experiment_dir)


def _record(job: Any, plan: RunPlan, launch: _Launched, where: _RunPlace) -> RunOutcome:
    """Trials → outcomes; close what stays open in Optuna and MLflow; write the summary, the
    best trial and the population's lineage; finish the parent run; print the summary."""
    uri, stream, say, results_dir = where.uri, where.stream, where.say, where.results_dir
    from lrtune.running._reconcile import close_study_trials, reconcile_mlflow
    from lrtune.tracking import last_error_line

    journal, trials = launch.journal, launch.trials
    parent = journal.run_id(launch.parent_ref)  # created late if MLflow was down at the start
    ended_statuses = {"TERMINATED", "ERROR"}
    interrupted = (
        _INTERRUPTED.is_set() or any(t.status not in ended_statuses for t in trials) or not trials
    )
    outcomes = []
    for trial in trials:
        error = last_error_line(trial) if trial.status == "ERROR" else None
        finished = trial.status in ended_statuses and not (
            interrupted and _stopped_early(trial, job)
        )
        outcomes.append(outcome_of(trial, job, finished, error))
    if job.search.algorithm == "optuna" and job.space is not None and job.population is None:
        # Nothing stays RUNNING in the study: after an interrupt, the trials Tune stopped; at a
        # normal end, any trial a killed driver had asked for that no resumed trial took over.
        close_study_trials(_study_url(results_dir), job.name, say)
    # Nothing stays RUNNING in MLflow either (Tune's callback closes the runs it knows).
    reconcile_mlflow(
        uri,
        job.experiment_name,
        job.name,
        live=set(),
        ended={t.trial_id: t.status for t in outcomes},
        keep_parent=parent,
        keep_parent_key=parent_key(launch.parent_ref),
        parent_status=None,
        say=say,
    )
    outcome = RunOutcome(
        name=job.name,
        results_dir=results_dir,
        experiment_dir=where.experiment_dir,
        trials=outcomes,
        best=pick_best(outcomes, job.metric.mode),
        interrupted=interrupted,
        resumed=where.resume,
        parent_run_id=parent,
        tracking_uri=uri,
        warnings=plan.warnings,
        mode=job.metric.mode,
    )
    lineage_lines: list[str] = []
    if plan.population is not None:
        from lrtune.running._lineage import finish_population

        lineage_lines = finish_population(job, results_dir, outcome, journal, launch.parent_ref)
    summary = write_summary(outcome, job, launch.job_hash)
    _finish_parent(journal, launch.parent_ref, job, outcome, summary)
    journal.close()  # bounded wait; what is left stays journalled, with the command to replay it
    stream.write(summary_table(outcome) + "\n")
    for line in lineage_lines:
        stream.write(f"lrtune: {line}\n")
    for warning in (unscored_warning(outcomes, job), unstarted_warning(outcomes, job)):
        if warning is not None:
            stream.write(f"lrtune: warning: {warning}\n")
    stream.write(f"lrtune: results in {results_dir}\n")
    for line in browse_commands(uri, results_dir):
        stream.write(f"lrtune: {line}\n")
    stream.flush()
    return outcome


# Trials that ran to their budget, a scheduler's stop or the experiment's: they should have a
# score (once they ran at all).
_MEASURABLE = (TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.OUT_OF_BUDGET)


_ENVS_KEY = "num_envs_per_env_runner"


def _parallel_envs(job: Any, trial: TrialOutcome) -> int:
    """How many envs ``trial`` stepped side by side: its sampled value, the job's, the
    presets', else 1."""
    from lrtune.learners._presets import preset_hyperparams

    for source in (trial.hyperparams, job.fixed_hyperparams):
        if isinstance(source.get(_ENVS_KEY), int):
            return max(1, int(source[_ENVS_KEY]))
    preset = preset_hyperparams(job.agent, job.env.id, job.env.config).get(_ENVS_KEY)
    return max(1, int(preset)) if isinstance(preset, int) else 1


def unstarted_warning(outcomes: list[TrialOutcome], job: Any) -> str | None:
    """The run's closing warning on trials the experiment's budget ended before their first
    iteration (Tune had made them, or they were still in it): what ran out, and the fix."""
    unstarted = [t for t in outcomes if t.status == TrialStatus.OUT_OF_BUDGET and t.iterations == 0]
    if not unstarted:
        return None
    ids = ", ".join(t.trial_id for t in unstarted[:5]) + (", ..." if len(unstarted) > 5 else "")
    budget = job.budget
    spent = " or ".join(
        f"budget.{name} ({getattr(budget, name):g})"
        for name in ("experiment_env_steps", "experiment_seconds")
        if getattr(budget, name) is not None
    )
    count = "population.size" if getattr(job, "population", None) is not None else "trials.num"
    return (
        f"{len(unstarted)} trial(s) ({ids}) ended before their first iteration: {spent} ran "
        f"out first; raise it, or lower {count}"
    )


def unscored_warning(outcomes: list[TrialOutcome], job: Any) -> str | None:
    """The run's closing warning on trials that ended with no score (no episode ended in
    them), naming what to change: the env's time limit where they ran their whole env-step
    budget; else the budget or scheduler that stopped them sooner (the time limit alone used
    to be blamed, even for a trial the experiment's time budget stopped at 0 env steps)."""
    unscored = [
        t for t in outcomes if t.score is None and t.status in _MEASURABLE and t.iterations > 0
    ]
    if not unscored:
        return None
    ids = ", ".join(t.trial_id for t in unscored[:5]) + (", ..." if len(unscored) > 5 else "")
    head = (
        f"no episode ended in {len(unscored)} trial(s) ({ids}), so they have no score (the "
        "worst value stood in for the search): "
    )
    budget = job.budget
    limit = "give the env a time limit (env.config: {max_episode_steps: N})"
    short = [t for t in unscored if t.env_steps < budget.trial_env_steps]
    if not short:
        envs_of = {t.trial_id: _parallel_envs(job, t) for t in unscored}
        envs = max(envs_of.values())
        if envs == 1:
            return (
                f"{head}the episodes outlast the {max(t.env_steps for t in unscored)} env steps "
                f"the trials ran; {limit} or raise budget.trial_env_steps"
            )
        per_env = max(t.env_steps // envs_of[t.trial_id] for t in unscored)
        return (
            f"{head}a trial's env steps are shared by its {envs} parallel envs "
            f"({_ENVS_KEY}), and the episodes outlast the {per_env} steps each env ran; "
            f"{limit}, raise budget.trial_env_steps or lower {_ENVS_KEY} in hyperparams"
        )
    # Each status says what stopped its trials: a completed one short of its env steps ran out
    # of budget.trial_seconds; a pruned one, the scheduler; one out of budget, the experiment's.
    statuses = {t.status for t in short}
    names = {
        TrialStatus.COMPLETED: ("trial_seconds",),
        TrialStatus.OUT_OF_BUDGET: ("experiment_seconds", "experiment_env_steps"),
    }
    stoppers = [
        f"budget.{name} ({getattr(budget, name):g})"
        for status in (TrialStatus.COMPLETED, TrialStatus.OUT_OF_BUDGET)
        if status in statuses
        for name in names[status]
        if getattr(budget, name) is not None
    ]
    if TrialStatus.PRUNED in statuses:
        population = getattr(job, "population", None)
        if job.scheduler.name != "none" or population is None:
            stoppers.append(f"scheduler {job.scheduler.name}")
        else:  # a synchronous population's member left waiting
            stoppers.append(f"population {population.name}")
    by = " or ".join(stoppers) if stoppers else "the run's end"
    return (
        f"{head}{len(short)} of them stopped after at most {max(t.env_steps for t in short)} "
        f"env steps, short of budget.trial_env_steps ({budget.trial_env_steps}), ended by "
        f"{by} before any episode ended; raise that budget, or {limit}"
    )


def _adopt_current_settings(
    tuner: Any, job: Any, run_config: Any, tune_config: Any, budget: ExperimentEnvStepBudget
) -> tuple[set[str], dict[str, str]]:
    """Make a restored tuner run with this command's settings; returns (trial ids Tune will
    resume, trial id → lrtune status of the trials it already ended).

    ``Tuner.restore`` brings back the first run's RunConfig and TuneConfig from tuner.pkl: its
    callbacks (the tracking URI they write to), its stopper and its concurrency limit. Tune
    2.60 has no public way to replace them, so the restored tuner's private copies are swapped
    for this command's (same job hash: only what the hash leaves out differs). The budget
    stopper is seeded with each trial's last env steps from Tune's restored state.
    """
    internal = getattr(tuner, "_local_tuner", None)
    if internal is None:  # a Ray Client tuner: nothing local to replace
        raise ResumeSettingError(
            "ray_address: resuming through a Ray Client (ray://) address cannot apply this "
            "command's settings; run the driver on the cluster (lrtune submit) instead."
        )
    internal._run_config = run_config
    internal._tune_config = tune_config
    live: set[str] = set()
    ended: dict[str, str] = {}
    try:
        restored = list(tuner.get_results()._experiment_analysis.trials)
    except RuntimeError:  # Tune could not read its own snapshot: it starts the trials afresh
        restored = []
    for trial in restored:
        last = trial.last_result or {}
        budget.steps[str(trial.trial_id)] = int(last.get("env_steps", 0) or 0)
        if trial.status in ("TERMINATED", "ERROR"):
            ended[str(trial.trial_id)] = recorder_status(job, trial, last, trial.status == "ERROR")
        else:
            live.add(str(trial.trial_id))
    return live, ended


def _check_resume_settings(job: Any, experiment_dir: Path, results_dir: Path, uri: str) -> None:
    """Refuse a resume whose command changed what it cannot honour (the job hash leaves these
    out): another results folder (the Optuna study and trial files live there), or another
    MLflow store (the finished trials' runs would stay behind in the old one)."""
    try:
        stored = json.loads((experiment_dir / JOB_MARKER).read_text())
    except (OSError, ValueError):
        return
    before = stored.get("results_dir")
    if before and Path(before) != results_dir:
        raise ResumeSettingError(
            f"results_dir: experiment '{job.name}' was started with its results in {before}, "
            f"and this command puts them in {results_dir}. A resumed experiment keeps its "
            "results folder (its Optuna study and trial files are there): set results_dir back "
            "to the folder above, or rerun with --restart to start over in the new one."
        )
    old_uri, old_experiment = stored.get("tracking_uri"), stored.get("mlflow_experiment")
    if old_uri is None or (old_uri == redact_uri(uri) and old_experiment == job.experiment_name):
        return
    from lrtune.running._reconcile import mlflow_has_experiment_run

    if mlflow_has_experiment_run(uri, job.experiment_name, job.name):
        return  # the same store at a new address (a moved server): records continue there
    raise ResumeSettingError(
        f"tracking.uri: experiment '{job.name}' was recorded in MLflow at "
        f"{redact_uri(str(old_uri))} (experiment '{old_experiment}'), and this command "
        f"tracks to {redact_uri(uri)} (experiment '{job.experiment_name}'), which holds no "
        "run of it (or cannot be reached). A resume would split the trials' records across "
        "two stores: resume with the first store (--tracking-uri or the job's tracking.uri), "
        "or rerun with --restart to start over in the new one."
    )


def _close_after_os_error(
    job: Any, uri: str, results_dir: Path, opened: Mapping[str, Any], say: Any
) -> None:
    """Close what the run opened: its MLflow runs (stopped, the parent FAILED) and the study's
    RUNNING trials (FAIL, stopped)."""
    from lrtune.running._reconcile import close_study_trials, reconcile_mlflow

    if opened.get("study") and (results_dir / STUDY_FILE).exists():
        close_study_trials(_study_url(results_dir), job.name, say)
    if "parent" in opened:
        reconcile_mlflow(
            uri,
            job.experiment_name,
            job.name,
            live=set(),
            ended={},
            keep_parent=opened["parent"],
            keep_parent_key=opened.get("parent_key"),
            parent_status="FAILED",
            say=say,
        )


def _os_error_paragraph(exc: OSError, results_dir: Path, experiment_dir: Path) -> str:
    """One paragraph: what could not be written, why, the free space where it lives, and how
    to go on (a resume, unless Tune's experiment state was cut off too)."""
    path = Path(str(exc.filename)) if exc.filename else results_dir
    where = path
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        free = f"{shutil.disk_usage(where).free:,} bytes free on the file system of {where}"
    except OSError:
        free = f"the free space of {where} cannot be read"
    reason = exc.strerror or str(exc) or type(exc).__name__
    torn = torn_tune_state(experiment_dir) if experiment_dir.is_dir() else None
    then = (
        "then rerun the same command: it resumes the experiment."
        if torn is None
        else f"then rerun with --restart: Tune's experiment state {torn} was cut off too, so "
        "the experiment cannot be resumed."
    )
    return (
        f"the lrtune driver could not write {path}: {reason} ({free}). The run's MLflow runs "
        "and Optuna trials were closed as stopped and the experiment's lock released. Free "
        f"some space (or point results_dir / storage_path at a larger disk), {then}"
    )


def browse_commands(tracking_uri: str, results_dir: Path) -> list[str]:
    """How to open the run's records: MLflow's UI on the store, optuna-dashboard on the study."""
    shown = redact_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        lines = [f"trials in MLflow: open {shown} in a browser"]
    else:
        lines = [f"trials in MLflow: mlflow ui --backend-store-uri {shown}"]
    study = results_dir / STUDY_FILE
    if study.exists():
        lines.append(
            f"the Optuna study: optuna-dashboard sqlite:///{study} (pip install optuna-dashboard)"
        )
    return lines


def result_loggers() -> list[Callback]:
    """Tune's per-trial result files, without its TensorBoard logger unless asked for.

    Tune adds a JSON, a CSV and a TensorBoard logger to every run; the TensorBoard one cost
    ~24 ms of driver time per result in ``benchmarks/driver_load.py`` (200 trials), half of
    the driver's time, for a record MLflow already keeps. ``result.json`` and ``progress.csv``
    stay in each trial folder; ``LRTUNE_TENSORBOARD=1`` brings TensorBoard's files back.
    Called where a run builds its callbacks (Tune reads the variable when ``fit`` starts).
    """
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    loggers: list[Callback] = [
        TrialLogsUpload(),  # before the loggers: it runs first at a trial's start
        JsonLoggerCallback(),
        CSVLoggerCallback(),
    ]
    if os.environ.get("LRTUNE_TENSORBOARD") == "1":
        loggers.append(TBXLoggerCallback())
    return loggers


class TrialLogsUpload(Callback):
    """Keeps a restarted trial's result rows: its driver-side ``result.json`` and
    ``progress.csv`` copied to the storage path just before Tune's loggers copy them back.

    Tune's JSON and CSV loggers write each row to the driver's staging folder, which Tune
    uploads to the storage path only now and then (every ``num_to_keep`` trial checkpoints, or
    by time). When a trial that has a checkpoint starts again (retried after a failure, a node
    lost, a population member resumed), each logger first copies the storage path's file over
    its staging file (`LoggerCallback._restore_from_remote`, Ray 2.60), so the rows reported
    since the last upload are lost: a trial moved off a dead node from its checkpoint at 768
    env steps had no row at 768. Uploading the staging files first makes that copy a no-op.
    A driver that resumes an experiment in a new session has no staging files yet, and the
    loggers restore from the storage path as before."""

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Called by Tune when a trial's actor starts, before the loggers' ``on_trial_start``."""
        if trial.checkpoint is None:
            return  # the loggers restore nothing either
        import pyarrow.fs
        from ray.tune.result import EXPR_PROGRESS_FILE, EXPR_RESULT_FILE

        storage = trial.storage
        local = isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem)
        for name in (EXPR_RESULT_FILE, EXPR_PROGRESS_FILE):
            staged, stored = Path(trial.local_path, name), Path(storage.trial_fs_path, name)
            if not staged.is_file() or (local and stored.resolve() == staged.resolve()):
                continue
            try:
                pyarrow.fs.copy_files(
                    staged.as_posix(),
                    stored.as_posix(),
                    destination_filesystem=storage.storage_filesystem,
                )
            except OSError as exc:  # as Tune's own restore: the run goes on
                logging.getLogger(__name__).warning(
                    "trial %s: could not upload %s before its restart (%s); its rows since "
                    "Tune's last upload may be missing from the storage path's copy",
                    trial.trial_id,
                    name,
                    exc,
                )


def _resets_itself(trainable_class: type) -> bool:
    """Whether the trainable implements Tune's ``reset_config`` (so its actors can be re-used)."""
    from ray.tune import Trainable

    return getattr(trainable_class, "reset_config", None) is not Trainable.reset_config


def _checkpoint_frequency(job: Any) -> int:
    """Tune's ``checkpoint_frequency`` (iterations): 1 with ``trials.checkpoint_seconds: 0``,
    else 0 (the trainable asks for each checkpoint with ``should_checkpoint``, by time or by env
    steps: `TrialsSpec.checkpoint_due`)."""
    return 1 if job.trials.checkpoints_every_iteration else 0


def _stopped_early(trial: Any, job: Any) -> bool:
    last = trial.last_result or {}
    return not last.get("budget_reached") and not last.get("diverged")


def _study_url(results_dir: Path) -> str:
    return f"sqlite:///{results_dir / STUDY_FILE}"


def start_warnings(job: Any) -> list[str]:
    """The run-start warnings that follow from the job alone: the searcher's (a space it cannot
    model), a grid's trial count, schedule durations shorter than an iteration. `plan_run`
    prints them under the run's header and ``lrtune run --dry-run`` lists them; warnings that
    need the run's state (a warm start's earlier study, resuming a synchronous population) come
    only with a run."""
    from lrtune.search import sampler_warning

    searcher = sampler_warning(job)
    return [
        *([searcher] if searcher else []),
        *trial_count_warnings(job),
        *budget_warnings(job),
        *population_warnings(job),
        *schedule_resolution_warnings(job),
        *evaluation_limit_warnings(job),
    ]


def evaluation_limit_warnings(job: Any) -> list[str]:
    """A note when evaluation episodes get a time limit the env lacks (see
    `evaluation_time_limit`): scores then count at most that many env steps per episode."""
    if not job.evaluation.enabled:
        return []
    limit = evaluation_time_limit(job)
    if limit is None:
        return []
    return [
        f"env.id {job.env.id!r} has no time limit (max_episode_steps), so evaluation episodes "
        f"are cut at {limit} env steps (budget.trial_env_steps); give the env a limit "
        "(env.config: {max_episode_steps: N}) to choose another"
    ]


def trial_count_warnings(job: Any) -> list[str]:
    """A warning when a job's ``trials.num`` differs from its grid: Tune runs each grid point
    once (the header and the concurrency limit count the grid's trials); and when a fixed
    policy (no space) is given more than one trial, which would all compute the same thing."""
    if job.space is None and job.population is None and job.trials.num > 1:
        if "num" not in job.trials.model_fields_set:
            return []  # a fixed policy runs one trial (`JobSpec.trial_count`)
        return [
            f"trials.num is {job.trials.num}, but the job has no space: its trials run the "
            f"same policy with the same seeds (seeds.tuning), so they compute the same thing "
            f"{job.trials.num} times; leave trials.num out for one trial, list more "
            "seeds.tuning for repeats within a trial, or give a space to search"
        ]
    if job.search.kind != "grid" or job.space is None or job.population is not None:
        return []
    if "num" not in job.trials.model_fields_set or job.trials.num == job.trial_count:
        return []
    return [
        f"trials.num is {job.trials.num}, but a grid runs each of its {job.trial_count} points "
        "once: the run starts all of them (list fewer `values` for fewer trials, or leave "
        "trials.num out)"
    ]


# RLlib's setting for the env steps an off-policy iteration samples at least (DQN, SAC).
_MIN_SAMPLE_KEY = "min_sample_timesteps_per_iteration"


def _iteration_env_steps(job: Any, *, any_agent: bool = False) -> tuple[str | None, int | None]:
    """The hyper-parameter fixing one training iteration's env steps and its value for every
    trial: PPO's ``train_batch_size_per_learner`` (the agent's ``iteration_batch_key``), and,
    with ``any_agent``, an off-policy agent's ``min_sample_timesteps_per_iteration`` (the job's,
    the presets' or RLlib's default). None where there is none or the space searches it."""
    from lrtune.learners._presets import preset_hyperparams

    key = job.agent_plugin.iteration_batch_key
    if key is None and any_agent:
        key = _MIN_SAMPLE_KEY
    if key is None:
        return None, None
    batch = job.fixed_hyperparams.get(key)
    if batch is None:
        batch = preset_hyperparams(job.agent, job.env.id, job.env.config).get(key)
    if batch is None and key == _MIN_SAMPLE_KEY:
        batch = getattr(job.agent_plugin.config_class()(), key, None)
    if not isinstance(batch, int | float) or isinstance(batch, bool) or batch <= 1:
        return key, None  # searched (a dimension) or unknown: nothing certain to say
    return key, int(batch)


def budget_warnings(job: Any) -> list[str]:
    """A warning when ``budget.trial_env_steps`` is less than one training iteration: a trial
    cannot stop inside an iteration, so each runs one whole iteration, more than its budget."""
    key, iteration = _iteration_env_steps(job, any_agent=True)
    budget = int(job.budget.trial_env_steps)
    if iteration is None or budget >= iteration:
        return []
    return [
        f"budget.trial_env_steps ({budget}) is less than one {job.agent} training iteration "
        f"({key} = {iteration} env steps), so each trial runs one iteration: {iteration} env "
        f"steps. Raise the budget, or lower {key} in hyperparams"
    ]


def population_warnings(job: Any) -> list[str]:
    """A warning when ``population.interval`` is shorter than one training iteration: members
    report (and so can exploit) only once per iteration, so the interval never shows."""
    if job.population is None:
        return []
    key, iteration = _iteration_env_steps(job, any_agent=True)
    interval = int(job.population.interval)
    if iteration is None or interval >= iteration:
        return []
    return [
        f"population.interval ({interval}) is shorter than one {job.agent} training iteration "
        f"({key} = {iteration} env steps): members report, and so can be perturbed, once per "
        f"iteration at most; make the interval a multiple of {iteration}"
    ]


def schedule_resolution_warnings(job: Any) -> list[str]:
    """Warnings for schedule durations (a warm-up, a decay interval, a cycle) shorter than one
    training iteration of an agent that samples a whole iteration before its updates (PPO):
    lrtune sets the LR before each update from the env steps sampled so far, so such a
    schedule moves only once per iteration and a shorter duration never shows."""
    from lrtune.policies.schedules import short_durations

    key, iteration = _iteration_env_steps(job)
    if iteration is None:
        return []
    found: list[str] = []
    if job.policy is not None:
        refs = [("policy.schedule", job.policy.schedule)] + [
            (f"policy.roles.{role}.schedule", part.schedule)
            for role, part in job.policy.roles.items()
            if part.schedule is not None
        ]
        for where, ref in refs:
            found += short_durations(ref.name, ref.params, iteration, f"{where}.params")
    if job.space is not None:
        for name, params in (job.space.schedule or {}).items():
            found += short_durations(name, params, iteration, f"space.schedule.{name}")
    if not found:
        return []
    return [
        f"{'; '.join(found)}: shorter than one {job.agent} training iteration ({key} = "
        f"{iteration} env steps). lrtune sets the LR before each update from the env steps "
        f"sampled so far, and an iteration's updates come after all {iteration} of its env "
        "steps are sampled, so the schedule moves once per iteration and this part never "
        f"shows; make it a few multiples of {iteration}"
    ]


def _search_setup(job: Any, results_dir: Path) -> tuple[dict[str, Any], Any, int, list[str]]:
    """(param_space, search_alg, num_samples, warnings) of a job."""
    from ray.tune.search import ConcurrencyLimiter

    warnings: list[str] = []
    if job.space is None:
        point = TrialPoint(
            policy=job.policy.model_dump(mode="json"), hyperparams=job.fixed_hyperparams
        )
        return point.to_config(), None, job.trial_count, warnings
    from lrtune.search import make_sampler
    from lrtune.specs import compile_space

    compiled = compile_space(job)
    if job.search.kind == "grid":
        return TrialPoint.grid_space(compiled.grid_points()), None, 1, warnings

    if job.search.kind == "tune":  # another Tune searcher (hyperopt): no Optuna study
        from lrtune.running._searchers import tune_searcher

        limited = ConcurrencyLimiter(
            tune_searcher(job, compiled),
            max_concurrent=job.concurrent_trials,
            batch=job.search.batch,
        )
        return {}, limited, job.trials.num, warnings
    from lrtune.running._search import LRTuneOptunaSearch, study_storage

    storage = study_storage(_study_url(results_dir))
    if job.search.warm_start:
        warnings.extend(_warm_start(job, compiled, storage))
    searcher = LRTuneOptunaSearch(
        space=compiled.define,
        metric="score",
        mode=job.metric.mode,
        sampler=make_sampler(job),
        study_name=job.name,
        storage=storage,
    )
    limited = ConcurrencyLimiter(
        searcher, max_concurrent=job.concurrent_trials, batch=job.search.batch
    )
    return {}, limited, job.trials.num, warnings


def _warm_start(job: Any, compiled: Any, storage: Any) -> list[str]:
    """Copy an earlier experiment's finished Optuna trials into this (new) study."""
    import optuna

    source_dir = Path(job.search.warm_start).expanduser().resolve()
    source_url = f"sqlite:///{source_dir / STUDY_FILE}"
    if not (source_dir / STUDY_FILE).exists():
        raise LRTuneError(
            f"search.warm_start: no Optuna study at {source_dir / STUDY_FILE}; point it at an "
            "earlier experiment's results folder (results/<name>)."
        )
    names = optuna.get_all_study_names(source_url)
    source = optuna.load_study(study_name=names[0], storage=source_url)
    target = optuna.create_study(
        storage=storage,
        study_name=job.name,
        load_if_exists=True,
        direction="maximize" if job.metric.mode == "max" else "minimize",
    )
    if target.trials:
        return []
    wanted = compiled.distributions()
    copied = 0
    for frozen in source.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        if all(k in wanted and wanted[k] == d for k, d in frozen.distributions.items()):
            target.add_trial(frozen)
            copied += 1
    return [f"warm start: copied {copied} finished trials from {source_dir}"]


def _finish_parent(
    journal: Any, parent: str | None, job: Any, outcome: RunOutcome, summary: Path
) -> None:
    if parent is None:
        return
    journal.log_artifact(parent, str(outcome.results_dir / "job.yaml"))
    for space_file in job.space_files:  # every file of a (combined) space
        journal.log_artifact(parent, str(space_file))
    journal.log_artifact(parent, str(summary))
    if outcome.best is not None:
        best_yaml = outcome.results_dir / "best.yaml"
        journal.log_artifact(parent, str(best_yaml))
        if outcome.best.checkpoint and Path(outcome.best.checkpoint).exists():
            journal.log_artifact(parent, outcome.best.checkpoint, "best_checkpoint")
        journal.set_tags(
            parent,
            {
                TAG_BEST_TRIAL: outcome.best.trial_id,
                TAG_BEST_SCORE: str(outcome.best.score),
            },
        )
    status = (
        "KILLED" if outcome.interrupted else ("FINISHED" if outcome.exit_code == 0 else "FAILED")
    )
    journal.end_run(parent, status)


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """During ``fit``, treat SIGTERM (``ray job stop``, a pod eviction) like Ctrl-C, which Tune
    handles gracefully (it saves the experiment's state); unhandled, SIGTERM loses it."""
    previous = signal.getsignal(signal.SIGTERM)

    def forward(signum: int, frame: Any) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    try:
        signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
