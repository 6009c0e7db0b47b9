"""Built-in schedules: learning-rate factors as pure functions of lifetime env steps.

Where torch has the same schedule, the formula is torch's ``lr_scheduler`` closed form with
base LR 1 and ``step = env step`` (torch's classes are the tests' oracle). Past its horizon a
schedule holds its last value. Horizon parameters left out (``None``) default to the trial's
env-step budget.
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from lrtune.policies._base import Schedule
from lrtune.policies._spec import PluginRef
from lrtune.registry import Capabilities, NoParams, PluginParams, schedules


def _step_count(value: Any) -> Any:
    """Accept ``1e6`` for a step count (YAML reads it as a string); refuse booleans."""
    if isinstance(value, bool):
        raise ValueError("must be a whole number of env steps, not a boolean")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if math.isfinite(number) and number.is_integer():
            return int(number)
    return value


Steps = Annotated[int, BeforeValidator(_step_count)]

#: Field metadata of a parameter that is a duration in env steps (a warm-up, a decay interval,
#: a cycle), as opposed to a rate such as exponential's ``decay_steps``: `short_durations`
#: reads it.
DURATION: dict[str, Any] = {"duration": True}


def short_durations(
    name: str, params: Mapping[str, Any], below: int, where: str = "schedule"
) -> list[str]:
    """The duration parameters of schedule ``name`` given in ``params`` as plain numbers
    smaller than ``below`` env steps (also inside warmup's ``then``), as ``"where.key = value"``.

    Ranges and unknown names are skipped: this is a plausibility check on top of validation."""
    if name not in schedules.names():
        return []
    fields = schedules.get(name).params_model.model_fields
    found: list[str] = []
    for key, value in params.items():
        info = fields.get(key)
        extra = info.json_schema_extra if info is not None else None
        is_duration = isinstance(extra, dict) and extra.get("duration") is True
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if is_duration and is_number and value < below:
            found.append(f"{where}.{key} = {value:g}")
    then = params.get("then")
    if isinstance(then, Mapping) and isinstance(then.get("name"), str):
        inner = then.get("params")
        found += short_durations(
            then["name"], inner if isinstance(inner, Mapping) else {}, below, f"{where}.then"
        )
    return found


"""A whole number of env steps (``1e6`` accepted)."""

Factor = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
"""A finite, non-negative LR factor."""

_BUDGET_NEEDED = Capabilities(needs_budget=True)


def _horizon(name: str, param: str, value: int | None, budget: int | None) -> int:
    """The horizon ``value``, or the trial budget when it is left out."""
    if value is not None:
        return int(value)
    if budget is None:
        raise ValueError(f"{name}: set {param} or give the trial a budget (env steps)")
    if int(budget) < 1:
        raise ValueError(
            f"{name}: the trial budget must be at least 1 env step (got {budget}); or set {param}"
        )
    return int(budget)


@schedules.register("constant", params=NoParams)
class Constant(Schedule):
    """Factor 1 at every step: the base learning rate throughout."""

    def __call__(self, step: int) -> float:
        return 1.0


# --------------------------------------------------------------------------------------- step


class StepParams(PluginParams):
    """Parameters of `step` (torch StepLR)."""

    step_size: Steps = Field(
        gt=0, description="env steps between two decays", json_schema_extra=DURATION
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="factor applied at each decay")


@schedules.register("step", params=StepParams, example={"step_size": 10000})
class StepDecay(Schedule):
    """Multiply by gamma every step_size env steps (torch StepLR)."""

    params: StepParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._size = int(self.params.step_size)
        self._gamma = float(self.params.gamma)

    def __call__(self, step: int) -> float:
        return self._gamma ** (step // self._size)


# ---------------------------------------------------------------------------------- multistep


class MultiStepParams(PluginParams):
    """Parameters of `multistep` (torch MultiStepLR)."""

    milestones: tuple[Steps, ...] = Field(
        min_length=1, description="env steps at which to decay (strictly increasing, > 0)"
    )
    gamma: float = Field(0.1, gt=0.0, le=1.0, description="factor applied at each milestone")

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if value[0] <= 0:
            raise ValueError(f"milestones must be positive env steps (got {value[0]})")
        for i in range(1, len(value)):
            if value[i] <= value[i - 1]:
                raise ValueError(
                    f"milestones must be strictly increasing (milestone {i} = {value[i]} "
                    f"follows {value[i - 1]})"
                )
        return value


@schedules.register("multistep", params=MultiStepParams, example={"milestones": [10000, 20000]})
class MultiStep(Schedule):
    """Multiply by gamma at each milestone (torch MultiStepLR)."""

    params: MultiStepParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._milestones = [int(m) for m in self.params.milestones]
        self._gamma = float(self.params.gamma)

    def __call__(self, step: int) -> float:
        return self._gamma ** bisect_right(self._milestones, step)


# -------------------------------------------------------------------------------- exponential


class ExponentialParams(PluginParams):
    """Parameters of `exponential` (torch ExponentialLR when decay_steps is 1)."""

    gamma: float = Field(0.9999, gt=0.0, le=1.0, description="factor per decay_steps env steps")
    decay_steps: Steps = Field(1, gt=0, description="env steps over which the factor is gamma")


@schedules.register("exponential", params=ExponentialParams)
class Exponential(Schedule):
    """Smooth exponential decay: gamma ** (step / decay_steps) (torch ExponentialLR)."""

    params: ExponentialParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._gamma = float(self.params.gamma)
        self._steps = int(self.params.decay_steps)

    def __call__(self, step: int) -> float:
        return math.pow(self._gamma, step / self._steps)


# ------------------------------------------------------------------------------------- linear


class LinearParams(PluginParams):
    """Parameters of `linear` (torch LinearLR)."""

    start_factor: float = Field(1.0, gt=0.0, le=1e3, description="factor at step 0")
    end_factor: float = Field(0.0, ge=0.0, le=1e3, description="factor from total_steps on")
    total_steps: Steps | None = Field(
        None, gt=0, description="env steps of the ramp (default: the trial budget)"
    )


@schedules.register("linear", params=LinearParams, capabilities=_BUDGET_NEEDED)
class Linear(Schedule):
    """Linear ramp from start_factor to end_factor over total_steps (torch LinearLR)."""

    params: LinearParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._total = _horizon("linear", "total_steps", self.params.total_steps, budget)
        self._start = float(self.params.start_factor)
        self._delta = float(self.params.end_factor) - self._start

    def __call__(self, step: int) -> float:
        return self._start + self._delta * min(self._total, step) / self._total


# --------------------------------------------------------------------------------- polynomial


class PolynomialParams(PluginParams):
    """Parameters of `polynomial` (torch PolynomialLR when end_factor is 0)."""

    total_steps: Steps | None = Field(
        None, gt=0, description="env steps of the decay (default: the trial budget)"
    )
    power: float = Field(1.0, gt=0.0, le=100.0, description="exponent of the decay")
    end_factor: float = Field(0.0, ge=0.0, lt=1.0, description="factor from total_steps on")


@schedules.register("polynomial", params=PolynomialParams, capabilities=_BUDGET_NEEDED)
class Polynomial(Schedule):
    """Polynomial decay from 1 to end_factor over total_steps (torch PolynomialLR)."""

    params: PolynomialParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._total = _horizon("polynomial", "total_steps", self.params.total_steps, budget)
        self._power = float(self.params.power)
        self._end = float(self.params.end_factor)
        self._span = 1.0 - self._end

    def __call__(self, step: int) -> float:
        frac = 1.0 - min(self._total, step) / self._total
        return self._span * math.pow(frac, self._power) + self._end


# ------------------------------------------------------------------------------------- cosine


class CosineParams(PluginParams):
    """Parameters of `cosine` (torch CosineAnnealingLR)."""

    t_max: Steps | None = Field(
        None, gt=0, description="env steps of the half cosine (default: the trial budget)"
    )
    min_factor: float = Field(0.0, ge=0.0, lt=1.0, description="factor from t_max on")


@schedules.register("cosine", params=CosineParams, capabilities=_BUDGET_NEEDED)
class Cosine(Schedule):
    """Half-cosine decay from 1 to min_factor over t_max, then held (torch CosineAnnealingLR)."""

    params: CosineParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._t_max = _horizon("cosine", "t_max", self.params.t_max, budget)
        self._min = float(self.params.min_factor)
        self._span = 1.0 - self._min

    def __call__(self, step: int) -> float:
        if step >= self._t_max:
            return self._min
        return self._min + self._span * (1 + math.cos(math.pi * step / self._t_max)) / 2


# ---------------------------------------------------------------------------- cosine_restarts


class CosineRestartsParams(PluginParams):
    """Parameters of `cosine_restarts` (torch CosineAnnealingWarmRestarts)."""

    t_0: Steps = Field(gt=0, description="env steps of the first cycle", json_schema_extra=DURATION)
    t_mult: int = Field(1, ge=1, le=100, description="each cycle is t_mult times the previous")
    min_factor: float = Field(0.0, ge=0.0, lt=1.0, description="factor at the end of a cycle")


@schedules.register("cosine_restarts", params=CosineRestartsParams, example={"t_0": 10000})
class CosineRestarts(Schedule):
    """Cosine decay restarted every cycle, cycles growing by t_mult (SGDR, torch)."""

    params: CosineRestartsParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._t_0 = int(self.params.t_0)
        self._mult = int(self.params.t_mult)
        self._min = float(self.params.min_factor)
        self._span = 1.0 - self._min

    def _cycle(self, step: int) -> tuple[int, int]:
        """(steps since the last restart, length of the current cycle), in exact integers."""
        t_0, mult = self._t_0, self._mult
        if step < t_0:
            return step, t_0
        if mult == 1:
            return step % t_0, t_0
        # Cycle n starts at t_0 (mult**n - 1) / (mult - 1): estimate n, then correct exactly.
        n = int(math.log(step / t_0 * (mult - 1) + 1, mult))
        while n > 0 and t_0 * (mult**n - 1) // (mult - 1) > step:
            n -= 1
        while t_0 * (mult ** (n + 1) - 1) // (mult - 1) <= step:
            n += 1
        return step - t_0 * (mult**n - 1) // (mult - 1), t_0 * mult**n

    def __call__(self, step: int) -> float:
        t_cur, t_i = self._cycle(step)
        return self._min + self._span * (1 + math.cos(math.pi * t_cur / t_i)) / 2


# ------------------------------------------------------------------------------------- cyclic


class CyclicParams(PluginParams):
    """Parameters of `cyclic` (torch CyclicLR with base_lr=min_factor, max_lr=1)."""

    min_factor: float = Field(0.1, ge=0.0, le=1.0, description="factor at the cycle's bottom")
    step_size_up: Steps = Field(
        gt=0, description="env steps from bottom to top", json_schema_extra=DURATION
    )
    step_size_down: Steps | None = Field(
        None,
        gt=0,
        description="env steps from top to bottom (default: step_size_up)",
        json_schema_extra=DURATION,
    )
    mode: Literal["triangular", "triangular2", "exp_range"] = Field(
        "triangular",
        description="triangular: constant height; triangular2: height halves each cycle; "
        "exp_range: height times gamma**step",
    )
    gamma: float = Field(1.0, gt=0.0, le=1.0, description="height decay per env step (exp_range)")


@schedules.register("cyclic", params=CyclicParams, example={"step_size_up": 2000})
class Cyclic(Schedule):
    """Triangular cycles between min_factor and 1 (torch CyclicLR)."""

    params: CyclicParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        p = self.params
        up = float(p.step_size_up)
        down = float(p.step_size_down) if p.step_size_down is not None else up
        self._total = up + down
        self._ratio = up / self._total
        self._base = float(p.min_factor)
        self._height = 1.0 - self._base
        self._mode = p.mode
        self._gamma = float(p.gamma)

    def __call__(self, step: int) -> float:
        cycle = math.floor(1 + step / self._total)
        x = 1.0 + step / self._total - cycle
        if x <= self._ratio:
            scale_factor = x / self._ratio
        else:
            scale_factor = (x - 1) / (self._ratio - 1)
        height = self._height * scale_factor
        if self._mode == "triangular":
            return self._base + height
        if self._mode == "triangular2":
            # torch: 1 / 2.0 ** (cycle - 1); ldexp is exact and underflows instead of overflowing
            return self._base + height * math.ldexp(1.0, 1 - cycle)
        return self._base + height * self._gamma**step


# ---------------------------------------------------------------------------------- one_cycle


class OneCycleParams(PluginParams):
    """Parameters of `one_cycle` (torch OneCycleLR with max_lr=1)."""

    total_steps: Steps | None = Field(
        None, gt=0, description="env steps of the whole cycle (default: the trial budget)"
    )
    pct_start: float = Field(0.3, gt=0.0, lt=1.0, description="fraction of the cycle rising")
    anneal_strategy: Literal["cos", "linear"] = Field("cos", description="shape of each phase")
    div_factor: float = Field(25.0, ge=1.0, le=1e6, description="peak / starting factor")
    final_div_factor: float = Field(1e4, ge=1.0, le=1e12, description="starting / final factor")
    three_phase: bool = Field(
        False, description="fall back to the start before the final annihilation phase"
    )


@schedules.register("one_cycle", params=OneCycleParams, capabilities=_BUDGET_NEEDED)
class OneCycle(Schedule):
    """Rise from 1/div_factor to 1, then anneal far below the start (torch OneCycleLR)."""

    params: OneCycleParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        p = self.params
        total = _horizon("one_cycle", "total_steps", p.total_steps, budget)
        initial = 1.0 / p.div_factor
        peak = 1.0
        final = initial / p.final_div_factor
        pct = float(p.pct_start)
        # Phase boundaries exactly as torch computes them (float, possibly negative).
        if p.three_phase:
            phases = [
                (float(pct * total) - 1, initial, peak),
                (float(2 * pct * total) - 2, peak, initial),
                (float(total - 1), initial, final),
            ]
        else:
            phases = [(float(pct * total) - 1, initial, peak), (float(total - 1), peak, final)]
        self._phases = tuple(phases)
        self._last = total - 1
        self._cos = p.anneal_strategy == "cos"

    def __call__(self, step: int) -> float:
        t = min(step, self._last)
        start_step = 0.0
        last = len(self._phases) - 1
        for i, (end_step, start, end) in enumerate(self._phases):
            if t <= end_step or i == last:
                span = end_step - start_step
                pct = (t - start_step) / span if span != 0.0 else 1.0
                if self._cos:
                    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (end - start) * pct + start
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")


# ---------------------------------------------------------------------------------- piecewise


class PiecewiseParams(PluginParams):
    """Parameters of `piecewise`."""

    points: tuple[tuple[Steps, Factor], ...] = Field(
        min_length=1,
        description="[step, factor] pairs (or {step, value} mappings), steps strictly "
        "increasing from >= 0, factors >= 0; linear in between, held outside",
    )

    @field_validator("points", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise ValueError("must be a list of [step, factor] pairs")
        out: list[Any] = []
        for i, point in enumerate(value):
            if isinstance(point, Mapping):
                keys = set(point)
                if keys != {"step", "value"}:
                    raise ValueError(
                        f"point {i}: a mapping needs exactly the keys 'step' and 'value' "
                        f"(got {sorted(map(str, keys))})"
                    )
                out.append((point["step"], point["value"]))
            else:
                out.append(point)
        return out

    @field_validator("points")
    @classmethod
    def _increasing(cls, value: tuple[tuple[int, float], ...]) -> tuple[tuple[int, float], ...]:
        if value and value[0][0] < 0:
            raise ValueError(f"point 0: step must be >= 0 (got {value[0][0]})")
        for i in range(1, len(value)):
            if value[i][0] <= value[i - 1][0]:
                raise ValueError(
                    f"steps must be strictly increasing (point {i} at step {value[i][0]} "
                    f"follows step {value[i - 1][0]})"
                )
        return value


@schedules.register(
    "piecewise", params=PiecewiseParams, example={"points": [[0, 1.0], [10000, 0.1]]}
)
class Piecewise(Schedule):
    """Linear interpolation between [step, factor] points, held before the first and after."""

    params: PiecewiseParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        self._steps = [int(s) for s, _ in self.params.points]
        self._values = [float(v) for _, v in self.params.points]

    def __call__(self, step: int) -> float:
        i = bisect_right(self._steps, step)
        if i == 0:
            return self._values[0]
        if i == len(self._steps):
            return self._values[-1]
        s0 = self._steps[i - 1]
        v0 = self._values[i - 1]
        return v0 + (self._values[i] - v0) * ((step - s0) / (self._steps[i] - s0))


# ------------------------------------------------------------------------------------- warmup


class WarmupParams(PluginParams):
    """Parameters of `warmup`."""

    steps: Steps = Field(
        gt=0, description="env steps of the linear warm-up", json_schema_extra=DURATION
    )
    start_factor: float = Field(0.0, ge=0.0, le=1.0, description="factor at step 0")
    then: PluginRef = Field(
        PluginRef(name="constant"),
        description="schedule after the warm-up, started at 0 when the warm-up ends "
        "(its budget is the trial budget minus steps)",
    )

    @field_validator("then")
    @classmethod
    def _resolve(cls, value: PluginRef) -> PluginRef:
        return value.resolved(schedules)


@schedules.register("warmup", params=WarmupParams, example={"steps": 1000})
class Warmup(Schedule):
    """Linear warm-up from start_factor to 1 over steps, then another schedule (shifted)."""

    params: WarmupParams

    def __init__(self, params: PluginParams, *, budget: int | None = None) -> None:
        super().__init__(params, budget=budget)
        p = self.params
        self._steps = int(p.steps)
        self._start = float(p.start_factor)
        self._rise = 1.0 - self._start
        # A warm-up longer than the budget leaves the inner schedule a nominal 1-step budget.
        inner_budget = None if budget is None else max(int(budget) - self._steps, 1)
        self.inner: Schedule = p.then.build(schedules, budget=inner_budget)

    def __call__(self, step: int) -> float:
        if step < self._steps:
            return self._start + self._rise * step / self._steps
        return self.inner(step - self._steps)

    def __hash__(self) -> int:  # `then.params` is a dict, so the params model is unhashable
        dumped = json.dumps(self.params.model_dump(mode="json"), sort_keys=True)
        return hash((type(self).__name__, dumped, self.budget))
