"""Tests of the built-in feedback rules: contract tests over every registered name, plus oracles."""

from __future__ import annotations

import json
import math
import pickle
import random
from typing import Any

import pytest
import torch

from lrtune.policies._base import FeedbackRule, FeedbackState, IterationSignals, UpdateSignals
from lrtune.registry import feedback

NAMES = feedback.names()
NAN = float("nan")


def _rule(name: str, params: dict[str, Any] | None = None) -> FeedbackRule:
    entry = feedback.get(name)
    return entry.build(entry.example if params is None else params)


def _signals(n: int = 120, seed: int = 0) -> list[tuple[UpdateSignals, IterationSignals]]:
    """A varied run: noisy losses with spikes and NaNs, KLs around 0.01, returns with gaps."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        loss = 1.0 + 0.3 * rng.random()
        if i % 17 == 16:
            loss *= 1000.0
        if i % 23 == 22:
            loss = NAN
        upd = UpdateSignals(
            env_steps=100 * i, loss=loss, grads_finite=(i % 31 != 30), grad_norm=1.0
        )
        kl = None if i % 13 == 0 else 0.01 * math.exp(rng.uniform(-3.0, 3.0))
        ret = None if i % 7 == 3 else (math.sin(i / 9.0) * 10.0 + rng.gauss(0.0, 1.0))
        out.append((upd, IterationSignals(env_steps=100 * i, kl=kl, episode_return=ret)))
    return out


def _run(
    rule: FeedbackRule, signals: list[tuple[UpdateSignals, IterationSignals]], state: FeedbackState
) -> tuple[list[tuple[float, bool, bool]], FeedbackState]:
    trace = []
    for upd, it in signals:
        state, skip = rule.on_update(state, upd)
        state = rule.on_iteration(state, it)
        trace.append((rule.factor(state), skip, rule.diverged(state)))
    return trace, state


# ---------------------------------------------------------------------------------------------
# contract tests: every registered rule
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_example_and_defaults_build(name: str) -> None:
    entry = feedback.get(name)
    assert entry.description
    assert entry.capabilities.stateful
    for params in (entry.example, {}):
        rule = entry.build(params)
        assert isinstance(rule, FeedbackRule)
        state = rule.initial_state()
        assert rule.factor(state) == 1.0
        assert not rule.diverged(state)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_and_repr(name: str) -> None:
    rule = _rule(name)
    assert repr(rule).startswith(type(rule).__name__ + "(")
    for field in feedback.get(name).params_model.model_fields:
        assert f"{field}=" in repr(rule)
    clone = pickle.loads(pickle.dumps(rule))
    assert repr(clone) == repr(rule)
    signals = _signals(60)
    assert _run(rule, signals, rule.initial_state()) == _run(clone, signals, clone.initial_state())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("defaults", [True, False], ids=["defaults", "example"])
def test_state_json_round_trip(name: str, defaults: bool) -> None:
    rule = _rule(name, {} if defaults else None)
    signals = _signals(120)
    whole, _ = _run(rule, signals, rule.initial_state())
    first, mid = _run(rule, signals[:57], rule.initial_state())
    text = json.dumps(mid, allow_nan=False)  # strict JSON: no NaN/Infinity in a state
    restored = json.loads(text)
    assert all(isinstance(v, (int, float)) for v in restored.values())
    second, _ = _run(rule, signals[57:], restored)
    assert first + second == whole
    assert len({f for f, _, _ in whole}) > 1, "the signals should move this rule's factor"


@pytest.mark.parametrize("name", NAMES)
def test_rules_do_not_mutate_the_given_state(name: str) -> None:
    rule = _rule(name)
    state = rule.initial_state()
    frozen = dict(state)
    for upd, it in _signals(40):
        new, _ = rule.on_update(state, upd)
        new = rule.on_iteration(new, it)
        assert state == frozen
        state, frozen = new, dict(new)


@pytest.mark.parametrize("name", NAMES)
def test_factor_stays_positive_and_finite(name: str) -> None:
    rule = _rule(name, {})
    trace, _ = _run(rule, _signals(300, seed=5), rule.initial_state())
    assert all(math.isfinite(f) and f > 0 for f, _, _ in trace)


# ---------------------------------------------------------------------------------------------
# kl_adaptive
# ---------------------------------------------------------------------------------------------


def _kl(rule: FeedbackRule, state: FeedbackState, kl: float | None) -> FeedbackState:
    return rule.on_iteration(state, IterationSignals(env_steps=0, kl=kl))


def test_kl_adaptive_moves_and_clamps() -> None:
    assert feedback.get("kl_adaptive").capabilities.agents == frozenset({"ppo"})
    rule = _rule("kl_adaptive", {"target": 0.01, "factor": 1.5})
    s0 = rule.initial_state()
    assert rule.factor(_kl(rule, s0, 0.1)) == pytest.approx(1 / 1.5)
    assert rule.factor(_kl(rule, s0, 0.001)) == pytest.approx(1.5)
    assert rule.factor(_kl(rule, s0, 0.01)) == 1.0  # inside the band [target/2, target·2]
    assert rule.factor(_kl(rule, s0, 0.019)) == 1.0
    for kl in (None, NAN, float("inf")):
        assert _kl(rule, s0, kl) == s0
    s = s0
    for _ in range(100):
        s = _kl(rule, s, 0.1)
    assert rule.factor(s) == pytest.approx(0.01)
    for _ in range(100):
        s = _kl(rule, s, 0.0001)
    assert rule.factor(s) == pytest.approx(10.0)
    assert rule.on_update(s, UpdateSignals(0, NAN, False, NAN)) == (s, False)


# ---------------------------------------------------------------------------------------------
# plateau: torch's ReduceLROnPlateau (mode max, base lr 1, eps 0) is the oracle
# ---------------------------------------------------------------------------------------------


def _rng_returns(seed: int, n: int) -> list[float | None]:
    rng = random.Random(seed)
    return [None if rng.random() < 0.15 else rng.gauss(0.0, 1.0) + 0.02 * i for i in range(n)]


SEQUENCES: dict[str, list[float | None]] = {
    "rising": [float(i) for i in range(40)],
    "flat": [5.0] * 60,
    "negative_flat": [-5.0] * 40,
    "tiny_gains": [100.0 + 0.001 * i for i in range(60)],
    "noisy": _rng_returns(1, 150),
    "noisy_negative": [None if r is None else r - 50.0 for r in _rng_returns(2, 150)],
    "rise_then_fall": [float(min(i, 30 - i)) for i in range(60)],
    "with_gaps": [1.0, None, 2.0, None, None, 2.0, 2.0, None, 2.0, 2.0, 2.0, 3.0] * 6,
}

PLATEAU_PARAMS: list[dict[str, Any]] = [
    {},
    {"patience": 0},
    {"patience": 3, "factor": 0.3, "cooldown": 2},
    {"patience": 2, "threshold": 0.01, "threshold_mode": "abs", "cooldown": 1},
    {"patience": 1, "threshold": 0.05, "threshold_mode": "rel", "min_factor": 0.1},
    {"patience": 4, "factor": 0.9, "threshold": 0.0, "min_factor": 0.0},
]


@pytest.mark.parametrize("params", PLATEAU_PARAMS, ids=lambda p: json.dumps(p, sort_keys=True))
@pytest.mark.parametrize("seq", list(SEQUENCES), ids=str)
def test_plateau_equals_torch(params: dict[str, Any], seq: str) -> None:
    rule = _rule("plateau", params)
    p: Any = rule.params
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    oracle = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt,
        mode="max",
        factor=p.factor,
        patience=p.patience,
        threshold=p.threshold,
        threshold_mode=p.threshold_mode,
        cooldown=p.cooldown,
        min_lr=p.min_factor,
        eps=0.0,
    )
    state = rule.initial_state()
    cuts = 0
    for i, ret in enumerate(SEQUENCES[seq]):
        before = rule.factor(state)
        state = rule.on_iteration(state, IterationSignals(env_steps=i, episode_return=ret))
        if ret is None:
            assert rule.factor(state) == before
            continue
        oracle.step(ret)
        assert rule.factor(state) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), i
        cuts += rule.factor(state) < before
        state = json.loads(json.dumps(state, allow_nan=False))
    if seq == "rising":
        assert cuts == 0
    if seq == "flat" and params == {}:
        assert cuts == 60 // 11


def test_plateau_ignores_updates_and_nonfinite_returns() -> None:
    rule = _rule("plateau", {"patience": 0})
    s = rule.on_iteration(rule.initial_state(), IterationSignals(0, episode_return=1.0))
    assert rule.on_update(s, UpdateSignals(0, NAN, False, NAN)) == (s, False)
    assert rule.on_iteration(s, IterationSignals(0, episode_return=NAN)) == s


# ---------------------------------------------------------------------------------------------
# divergence_guard
# ---------------------------------------------------------------------------------------------


def _upd(loss: float, grads_finite: bool = True) -> UpdateSignals:
    return UpdateSignals(env_steps=0, loss=loss, grads_finite=grads_finite, grad_norm=1.0)


def _warm(rule: FeedbackRule, n: int, loss: float = 1.0) -> FeedbackState:
    s = rule.initial_state()
    for _ in range(n):
        s, skip = rule.on_update(s, _upd(loss))
        assert not skip
    return s


def test_divergence_guard_nan_loss_and_grads() -> None:
    rule = _rule("divergence_guard", {})
    s, skip = rule.on_update(rule.initial_state(), _upd(NAN))
    assert skip and rule.factor(s) == 0.5 and s["events"] == 1 and s["consecutive"] == 1
    s, skip = rule.on_update(s, _upd(float("inf")))
    assert skip and rule.factor(s) == 0.25 and s["consecutive"] == 2
    s, skip = rule.on_update(s, _upd(1.0, grads_finite=False))
    assert skip and rule.factor(s) == 0.125 and s["events"] == 3
    assert s["seen"] == 0  # nothing bad enters the running mean
    s, skip = rule.on_update(s, _upd(1.0))
    assert not skip and s["consecutive"] == 0 and rule.factor(s) == 0.125  # no recovery


def test_divergence_guard_spikes() -> None:
    rule = _rule("divergence_guard", {"warmup_updates": 5, "spike_factor": 10.0})
    s = rule.initial_state()
    s, skip = rule.on_update(s, _upd(2.0))
    assert not skip and s["ema"] == 2.0 and s["seen"] == 1
    s, skip = rule.on_update(s, _upd(1000.0))  # during warm-up: not judged, enters the mean
    assert not skip
    s = _warm(rule, 0)
    s = _warm(rule, 5, loss=1.0)
    s, skip = rule.on_update(s, _upd(9.9))
    assert not skip
    s = _warm(rule, 5, loss=1.0)
    ema = s["ema"]
    s, skip = rule.on_update(s, _upd(10.5))
    assert skip and rule.factor(s) == 0.5 and s["ema"] == ema  # spikes leave the mean alone
    s, skip = rule.on_update(s, _upd(-50.0))  # |loss| is what counts
    assert skip and s["events"] == 2
    s, skip = rule.on_update(s, _upd(1.2))
    assert not skip and s["ema"] == pytest.approx(0.9 * ema + 0.1 * 1.2)


def test_divergence_guard_accepts_a_persistent_finite_rise_as_a_new_level() -> None:
    rule = _rule("divergence_guard", {"warmup_updates": 2, "spike_patience": 3})
    s = _warm(rule, 3, loss=1.0)
    skips = []
    for _ in range(5):  # the loss jumps 100x and stays there (returns, hence value loss, grew)
        s, skip = rule.on_update(s, _upd(100.0))
        skips.append(skip)
    assert skips == [True, True, True, False, False]
    assert s["ema"] == pytest.approx(0.9 * 100.0 + 0.1 * 100.0)
    assert s["events"] == 3 and not rule.diverged(s)


def test_divergence_guard_non_finite_events_do_not_count_towards_spike_patience() -> None:
    rule = _rule("divergence_guard", {"warmup_updates": 1, "spike_patience": 1})
    s = _warm(rule, 2, loss=1.0)
    for _ in range(3):
        s, _ = rule.on_update(s, _upd(NAN))
    s, skip = rule.on_update(s, _upd(100.0))
    assert skip and s["spike_run"] == 1


def test_divergence_guard_max_events_floor_and_recovery() -> None:
    rule = _rule("divergence_guard", {"max_events": 3, "min_factor": 0.2, "recovery": 2.0})
    s = rule.initial_state()
    for i in range(3):
        assert not rule.diverged(s)
        s, skip = rule.on_update(s, _upd(NAN))
        assert skip
        assert rule.factor(s) == max(0.5 ** (i + 1), 0.2)
    assert rule.diverged(s)
    assert rule.factor(s) == 0.2  # floored
    s, _ = rule.on_update(s, _upd(1.0))
    assert rule.factor(s) == 0.4
    s, _ = rule.on_update(s, _upd(1.0))
    s, _ = rule.on_update(s, _upd(1.0))
    assert rule.factor(s) == 1.0  # recovery is capped at 1
    assert rule.diverged(s)  # events are never forgotten
    assert rule.on_iteration(s, IterationSignals(0, kl=1.0, episode_return=1.0)) == s
