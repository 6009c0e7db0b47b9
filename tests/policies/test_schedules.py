"""Tests of the schedule slot: the contract every entry meets, and the built-ins' formulas.

The built-ins that torch also has are checked against torch's own schedulers, stepped one env
step at a time (base LR 1, so the optimizer's LR is our factor).
"""

from __future__ import annotations

import math
import pickle
import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch.optim import lr_scheduler as tls

from lrtune.policies import LRPolicySpec, Schedule
from lrtune.registry import Entry, PluginParamsError, schedules

BUDGET = 1000
SAMPLE_STEPS = [0, 1, 2, 7, 99, 100, 500, 999, 1000, 1001, 4321, 12345, 10**6, 10**9]
FAR = [BUDGET, BUDGET + 1, 3 * BUDGET + 7, 10**6, 10**9]

# Torch's schedulers update the LR recursively (lr_t = lr_{t-1} * ratio), so their values carry
# rounding error that grows with the step; closed forms agree to well below these tolerances.
RTOL = 1e-9
ATOL = 1e-12

ALL = schedules.names()


def _entry(name: str) -> Entry[Any]:
    return schedules.get(name)


def _build(name: str, params: Any = None, budget: int | None = BUDGET) -> Schedule:
    entry = _entry(name)
    sched: Schedule = entry.build(entry.example if params is None else params, budget=budget)
    return sched


# ----------------------------------------------------------------------------- the contract


@pytest.mark.parametrize("name", ALL)
def test_example_params_build(name: str) -> None:
    sched = _build(name)
    assert isinstance(sched, Schedule)
    assert type(sched).__name__ in repr(sched)
    assert _entry(name).description


@pytest.mark.parametrize("name", ALL)
def test_pickle_round_trip(name: str) -> None:
    sched = _build(name)
    copy = pickle.loads(pickle.dumps(sched))
    assert copy == sched
    assert hash(copy) == hash(sched)
    assert copy.values(SAMPLE_STEPS) == sched.values(SAMPLE_STEPS)


@pytest.mark.parametrize("name", ALL)
def test_rebuilt_from_dumped_params_is_identical(name: str) -> None:
    entry = _entry(name)
    sched = _build(name)
    rebuilt = entry.build(entry.validate_params(sched.params.model_dump()), budget=BUDGET)
    assert rebuilt == sched
    assert rebuilt.values(SAMPLE_STEPS) == sched.values(SAMPLE_STEPS)
    json_rebuilt = entry.build(sched.params.model_dump(mode="json"), budget=BUDGET)
    assert json_rebuilt.values(SAMPLE_STEPS) == sched.values(SAMPLE_STEPS)


@pytest.mark.parametrize("name", ALL)
def test_factor_finite_and_non_negative(name: str) -> None:
    for step in SAMPLE_STEPS:
        value = _build(name)(step)
        assert isinstance(value, float)
        assert math.isfinite(value) and value >= 0.0, (name, step, value)


@pytest.mark.parametrize("name", [n for n in ALL if _entry(n).capabilities.needs_budget])
def test_holds_last_value_past_the_budget_horizon(name: str) -> None:
    sched = _build(name)
    values = sched.values(FAR)
    assert values == [values[0]] * len(values)
    if name == "one_cycle":  # reaches its final value at total_steps - 1 (torch's last index)
        assert sched(BUDGET - 1) == values[0]


# ------------------------------------------------------------------------- torch as oracle

Factory = Callable[[torch.optim.Optimizer], tls.LRScheduler]


def _torch_values(make: Factory, n: int) -> list[float]:
    """The LR that torch's scheduler gives at steps 0..n-1, base LR 1."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make(opt)
        for step in range(n):
            if step:
                sched.step()
            out.append(float(opt.param_groups[0]["lr"]))
    return out


def _linear_then(inner: Factory, start: float, steps: int) -> Factory:
    def make(opt: torch.optim.Optimizer) -> tls.LRScheduler:
        warm = tls.LinearLR(opt, start_factor=start, end_factor=1.0, total_iters=steps)
        return tls.SequentialLR(opt, [warm, inner(opt)], milestones=[steps])

    return make


ORACLE: list[tuple[str, dict[str, Any], Factory, int]] = [
    ("step", {"step_size": 37, "gamma": 0.5}, lambda o: tls.StepLR(o, 37, gamma=0.5), 300),
    ("step", {"step_size": 1}, lambda o: tls.StepLR(o, 1), 60),
    (
        "multistep",
        {"milestones": [10, 50, 51, 200], "gamma": 0.3},
        lambda o: tls.MultiStepLR(o, [10, 50, 51, 200], gamma=0.3),
        300,
    ),
    ("exponential", {"gamma": 0.99}, lambda o: tls.ExponentialLR(o, 0.99), 400),
    (
        "linear",
        {"start_factor": 0.25, "end_factor": 0.9, "total_steps": 150},
        lambda o: tls.LinearLR(o, 0.25, 0.9, total_iters=150),
        300,
    ),
    (
        "linear",
        {"total_steps": 100},
        lambda o: tls.LinearLR(o, 1.0, 0.0, total_iters=100),
        200,
    ),
    (
        "linear",
        {"start_factor": 0.01, "end_factor": 1.0, "total_steps": 97},
        lambda o: tls.LinearLR(o, 0.01, 1.0, total_iters=97),
        200,
    ),
    (
        "polynomial",
        {"total_steps": 120, "power": 2.0},
        lambda o: tls.PolynomialLR(o, total_iters=120, power=2.0),
        250,
    ),
    (
        "polynomial",
        {"total_steps": 120, "power": 0.5},
        lambda o: tls.PolynomialLR(o, total_iters=120, power=0.5),
        250,
    ),
    # torch's CosineAnnealingLR rises again after T_max; ours holds: compare t <= T_max only
    ("cosine", {"t_max": 200}, lambda o: tls.CosineAnnealingLR(o, T_max=200), 201),
    (
        "cosine",
        {"t_max": 123, "min_factor": 0.1},
        lambda o: tls.CosineAnnealingLR(o, T_max=123, eta_min=0.1),
        124,
    ),
    (
        "cosine_restarts",
        {"t_0": 17, "min_factor": 0.05},
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=17, eta_min=0.05),
        300,
    ),
    (
        "cosine_restarts",
        {"t_0": 5, "t_mult": 2},
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2),
        500,
    ),
    (
        "cosine_restarts",
        {"t_0": 3, "t_mult": 3, "min_factor": 0.2},
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=3, eta_min=0.2),
        500,
    ),
    *[
        (
            "cyclic",
            {
                "min_factor": 0.1,
                "step_size_up": 20,
                "step_size_down": down,
                "mode": mode,
                "gamma": gamma,
            },
            (
                lambda o, down=down, mode=mode, gamma=gamma: tls.CyclicLR(
                    o,
                    base_lr=0.1,
                    max_lr=1.0,
                    step_size_up=20,
                    step_size_down=down,
                    mode=mode,
                    gamma=gamma,
                    cycle_momentum=False,
                )
            ),
            400,
        )
        for down, mode, gamma in [
            (None, "triangular", 1.0),
            (30, "triangular", 1.0),
            (7, "triangular2", 1.0),
            (None, "exp_range", 0.995),
            (13, "exp_range", 0.99),
        ]
    ],
    # OneCycleLR raises past total_steps and extrapolates at t == total_steps: compare t < total
    *[
        (
            "one_cycle",
            {
                "total_steps": total,
                "pct_start": pct,
                "anneal_strategy": strategy,
                "three_phase": three,
            },
            (
                lambda o, total=total, pct=pct, strategy=strategy, three=three: tls.OneCycleLR(
                    o,
                    max_lr=1.0,
                    total_steps=total,
                    pct_start=pct,
                    anneal_strategy=strategy,
                    three_phase=three,
                    cycle_momentum=False,
                )
            ),
            total,
        )
        for total, pct in [(200, 0.3), (97, 0.25)]
        for strategy in ("cos", "linear")
        for three in (False, True)
    ],
    (
        "one_cycle",
        {"total_steps": 150, "div_factor": 10.0, "final_div_factor": 100.0},
        lambda o: tls.OneCycleLR(
            o,
            max_lr=1.0,
            total_steps=150,
            div_factor=10.0,
            final_div_factor=100.0,
            cycle_momentum=False,
        ),
        150,
    ),
    (
        "warmup",
        {"steps": 50, "start_factor": 0.1, "then": {"name": "cosine", "params": {"t_max": 200}}},
        _linear_then(lambda o: tls.CosineAnnealingLR(o, T_max=200), 0.1, 50),
        251,
    ),
    (
        "warmup",
        {
            "steps": 30,
            "start_factor": 0.2,
            "then": {"name": "step", "params": {"step_size": 25, "gamma": 0.5}},
        },
        _linear_then(lambda o: tls.StepLR(o, 25, gamma=0.5), 0.2, 30),
        300,
    ),
]


@pytest.mark.parametrize(
    ("name", "params", "make", "horizon"),
    ORACLE,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(ORACLE)],
)
def test_matches_torch(name: str, params: dict[str, Any], make: Factory, horizon: int) -> None:
    expected = _torch_values(make, horizon)
    ours = _build(name, params, budget=None).values(range(horizon))
    for step, (a, b) in enumerate(zip(ours, expected, strict=True)):
        assert a == pytest.approx(b, rel=RTOL, abs=ATOL), (name, params, step, a, b)


def test_oracle_covers_every_torch_schedule() -> None:
    covered = {name for name, *_ in ORACLE}
    assert covered == set(ALL) - {"constant", "piecewise"}


def test_exponential_decay_steps_stretches_time() -> None:
    slow = _build("exponential", {"gamma": 0.5, "decay_steps": 100})
    assert slow(0) == 1.0
    assert slow(100) == pytest.approx(0.5, rel=1e-15)
    assert slow(50) == pytest.approx(math.sqrt(0.5), rel=1e-15)


def test_polynomial_end_factor() -> None:
    sched = _build("polynomial", {"total_steps": 100, "power": 2.0, "end_factor": 0.2})
    assert sched(0) == 1.0
    assert sched(50) == pytest.approx(0.8 * 0.25 + 0.2)
    assert sched(100) == sched(10**6) == pytest.approx(0.2)


def test_one_cycle_endpoints() -> None:
    sched = _build("one_cycle", {"total_steps": 1000, "div_factor": 20, "final_div_factor": 50})
    assert sched(0) == pytest.approx(1 / 20)
    assert sched(299) == pytest.approx(1.0)
    assert sched(999) == sched(1000) == sched(10**9) == pytest.approx(1 / 20 / 50)


def test_one_cycle_zero_length_phase_does_not_divide_by_zero() -> None:
    # pct_start * total_steps - 1 == 0: torch divides 0 by 0 at step 0
    sched = _build("one_cycle", {"total_steps": 10, "pct_start": 0.1})
    assert sched(0) == 1.0
    assert all(math.isfinite(v) for v in sched.values(range(20)))
    for total in (1, 2, 3):
        assert math.isfinite(_build("one_cycle", {"total_steps": total})(0))


def test_cyclic_triangular2_far_out_does_not_overflow() -> None:
    sched = _build("cyclic", {"step_size_up": 1, "mode": "triangular2", "min_factor": 0.25})
    assert sched(10**7 + 1) == 0.25


def test_cosine_restarts_huge_steps_exact() -> None:
    sched = _build("cosine_restarts", {"t_0": 10, "t_mult": 2})
    for n in (1, 10, 40, 60):
        start = 10 * (2**n - 1)  # cycle n starts here and lasts 10 * 2**n steps
        assert sched(start) == 1.0
        t_i = 10 * 2 ** (n - 1)  # the previous cycle, at its last step
        assert sched(start - 1) == (1 + math.cos(math.pi * (t_i - 1) / t_i)) / 2
        assert sched(start + 3) == (1 + math.cos(math.pi * 3 / (2 * t_i))) / 2


# ------------------------------------------------------------- formulas without an oracle


def test_constant() -> None:
    assert _build("constant").values(SAMPLE_STEPS) == [1.0] * len(SAMPLE_STEPS)
    assert _build("constant", budget=None)(10**12) == 1.0


def test_piecewise_hand_computed() -> None:
    sched = _build("piecewise", {"points": [[0, 1.0], [100, 0.5], [300, 0.0]]})
    expected = {0: 1.0, 50: 0.75, 100: 0.5, 200: 0.25, 250: 0.125, 300: 0.0, 10**9: 0.0}
    for step, value in expected.items():
        assert sched(step) == pytest.approx(value, abs=1e-15), step
    late = _build("piecewise", {"points": [[10, 2.0], [20, 4.0]]})
    assert late.values([0, 9, 10, 15, 19, 20, 10**6]) == [2.0, 2.0, 2.0, 3.0, 3.8, 4.0, 4.0]
    single = _build("piecewise", {"points": [[5, 0.3]]})
    assert single.values([0, 5, 6, 10**9]) == [0.3] * 4


def test_piecewise_accepts_mappings() -> None:
    pairs = _build("piecewise", {"points": [[0, 1.0], [100, 0.5]]})
    maps = _build("piecewise", {"points": [{"step": 0, "value": 1.0}, {"step": 100, "value": 0.5}]})
    assert maps == pairs
    assert maps.values(range(0, 200, 7)) == pairs.values(range(0, 200, 7))


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "at least 1"),
        ([[0, 1.0], [0, 0.5]], "strictly increasing"),
        ([[10, 1.0], [5, 0.5]], "strictly increasing"),
        ([[-1, 1.0]], "step must be >= 0"),
        ([[0, -0.5]], "greater than or equal to 0"),
        ([[0, float("nan")]], "finite"),
        ([[0, 1.0, 2.0]], "at most 2"),
        ([{"step": 0, "factor": 1.0}], "exactly the keys"),
        ("0:1", "list of"),
    ],
)
def test_piecewise_rejects(points: Any, message: str) -> None:
    with pytest.raises(PluginParamsError, match="points") as info:
        _entry("piecewise").validate_params({"points": points})
    assert message in str(info.value)


def test_piecewise_thousands_of_points() -> None:
    n = 5000
    points = [[i * 10, 1.0 / (1 + i)] for i in range(n)]
    sched = _build("piecewise", {"points": points})
    assert [sched(i * 10) for i in range(n)] == [1.0 / (1 + i) for i in range(n)]
    # Midpoints interpolate between neighbours (bisect finds the right segment).
    for i in (0, 1, 2500, n - 2):
        mid = (1.0 / (1 + i) + 1.0 / (2 + i)) / 2
        assert sched(i * 10 + 5) == pytest.approx(mid, rel=1e-12)


@pytest.mark.parametrize(
    ("name", "param"),
    [
        ("linear", "total_steps"),
        ("polynomial", "total_steps"),
        ("cosine", "t_max"),
        ("one_cycle", "total_steps"),
    ],
)
def test_horizon_defaults_to_budget(name: str, param: str) -> None:
    assert _entry(name).capabilities.needs_budget
    by_budget = _build(name, {}, budget=1000)
    explicit = _build(name, {param: 1000}, budget=None)
    assert by_budget.values(SAMPLE_STEPS) == explicit.values(SAMPLE_STEPS)
    with pytest.raises(ValueError, match=f"{name}: set {param} or give the trial a budget"):
        _build(name, {}, budget=None)
    with pytest.raises(ValueError, match=param):
        _build(name, {}, budget=0)


def test_budget_entries_are_exactly_those_with_a_horizon() -> None:
    needs = {n for n in ALL if _entry(n).capabilities.needs_budget}
    assert {"linear", "polynomial", "cosine", "one_cycle"} <= needs


def test_step_counts_accept_yaml_scientific_notation() -> None:
    params = _entry("cosine").validate_params({"t_max": "1e6"})
    assert params.model_dump()["t_max"] == 1_000_000
    with pytest.raises(PluginParamsError, match="t_max"):
        _entry("cosine").validate_params({"t_max": True})
    with pytest.raises(PluginParamsError, match="t_max"):
        _entry("cosine").validate_params({"t_max": "1.5e0"})


@pytest.mark.parametrize(
    ("milestones", "message"),
    [
        ([], "at least 1"),
        ([0, 5], "positive"),
        ([5, 5], "strictly increasing"),
        ([10, 3], "strictly increasing"),
    ],
)
def test_multistep_rejects(milestones: list[int], message: str) -> None:
    with pytest.raises(PluginParamsError, match="milestones") as info:
        _entry("multistep").validate_params({"milestones": milestones})
    assert message in str(info.value)


# --------------------------------------------------------------------------------- warmup


def test_warmup_shifts_inner_and_gives_it_the_rest_of_the_budget() -> None:
    warm = _build("warmup", {"steps": 100, "then": {"name": "cosine"}}, budget=1000)
    inner = _build("cosine", {"t_max": 900}, budget=None)
    assert warm.values([0, 50, 99]) == [0.0, 0.5, 0.99]
    for step in (100, 101, 550, 999, 1000, 5000):
        assert warm(step) == inner(step - 100)
    # a warm-up longer than the budget leaves the inner schedule a 1-step horizon
    assert _build("warmup", {"steps": 100, "then": "cosine"}, budget=50)(100) == 1.0


def test_warmup_default_then_is_constant_and_string_refs_work() -> None:
    params = _entry("warmup").validate_params({"steps": 10, "then": "cosine"})
    assert params.model_dump(mode="json")["then"] == {
        "name": "cosine",
        "params": {"t_max": None, "min_factor": 0.0},
    }
    assert _build("warmup", {"steps": 10}).values([0, 5, 10, 10**9]) == [0.0, 0.5, 1.0, 1.0]


def test_warmup_inner_without_horizon_or_budget() -> None:
    with pytest.raises(ValueError, match="cosine: set t_max"):
        _build("warmup", {"steps": 10, "then": "cosine"}, budget=None)


@pytest.mark.parametrize(
    ("then", "fragment"),
    [
        ({"name": "cosine", "params": {"t_max": -5}}, "t_max"),
        ({"name": "cosine", "params": {"nope": 1}}, "nope"),
        ({"name": "cosin"}, "unknown schedule 'cosin'"),
        ("no_such_schedule", "unknown schedule"),
    ],
)
def test_warmup_then_is_validated(then: Any, fragment: str) -> None:
    with pytest.raises(PluginParamsError, match="then") as info:
        _entry("warmup").validate_params({"steps": 10, "then": then})
    assert fragment in str(info.value)


# ------------------------------------------------------------------------ via the policy


def test_spec_reports_nested_schedule_errors() -> None:
    with pytest.raises(ValidationError, match="t_max"):
        LRPolicySpec.model_validate(
            {
                "lr": 1e-3,
                "schedule": {
                    "name": "warmup",
                    "params": {"steps": 100, "then": {"name": "cosine", "params": {"t_max": -5}}},
                },
            }
        )


def test_spec_lr_is_base_times_closed_form() -> None:
    spec = LRPolicySpec.model_validate(
        {
            "lr": 1e-3,
            "schedule": {"name": "warmup", "params": {"steps": 100, "then": {"name": "cosine"}}},
        }
    )
    dumped = spec.model_dump(mode="json")["schedule"]
    assert dumped["params"]["then"] == {
        "name": "cosine",
        "params": {"t_max": None, "min_factor": 0.0},
    }
    assert spec.short().split()[2] == "warmup+cosine"
    assert LRPolicySpec.model_validate(spec.model_dump(mode="json")) == spec
    policy = spec.build(budget=1000)
    for step in (0, 1, 50, 99, 100, 101, 550, 999, 1000, 10**6):
        if step < 100:
            expected = step / 100
        else:
            t = min(step - 100, 900)
            expected = (1 + math.cos(math.pi * t / 900)) / 2
        assert policy.lr(step) == pytest.approx(1e-3 * expected, rel=1e-12, abs=1e-18), step
