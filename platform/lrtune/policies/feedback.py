"""Built-in feedback rules: learning-rate factors that react to training signals.

Each rule's state is a flat ``dict[str, float]`` (counters and flags included, as floats), so it
survives a JSON round trip unchanged; rules never mutate the state they are given, they return
a new one.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lrtune.policies._base import (
    FeedbackRule,
    FeedbackState,
    IterationSignals,
    UpdateSignals,
    finite,
)
from lrtune.registry import Capabilities, PluginParams, feedback

__all__ = ["Capabilities", "FeedbackRule", "FeedbackState", "feedback"]


# ---------------------------------------------------------------------------------------------
# kl_adaptive
# ---------------------------------------------------------------------------------------------


class KLAdaptiveParams(PluginParams):
    """Parameters of `kl_adaptive`."""

    target: float = Field(0.01, gt=0.0, le=10.0, description="the KL the rule steers towards")
    tolerance: float = Field(
        2.0, gt=1.0, le=100.0, description="band factor: act above target*tol, below target/tol"
    )
    factor: float = Field(1.5, gt=1.0, le=100.0, description="multiplier per adjustment")
    min_factor: float = Field(0.01, gt=0.0, le=1.0, description="lowest LR factor")
    max_factor: float = Field(10.0, ge=1.0, le=1e6, description="highest LR factor")


@feedback.register(
    "kl_adaptive",
    params=KLAdaptiveParams,
    capabilities=Capabilities(agents=frozenset({"ppo"}), stateful=True),
    example={"target": 0.02, "tolerance": 1.5},
)
class KLAdaptive(FeedbackRule):
    """Adapt the LR to PPO's KL: divide by factor above target*tol, multiply below target/tol."""

    params: KLAdaptiveParams

    def initial_state(self) -> FeedbackState:
        return {"factor": 1.0}

    def on_iteration(self, state: FeedbackState, signals: IterationSignals) -> FeedbackState:
        kl = signals.kl
        if kl is None or not finite(kl):
            return state
        p = self.params
        f = float(state["factor"])
        if kl > p.target * p.tolerance:
            f /= p.factor
        elif kl < p.target / p.tolerance:
            f *= p.factor
        f = min(max(f, p.min_factor), p.max_factor)
        return {**state, "factor": f}


# ---------------------------------------------------------------------------------------------
# plateau
# ---------------------------------------------------------------------------------------------


class PlateauParams(PluginParams):
    """Parameters of `plateau`."""

    patience: int = Field(
        10, ge=0, le=1_000_000, description="iterations without improvement before a cut"
    )
    factor: float = Field(0.5, gt=0.0, lt=1.0, description="multiplier per cut")
    cooldown: int = Field(
        0, ge=0, le=1_000_000, description="iterations after a cut before counting resumes"
    )
    min_factor: float = Field(1e-3, ge=0.0, le=1.0, description="lowest LR factor")
    threshold: float = Field(
        1e-4, ge=0.0, le=1e6, description="least improvement of the best return that counts"
    )
    threshold_mode: Literal["rel", "abs"] = Field(
        "rel", description="rel: better than best·(1 + threshold); abs: best + threshold"
    )


@feedback.register(
    "plateau",
    params=PlateauParams,
    capabilities=Capabilities(stateful=True),
    example={"patience": 5, "factor": 0.3, "cooldown": 2},
)
class Plateau(FeedbackRule):
    """Cut the LR when the mean episode return plateaus (torch's ReduceLROnPlateau, mode max)."""

    params: PlateauParams

    def initial_state(self) -> FeedbackState:
        # ``has_best`` stands for torch's best = -inf (which strict JSON cannot hold).
        return {"factor": 1.0, "best": 0.0, "has_best": 0.0, "num_bad": 0.0, "cooldown": 0.0}

    def _is_better(self, value: float, best: float) -> bool:
        p = self.params
        if p.threshold_mode == "rel":
            return value > best * (1.0 + p.threshold)
        return value > best + p.threshold

    def on_iteration(self, state: FeedbackState, signals: IterationSignals) -> FeedbackState:
        value = signals.episode_return
        if value is None or not finite(value):
            return state  # no episode ended: the iteration does not count
        p = self.params
        factor = float(state["factor"])
        best = float(state["best"])
        has_best = bool(state["has_best"])
        num_bad = int(state["num_bad"])
        cooldown = int(state["cooldown"])
        if not has_best or self._is_better(value, best):
            best, has_best, num_bad = float(value), True, 0
        else:
            num_bad += 1
        if cooldown > 0:
            cooldown -= 1
            num_bad = 0
        if num_bad > p.patience:
            factor = max(factor * p.factor, p.min_factor)
            cooldown = p.cooldown
            num_bad = 0
        return {
            **state,
            "factor": factor,
            "best": best,
            "has_best": 1.0 if has_best else 0.0,
            "num_bad": float(num_bad),
            "cooldown": float(cooldown),
        }


# ---------------------------------------------------------------------------------------------
# divergence_guard
# ---------------------------------------------------------------------------------------------


class DivergenceGuardParams(PluginParams):
    """Parameters of `divergence_guard`."""

    spike_factor: float = Field(
        10.0, gt=1.0, le=1e6, description="a |loss| above this x its running mean is a spike"
    )
    ema_decay: float = Field(0.9, gt=0.0, lt=1.0, description="decay of the running mean of |loss|")
    cut: float = Field(0.5, gt=0.0, lt=1.0, description="factor multiplier per event")
    min_factor: float = Field(1e-4, gt=0.0, le=1.0, description="lowest LR factor")
    recovery: float = Field(
        1.0, ge=1.0, le=10.0, description="factor multiplier per healthy update (capped at 1)"
    )
    max_events: int = Field(
        20, ge=1, le=1_000_000, description="events after which the run counts as diverged"
    )
    warmup_updates: int = Field(
        10, ge=0, le=1_000_000_000, description="finite losses seen before spikes are judged"
    )
    spike_patience: int = Field(
        3,
        ge=1,
        le=1_000_000,
        description="consecutive finite spikes after which the loss is taken as its new level",
    )


@feedback.register(
    "divergence_guard",
    params=DivergenceGuardParams,
    capabilities=Capabilities(stateful=True),
    example={"spike_factor": 20.0, "cut": 0.3, "recovery": 1.01},
)
class DivergenceGuard(FeedbackRule):
    """Skip updates with a non-finite or spiking loss or non-finite grads, and cut the LR."""

    params: DivergenceGuardParams

    def initial_state(self) -> FeedbackState:
        return {
            "factor": 1.0,
            "events": 0.0,
            "consecutive": 0.0,
            "spike_run": 0.0,
            "ema": 0.0,
            "seen": 0.0,
        }

    def _is_spike(self, state: FeedbackState, loss: float) -> bool:
        p = self.params
        seen = int(state["seen"])
        if seen < max(p.warmup_updates, 1):
            return False
        return abs(loss) > p.spike_factor * float(state["ema"])

    def on_update(self, state: FeedbackState, signals: UpdateSignals) -> tuple[FeedbackState, bool]:
        p = self.params
        loss = signals.loss
        event = {
            **state,
            "factor": max(float(state["factor"]) * p.cut, p.min_factor),
            "events": float(state["events"]) + 1.0,
            "consecutive": float(state["consecutive"]) + 1.0,
        }
        if not finite(loss) or not signals.grads_finite:
            return event, True
        mag = abs(float(loss))
        seen = float(state["seen"])
        if self._is_spike(state, loss):
            run = float(state.get("spike_run", 0.0))
            if run < p.spike_patience:
                return {**event, "spike_run": run + 1.0}, True
            # A spike that persists while staying finite is a new loss level (PPO's value loss
            # grows with the returns): re-base the running mean and let the update through.
            return {
                **state,
                "consecutive": 0.0,
                "spike_run": 0.0,
                "ema": mag,
                "seen": seen + 1.0,
            }, False
        ema = mag if seen == 0 else p.ema_decay * float(state["ema"]) + (1.0 - p.ema_decay) * mag
        return {
            **state,
            "factor": min(1.0, float(state["factor"]) * p.recovery),
            "consecutive": 0.0,
            "spike_run": 0.0,
            "ema": ema,
            "seen": seen + 1.0,
        }, False

    def diverged(self, state: FeedbackState) -> bool:
        return int(state.get("events", 0.0)) >= self.params.max_events
