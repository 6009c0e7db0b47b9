"""What a finished (or interrupted) experiment leaves: trial outcomes, summary.json, best.yaml."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lrtune._files import atomic_write_text
from lrtune.policies import LRPolicySpec
from lrtune.specs._point import TrialPoint
from lrtune.tracking._redact import redact_uri
from lrtune.vocabulary import (
    BY_FAMILY,
    BY_FEEDBACK,
    BY_GATING,
    BY_OPTIMIZER,
    BY_POLICY,
    TrialStatus,
)


@dataclass
class TrialOutcome:
    """One trial's end state, as the summary reports it."""

    trial_id: str
    status: str  # a TrialStatus: completed | pruned | out_of_budget | diverged | failed | stopped
    score: float | None
    env_steps: int
    policy: dict[str, Any]
    hyperparams: dict[str, Any]
    policy_short: str
    baseline: bool = False
    error: str | None = None
    node_id: str | None = None
    checkpoint: str | None = None
    iterations: int = 0
    #: The space's model settings of this trial (over the job's ``model:``); {} without any.
    model: dict[str, Any] = field(default_factory=dict)
    #: The space's agent settings as sampled (their RLlib values are in ``hyperparams``).
    agent_settings: dict[str, Any] = field(default_factory=dict)
    #: The job's metric on the training episodes at its latest value (None before an episode
    #: ended); it breaks ties between equal scores (see `ranking_key`).
    training_score: float | None = None

    def eligible_for_best(self) -> bool:
        """Diverged, failed and stopped trials are never chosen as best."""
        return TrialStatus(self.status).finished and self.score is not None


@dataclass
class RunOutcome:
    """What `run_job` returns: every trial's outcome, the best one, and where results are."""

    name: str
    results_dir: Path
    experiment_dir: Path
    trials: list[TrialOutcome]
    best: TrialOutcome | None
    interrupted: bool
    resumed: bool
    parent_run_id: str | None = None
    tracking_uri: str = ""
    warnings: list[str] = field(default_factory=list)
    mode: str = "max"  # the job's metric.mode: which way the table ranks

    @property
    def exit_code(self) -> int:
        """0 when at least one trial finished, 1 when all failed, 130 when interrupted."""
        if self.interrupted:
            return 130
        finished = [
            t
            for t in self.trials
            if TrialStatus(t.status).finished or t.status == TrialStatus.DIVERGED
        ]
        return 0 if finished else 1


def policy_groups(policy: LRPolicySpec | dict[str, Any]) -> dict[str, str]:
    """A policy's group labels by grouping name (``family``, ``optimizer``, ``gating``,
    ``feedback``, ``policy``: `lrtune.vocabulary.PER_GROUPINGS`), as its trial's tags hold them."""
    spec = policy if isinstance(policy, LRPolicySpec) else LRPolicySpec.model_validate(policy)
    family = spec.schedule.name
    if family == "warmup":  # the family it warms up into says more than "warmup"
        then = spec.schedule.params.get("then") or {}
        family = f"warmup+{then.get('name', '?')}"
    return {
        BY_FAMILY: family,
        BY_OPTIMIZER: spec.optimizer.name,
        BY_GATING: spec.gradients.name,
        BY_FEEDBACK: ",".join(r.name for r in spec.feedback) or "none",
        BY_POLICY: spec.short(),
    }


def trial_status(
    last: Mapping[str, Any] | None,
    errored: bool,
    budget: int,
    ended: bool,
    experiment_budget: bool = False,
) -> TrialStatus:
    """lrtune's status of a trial from its last result.

    ``ended``: Tune ended the trial (not an interrupted run); ``experiment_budget``: the job
    has ``budget.experiment_env_steps`` or ``budget.experiment_seconds``. A trial short of its
    budget whose last result is marked ``done`` was stopped by the scheduler (Tune marks it;
    the trainable marks only its budget and divergence): pruned. One Tune stopped with the
    whole experiment (its budget spent: Tune's ``stop_all``) is unmarked: out of budget, as is
    one that never reported (Tune made it, then the budget ran out before it started).
    """
    if errored:
        return TrialStatus.FAILED
    if not last or set(last) <= {"trial_id"}:  # never reported (Tune's placeholder holds the id)
        if not ended:
            return TrialStatus.STOPPED
        return TrialStatus.OUT_OF_BUDGET if experiment_budget else TrialStatus.FAILED
    if last.get("diverged"):
        return TrialStatus.DIVERGED
    if int(last.get("env_steps", 0)) >= budget or last.get("budget_reached"):
        return TrialStatus.COMPLETED
    if not ended:
        return TrialStatus.STOPPED
    if experiment_budget and not last.get("done"):
        return TrialStatus.OUT_OF_BUDGET
    return TrialStatus.PRUNED


def has_experiment_budget(job: Any) -> bool:
    """Whether the job's experiment can run out of budget (env steps or seconds)."""
    budget = job.budget
    return budget.experiment_env_steps is not None or budget.experiment_seconds is not None


def outcome_of(trial: Any, job: Any, ended: bool, error: str | None) -> TrialOutcome:
    """A `TrialOutcome` from a Tune trial object."""
    point = TrialPoint.from_config(trial.config)
    policy_data = point.member_policy(job)  # a population member's current values applied
    last = trial.last_result or None
    status = trial_status(
        last, error is not None, job.budget.trial_env_steps, ended, has_experiment_budget(job)
    )
    score = None
    # A trial in which no episode ended (and no evaluation scored) has no score: its reported
    # value is only the worst value standing in for Tune and Optuna.
    if last and "score" in last and math.isfinite(float(last["score"])) and last.get("scored", 1):
        score = float(last["score"])
    training = (last or {}).get("training_score")
    training_score = float(training) if training is not None and math.isfinite(training) else None
    policy = LRPolicySpec.model_validate(policy_data)
    checkpoint = None
    if getattr(trial, "checkpoint", None) is not None:
        checkpoint = trial.checkpoint.path
    return TrialOutcome(
        trial_id=str(trial.trial_id),
        status=status,
        score=score,
        env_steps=int((last or {}).get("env_steps", 0)),
        policy=policy_data,
        hyperparams=dict(point.hyperparams),
        policy_short=policy.short(),
        baseline=point.baseline,
        error=error,
        node_id=(last or {}).get("node_id"),
        checkpoint=checkpoint,
        iterations=int((last or {}).get("training_iteration", 0)),
        model=dict(point.model),
        agent_settings=dict(point.agent_settings),
        training_score=training_score,
    )


def model_label(job: Any, point: TrialPoint) -> str:
    """The network of a trial in a few characters: ``64x64 tanh`` (the job's model with the
    trial's searched model settings over it)."""
    from lrtune.learners import ModelSettings
    from lrtune.specs._compile import trial_model

    model = ModelSettings(**trial_model(job, point).model_dump())
    hidden = model.hidden_for(job.agent)
    return f"{'x'.join(str(size) for size in hidden)} {model.activation_for(job.agent)}"


def agent_label(job: Any, point: TrialPoint) -> str:
    """The agent settings a space searched for this trial, ``key=value`` sorted by key
    (hyper-parameters the space searches, its model and agent settings); ``job`` when the space
    searches none (the agent runs as the job and its presets say)."""
    from lrtune.specs._space import dims_of

    space = getattr(job, "space", None)
    searched = set(dims_of(space.hyperparams)) if space is not None else set()
    hyper = point.hyperparams
    values = {key: hyper[key] for key in searched if key in hyper}
    values.update(point.model)
    values.update(point.agent_settings)
    if not values:
        return "job"
    return " ".join(f"{key}={_compact(values[key])}" for key in sorted(values))


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "x".join(_compact(v) for v in value)
    return str(value)


def ranking_key(score: float, training_score: float | None, mode: str) -> tuple[float, float]:
    """Sort key of a scored trial, larger is better (whichever the job's ``mode``): its score,
    then, among equal scores, its training score (`TrialOutcome.training_score`; a trial
    without one after those with one).

    Equal scores are common where the score is capped: several trials reach CartPole's 500 on
    a greedy evaluation, or none leaves MountainCar's -200. The training episodes (exploring,
    latest value) are then the evidence left; without them the tie would go to whichever
    trial was listed first, the baseline under ``baseline_first``. In three ties of the
    suite's DQN rows its pick beat the first-listed trial on held-out seeds twice and was
    that trial in the third (benchmarks/suite.py)."""
    sign = 1.0 if mode == "max" else -1.0
    if training_score is None or not math.isfinite(training_score):
        return sign * score, -math.inf
    return sign * score, sign * training_score


def pick_best(trials: list[TrialOutcome], mode: str) -> TrialOutcome | None:
    """The best trial by score (ties broken by `ranking_key`) among those that reached their
    budget (else among the ones stopped early); never a diverged, failed or stopped one. A
    trial stopped early was scored at fewer env steps, so it competes only when no trial went
    the distance."""
    eligible = [t for t in trials if t.eligible_for_best() and t.status == TrialStatus.COMPLETED]
    eligible = eligible or [t for t in trials if t.eligible_for_best()]
    if not eligible:
        return None
    return max(eligible, key=lambda t: ranking_key(float(t.score or 0.0), t.training_score, mode))


def resolved_trial_job(
    job: Any,
    policy: dict[str, Any],
    hyperparams: dict[str, Any],
    name: str | None = None,
    model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The job of one trial, fully resolved: its policy, its hyper-parameters (with the RLlib
    values of its agent settings), its model settings over the job's ``model:``, no search,
    one trial."""
    data = job.to_yaml_dict()
    data["name"] = name or job.name
    data["space"] = None
    data["space_path"] = None
    data["space_files"] = []
    data["model"] = {**data["model"], **(model or {})}
    data["population"] = None
    data["policy"] = policy
    data["hyperparams"] = {**data.get("hyperparams", {}), **hyperparams}
    data["trials"] = {**data["trials"], "num": 1, "max_concurrent": 1}
    data["search"] = {
        **data["search"],
        "baseline_first": False,
        "warm_start": None,
        "startup_trials": None,  # one trial, no search
    }
    data["scheduler"] = {**data["scheduler"], "name": "none"}
    return data


def stored_uri(uri: str | None) -> str | None:
    """A tracking URI fit for files lrtune writes: its password shown as ``***``."""
    return redact_uri(uri) if uri else uri


def stored_job_dict(data: dict[str, Any]) -> dict[str, Any]:
    """A job's plain data as lrtune stores it (job.yaml, trial artifacts, best.yaml, the
    experiment marker): URIs with their passwords redacted. The resolved hash is unchanged:
    ``tracking`` and ``cluster`` are left out of it."""
    out = dict(data)
    tracking = out.get("tracking")
    if isinstance(tracking, dict) and tracking.get("uri"):
        out["tracking"] = {**tracking, "uri": stored_uri(str(tracking["uri"]))}
    cluster = out.get("cluster")
    if isinstance(cluster, dict) and cluster.get("address"):
        out["cluster"] = {**cluster, "address": stored_uri(str(cluster["address"]))}
    return out


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    """Write plain data as YAML (block style, keys in order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def write_summary(outcome: RunOutcome, job: Any, job_hash: str) -> Path:
    """Write results/<name>/summary.json (and best.yaml when there is a best trial)."""
    outcome.results_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "name": outcome.name,
        "job_hash": job_hash,
        "metric": {"name": job.metric.name, "mode": job.metric.mode},
        "interrupted": outcome.interrupted,
        "resumed": outcome.resumed,
        "experiment_dir": str(outcome.experiment_dir),
        "tracking_uri": stored_uri(outcome.tracking_uri),
        "parent_run_id": outcome.parent_run_id,
        "best": outcome.best.trial_id if outcome.best else None,
        "counts": {
            status.value: sum(1 for t in outcome.trials if t.status == status)
            for status in TrialStatus
        },
        "trials": [asdict(t) for t in outcome.trials],
    }
    path = outcome.results_dir / "summary.json"
    atomic_write_text(path, json.dumps(summary, indent=2, default=str))
    if outcome.best is not None:
        best = resolved_trial_job(
            job,
            outcome.best.policy,
            outcome.best.hyperparams,
            name=f"{job.name}-best",
            model=outcome.best.model,
        )
        write_yaml(outcome.results_dir / "best.yaml", stored_job_dict(best))
    return path


def summary_table(outcome: RunOutcome, top: int = 5) -> str:
    """A short table of the ``top`` best trials (by the job's ``mode``; trials without a score
    after them, as ``-``), a line saying how many more there are, and a line per failure."""
    ranked = sorted(
        (t for t in outcome.trials if t.status != TrialStatus.FAILED),
        key=lambda t: (
            t.score is not None,
            t.eligible_for_best(),
            ranking_key(t.score or 0.0, t.training_score, outcome.mode),
        ),
        reverse=True,
    )
    lines = [f"{'trial':<12} {'status':<13} {'score':>9} {'env steps':>9}  policy"]
    for t in ranked[:top]:
        mark = " *" if outcome.best is not None and t.trial_id == outcome.best.trial_id else ""
        score = f"{t.score:>9.2f}" if t.score is not None else f"{'-':>9}"
        lines.append(
            f"{t.trial_id[-12:]:<12} {t.status:<13} {score} {t.env_steps:>9}  "
            f"{t.policy_short}{' (baseline)' if t.baseline else ''}{mark}"
        )
    if len(ranked) > top:
        lines.append(f"… {len(ranked) - top} more (every trial is in summary.json and MLflow)")
    for t in outcome.trials:
        if t.status == TrialStatus.FAILED:
            lines.append(f"{t.trial_id[-12:]:<12} failed: {t.error}")
    return "\n".join(lines)


def read_results(path: str | Path) -> dict[str, Any]:
    """What a run left in ``results/<name>`` (its summary.json), by folder or experiment name.

    A bare name is looked up under ``./results``.
    """
    folder = Path(path)
    if not folder.exists() and "/" not in str(path):
        folder = Path("results") / str(path)
    summary = folder / "summary.json"
    if not summary.exists():
        from lrtune.registry import LRTuneError

        raise LRTuneError(
            f"{path}: no summary.json there; give an experiment's results folder "
            "(results/<name>) or its name, after `lrtune run` has finished or been stopped."
        )
    data: dict[str, Any] = json.loads(summary.read_text())
    return data
