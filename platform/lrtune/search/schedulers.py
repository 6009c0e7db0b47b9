"""The ``schedulers`` slot: early stopping (``asha``, ``median``, ``hyperband``, ``none``).

A job's ``scheduler:`` names an entry; ``grace_period`` / ``grace_fraction`` and
``reduction_factor`` stay fields of the job's scheduler section (every scheduler that has them
means the same thing by them), and what is particular to one scheduler is in its ``params``.
Every scheduler runs on lifetime env steps (``env_steps``), not iterations.

Entries import no Ray: a job is validated against their class attributes, and Tune's scheduler
is built when a run starts (`SchedulerPlugin.scheduler`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from lrtune.registry import NoParams, PluginParams, schedulers

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler


@dataclass(frozen=True)
class SchedulerSetup:
    """What a scheduler plugin is built with.

    Attributes:
        time_attr: the result key that counts a trial's progress (``env_steps``).
        budget: a trial's env steps (``budget.trial_env_steps``): the longest a trial runs.
        grace: env steps every trial runs before it may be stopped (`JobSpec.grace_period_steps`).
        reduction_factor: the job's ``scheduler.reduction_factor``.
    """

    time_attr: str
    budget: int
    grace: int
    reduction_factor: float


class SchedulerPlugin(ABC):
    """Base of a ``schedulers`` entry: builds the Tune scheduler of a job.

    Class attributes: ``uses_grace`` (the job's grace period means something to it; a job that
    sets one for a scheduler without it is refused, with ``no_grace_reason`` as the why).
    Register a subclass with ``@lrtune.registry.schedulers.register("name", params=...)``.
    """

    uses_grace: ClassVar[bool] = True
    no_grace_reason: ClassVar[str] = ""

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    @abstractmethod
    def scheduler(self, setup: SchedulerSetup) -> TrialScheduler:
        """The Tune scheduler (Tune hands it the metric and mode itself)."""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({fields})"


class ASHAParams(PluginParams):
    """Parameters of `asha` (Tune's AsyncHyperBandScheduler) beside the job's grace period and
    reduction factor."""

    brackets: int = Field(1, ge=1, le=8, description="number of brackets (grace periods)")
    stop_last_trials: bool = Field(
        True, description="stop trials at the budget (false: let the best run on)"
    )


@schedulers.register("asha", params=ASHAParams, example={"brackets": 1})
class ASHA(SchedulerPlugin):
    """Asynchronous successive halving: at each rung the best 1/reduction_factor run on."""

    params: ASHAParams

    def scheduler(self, setup: SchedulerSetup) -> TrialScheduler:
        """`AsyncHyperBandScheduler` with rungs from the grace period up to the budget."""
        from ray.tune.schedulers import AsyncHyperBandScheduler

        return AsyncHyperBandScheduler(
            time_attr=setup.time_attr,
            max_t=setup.budget,
            grace_period=setup.grace,
            reduction_factor=setup.reduction_factor,
            brackets=self.params.brackets,
            stop_last_trials=self.params.stop_last_trials,
        )


class MedianParams(PluginParams):
    """Parameters of `median` (Tune's MedianStoppingRule)."""

    min_samples_required: int = Field(
        3, ge=1, description="trials that must have reported before any is stopped"
    )
    hard_stop: bool = Field(True, description="stop a trial below the median (false: pause it)")


@schedulers.register("median", params=MedianParams, example={"min_samples_required": 3})
class Median(SchedulerPlugin):
    """Median stopping: stop a trial whose best score is below the median of the others'."""

    params: MedianParams

    def scheduler(self, setup: SchedulerSetup) -> TrialScheduler:
        """`MedianStoppingRule` from the grace period on."""
        from ray.tune.schedulers import MedianStoppingRule

        return MedianStoppingRule(
            time_attr=setup.time_attr,
            grace_period=setup.grace,
            min_samples_required=self.params.min_samples_required,
            hard_stop=self.params.hard_stop,
        )


class HyperbandParams(PluginParams):
    """Parameters of `hyperband` (Tune's synchronous HyperBandScheduler)."""

    stop_last_trials: bool = Field(
        True, description="stop trials at the budget (false: let the best run on)"
    )


@schedulers.register("hyperband", params=HyperbandParams, example={"stop_last_trials": True})
class Hyperband(SchedulerPlugin):
    """Synchronous HyperBand: brackets of successive halving up to the budget."""

    uses_grace: ClassVar[bool] = False
    no_grace_reason: ClassVar[str] = "hyperband's brackets set where trials may stop"
    params: HyperbandParams

    def scheduler(self, setup: SchedulerSetup) -> TrialScheduler:
        """`HyperBandScheduler` with ``max_t`` the trial budget."""
        from ray.tune.schedulers import HyperBandScheduler

        return HyperBandScheduler(
            time_attr=setup.time_attr,
            max_t=setup.budget,
            reduction_factor=setup.reduction_factor,
            stop_last_trials=self.params.stop_last_trials,
        )


@schedulers.register("none", params=NoParams)
class NoStopping(SchedulerPlugin):
    """No early stopping: every trial runs its whole budget (Tune's FIFOScheduler)."""

    uses_grace: ClassVar[bool] = False
    no_grace_reason: ClassVar[str] = "scheduler none stops no trial early"

    def scheduler(self, setup: SchedulerSetup) -> TrialScheduler:
        """`FIFOScheduler`."""
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()
