"""Tests of the built-in gradient gates: contract tests over every registered name, plus bounds."""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator

import pytest
import torch

from lrtune.policies._base import GradientGate
from lrtune.registry import gradients

NAMES = gradients.names()


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is far faster than many on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tensors(
    scale: float = 1.0, seed: int = 0, device: str = "cpu"
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Gradients and parameters of a small network: 2-D, 1-D, 4-D (conv) and 0-D tensors."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 5), (8,), (3, 2, 3, 3), (), (1, 4)]
    params = [torch.randn(s, generator=g) for s in shapes]
    grads = [torch.randn(s, generator=g) * scale for s in shapes]
    return [t.to(device) for t in grads], [t.to(device) for t in params]


def _global_norm(grads: list[torch.Tensor]) -> float:
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))


def _gate(name: str) -> GradientGate:
    entry = gradients.get(name)
    return entry.build(entry.example)


# ---------------------------------------------------------------------------------------------
# contract tests: every registered gate
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_example_and_defaults_build(name: str) -> None:
    entry = gradients.get(name)
    assert entry.description
    assert not entry.capabilities.stateful, "gates are stateless"
    for params in (entry.example, {}):
        gate = entry.build(params)
        assert isinstance(gate, GradientGate)
        grads, params_ = _tensors()
        gate.apply(grads, params_)
        assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_is_stateless_and_repr(name: str) -> None:
    gate = _gate(name)
    assert repr(gate).startswith(type(gate).__name__ + "(")
    for field in gradients.get(name).params_model.model_fields:
        assert f"{field}=" in repr(gate)
    first, params = _tensors(scale=5.0)
    gate.apply(first, params)  # a gate keeps nothing from one call to the next
    clone = pickle.loads(pickle.dumps(gate))
    assert repr(clone) == repr(gate)
    a, pa = _tensors(scale=5.0, seed=1)
    b, pb = _tensors(scale=5.0, seed=1)
    gate.apply(a, pa)
    clone.apply(b, pb)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("name", NAMES)
def test_in_place_and_params_untouched(name: str) -> None:
    grads, params = _tensors(scale=3.0)
    ids = [id(g) for g in grads]
    before = [p.clone() for p in params]
    _gate(name).apply(grads, params)
    assert [id(g) for g in grads] == ids
    for p, b in zip(params, before, strict=True):
        assert torch.equal(p, b)


@pytest.mark.parametrize("name", NAMES)
def test_nan_is_propagated(name: str) -> None:
    grads, params = _tensors(scale=3.0)
    grads[0][2, 3] = float("nan")
    _gate(name).apply(grads, params)
    assert torch.isnan(grads[0][2, 3]), "a NaN gradient must stay NaN"


@pytest.mark.parametrize("name", NAMES)
def test_empty_list_is_fine(name: str) -> None:
    _gate(name).apply([], [])


# ---------------------------------------------------------------------------------------------
# specific tests
# ---------------------------------------------------------------------------------------------


def test_none_leaves_grads() -> None:
    grads, params = _tensors(scale=100.0)
    before = [g.clone() for g in grads]
    gradients.build("none").apply(grads, params)
    for g, b in zip(grads, before, strict=True):
        assert torch.equal(g, b)


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_clip_global_norm_equals_torch(scale: float) -> None:
    grads, params = _tensors(scale=scale)
    gradients.build("clip_global_norm", {"max_norm": 0.5}).apply(grads, params)
    ref_params = [torch.nn.Parameter(p.clone()) for p in params]
    ref_grads, _ = _tensors(scale=scale)
    for p, g in zip(ref_params, ref_grads, strict=True):
        p.grad = g
    torch.nn.utils.clip_grad_norm_(ref_params, max_norm=0.5)
    for g, p in zip(grads, ref_params, strict=True):
        assert p.grad is not None
        torch.testing.assert_close(g, p.grad, rtol=1e-6, atol=1e-7)
    assert _global_norm(grads) <= 0.5 + 1e-6


def test_clip_global_norm_leaves_small_grads() -> None:
    grads, params = _tensors(scale=1e-3)
    before = [g.clone() for g in grads]
    gradients.build("clip_global_norm", {"max_norm": 10.0}).apply(grads, params)
    for g, b in zip(grads, before, strict=True):
        assert torch.equal(g, b)


def test_clip_norm_bounds_each_tensor() -> None:
    grads, params = _tensors(scale=10.0)
    grads[3].fill_(1e-4)  # a tiny one stays as it is
    tiny = grads[3].clone()
    gradients.build("clip_norm", {"max_norm": 0.7}).apply(grads, params)
    for g in grads:
        assert float(torch.linalg.vector_norm(g)) <= 0.7 + 1e-6
    assert float(torch.linalg.vector_norm(grads[0])) == pytest.approx(0.7, rel=1e-5)
    torch.testing.assert_close(grads[3], tiny, rtol=1e-6, atol=0)


def test_clip_value_bounds_each_element() -> None:
    grads, params = _tensors(scale=10.0)
    ref, _ = _tensors(scale=10.0)
    gradients.build("clip_value", {"clip_value": 0.3}).apply(grads, params)
    ref_params = [torch.nn.Parameter(p.clone()) for p in params]
    for p, r in zip(ref_params, ref, strict=True):
        p.grad = r
    torch.nn.utils.clip_grad_value_(ref_params, 0.3)
    for g, r in zip(grads, ref, strict=True):
        assert float(g.abs().max()) <= 0.3 + 1e-7
        assert torch.equal(g, r)


def _unit_norms(x: torch.Tensor) -> torch.Tensor:
    if x.ndim <= 1:
        return torch.linalg.vector_norm(x).reshape(1)
    return torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1)


def test_agc_unitwise_bound_and_small_grads_untouched() -> None:
    clipping, eps = 0.01, 1e-3
    grads, params = _tensors(scale=1.0)
    params[4].zero_()  # a zero-initialised layer: the eps floor applies
    small = grads[1].clone().mul_(1e-4)  # ‖g‖ far below 0.01·‖w‖: untouched
    grads[1].copy_(small)
    before = [g.clone() for g in grads]
    gradients.build("agc", {"clipping": clipping, "eps": eps}).apply(grads, params)
    for g, w, b in zip(grads, params, before, strict=True):
        limit = clipping * _unit_norms(w).clamp(min=eps)
        g_norm = _unit_norms(g)
        assert bool((g_norm <= limit + 1e-6).all())
        # Units that were above the limit now sit on it; the direction is kept.
        was_above = _unit_norms(b) > limit
        torch.testing.assert_close(g_norm[was_above], limit[was_above], rtol=1e-5, atol=1e-7)
        assert bool((torch.sign(g) == torch.sign(b)).all())
    assert torch.equal(grads[1], small)


def test_agc_rows_are_independent() -> None:
    w = torch.tensor([[1.0, 0.0], [100.0, 0.0]])
    g = torch.tensor([[1.0, 0.0], [0.5, 0.0]])  # row 0: 1 > 0.01; row 1: 0.5 < 1 untouched
    gradients.build("agc").apply([g], [w])
    torch.testing.assert_close(g, torch.tensor([[0.01, 0.0], [0.5, 0.0]]))


def test_normalize_gives_unit_global_norm() -> None:
    for scale in (1e-3, 1.0, 1e3):
        grads, params = _tensors(scale=scale)
        gradients.build("normalize").apply(grads, params)
        assert _global_norm(grads) == pytest.approx(1.0, rel=1e-5)
    zeros = [torch.zeros(3), torch.zeros(2, 2)]
    gradients.build("normalize").apply(zeros, [torch.ones(3), torch.ones(2, 2)])
    assert all(bool((z == 0).all()) for z in zeros)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name: str) -> None:
    gate = _gate(name)
    cpu, pc = _tensors(scale=5.0)
    gpu, pg = _tensors(scale=5.0, device="cuda")
    gate.apply(cpu, pc)
    gate.apply(gpu, pg)
    for c, g in zip(cpu, gpu, strict=True):
        assert g.is_cuda
        torch.testing.assert_close(g.cpu(), c, rtol=1e-5, atol=1e-6)
