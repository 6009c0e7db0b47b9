"""`compare`: per group of runs (schedule family, optimizer, gating, feedback, policy, the
agent's network (``model``), its searched agent settings (``agent``), or any combination), the
interquartile mean of normalised scores with a 95 % stratified-bootstrap interval, the median,
the mean, the optimality gap and the probability of improvement over a reference group; plus
each experiment's parameter importance.

Which scores: the finalists' runs on held-out test seeds (``lrtune finalize``) where an
experiment has them; else its search trials (flattered by the search: the comparison says so).
A completed run counts with its final score; a diverged run counts as the random policy's score
(normalised 0; its last score is a sentinel, not a return); pruned, failed, stopped and running
runs are left out and counted.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lrtune.analysis._importance import Importance, parameter_importance
from lrtune.analysis._records import ExperimentData, RunRecord
from lrtune.analysis._reference import (
    UNNORMALISED,
    AnchorError,
    TaskAnchors,
    task_anchors,
    task_key,
)
from lrtune.analysis._stats import (
    CONFIDENCE,
    RESAMPLES,
    Estimate,
    aggregate_many,
    improvement,
    iqm,
)
from lrtune.registry import LRTuneError
from lrtune.vocabulary import (
    BY_EXPERIMENT,
    DEFAULT_GROUPING,
    TAG_SOURCE_TRIAL,
    RunRole,
    TrialStatus,
    groupings_help,
    parse_groupings,
)
from lrtune.vocabulary import GROUPINGS as _GROUPINGS

#: ``--by`` names → the run tag that holds the group (``experiment``: the lrtune experiment,
#: ""). Derived from `lrtune.vocabulary.GROUPINGS`, which also lists the aliases.
GROUPINGS: dict[str, str] = {name: g.tag or "" for name, g in _GROUPINGS.items()}
SOURCES = ("auto", "finalists", "trials")
RETURN_METRIC_SUFFIX = "episode_return_mean"

log = logging.getLogger("lrtune.analysis")


class CompareError(LRTuneError):
    """Experiments that cannot be compared as asked."""


def parse_by(text: str) -> tuple[str, ...]:
    """``"family,optimizer"`` → ``("family", "optimizer")``; aliases (``schedule``,
    ``gradients``) become the grouping they stand for; unknown names raise."""
    return _checked_by([p for p in text.split(",") if p.strip()], text)


def _checked_by(names: Sequence[str], text: str) -> tuple[str, ...]:
    parts, unknown = parse_groupings(names)
    if not parts or unknown:
        raise CompareError(
            f"--by {text!r}: group by one or more of {groupings_help()}, joined by commas "
            "(e.g. --by family,optimizer)"
        )
    return parts


def group_of(run: RunRecord, experiment: str, by: Sequence[str]) -> str:
    """The group label of a run: its tag values for ``by``, joined by ``/``."""
    parts = [
        experiment if key == BY_EXPERIMENT else run.tags.get(GROUPINGS[key], "?") for key in by
    ]
    return "/".join(parts)


@dataclass
class Sample:
    """One scored run: its group, task, raw and normalised score."""

    experiment: str
    run_id: str
    group: str
    task: str
    raw: float
    normalised: float
    role: str
    status: str
    config: str


@dataclass
class GroupStats:
    """Statistics of one group."""

    group: str
    runs: int
    tasks: int
    configs: int
    source: str
    iqm: Estimate
    median: Estimate
    mean: Estimate
    optimality_gap: Estimate
    improvement: Estimate
    raw_iqm: float | None
    excluded: dict[str, int] = field(default_factory=dict)
    diverged: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "group": self.group,
            "runs": self.runs,
            "tasks": self.tasks,
            "configs": self.configs,
            "source": self.source,
            "iqm": self.iqm.as_dict(),
            "median": self.median.as_dict(),
            "mean": self.mean.as_dict(),
            "optimality_gap": self.optimality_gap.as_dict(),
            "probability_of_improvement": self.improvement.as_dict(),
            "raw_iqm": self.raw_iqm,
            "diverged": self.diverged,
            "excluded": self.excluded,
        }


@dataclass
class Comparison:
    """What `compare` returns: per-group statistics and what they were computed from."""

    by: tuple[str, ...]
    reference: str
    groups: list[GroupStats]
    samples: list[Sample]
    anchors: dict[str, TaskAnchors]
    importances: list[Importance]
    sources: dict[str, str]
    notes: list[str]
    confidence: float
    resamples: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "by": list(self.by),
            "reference": self.reference,
            "confidence": self.confidence,
            "bootstrap_resamples": self.resamples,
            "sources": self.sources,
            "tasks": {k: a.as_dict() for k, a in self.anchors.items()},
            "groups": [g.as_dict() for g in self.groups],
            "importance": [i.as_dict() for i in self.importances],
            "notes": self.notes,
        }


def _runs_for(experiment: ExperimentData, source: str) -> tuple[list[RunRecord], str]:
    finalists = experiment.finalists()
    if source == "finalists" and not finalists:
        raise CompareError(
            f"experiment {experiment.name!r} has no finalists: run `lrtune finalize "
            f"{experiment.name} --top K --seeds M` first, or compare with --source trials."
        )
    if finalists and source != "trials":
        return finalists, "finalists"
    return experiment.trials(), "trials"


def _anchors_for(
    experiment: ExperimentData,
    random_override: Mapping[str, float] | None,
    reference_override: Mapping[str, float] | None,
    notes: list[str],
) -> TaskAnchors:
    env_id, config = experiment.env_id, experiment.env_config
    overridden = bool(random_override) and bool(reference_override)
    if not experiment.metric_name.endswith(RETURN_METRIC_SUFFIX) and not overridden:
        notes.append(
            f"{experiment.name}: metric {experiment.metric_name} is not an episode return, so "
            "its scores are not normalised (give --random-score and --reference-score)"
        )
        return TaskAnchors(task_key(env_id, config), env_id, 0.0, 1.0, UNNORMALISED, UNNORMALISED)
    try:
        return task_anchors(
            env_id,
            config,
            random_override=random_override,
            reference_override=reference_override,
        )
    except AnchorError as exc:
        # One task compares on its own scale; several need anchors (checked in `compare`).
        notes.append(f"{experiment.name}: scores are not normalised: {exc}")
        return TaskAnchors(task_key(env_id, config), env_id, 0.0, 1.0, UNNORMALISED, UNNORMALISED)


def compare(
    experiments: Sequence[ExperimentData],
    *,
    by: Sequence[str] = (DEFAULT_GROUPING,),
    reference: str | None = None,
    source: str = "auto",
    random_override: Mapping[str, float] | None = None,
    reference_override: Mapping[str, float] | None = None,
    importance: str = "auto",
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Comparison:
    """Group the experiments' runs and compute every group's statistics."""
    if source not in SOURCES:
        raise CompareError(f"--source {source!r}: one of {', '.join(SOURCES)}")
    by = _checked_by(by, ",".join(by))
    notes: list[str] = []
    samples: list[Sample] = []
    anchors: dict[str, TaskAnchors] = {}
    sources: dict[str, str] = {}
    excluded: dict[str, dict[str, int]] = {}
    for exp in experiments:
        notes.extend(f"{exp.name}: {n}" for n in exp.notes)
        if exp.population:
            notes.append(
                f"{exp.name}: a population run; members are grouped by the tags of their "
                "starting policy (an exploit copies a donor's state, so see the report's "
                "lineage); finalists replay the members' learned schedules"
            )
        anchor = _anchors_for(exp, random_override, reference_override, notes)
        anchors.setdefault(anchor.task, anchor)
        runs, used = _runs_for(exp, source)
        sources[exp.name] = used
        if used == "trials":
            notes.append(
                f"{exp.name}: scores are the search trials' own (no finalists on test seeds): "
                "the best ones are flattered by the search (winner's curse); run `lrtune "
                f"finalize {exp.name}` for held-out scores"
            )
        for run in runs:
            group = group_of(run, exp.name, by)
            status = run.status
            if status == TrialStatus.DIVERGED:
                raw = anchor.random
            elif status == TrialStatus.COMPLETED and run.score is not None:
                raw = float(run.score)
            else:
                bucket = excluded.setdefault(group, {})
                bucket[status or "running"] = bucket.get(status or "running", 0) + 1
                continue
            normalised = anchor.normalise(raw)
            samples.append(
                Sample(
                    experiment=exp.name,
                    run_id=run.run_id,
                    group=group,
                    task=anchor.task,
                    raw=raw,
                    normalised=float(normalised),
                    role=run.role,
                    status=status,
                    config=run.tags.get(TAG_SOURCE_TRIAL) or run.trial_id,
                )
            )
    raw_tasks = sorted(a.env_id for a in anchors.values() if not a.normalised)
    if raw_tasks and len(anchors) > 1:
        raise CompareError(
            f"the experiments cover {len(anchors)} tasks, and {', '.join(raw_tasks)} has no "
            "normalisation anchors, so their scores share no scale; give "
            "--random-score ENV=NUMBER and --reference-score ENV=NUMBER for it, or compare "
            "one task at a time"
        )
    if not samples:
        raise CompareError(
            "no completed runs to compare (every run is still running, pruned, failed or stopped)"
        )
    by_group: dict[str, dict[str, list[float]]] = {}
    for s in samples:
        by_group.setdefault(s.group, {}).setdefault(s.task, []).append(s.normalised)
    iqms = {
        g: float(iqm(np.concatenate([np.asarray(v) for v in t.values()])))
        for g, t in by_group.items()
    }
    if reference is None:
        reference = max(iqms, key=lambda g: iqms[g])
        notes.append(f"reference group: {reference} (the highest IQM; choose with --reference)")
    elif reference not in by_group:
        raise CompareError(
            f"--reference {reference!r} is not a group; groups are {', '.join(sorted(by_group))}"
        )
    single_task = len(anchors) == 1
    log.info(
        "%d run%s in %d group%s: %d-resample bootstrap intervals",
        len(samples),
        "" if len(samples) == 1 else "s",
        len(by_group),
        "" if len(by_group) == 1 else "s",
        resamples,
    )
    groups: list[GroupStats] = []
    for g in sorted(by_group, key=lambda g: -iqms[g]):
        tasks = by_group[g]
        mine = [s for s in samples if s.group == g]
        kwargs: dict[str, Any] = {"confidence": confidence, "resamples": resamples, "seed": seed}
        roles = {s.role for s in mine}
        estimates = aggregate_many(tasks, ("iqm", "median", "mean", "optimality_gap"), **kwargs)
        groups.append(
            GroupStats(
                group=g,
                runs=len(mine),
                tasks=len(tasks),
                configs=len({(s.experiment, s.config) for s in mine}),
                source="finalists"
                if roles == {RunRole.FINALIST}
                else "trials"
                if roles == {RunRole.TRIAL}
                else "mixed",
                iqm=estimates["iqm"],
                median=estimates["median"],
                mean=estimates["mean"],
                optimality_gap=estimates["optimality_gap"],
                improvement=improvement(tasks, by_group[reference], **kwargs),
                raw_iqm=_raw_iqm(mine) if single_task else None,
                excluded=excluded.get(g, {}),
                diverged=sum(1 for s in mine if s.status == TrialStatus.DIVERGED),
            )
        )
    for g, counts in excluded.items():
        if g not in by_group:
            notes.append(f"group {g}: no completed run ({_counts(counts)})")
    if importance != "none":
        log.info("parameter importance (%s)", importance)
    importances = [
        imp
        for imp in (parameter_importance(exp, importance, seed) for exp in experiments)
        if imp is not None
    ]
    return Comparison(
        by=by,
        reference=reference,
        groups=groups,
        samples=samples,
        anchors=anchors,
        importances=importances,
        sources=sources,
        notes=notes,
        confidence=confidence,
        resamples=resamples,
    )


def _raw_iqm(samples: Sequence[Sample]) -> float:
    return float(iqm(np.array([s.raw for s in samples])))


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


# ----------------------------------------------------------------------------------- output


def _ci(e: Estimate, digits: int = 3) -> str:
    if not math.isfinite(e.value):
        return "-"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def table_rows(result: Comparison) -> list[dict[str, str]]:
    """The terminal/markdown table, one dict per group (column → text)."""
    rows = []
    for g in result.groups:
        rows.append(
            {
                "group": g.group + (" (ref)" if g.group == result.reference else ""),
                "runs": str(g.runs),
                "configs": str(g.configs),
                "IQM [95% CI]": _ci(g.iqm),
                "median": f"{g.median.value:.3f}",
                "mean": f"{g.mean.value:.3f}",
                "opt. gap": f"{g.optimality_gap.value:.3f}",
                f"P(>{result.reference})": _ci(g.improvement),
                "raw IQM": "-" if g.raw_iqm is None else f"{g.raw_iqm:.2f}",
                "left out": _counts(g.excluded) if g.excluded else "",
            }
        )
    return rows


def format_table(result: Comparison) -> str:
    """The comparison as a terminal table with its notes."""
    rows = table_rows(result)
    headers = list(rows[0]) if rows else []
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    lines = ["  ".join(h.ljust(widths[h]) for h in headers).rstrip()]
    lines.append("  ".join("-" * widths[h] for h in headers))
    lines += ["  ".join(r[h].ljust(widths[h]) for h in headers).rstrip() for r in rows]
    lines.append("")
    which = " and ".join(sorted(set(result.sources.values())))
    per_exp = ", ".join(f"{k}: {v}" for k, v in result.sources.items())
    scale = (
        "normalised per task (random policy → 0, reference → 1); IQM, median, mean and "
        "optimality gap on normalised scores"
        if all(a.normalised for a in result.anchors.values())
        else "in the task's own units (not normalised: see the notes); IQM, median and mean "
        "on those (the optimality gap, the mean shortfall below 1, assumes normalised scores)"
    )
    lines.append(
        f"scores: {which} ({per_exp}); {scale}; "
        f"{result.confidence * 100:g}% stratified-bootstrap intervals "
        f"({result.resamples} resamples)"
    )
    for a in (a for a in result.anchors.values() if a.normalised):
        lines.append(
            f"task {a.task}: random {a.random:g} ({a.random_source}), reference {a.reference:g} "
            f"({a.reference_source})"
        )
        if a.ceiling is not None:  # the oracle: what hidden state buys, not a target for agents
            lines.append(
                f"task {a.task}: ceiling {a.ceiling:g} = {a.normalised_ceiling:.2f} normalised "
                f"({a.ceiling_source})"
            )
    for imp in result.importances:
        top = ", ".join(f"{k} {v:.2f}" for k, v in list(imp.values.items())[:6])
        lines.append(
            f"importance ({imp.experiment}, {imp.method}, {imp.source}, {imp.trials} trials): {top}"
        )
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def format_json(result: Comparison) -> str:
    """The comparison as JSON."""
    return json.dumps(result.as_dict(), indent=2, default=str)


def format_csv(result: Comparison) -> str:
    """One CSV row per group (intervals as ``_low``/``_high`` columns)."""
    out = io.StringIO()
    fields = ["group", "reference", "runs", "configs", "tasks", "source"]
    for name in ("iqm", "median", "mean", "optimality_gap", "probability_of_improvement"):
        fields += [name, f"{name}_low", f"{name}_high"]
    fields += ["raw_iqm", "diverged", "excluded"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for g in result.groups:
        row: dict[str, Any] = {
            "group": g.group,
            "reference": result.reference,
            "runs": g.runs,
            "configs": g.configs,
            "tasks": g.tasks,
            "source": g.source,
            "raw_iqm": "" if g.raw_iqm is None else g.raw_iqm,
            "diverged": g.diverged,
            "excluded": _counts(g.excluded),
        }
        for name, e in (
            ("iqm", g.iqm),
            ("median", g.median),
            ("mean", g.mean),
            ("optimality_gap", g.optimality_gap),
            ("probability_of_improvement", g.improvement),
        ):
            row[name], row[f"{name}_low"], row[f"{name}_high"] = e.value, e.low, e.high
        writer.writerow(row)
    return out.getvalue()
