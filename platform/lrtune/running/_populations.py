"""The built-in entries of the ``populations`` slot: ``pbt`` and ``pb2``, Tune's own schedulers.

A population plugin turns a job's ``population:`` into a Tune `TrialScheduler`. The mutable
numbers of each member's LR policy sit in its config at ``config["point"]["mutable"]`` as
plain coordinates (log10 for log-scaled parameters, see `lrtune.specs.PopulationSpec`), so the
schedulers perturb flat numbers; the trainable applies them to the member's policy.

What is written here rather than taken from Tune as it is: PBT's perturbation with
*per-parameter* factors, done in value space for log-scaled parameters and clamped to the
bounds (Tune's PBT multiplies every parameter by the same global factors and never clamps),
and the clamp of PB2's choices to the bounds (PB2 rounds its choices through float32).
Everything else (quantiles, checkpoint-and-exploit, the GP bandit, ``pbt_global.txt``) is Tune's.
"""

from __future__ import annotations

import copy
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pbt import _explore

from lrtune.registry import PluginParams, populations
from lrtune.specs._population import MUTABLE_KEY, MutableParam

#: Tune's time attribute for populations: lifetime env steps, as the trials report them.
TIME_ATTR = "env_steps"


@dataclass(frozen=True)
class PopulationSetup:
    """What a population plugin needs to build its scheduler.

    Attributes:
        metric, mode: what ranks members (``score``; ``max`` or ``min``). Tune hands them to
            the scheduler itself (from the tuner's config): do not pass them to it again.
        interval: env steps between two perturbations of a member.
        mutable: each mutable parameter's bounds, scale and factors, by path.
        time_attr: the result key that counts a member's progress (``env_steps``).
    """

    metric: str
    mode: str
    interval: int
    mutable: Mapping[str, MutableParam]
    time_attr: str = TIME_ATTR
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.bounds:
            bounds = {path: p.coord_bounds(path) for path, p in self.mutable.items()}
            object.__setattr__(self, "bounds", bounds)

    @staticmethod
    def nest(leaf: Mapping[str, Any]) -> dict[str, Any]:
        """``leaf`` placed where the mutable coordinates sit in a trial config."""
        return {"point": {MUTABLE_KEY: dict(leaf)}}

    @staticmethod
    def coords_of(config: Mapping[str, Any]) -> dict[str, Any]:
        """The mutable coordinates of a trial config (the dict itself, to update in place)."""
        coords: dict[str, Any] = config["point"][MUTABLE_KEY]
        return coords

    def clamp(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with every coordinate clamped to its bounds, as a Python float."""
        coords = self.coords_of(config)
        for path, (low, high) in self.bounds.items():
            if path in coords:
                coords[path] = float(min(max(float(coords[path]), low), high))
        return config


class PopulationPlugin(ABC):
    """Base of a ``populations`` entry: builds the Tune scheduler of a population job.

    Class attributes state what the plugin does with ``population.mutable``:
    ``perturbs_by_factors`` (PBT-style multiplicative perturbation: ``factors`` are accepted).
    Register a subclass with ``@lrtune.registry.populations.register("name", params=...)``.
    """

    perturbs_by_factors: ClassVar[bool] = False

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    @abstractmethod
    def scheduler(self, setup: PopulationSetup) -> TrialScheduler:
        """The Tune scheduler that runs the population (it must not need a search algorithm)."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({fields})"


# ----------------------------------------------------------------------------------------- PBT


class PBTParams(PluginParams):
    """Parameters of `pbt` (Tune's PopulationBasedTraining)."""

    quantile_fraction: float = Field(
        0.25, ge=0.0, le=0.5, description="the bottom fraction copies the top fraction"
    )
    resample_probability: float = Field(
        0.25, ge=0.0, le=1.0, description="chance to draw a parameter afresh instead of perturbing"
    )
    synch: bool = Field(False, description="perturb all members at once (waits for the slowest)")
    burn_in: int = Field(
        0, ge=0, description="env steps before the first perturbation (early scores are noise)"
    )


class LRTunePBT(PopulationBasedTraining):
    """Tune's PBT with per-parameter factors, log-scaled parameters and bounds.

    Only `_get_new_config` (the explore step) differs: each mutable parameter goes through
    Tune's own ``_explore`` on its own, in value space (a log-scaled base LR is multiplied, not
    its log), with its own factors, and the result is clamped to the parameter's bounds.
    """

    def __init__(self, setup: PopulationSetup, **kwargs: Any) -> None:
        self._setup = setup
        super().__init__(**kwargs)

    def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict[str, Any], dict]:
        from ray import tune

        config = copy.deepcopy(trial_to_clone.config)
        coords = self._setup.coords_of(config)
        operations: dict[str, Any] = {}
        for path, param in self._setup.mutable.items():
            value = param.to_value(path, float(coords[path]))
            domain = (
                tune.loguniform(param.low, param.high)
                if param.is_log(path)
                else tune.uniform(param.low, param.high)
            )
            new, ops = _explore(
                {"v": value},
                {"v": domain},
                self._resample_probability,
                param.perturbation_factors(),  # type: ignore[arg-type]
                None,
            )
            moved = float(new["v"])
            if param.is_log(path) and moved <= 0:  # cannot happen with positive factors
                moved = param.low
            coords[path] = param.to_coord(path, moved)
            operations[path] = ops.get("v", "")
        return self._setup.clamp(config), self._setup.nest(operations)


@populations.register("pbt", params=PBTParams)
class PBT(PopulationPlugin):
    """Population-based training: the weak copy the strong, then perturb by factors or resample."""

    perturbs_by_factors: ClassVar[bool] = True
    params: PBTParams

    def scheduler(self, setup: PopulationSetup) -> TrialScheduler:
        """Tune's `PopulationBasedTraining` (see `LRTunePBT`) on lifetime env steps."""
        from ray import tune

        mutations = {
            path: tune.uniform(*setup.bounds[path]) for path in setup.mutable
        }  # resampling is done in value space by LRTunePBT; these only declare the keys
        return LRTunePBT(
            setup,
            time_attr=setup.time_attr,
            perturbation_interval=setup.interval,
            hyperparam_mutations=setup.nest(mutations),
            quantile_fraction=self.params.quantile_fraction,
            resample_probability=self.params.resample_probability,
            synch=self.params.synch,
            burn_in_period=self.params.burn_in,
            log_config=True,
        )


# ----------------------------------------------------------------------------------------- PB2


class PB2Params(PluginParams):
    """Parameters of `pb2` (Tune's PB2, a GP bandit; needs scikit-learn)."""

    quantile_fraction: float = Field(
        0.25, ge=0.0, le=0.5, description="the bottom fraction copies the top fraction"
    )
    synch: bool = Field(False, description="perturb all members at once (waits for the slowest)")


@populations.register("pb2", params=PB2Params)
class PB2Population(PopulationPlugin):
    """Population-based bandits: new values chosen by a GP bandit within linear bounds."""

    params: PB2Params

    def scheduler(self, setup: PopulationSetup) -> TrialScheduler:
        """Tune's `PB2` with the coordinates' linear bounds (log10 for log-scaled parameters)."""
        from ray.tune.schedulers.pb2 import PB2

        bounds = {path: [low, high] for path, (low, high) in setup.bounds.items()}
        return PB2(
            time_attr=setup.time_attr,
            perturbation_interval=setup.interval,
            hyperparam_bounds=setup.nest(bounds),
            quantile_fraction=self.params.quantile_fraction,
            synch=self.params.synch,
            log_config=True,
            custom_explore_fn=setup.clamp,
        )


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
    """Env steps of one training iteration where the agent fixes it (PPO's train batch)."""
    if job.agent != "ppo":
        return None
    from lrtune.learners._presets import preset_hyperparams

    hyper = {**preset_hyperparams(job.agent, job.env.id), **job.fixed_hyperparams}
    value = hyper.get("train_batch_size_per_learner")
    return int(value) if value else None


def population_plan(job: Any) -> PopulationPlan:
    """The param space (one grid point per member), scheduler and checkpoint settings."""
    from ray import tune

    # Tune suggests reuse_actors for PBT; RLlib algorithms cannot reset their config, and
    # exploited trials fail with reuse_actors=True (measured), so lrtune restarts actors.
    warnings.filterwarnings("ignore", message=r"Consider boosting PBT performance")
    spec = job.population
    plugin: PopulationPlugin = populations.build(spec.name, spec.params)
    members = spec.initial_members(job.policy.model_dump(mode="json"))
    points = [
        {
            "lrtune": {
                "policy": member["policy"],
                "hyperparams": job.fixed_hyperparams,
                "baseline": False,
            },
            MUTABLE_KEY: member["mutable"],
        }
        for member in members
    ]
    setup = PopulationSetup(
        metric="score", mode=job.metric.mode, interval=spec.interval, mutable=spec.mutable
    )
    per_iteration = iteration_env_steps(job)
    frequency = max(1, math.ceil(spec.checkpoint_interval / per_iteration)) if per_iteration else 1
    return PopulationPlan(
        param_space={"point": tune.grid_search(points)},
        scheduler=plugin.scheduler(setup),
        checkpoint_frequency=frequency,
        num_to_keep=spec.checkpoint.num_to_keep,
        iteration_env_steps=per_iteration,
    )
