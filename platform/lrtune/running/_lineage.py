"""Lineage of a population: who cloned whom, when, and the learned LR trajectory of a member.

Source of truth: what the members report (see `LRTuneTrainable`), not Tune's
``pbt_global.txt`` (its ``target_iter`` is one iteration behind, its ``clone_iter`` is the
donor's latest iteration rather than its checkpoint's, and PB2 writes the same file). Each actor
of a member (an *incarnation*) reports its id every iteration; after a restore it reports the
checkpoint it continues: the trial, incarnation and env steps the checkpoint was saved at, and
its ancestry, a list of segments ``{trial_id, incarnation, from_env_steps}`` carried inside the
checkpoints. A member's effective history is therefore exact: each segment's records up to the
next segment's first env step.

`LineageRecorder` (a Tune callback in the driver) appends one compact record per result to
``results/<name>/population/records.jsonl``; `build_lineage` turns them into ``lineage.json``;
`export_schedule` writes a member's learned trajectory as an ordinary LR policy file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from ray.tune.callback import Callback

from lrtune._files import atomic_write_text
from lrtune.registry import LRTuneError
from lrtune.tracking import (
    LINEAGE_FILE,
    ancestry_segments,
    ancestry_text,
    trajectory,
)
from lrtune.vocabulary import (
    TAG_BEST_ANCESTRY,
    TAG_EXPLOITS,
    exploit_tag,
)

RECORDS_FILE = "records.jsonl"
#: Mutable parameters (besides ``lr``) whose effect is inside the learning rate as applied.
CARRIED_PREFIXES = ("schedule.", "feedback.")


class LineageRecorder(Callback):
    """Tune callback: one JSON line per member result (env steps, LR, mutable values, lineage)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        """Append the result's lineage record (called by Tune in the driver)."""
        lineage = result.get("lineage")
        if not isinstance(lineage, Mapping):
            return
        lr = result.get("lrtune") or {}
        announced = json.loads(lineage["announce"]) if lineage.get("announce") else {}
        record = {
            "trial_id": str(trial.trial_id),
            "iteration": int(result.get("training_iteration", 0)),
            "env_steps": int(result.get("env_steps", 0)),
            "lr": lr.get("lr"),
            "feedback_factor": lr.get("feedback_factor"),
            "score": result.get("score"),
            "diverged": int(result.get("diverged", 0)),
            "mutable": dict(result.get("mutable") or {}),
            "incarnation": lineage.get("incarnation"),
            **{k: v for k, v in announced.items() if k != "trial_id"},
        }
        folder = Path(self.path).parent
        folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab+") as handle:
            # A driver killed mid-append leaves a cut-off last line: start on a line of our own.
            torn = handle.tell() > 0 and handle.seek(-1, 2) >= 0 and handle.read(1) != b"\n"
            line = json.dumps(record, default=_plain) + "\n"
            handle.write(("\n" if torn else "").encode() + line.encode())


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records a `LineageRecorder` wrote (empty if none). A line cut off by a killed
    driver (the recorder starts each append on a line of its own) is left out: its trial
    reported that result again after its restore."""
    file = Path(path)
    if not file.exists():
        return []
    out = []
    for line in file.read_text().splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn append (see above), never a whole record
    return out


def build_lineage(records: Sequence[Mapping[str, Any]], plugin: str = "") -> dict[str, Any]:
    """The lineage of a population from its records.

    Returns ``{"plugin", "members": {trial: {initial policy, mutable}}, "exploits": [...],
    "trials": {trial: {"ancestry": [...], "policy": final policy, "incarnation": last}},
    "history": {incarnation: [[env_steps, lr, iteration, mutable], ...]}}``. An exploit is a
    restore from another trial's checkpoint: ``{trial, donor, donor_incarnation, env_step
    (the donor's, at its checkpoint), donor_iteration, iteration (the first one after),
    at_env_steps (that iteration's), policy_before, policy_after, mutable_before,
    mutable_after, state_hash_equal}``.
    """
    members: dict[str, dict[str, Any]] = {}
    trials: dict[str, dict[str, Any]] = {}
    history: dict[str, list[list[Any]]] = {}
    incarnations: dict[str, dict[str, Any]] = {}
    exploits: list[dict[str, Any]] = []
    for rec in records:
        trial = str(rec["trial_id"])
        incarnation = str(rec.get("incarnation", ""))
        history.setdefault(incarnation, []).append(
            [int(rec["env_steps"]), rec.get("lr"), int(rec.get("iteration", 0)), rec["mutable"]]
        )
        state = trials.setdefault(trial, {"ancestry": [], "policy": None, "incarnation": None})
        if "ancestry" not in rec:  # not the first result of an incarnation
            state["incarnation"] = incarnation
            continue
        before_policy, before_mutable = state["policy"], state.get("mutable")
        incarnations[incarnation] = {"trial_id": trial, "policy": rec.get("policy")}
        state.update(
            ancestry=rec["ancestry"],
            policy=rec.get("policy"),
            incarnation=incarnation,
            mutable=rec["mutable"],
        )
        if trial not in members:
            members[trial] = {"policy": rec.get("policy"), "mutable": rec["mutable"]}
        source = rec.get("restored_from")
        if isinstance(source, Mapping) and source.get("trial_id") not in (None, trial):
            saved, restored = source.get("saved_hash"), source.get("restored_hash")
            exploits.append(
                {
                    "trial": trial,
                    "donor": str(source["trial_id"]),
                    "donor_incarnation": source.get("incarnation"),
                    "env_step": int(source.get("env_steps") or 0),
                    "donor_iteration": source.get("iteration"),
                    "iteration": int(rec.get("iteration", 0)),
                    "at_env_steps": int(rec["env_steps"]),
                    "policy_before": before_policy,
                    "policy_after": rec.get("policy"),
                    "mutable_before": before_mutable,
                    "mutable_after": rec["mutable"],
                    "state_hash_equal": saved is not None and saved == restored,
                }
            )
    for state in trials.values():
        state.pop("mutable", None)
    return {
        "plugin": plugin,
        "members": members,
        "exploits": exploits,
        "trials": trials,
        "incarnations": incarnations,
        "history": history,
    }


def write_lineage(folder: Path, lineage: Mapping[str, Any]) -> Path:
    """Write ``lineage.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LINEAGE_FILE
    atomic_write_text(path, json.dumps(lineage, indent=1, default=_plain))
    return path


# ------------------------------------------------------------------------------------ export


def _steps(points: Sequence[tuple[int, float]]) -> list[list[Any]]:
    """Piecewise-constant history: the points where the value changes (the first kept)."""
    out: list[list[Any]] = []
    for step, value in points:
        if not out or out[-1][1] != value:
            out.append([step, value])
    return out


def export_schedule(
    lineage: Mapping[str, Any], trial_id: str, *, source: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """A member's learned LR trajectory as an lrtune policy: ``(policy data, header lines)``.

    The policy is the member's final one with ``lr: 1.0`` and a ``piecewise`` schedule whose
    points are ``[lifetime env steps, learning rate as applied]`` (the factor *is* the rate, so a
    replay applies it bit for bit at those steps), and no feedback rules (their factor is in the
    rates). Mutated parameters that shape the rate (``lr``, ``schedule.*``, ``feedback.*``) are
    carried by the trajectory; the others (optimizer, gradient gate) have no time-varying form
    in any plugin: the file keeps their final value and lists their history in the header.
    """
    points = trajectory(lineage, trial_id)
    if not points:
        raise LRTuneError(f"trial {trial_id!r} has no recorded iterations to export.")
    bad = [p for p in points if p["lr"] is None or not math.isfinite(float(p["lr"]))]
    if bad:
        raise LRTuneError(
            f"trial {trial_id!r}: the learning rate at env step {bad[0]['env_steps']} was not "
            "recorded as a finite number; nothing to export."
        )
    final = dict(lineage["trials"][trial_id]["policy"] or {})
    policy = {
        "version": 1,
        "lr": 1.0,
        "schedule": {
            "name": "piecewise",
            "params": {"points": [[int(p["env_steps"]), float(p["lr"])] for p in points]},
        },
        "optimizer": final.get("optimizer", "adam"),
        "gradients": final.get("gradients", "none"),
        "feedback": [],
    }
    paths = sorted({k for p in points for k in (p["mutable"] or {})})
    carried = [k for k in paths if k == "lr" or k.startswith(CARRIED_PREFIXES)]
    pinned = [k for k in paths if k not in carried]
    header = [
        f"lrtune learned schedule{f' from {source}' if source else ''}, trial {trial_id}"
        + (f" ({lineage.get('plugin')})" if lineage.get("plugin") else ""),
        f"ancestry: {ancestry_text(lineage, trial_id)}",
        "lr is 1.0: each piecewise point is [lifetime env steps, learning rate as applied "
        "(base × schedule × feedback factor)]",
        "feedback rules: off (their factor is inside the rates)",
    ]
    if carried:
        header.append(f"carried by the rates: {', '.join(carried)}")
    for key in pinned:
        history = _steps([(p["env_steps"], p["mutable"].get(key)) for p in points])
        header.append(
            f"not carried (no plugin takes a time-varying value; the final one is used): "
            f"{key}: {json.dumps(history)}"
        )
    known = lineage.get("incarnations", {})
    used = [
        known[seg["incarnation"]]["policy"] or {}
        for seg in lineage["trials"][trial_id]["ancestry"]
        if seg["incarnation"] in known
    ]
    names = {
        slot: sorted({str((policy.get(slot) or {}).get("name")) for policy in used})
        for slot in ("optimizer", "gradients")
    }
    for slot, seen in names.items():
        if len(seen) > 1:
            header.append(
                f"not carried: the ancestry used {slot} {', '.join(seen)}; the file keeps the "
                "final one"
            )
    return policy, header


def policy_text(policy: Mapping[str, Any], header: Sequence[str]) -> str:
    """The exported policy file: header comment lines, then the policy as YAML."""
    comments = "".join(f"# {line}\n" for line in header)
    return comments + yaml.safe_dump(dict(policy), sort_keys=False, default_flow_style=None)


def load_lineage(results: str | Path) -> dict[str, Any]:
    """The ``lineage.json`` of a population run's results folder (or experiment name)."""
    folder = Path(results)
    if not folder.exists() and "/" not in str(results):
        folder = Path("results") / str(results)
    path = folder / LINEAGE_FILE
    if not path.exists():
        raise LRTuneError(
            f"{results}: no {LINEAGE_FILE} there; `lrtune schedule export` reads the results "
            "folder (results/<name>) of a population job (`population:` in the job) after "
            "`lrtune run`."
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# ------------------------------------------------------------------------- end of a run


def finish_population(
    job: Any, results_dir: Path, outcome: Any, journal: Any, parent_ref: str | None
) -> list[str]:
    """After ``fit``: write ``lineage.json`` and the best member's ``best_schedule.yaml``, tag
    each member's MLflow run with its exploits (and an ``exploit`` metric at the env step of
    the first iteration after each), put the lineage on the parent run; returns the lines to
    print (the best member's ancestry).

    The MLflow calls go through the experiment's tracking journal (``journal``), like every
    other call of the run: journalled now, delivered when MLflow answers (or by ``lrtune
    sync``), each exploit event once however often a resumed run journals it again.
    """
    records = read_records(results_dir / "population" / RECORDS_FILE)
    lineage = build_lineage(records, plugin=job.population.name)
    best = outcome.best.trial_id if outcome.best is not None else None
    lines: list[str] = []
    lineage["best"] = best
    if best is not None and best in lineage["trials"]:
        lineage["best_ancestry"] = [list(s) for s in ancestry_segments(lineage, best)]
        lines.append(f"best member {best} descends from {ancestry_text(lineage, best)}")
    lines.append(f"{len(lineage['exploits'])} exploits; lineage in {results_dir / LINEAGE_FILE}")
    path = write_lineage(results_dir, lineage)
    schedule_path = None
    if best is not None and best in lineage["trials"]:
        try:
            policy, header = export_schedule(lineage, best, source=str(results_dir))
        except LRTuneError as exc:
            lines.append(f"no learned schedule exported: {exc}")
        else:
            schedule_path = results_dir / "best_schedule.yaml"
            atomic_write_text(schedule_path, policy_text(policy, header))
            lines.append(f"learned schedule of {best}: {schedule_path}")
    if parent_ref is None:
        return lines
    journal.log_artifact(parent_ref, str(path))
    if schedule_path is not None:
        journal.log_artifact(parent_ref, str(schedule_path))
    if best is not None and "best_ancestry" in lineage:
        journal.set_tags(parent_ref, {TAG_BEST_ANCESTRY: ancestry_text(lineage, best)})
    by_trial: dict[str, list[dict[str, Any]]] = {}
    for exploit in lineage["exploits"]:
        by_trial.setdefault(exploit["trial"], []).append(exploit)
    for trial_id, exploits in by_trial.items():
        ref = f"trial:{trial_id}"
        tags = {TAG_EXPLOITS: str(len(exploits))}
        for k, e in enumerate(exploits):
            tags[exploit_tag(k)] = json.dumps(
                {
                    "donor": e["donor"],
                    "donor_env_step": e["env_step"],
                    "iteration": e["iteration"],
                    "mutable_after": e["mutable_after"],
                }
            )
            journal.log_metrics(ref, {"exploit": 1.0}, e["at_env_steps"], backfill=True)
        journal.set_tags(ref, tags)
    return lines
