"""Reading a population's lineage (``lineage.json``, see `lrtune.running`): a member's effective
history through its ancestry, and whom it descends from. Pure functions over the lineage data,
shared by the run's summary, the schedule export and the report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrtune.registry import LRTuneError

LINEAGE_FILE = "lineage.json"


def trajectory(lineage: Mapping[str, Any], trial_id: str) -> list[dict[str, Any]]:
    """A member's effective history through its ancestry: one point per iteration.

    Each point: ``{"env_steps", "lr", "iteration", "mutable", "trial_id"}``; the donors' records
    up to each exploit's env step, the member's own after it.
    """
    if trial_id not in lineage["trials"]:
        raise LRTuneError(
            f"trial {trial_id!r} is not in this population's lineage (its members: "
            f"{', '.join(sorted(lineage['trials']))})."
        )
    ancestry = lineage["trials"][trial_id]["ancestry"]
    out: list[dict[str, Any]] = []
    for i, seg in enumerate(ancestry):
        low = int(seg["from_env_steps"]) if i else -1
        high = int(ancestry[i + 1]["from_env_steps"]) if i + 1 < len(ancestry) else math.inf
        for steps, lr, iteration, mutable in lineage["history"].get(seg["incarnation"], []):
            if low < steps <= high:
                out.append(
                    {
                        "env_steps": steps,
                        "lr": lr,
                        "iteration": iteration,
                        "mutable": mutable,
                        "trial_id": seg["trial_id"],
                    }
                )
    return out


def ancestry_segments(lineage: Mapping[str, Any], trial_id: str) -> list[tuple[str, int, int]]:
    """``(trial, from env step, to env step)`` for each member a trial descends from, in order.

    Consecutive segments of the same trial (its own restores) are merged.
    """
    points = trajectory(lineage, trial_id)
    out: list[tuple[str, int, int]] = []
    start = 0
    for point in points:
        if out and out[-1][0] == point["trial_id"]:
            out[-1] = (out[-1][0], out[-1][1], point["env_steps"])
        else:
            out.append((point["trial_id"], start, point["env_steps"]))
        start = point["env_steps"]
    return out


def ancestry_text(lineage: Mapping[str, Any], trial_id: str) -> str:
    """``A (0–4096) → B (4096–8192) → C (8192–12288)``: whom a member descends from, when."""
    parts = [f"{t} ({a}–{b})" for t, a, b in ancestry_segments(lineage, trial_id)]
    return " → ".join(parts) if parts else trial_id
