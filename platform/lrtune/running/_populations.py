"""A population job → what Tune runs: one grid point per member, the population's scheduler.

The ``populations`` slot's entries (`PBT`, `PB2Population`) live in `lrtune.policies.populations`
(Ray-free, so that validating a job imports no Ray); this module builds the Tune side of a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ray.tune.schedulers import TrialScheduler

from lrtune.policies._tune_pbt import LRTunePBT
from lrtune.policies.populations import (
    MUTABLE_KEY,
    PBT,
    TIME_ATTR,
    PB2Population,
    PopulationPlugin,
    PopulationSetup,
)
from lrtune.registry import populations
from lrtune.specs._point import TrialPoint

__all__ = [
    "MUTABLE_KEY",
    "PBT",
    "TIME_ATTR",
    "LRTunePBT",
    "PB2Population",
    "PopulationPlan",
    "PopulationPlugin",
    "PopulationSetup",
    "iteration_env_steps",
    "population_plan",
]


# ------------------------------------------------------------------------------ job → Tune


@dataclass(frozen=True)
class PopulationPlan:
    """What `run_job` hands Tune for a population job."""

    param_space: dict[str, Any]
    scheduler: TrialScheduler
    checkpoint_frequency: int
    num_to_keep: int
    iteration_env_steps: int | None


def iteration_env_steps(job: Any) -> int | None:
    """Env steps of one training iteration where the agent fixes it (PPO's train batch:
    `AgentPlugin.iteration_batch_key`)."""
    key = job.agent_plugin.iteration_batch_key
    if key is None:
        return None
    from lrtune.learners._presets import over_presets

    hyper = over_presets(job.agent, job.env.id, job.env.config, job.fixed_hyperparams)
    value = hyper.get(key)
    return int(value) if value else None


def population_plan(job: Any) -> PopulationPlan:
    """The param space (one grid point per member), scheduler and checkpoint settings."""
    spec = job.population
    plugin: PopulationPlugin = populations.build(spec.name, spec.params)
    members = spec.initial_members(job.policy.model_dump(mode="json"))
    points = [
        TrialPoint(
            policy=member["policy"], hyperparams=job.fixed_hyperparams, mutable=member["mutable"]
        )
        for member in members
    ]
    setup = PopulationSetup(
        metric="score", mode=job.metric.mode, interval=spec.interval, mutable=spec.mutable
    )
    per_iteration = iteration_env_steps(job)
    frequency = max(1, math.ceil(spec.checkpoint_interval / per_iteration)) if per_iteration else 1
    return PopulationPlan(
        param_space=TrialPoint.grid_space(points),
        scheduler=plugin.scheduler(setup),
        checkpoint_frequency=frequency,
        num_to_keep=spec.checkpoint.num_to_keep,
        iteration_env_steps=per_iteration,
    )
