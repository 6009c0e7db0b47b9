"""The built-in entries of the ``populations`` slot: ``pbt`` and ``pb2``, Tune's own schedulers.

A population plugin turns a job's ``population:`` into a Tune `TrialScheduler`. The mutable
numbers of each member's LR policy sit in its config at ``config["point"]["mutable"]`` as
plain coordinates (log10 for log-scaled parameters, see `lrtune.specs.PopulationSpec`), so the
schedulers perturb flat numbers; the trainable applies them to the member's policy.

This module declares the entries (their parameters are validated with a job) and imports no
Ray: validating a population job starts nothing heavy. Tune is imported when a scheduler is
built (`PopulationPlugin.scheduler`, at run time); PBT's explore step is in `_tune_pbt`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from lrtune.registry import PluginParams, populations
from lrtune.vocabulary import CONFIG_POINT_KEY

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from lrtune.specs import MutableParam

#: Where a trial config holds a member's mutable coordinates (``config["point"][MUTABLE_KEY]``).
MUTABLE_KEY = "mutable"
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
        return {CONFIG_POINT_KEY: {MUTABLE_KEY: dict(leaf)}}

    @staticmethod
    def coords_of(config: Mapping[str, Any]) -> dict[str, Any]:
        """The mutable coordinates of a trial config (the dict itself, to update in place)."""
        coords: dict[str, Any] = config[CONFIG_POINT_KEY][MUTABLE_KEY]
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
        from lrtune.policies._tune_pbt import LRTunePBT

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
        """Tune's `PB2` with the coordinates' linear bounds (log10 for log-scaled parameters),
        without sklearn's warnings from its GP fits (`QuietPB2`)."""
        from lrtune.policies._tune_pb2 import QuietPB2

        bounds = {path: [low, high] for path, (low, high) in setup.bounds.items()}
        return QuietPB2(
            time_attr=setup.time_attr,
            perturbation_interval=setup.interval,
            hyperparam_bounds=setup.nest(bounds),
            quantile_fraction=self.params.quantile_fraction,
            synch=self.params.synch,
            log_config=True,
            custom_explore_fn=setup.clamp,
        )
