"""The abstract bases of the LR-policy slots: what each plugin kind is and when it is called.

Every plugin is constructed from its validated parameter model (``Plugin(params, **context)``),
is small, picklable and has a readable ``repr``. Schedules are pure functions of the step;
feedback rules keep their state explicitly (``state`` in, ``state`` out), so the learner can
checkpoint it and restores are exact.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from lrtune.registry import PluginParams

if TYPE_CHECKING:
    import torch

FeedbackState = dict[str, float]


def _params_repr(obj: Any) -> str:
    params: PluginParams = obj.params
    fields = ", ".join(f"{k}={v!r}" for k, v in params.model_dump().items())
    return f"{type(obj).__name__}({fields})"


class Schedule(ABC):
    """A learning-rate *factor* as a pure function of lifetime env steps.

    The learner multiplies the policy's base LR by ``schedule(env_steps)`` before every update.
    ``budget`` is the trial's env-step budget, used as the horizon by schedules whose horizon
    parameter is left out. Past its horizon a schedule holds its last value.
    """

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        self.params = params
        self.budget = budget

    @abstractmethod
    def __call__(self, step: int) -> float:
        """The factor at lifetime env step ``step`` (``step >= 0``). Called before each update."""

    def values(self, steps: Iterable[int]) -> list[float]:
        """The factor at each of ``steps`` (for previews and plots)."""
        return [self(int(s)) for s in steps]

    def __repr__(self) -> str:
        return _params_repr(self)

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and other.params == self.params  # type: ignore[attr-defined]
            and other.budget == self.budget  # type: ignore[attr-defined]
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.params, self.budget))


class OptimizerPlugin(ABC):
    """Builds the torch optimizer that a learner owns.

    `build` is called once per RL module when the learner is built. The optimizer's param
    groups must all carry ``"lr"`` equal to the rate the learner sets: for layer-wise
    optimizers (LARS, LAMB) that is the base rate, each layer's trust ratio applied inside
    ``step``. The learner reads it back after every change and fails if it differs.
    """

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    @abstractmethod
    def build(self, parameters: Sequence[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        """A new optimizer over ``parameters`` with learning rate ``lr``."""

    def __repr__(self) -> str:
        return _params_repr(self)


class GradientGate(ABC):
    """Transforms gradients in place between backward and the optimizer step.

    `apply` is called once per update (minibatch) with the gradients and their parameters in
    the same order; it must not allocate per-parameter Python state (gates are stateless).
    A gate that never changes the gradients sets `changes_gradients` to False, so the learner
    need not measure their norm a second time after it.
    """

    #: Whether `apply` may change the gradients (False only for a gate that leaves them as they
    #: are: the learner then reads the norm after gating as the norm before it).
    changes_gradients: ClassVar[bool] = True

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    @abstractmethod
    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        """Modify ``grads`` in place."""

    def __repr__(self) -> str:
        return _params_repr(self)


@dataclass(frozen=True)
class UpdateSignals:
    """What a feedback rule sees before each optimizer step (once per minibatch update)."""

    env_steps: int
    loss: float
    grads_finite: bool
    grad_norm: float


@dataclass(frozen=True)
class IterationSignals:
    """What a feedback rule sees once per training iteration, after the iteration's updates.

    ``kl`` is PPO's mean KL between the sampling and the updated policy (None for DQN);
    ``episode_return`` is the mean episode return of the iteration (None when no episode ended).
    """

    env_steps: int
    kl: float | None = None
    episode_return: float | None = None


class FeedbackRule(ABC):
    """A rule that scales the learning rate in reaction to training signals.

    State is explicit and JSON-friendly (a flat dict of numbers), threaded through the calls:
    the learner holds it, checkpoints it, and restores it, so a restored trial continues with
    the exact same factor. The learning rate applied is
    ``base_lr × schedule(env_steps) × Π rule.factor(state)``.
    """

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    @abstractmethod
    def initial_state(self) -> FeedbackState:
        """The state at the start of training (called once, when the learner is built)."""

    def factor(self, state: FeedbackState) -> float:
        """The multiplier this rule applies to the learning rate in ``state``."""
        return float(state.get("factor", 1.0))

    def on_update(self, state: FeedbackState, signals: UpdateSignals) -> tuple[FeedbackState, bool]:
        """Called before each optimizer step; returns the new state and whether to skip the step."""
        return state, False

    def on_iteration(self, state: FeedbackState, signals: IterationSignals) -> FeedbackState:
        """Called once per training iteration with its signals; returns the new state."""
        return state

    def diverged(self, state: FeedbackState) -> bool:
        """Whether the rule considers the run diverged beyond recovery (reported, not acted on)."""
        return False

    def __repr__(self) -> str:
        return _params_repr(self)


def finite(x: float) -> bool:
    """``math.isfinite`` that also accepts None (as not finite)."""
    return x is not None and math.isfinite(x)
