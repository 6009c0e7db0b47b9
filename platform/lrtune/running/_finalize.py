"""`finalize`: re-train the top-K configurations of a finished experiment on held-out test seeds.

A search picks its winner on the tuning seeds, so the winner's search score is flattered
(winner's curse). `finalize` trains each of the top-K configurations (optionally the top-K of
every group, e.g. every schedule × optimizer cell) once per test seed — seeds the search never
used — as one Tune run whose trials are recorded as MLflow runs nested under the experiment's
own parent run, tagged ``lrtune.finalist=true`` (role ``finalist``), with the source trial, the
test seed and the finalize round. It prints the search score next to the test score.

For a population run (PBT/PB2) the finalists are the top-K members by their final score, and what
is re-trained is each member's learned schedule as `lrtune schedule export` writes it (its
effective learning rate through its ancestry, feedback included, as a ``piecewise`` schedule),
so the test seeds judge the schedule the population learned, not the members' starting policies.

What a test score is: the job's metric at the end of training, as the search scored it — the
training value, or, with ``evaluation.score: true`` in the job, the mean return of a
deterministic evaluation of the final policy (``evaluation.episodes`` greedy episodes on the
evaluation env; see `lrtune.specs.EvaluationSpec`). ``evaluation_episodes`` scores the finalists
on such an evaluation even when the search did not (then the search and test columns measure
different things, and the table says so). ``finalists.json`` records which (``scored_on``).

A test run an earlier round of the same experiment finished is re-used, not trained again, when
it computed the same thing: the same resolved one-seed job (configuration, test seed, budget,
scoring; `JobSpec.resolved_hash`, tagged ``lrtune.finalist_hash``). It joins the new round
(its round tag moves, ``lrtune.trained_in_round`` keeps where it came from), so a finalize
stopped midway, or run again with a larger ``--top`` or more seeds, trains only what is
missing. ``fresh=True`` (``--fresh``) trains every test run again.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lrtune._files import atomic_write_text
from lrtune._stored_uri import recorded_tracking_uri
from lrtune.registry import LRTuneError
from lrtune.running._local_ray import connect_ray_for_tune, local_resource_problem
from lrtune.running._reconcile import _search_all
from lrtune.running._results import policy_groups, ranking_key, resolved_trial_job, stored_uri
from lrtune.running._trainable import LRTuneTrainable, check_trial_settings
from lrtune.specs._point import TrialPoint
from lrtune.vocabulary import (
    PER_GROUPINGS,
    TAG_EXPERIMENT,
    TAG_FINALIST,
    TAG_FINALIST_HASH,
    TAG_FINALIST_PLAIN,
    TAG_FINALIST_RANK,
    TAG_ROLE,
    TAG_ROUND,
    TAG_SEARCH_SCORE,
    TAG_SOURCE_TRIAL,
    TAG_STATUS,
    TAG_TEST_SEED,
    TAG_TRAINED_IN_ROUND,
    TRUE,
    RunRole,
    TrialStatus,
    groupings_help,
    parse_groupings,
)

#: What ``--per`` accepts (`lrtune.vocabulary.PER_GROUPINGS`; aliases resolve to these).
PER_CHOICES = PER_GROUPINGS
MAX_EVAL_EPISODES = 10_000  # as EvaluationSpec.episodes


class FinalizeError(LRTuneError):
    """An experiment that cannot be finalized as asked."""


@dataclass
class FinalistResult:
    """One finalist: its source trial, its search score and its score on each test seed."""

    rank: int
    group: str
    source_trial: str
    policy: str
    search_score: float | None
    test_scores: dict[int, float | None] = field(default_factory=dict)
    statuses: dict[int, str] = field(default_factory=dict)
    #: The test seeds whose runs an earlier round had trained (re-used, not trained again).
    reused_seeds: list[int] = field(default_factory=list)

    @property
    def test_mean(self) -> float | None:
        """Mean score over the test seeds that completed (None if none did)."""
        values = [v for v in self.test_scores.values() if v is not None]
        return sum(values) / len(values) if values else None


@dataclass
class FinalizeOutcome:
    """What `finalize` returns."""

    name: str
    round_id: str
    seeds: list[int]
    finalists: list[FinalistResult]
    parent_run_id: str | None
    tracking_uri: str
    interrupted: bool = False
    scored_on: str = "training"

    @property
    def reused(self) -> int:
        """How many test runs came from earlier rounds."""
        return sum(len(f.reused_seeds) for f in self.finalists)

    @property
    def exit_code(self) -> int:
        """0 when every finalist has a test score on some seed, 1 otherwise, 130 interrupted."""
        if self.interrupted:
            return 130
        return 0 if all(f.test_mean is not None for f in self.finalists) else 1


# --- which experiment, which finalists ------------------------------------------------------


def find_results_dir(experiment: str) -> Path:
    """``results/<name>`` from a folder path or an experiment name under ``./results``."""
    path = Path(experiment).expanduser()
    for candidate in (path, Path("results") / experiment):
        if (candidate / "summary.json").exists():
            return candidate.resolve()
    raise FinalizeError(
        f"no finished experiment at {experiment!r}: give its results folder (results/<name>, "
        "with summary.json) or its name under ./results"
    )


def select_finalists(
    trials: Sequence[dict[str, Any]], top: int, mode: str, per: Sequence[str] = ()
) -> list[tuple[str, dict[str, Any]]]:
    """``[(group, trial)]``: the ``top`` best trials (of every group of ``per``), best first;
    equal scores ordered by `ranking_key`.

    Only trials that reached their budget compete (a trial stopped early was scored on fewer
    env steps); if none did, the ones the scheduler or the experiment's budget stopped.
    """
    scored = [t for t in trials if t.get("score") is not None and math.isfinite(t["score"])]
    early = (TrialStatus.PRUNED, TrialStatus.OUT_OF_BUDGET)
    eligible = [t for t in scored if t.get("status") == TrialStatus.COMPLETED] or [
        t for t in scored if t.get("status") in early
    ]
    ranked = sorted(
        eligible,
        key=lambda t: ranking_key(float(t["score"]), t.get("training_score"), mode),
        reverse=True,
    )
    chosen: list[tuple[str, dict[str, Any]]] = []
    counts: dict[str, int] = {}
    for trial in ranked:
        labels = policy_groups(trial["policy"])
        group = "/".join(labels[p] for p in per) if per else "all"
        if counts.get(group, 0) < top:
            counts[group] = counts.get(group, 0) + 1
            chosen.append((group, trial))
    return chosen


def rates_at_range_edge(
    chosen: Sequence[tuple[str, dict[str, Any]]],
    trials: Sequence[dict[str, Any]],
    per: Sequence[str] = (),
) -> list[str]:
    """Notes naming the groups whose chosen configuration has the largest (or smallest) base LR
    its group searched: the group's best rate may lie outside the searched range.

    Only groups that tried at least three distinct rates count (fewer is no range)."""
    rates: dict[str, set[float]] = {}
    for trial in trials:
        policy = trial.get("policy") or {}
        lr = policy.get("lr")
        if isinstance(lr, int | float) and not isinstance(lr, bool):
            labels = policy_groups(policy)
            group = "/".join(labels[p] for p in per) if per else "all"
            rates.setdefault(group, set()).add(float(lr))
    edges: dict[str, list[str]] = {"largest": [], "smallest": []}
    counted = 0
    for group, trial in chosen:
        lr = (trial.get("policy") or {}).get("lr")
        seen = rates.get(group, set())
        if not isinstance(lr, int | float) or len(seen) < 3:
            continue
        counted += 1
        if float(lr) >= max(seen):
            edges["largest"].append(group)
        elif float(lr) <= min(seen):
            edges["smallest"].append(group)
    notes = []
    for side, groups in edges.items():
        if groups:
            where = "above" if side == "largest" else "below"
            notes.append(
                f"range: the chosen base LR is the {side} one searched in {len(groups)} of "
                f"{counted} group(s) ({', '.join(groups)}): their best rate may lie {where} "
                "the searched range; widen it there before reading the comparison as final"
            )
    return notes


def population_finalists(
    results_dir: Path,
    summary: dict[str, Any],
    top: int,
    mode: str,
    per: Sequence[str] = (),
) -> list[tuple[str, dict[str, Any]]]:
    """``[(group, trial)]`` for a population run: its top ``top`` members (of every group of
    ``per``, grouped by the member's final policy), each with ``policy`` replaced by its exported
    learned schedule (see `export_schedule`)."""
    from lrtune.running._lineage import export_schedule, load_lineage

    try:
        lineage = load_lineage(results_dir)
    except LRTuneError as exc:
        raise FinalizeError(f"{exc} (finalizing a population run replays its lineage)") from exc
    members = []
    for trial in summary.get("trials", []):
        state = lineage["trials"].get(str(trial.get("trial_id")))
        if state and state.get("policy"):
            members.append({**trial, "policy": state["policy"]})
    out: list[tuple[str, dict[str, Any]]] = []
    for group, member in select_finalists(members, top, mode, per):
        trial_id = str(member["trial_id"])
        learned, _ = export_schedule(lineage, trial_id)
        learned.pop("version", None)
        short = f"learned schedule of {trial_id} ({member.get('policy_short', '')})"
        out.append((group, {**member, "policy": learned, "policy_short": short}))
    return out


# --- the Tune side (module level: Tune pickles these) ---------------------------------------


class FinalistTrainable(LRTuneTrainable):
    """`LRTuneTrainable` whose job (one test seed, one finalist) is picked by the trial's key."""

    def setup(
        self, config: dict[str, Any], job: Any = None, env_facts: Any = None, jobs: Any = None
    ) -> None:
        """Train the finalist ``config["point"]["finalist"]`` of ``jobs``."""
        key = TrialPoint.from_config(config).finalist
        assert key is not None, "a finalize trial's config names its finalist"
        super().setup(config, job=jobs[key], env_facts=env_facts)


def describe_finalist(
    jobs: dict[str, Any],
    meta: dict[str, dict[str, Any]],
    round_id: str,
    results_dir: str,
    trial: Any,
) -> tuple[str, dict[str, str], dict[str, Any], str | None]:
    """MLflow run name, tags, params and artifact of a finalist trial."""
    from lrtune.running._run import describe_trial

    key = str(TrialPoint.from_config(trial.config).finalist)
    _, tags, params, artifact = describe_trial(jobs[key], results_dir, trial)
    info = meta[key]
    tags.update(
        {
            TAG_FINALIST: TRUE,
            TAG_FINALIST_PLAIN: TRUE,
            TAG_SOURCE_TRIAL: str(info["source_trial"]),
            TAG_TEST_SEED: str(info["seed"]),
            TAG_ROUND: round_id,
            TAG_SEARCH_SCORE: str(info["search_score"]),
            TAG_FINALIST_RANK: str(info["rank"]),
            TAG_FINALIST_HASH: str(info["hash"]),
        }
    )
    return f"finalist{info['rank']}_seed{info['seed']}", tags, params, artifact


def _finalist_label(trial: Any) -> str:
    point = TrialPoint.from_config(trial.config)
    return f"{point.finalist} {point.policy_spec().short()}"


# --- finalize -------------------------------------------------------------------------------


def finalize(
    experiment: str,
    *,
    top: int,
    seeds: int,
    per: Sequence[str] = (),
    tracking_uri: str | None = None,
    storage_path: str | None = None,
    stream: TextIO | None = None,
    ray_address: str | None = None,
    evaluation_episodes: int | None = None,
    fresh: bool = False,
) -> FinalizeOutcome:
    """Re-train the experiment's top ``top`` configurations (per group of ``per``) on ``seeds``
    of its held-out test seeds; record them under the experiment's MLflow parent run.

    ``evaluation_episodes``: score each finalist on a deterministic evaluation of this many
    episodes of its final policy (the job's ``evaluation.score``, turned on); None: as the job
    scored its trials. ``fresh``: train every test run, also those an earlier round finished
    (re-used otherwise; see the module's docstring)."""
    stream = stream or sys.stdout
    if top < 1 or seeds < 1:
        raise FinalizeError("--top and --seeds must be at least 1")
    if evaluation_episodes is not None and not 1 <= evaluation_episodes <= MAX_EVAL_EPISODES:
        raise FinalizeError(
            f"--eval-episodes {evaluation_episodes}: give 1 to {MAX_EVAL_EPISODES} episodes"
        )
    per, unknown = parse_groupings(per, PER_CHOICES)  # aliases (schedule, gradients) resolved
    if unknown:
        raise FinalizeError(
            f"--per {','.join(unknown)}: finalize groups by what the LR policy decides; choose "
            f"from {groupings_help(PER_CHOICES)}, joined by commas (e.g. --per family,optimizer)"
        )
    results_dir = find_results_dir(experiment)
    summary = json.loads((results_dir / "summary.json").read_text())
    from lrtune.agents import require_env_id
    from lrtune.specs import load_job

    job = load_job(results_dir / "job.yaml")
    require_env_id(job.env.id, job.agent, env_config=job.env.config)
    check_trial_settings(job)
    problem = local_resource_problem(job.resources.cpus, job.resources.gpus, ray_address)
    if problem is not None:
        raise FinalizeError(problem)
    population = bool(summary.get("population") or getattr(job, "population", None))
    evaluation = _finalist_evaluation(job, evaluation_episodes)
    scored_on = scoring_label(evaluation)
    searched_on = scoring_label(job.evaluation.model_dump())
    test_seeds = list(job.seeds.test)
    if seeds > len(test_seeds):
        raise FinalizeError(
            f"--seeds {seeds}: the job has {len(test_seeds)} test seeds ({test_seeds}); give "
            "--seeds at most that, or list more under seeds.test in the job"
        )
    if population:
        chosen = population_finalists(results_dir, summary, top, job.metric.mode, per)
    else:
        chosen = select_finalists(summary.get("trials", []), top, job.metric.mode, per)
    if not chosen:
        raise FinalizeError(
            f"experiment {job.name!r} has no trial with a score that reached its budget: "
            "nothing to finalize"
        )
    uri = recorded_tracking_uri(  # a stored URI may hide its password
        tracking_uri,
        [summary.get("tracking_uri"), job.tracking.uri],
        job.tracking.resolved_uri,
        f"experiment {job.name!r}",
    )
    round_id = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    use_seeds = test_seeds[:seeds]

    from lrtune.specs import JobSpec

    jobs: dict[str, Any] = {}
    meta: dict[str, dict[str, Any]] = {}
    results: list[FinalistResult] = []
    for rank, (group, trial) in enumerate(chosen, start=1):
        result = FinalistResult(
            rank=rank,
            group=group,
            source_trial=str(trial["trial_id"]),
            policy=str(trial.get("policy_short", "")),
            search_score=trial.get("score"),
        )
        results.append(result)
        for seed in use_seeds:
            data = resolved_trial_job(
                job,
                trial["policy"],
                trial.get("hyperparams", {}),
                name=f"{job.name}-finalist{rank}",
                model=trial.get("model"),
            )
            data["seeds"] = {"tuning": [seed], "test": []}
            data["evaluation"] = evaluation
            key = f"f{rank}s{seed}"
            jobs[key] = JobSpec.model_validate(data)
            meta[key] = {
                "rank": rank,
                "seed": seed,
                "source_trial": result.source_trial,
                "search_score": result.search_score,
                # What the run computes; the rank (in the job's name) is no part of it.
                "hash": jobs[key].model_copy(update={"name": job.name}).resolved_hash(),
            }

    parent = _parent_run(uri, job, summary)
    stream.write(
        f"lrtune: finalize '{job.name}': {len(results)} configuration(s) × {len(use_seeds)} test "
        f"seed(s) {use_seeds}, {job.budget.trial_env_steps} env steps each, round {round_id}, "
        f"tracking {stored_uri(uri)}; test scores: {scored_on}"
        + ("" if scored_on == searched_on else f" (the search scored: {searched_on})")
        + "\n"
    )
    reused = {} if fresh else _reuse_earlier_runs(uri, job, parent, meta, round_id)
    for key, earlier_score in reused.items():
        info = meta[key]
        result = results[info["rank"] - 1]
        result.test_scores[info["seed"]] = earlier_score
        result.statuses[info["seed"]] = TrialStatus.COMPLETED
        result.reused_seeds.append(info["seed"])
    if reused:
        stream.write(
            f"lrtune: finalize: {len(reused)} of {len(jobs)} test runs re-used from earlier "
            "rounds (the same configuration, seed, budget and scoring; --fresh trains them "
            "again)\n"
        )
    stream.flush()
    to_train = {key: spec for key, spec in jobs.items() if key not in reused}
    interrupted, trials = False, list[Any]()
    if to_train:
        interrupted, trials = _fit(
            job,
            to_train,
            meta,
            round_id,
            results_dir,
            uri,
            parent,
            storage_path,
            ray_address,
            stream,
        )
    for trial in trials:
        key = str(TrialPoint.from_config(trial.config).finalist)
        info = meta[key]
        result = results[info["rank"] - 1]
        last = trial.last_result or {}
        from lrtune.running._results import trial_status

        status = trial_status(
            last or None, trial.status == "ERROR", job.budget.trial_env_steps, ended=True
        )
        score = last.get("score")
        value = float(score) if isinstance(score, (int, float)) else math.nan
        ok = status == TrialStatus.COMPLETED and math.isfinite(value)
        result.test_scores[info["seed"]] = value if ok else None
        result.statuses[info["seed"]] = status
    order = {seed: i for i, seed in enumerate(use_seeds)}
    for result in results:  # in the order of the test seeds, re-used or trained
        result.test_scores = dict(sorted(result.test_scores.items(), key=lambda s: order[s[0]]))
    outcome = FinalizeOutcome(
        name=job.name,
        round_id=round_id,
        seeds=use_seeds,
        finalists=results,
        parent_run_id=parent,
        tracking_uri=uri,
        interrupted=interrupted,
        scored_on=scored_on,
    )
    path = results_dir / "finalists.json"
    atomic_write_text(
        path,
        json.dumps(
            {**asdict(outcome), "tracking_uri": stored_uri(uri), "per": list(per)},
            indent=2,
            default=str,
        ),
    )
    if parent is not None:
        from lrtune.tracking import Tracker

        tracker = Tracker(uri, job.experiment_name)
        tracker.log_artifact(parent, str(path))
        tracker.set_tags(parent, {TAG_ROUND: round_id})
    stream.write(finalize_table(outcome) + "\n")
    if not population:
        for note in rates_at_range_edge(chosen, summary.get("trials", []), per):
            stream.write(note + "\n")
    stream.flush()
    return outcome


def _reuse_earlier_runs(
    uri: str,
    job: Any,
    parent: str | None,
    meta: dict[str, dict[str, Any]],
    round_id: str,
) -> dict[str, float]:
    """``{finalist key: test score}`` for the test runs of ``meta`` that an earlier round of this
    experiment (under ``parent``) finished with a score: each such run joins round ``round_id``
    under its new rank. A run serves one key; MLflow unreachable: nothing is re-used."""
    if parent is None:
        return {}
    from mlflow.entities import RunTag

    from lrtune.tracking import Tracker

    tracker = Tracker(uri, job.experiment_name)
    experiment = tracker.experiment_id
    if experiment is None:
        return {}
    query = (
        f"tags.`{TAG_FINALIST}` = '{TRUE}' and tags.`mlflow.parentRunId` = '{parent}' "
        "and attributes.status = 'FINISHED'"
    )

    found = tracker.safe("search", lambda: _search_all(tracker.client, [experiment], query)) or []
    newest: dict[str, Any] = {}  # hash -> the newest finished run with a score
    for run in sorted(found, key=lambda r: r.info.start_time, reverse=True):
        digest = run.data.tags.get(TAG_FINALIST_HASH)
        score = run.data.metrics.get("score")
        if (
            digest
            and digest not in newest
            and run.data.tags.get(TAG_STATUS) == TrialStatus.COMPLETED
            and isinstance(score, int | float)
            and math.isfinite(score)
        ):
            newest[digest] = run
    reused: dict[str, float] = {}
    for key, info in meta.items():
        run = newest.pop(str(info["hash"]), None)  # popped: one key per run
        if run is None:
            continue
        tags = {
            TAG_ROUND: round_id,
            TAG_FINALIST_RANK: str(info["rank"]),
            TAG_SOURCE_TRIAL: str(info["source_trial"]),
            TAG_SEARCH_SCORE: str(info["search_score"]),
            TAG_ROLE: RunRole.FINALIST,
        }
        if TAG_TRAINED_IN_ROUND not in run.data.tags:
            tags[TAG_TRAINED_IN_ROUND] = run.data.tags.get(TAG_ROUND, "")
        batch = [RunTag(k, v) for k, v in tags.items()]

        def adopt(run_id: str = run.info.run_id, batch: list[RunTag] = batch) -> bool:
            tracker.client.log_batch(run_id, tags=batch)
            return True

        if tracker.safe("tags", adopt):  # not joined to the round: trained again instead
            reused[key] = float(run.data.metrics["score"])
    return reused


def _finalist_evaluation(job: Any, episodes: int | None) -> dict[str, Any]:
    """The finalists' ``evaluation`` section: the job's, scoring on ``episodes`` if given."""
    evaluation: dict[str, Any] = job.evaluation.model_dump()
    if episodes is None:
        return evaluation
    from lrtune.specs._job import EVALUATED_METRIC_PREFIX

    if not job.metric.name.startswith(EVALUATED_METRIC_PREFIX):
        raise FinalizeError(
            f"--eval-episodes: the job's metric {job.metric.name!r} is not an episode metric "
            f"(under `{EVALUATED_METRIC_PREFIX}`), which is all an evaluation measures: leave "
            "--eval-episodes out"
        )
    return {**evaluation, "episodes": episodes, "score": True}


def scoring_label(evaluation: dict[str, Any]) -> str:
    """What a trial's score is under an ``evaluation`` section (plain data), in words."""
    if evaluation.get("score"):
        return f"deterministic evaluation ({evaluation['episodes']} greedy episodes)"
    return "training value"


def _parent_run(uri: str, job: Any, summary: dict[str, Any]) -> str | None:
    from lrtune.tracking import Tracker

    tracker = Tracker(uri, job.experiment_name)
    parent = summary.get("parent_run_id")
    if parent:
        found = tracker.safe("get run", lambda: tracker.client.get_run(parent))
        if found is not None:
            return str(parent)
    return tracker.find_run(**{TAG_EXPERIMENT: job.name, TAG_ROLE: RunRole.EXPERIMENT})


def _fit(
    job: Any,
    jobs: dict[str, Any],
    meta: dict[str, dict[str, Any]],
    round_id: str,
    results_dir: Path,
    uri: str,
    parent: str | None,
    storage_path: str | None,
    ray_address: str | None,
    stream: TextIO,
) -> tuple[bool, list[Any]]:
    connect_ray_for_tune(ray_address)
    from ray import tune
    from ray.tune import CheckpointConfig, TuneConfig

    from lrtune.learners._config import known_env_facts
    from lrtune.running._progress import ProgressPrinter
    from lrtune.running._run import (
        experiment_paths,
        fitted_trials,
        job_run_config,
        job_trainable,
        recorder_status,
        trial_dirname,
        trial_metrics,
    )
    from lrtune.tracking import Tracker, TrialRecorder

    experiment_dir, _ = experiment_paths(job, storage_path)
    points = [
        TrialPoint(
            policy=jobs[key].policy.model_dump(mode="json"),
            hyperparams=dict(jobs[key].hyperparams),
            finalist=key,
        )
        for key in jobs
    ]
    recorder = TrialRecorder(
        tracker_args=(uri, job.experiment_name),
        parent_run_id=parent,
        describe=functools.partial(
            describe_finalist, jobs, meta, round_id, str(results_dir / "finalists")
        ),
        metrics_of=trial_metrics,
        status_of=functools.partial(recorder_status, job),
    )
    tuner = tune.Tuner(
        job_trainable(job, FinalistTrainable, jobs=jobs, env_facts=known_env_facts()),
        param_space=TrialPoint.grid_space(points),
        tune_config=TuneConfig(
            metric="score",
            mode=job.metric.mode,
            num_samples=1,
            max_concurrent_trials=min(job.trials.max_concurrent, len(points)),
            reuse_actors=True,  # each next test run on a finished one's actor (`reset_config`)
            trial_dirname_creator=trial_dirname,
        ),
        run_config=job_run_config(
            job,
            name=f"{job.name}-finalists-{round_id}",
            experiment_dir=experiment_dir,
            checkpoint_config=CheckpointConfig(checkpoint_frequency=0, checkpoint_at_end=False),
            callbacks=[recorder, ProgressPrinter(_finalist_label, stream)],
        ),
    )
    trials = fitted_trials(tuner, experiment_dir.parent / f"{job.name}-finalists-{round_id}")
    interrupted = any(t.status not in ("TERMINATED", "ERROR") for t in trials) or not trials
    tracker = Tracker(uri, job.experiment_name)
    for run_id in recorder.run_ids.values():
        tracker.set_tags(run_id, {TAG_ROLE: RunRole.FINALIST})
    return interrupted, trials


def finalize_table(outcome: FinalizeOutcome) -> str:
    """Search score next to test score for each finalist (the winner's curse, visible)."""
    lines = [
        f"{'rank':>4}  {'group':<18} {'source trial':<14} {'search':>9} {'test mean':>9} "
        f"{'test-search':>11}  per seed  policy"
    ]
    deltas: list[float] = []
    for f in outcome.finalists:
        mean = f.test_mean
        delta = None
        if mean is not None and f.search_score is not None:
            delta = mean - float(f.search_score)
            deltas.append(delta)
        per_seed = ", ".join(
            f"{seed}:{'-' if v is None else f'{v:.2f}'}"
            + ("*" if seed in f.reused_seeds else "")
            + (
                ""
                if f.statuses.get(seed) in (None, TrialStatus.COMPLETED)
                else f"({f.statuses[seed]})"
            )
            for seed, v in f.test_scores.items()
        )
        lines.append(
            f"{f.rank:>4}  {f.group[:18]:<18} {f.source_trial[-14:]:<14} "
            f"{_num(f.search_score):>9} {_num(mean):>9} {_num(delta, signed=True):>11}  "
            f"{per_seed}  {f.policy}"
        )
    if outcome.reused:
        lines.append("*: re-used from an earlier round (the same configuration, seed and budget)")
    if deltas:
        avg = sum(deltas) / len(deltas)
        lines.append(
            f"winner's curse: on held-out test seeds the finalists scored {avg:+.2f} on average "
            "against their search scores (negative: the search flattered them)"
        )
    return "\n".join(lines)


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.2f}" if signed else f"{value:.2f}"
