"""Tests of the built-in optimizers: contract tests over every registered name, plus references."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from lrtune.policies._base import OptimizerPlugin
from lrtune.policies.optimizers import LAMB, LARS, TorchOptimizer
from lrtune.registry import PluginParamsError, optimizers

NAMES = optimizers.names()
# Rates at which 30 full-batch updates of the toy regression clearly reduce its loss.
TRAIN_LR = {"adadelta": 1.0, "lars": 1.0}
DEFAULT_TRAIN_LR = 1e-2


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread is far faster than many on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(64, 4, generator=g)
    y = x @ torch.randn(4, 2, generator=g) + 1.0
    return x, y


def _step(model: torch.nn.Module, opt: torch.optim.Optimizer) -> float:
    x, y = _batch()
    opt.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    return float(loss.detach())


def _plugin(name: str) -> OptimizerPlugin:
    entry = optimizers.get(name)
    return entry.build(entry.example)


# ---------------------------------------------------------------------------------------------
# contract tests: every registered optimizer
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_example_and_defaults_build(name: str) -> None:
    entry = optimizers.get(name)
    assert entry.description, "the first docstring line is the description"
    for params in (entry.example, {}):
        plugin = entry.build(params)
        assert isinstance(plugin, OptimizerPlugin)
        opt = plugin.build(list(_model().parameters()), 1e-3)
        assert isinstance(opt, torch.optim.Optimizer)


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip_and_repr(name: str) -> None:
    plugin = _plugin(name)
    clone = pickle.loads(pickle.dumps(plugin))
    assert repr(clone) == repr(plugin)
    assert repr(plugin).startswith(type(plugin).__name__ + "(")
    for field in optimizers.get(name).params_model.model_fields:
        assert f"{field}=" in repr(plugin)
    a, b = _model(), _model()
    opt_a = plugin.build(list(a.parameters()), 1e-2)
    opt_b = clone.build(list(b.parameters()), 1e-2)
    for _ in range(2):
        _step(a, opt_a)
        _step(b, opt_b)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str) -> None:
    plugin = _plugin(name)
    model = _model()
    opt = plugin.build(list(model.parameters()), 1e-2)
    for _ in range(3):
        _step(model, opt)
    saved = copy.deepcopy(opt.state_dict())
    twin = copy.deepcopy(model)
    twin_opt = plugin.build(list(twin.parameters()), 1e-2)
    twin_opt.load_state_dict(saved)
    _step(model, opt)
    _step(twin, twin_opt)
    for pa, pb in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", NAMES)
def test_trains_toy_regression(name: str) -> None:
    model = _model()
    lr = TRAIN_LR.get(name, DEFAULT_TRAIN_LR)
    opt = optimizers.build(name).build(list(model.parameters()), lr)
    losses = [_step(model, opt) for _ in range(30)]
    x, y = _batch()
    with torch.no_grad():
        final = float(torch.nn.functional.mse_loss(model(x), y))
    assert final < 0.7 * losses[0], (name, losses[0], final)
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_param_groups_carry_the_given_lr(name: str) -> None:
    model = _model()
    params = list(model.parameters())
    opt = _plugin(name).build(params, 0.0123)
    grouped = [p for g in opt.param_groups for p in g["params"]]
    assert len(grouped) == len(params)
    assert {id(p) for p in grouped} == {id(p) for p in params}
    assert all(g["lr"] == 0.0123 for g in opt.param_groups)
    for lr in (0.005, 0.0007):
        for g in opt.param_groups:
            g["lr"] = lr
        _step(model, opt)
        assert all(g["lr"] == lr for g in opt.param_groups)


TORCH_NAMES = [name for name in NAMES if isinstance(_plugin(name), TorchOptimizer)]


@pytest.mark.parametrize("name", TORCH_NAMES)
def test_cpu_steps_take_torchs_foreach_kernels_with_the_same_values(name: str) -> None:
    """On CPU the plugin asks torch for its multi-tensor kernels (faster); every weight after
    60 steps at a changing rate equals torch's per-parameter loop bit for bit."""
    plugin = _plugin(name)
    kwargs = plugin.torch_kwargs()  # type: ignore[attr-defined]
    lr = TRAIN_LR.get(name, DEFAULT_TRAIN_LR)
    fast_model, loop_model = _model(), _model()
    fast = plugin.build(list(fast_model.parameters()), lr=lr)
    loop = getattr(torch.optim, plugin.torch_name)(  # type: ignore[attr-defined]
        list(loop_model.parameters()), lr=lr, foreach=False, **kwargs
    )
    assert fast.param_groups[0]["foreach"] is True
    for i in range(60):
        for opt in (fast, loop):
            for group in opt.param_groups:
                group["lr"] = lr * (1.0 - i / 60)
        _step(fast_model, fast)
        _step(loop_model, loop)
    for a, b in zip(fast_model.parameters(), loop_model.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", NAMES)
def test_zero_lr_leaves_weights(name: str) -> None:
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = _plugin(name).build(list(model.parameters()), 0.0)
    _step(model, opt)
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p, b)


# ---------------------------------------------------------------------------------------------
# specific tests
# ---------------------------------------------------------------------------------------------


def test_sgd_nesterov_validation() -> None:
    with pytest.raises(PluginParamsError, match="nesterov"):
        optimizers.build("sgd", {"nesterov": True})
    with pytest.raises(PluginParamsError, match="dampening"):
        optimizers.build("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1})
    optimizers.build("sgd", {"nesterov": True, "momentum": 0.9})


def test_yaml_style_string_numbers_are_accepted() -> None:
    plugin = optimizers.build("adam", {"eps": "1e-5"})
    assert plugin.params.eps == 1e-5


def test_adam_one_step_by_hand() -> None:
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    w0 = np.array([0.5, -1.0, 2.0])
    g = np.array([0.3, -0.02, 1e-4])
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = optimizers.build("adam").build([p], lr)
    p.grad = torch.tensor(g)
    opt.step()
    m = (1 - b1) * g
    v = (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    expected = w0 - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=0, atol=1e-12)


def _norm(x: np.ndarray) -> float:
    return float(np.sqrt(np.sum(x * x)))


def _lars_reference(
    ws: list[np.ndarray],
    grads_per_step: list[list[np.ndarray]],
    lr: float,
    momentum: float,
    wd: float,
    eta: float,
    eps: float,
) -> list[np.ndarray]:
    """LARS from You et al. 2017 (Alg. 1), lr outside the momentum buffer; 1-D excluded."""
    ws = [w.copy() for w in ws]
    vs = [np.zeros_like(w) for w in ws]
    for grads in grads_per_step:
        for i, (w, g) in enumerate(zip(ws, grads, strict=True)):
            if w.ndim <= 1:
                d = g
            else:
                wn, gn = _norm(w), _norm(g)
                local = eta * wn / (gn + wd * wn + eps) if wn > 0 and gn > 0 else 1.0
                d = local * (g + wd * w)
            vs[i] = momentum * vs[i] + d
            ws[i] = w - lr * vs[i]
    return ws


def _lamb_reference(
    ws: list[np.ndarray],
    grads_per_step: list[list[np.ndarray]],
    lr: float,
    b1: float,
    b2: float,
    eps: float,
    wd: float,
    clamp: float,
) -> list[np.ndarray]:
    """LAMB from You et al. 2019 (Alg. 2), trust ratio ‖w‖/‖u‖ clipped to [0, clamp]."""
    ws = [w.copy() for w in ws]
    ms = [np.zeros_like(w) for w in ws]
    vs = [np.zeros_like(w) for w in ws]
    for t, grads in enumerate(grads_per_step, start=1):
        for i, (w, g) in enumerate(zip(ws, grads, strict=True)):
            ms[i] = b1 * ms[i] + (1 - b1) * g
            vs[i] = b2 * vs[i] + (1 - b2) * g * g
            r = (ms[i] / (1 - b1**t)) / (np.sqrt(vs[i] / (1 - b2**t)) + eps)
            if w.ndim <= 1:
                ws[i] = w - lr * r
                continue
            u = r + wd * w
            wn, un = _norm(w), _norm(u)
            trust = min(max(wn / un, 0.0), clamp) if wn > 0 and un > 0 else 1.0
            ws[i] = w - lr * trust * u
    return ws


def _small_problem(steps: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    rng = np.random.default_rng(3)
    ws = [rng.normal(size=(3, 4)), rng.normal(size=(3,)), np.zeros((2, 3)), rng.normal(size=(2, 2))]
    grads = [[rng.normal(size=w.shape) * 0.1 for w in ws] for _ in range(steps)]
    grads[0][3] = np.zeros((2, 2))  # a zero gradient: trust ratio falls back to 1
    return ws, grads


def _run_torch(
    opt_cls: type[torch.optim.Optimizer],
    ws: list[np.ndarray],
    grads: list[list[np.ndarray]],
    **kw: Any,
) -> list[np.ndarray]:
    params = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float32)) for w in ws]
    opt = opt_cls(params, **kw)
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=True):
            p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    return [p.detach().double().numpy() for p in params]


def test_lars_matches_numpy_reference() -> None:
    ws, grads = _small_problem(steps=3)
    kw = {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.01, "eps": 1e-8}
    got = _run_torch(LARS, ws, grads, trust_coefficient=0.02, **kw)
    want = _lars_reference(ws, grads, eta=0.02, wd=0.01, lr=0.5, momentum=0.9, eps=1e-8)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)
    assert not np.allclose(got[0], ws[0])  # it moved


@pytest.mark.parametrize("clamp", [10.0, 0.5])
def test_lamb_matches_numpy_reference(clamp: float) -> None:
    ws, grads = _small_problem(steps=3)
    got = _run_torch(
        LAMB, ws, grads, lr=0.05, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01, clamp=clamp
    )
    want = _lamb_reference(ws, grads, lr=0.05, b1=0.9, b2=0.999, eps=1e-6, wd=0.01, clamp=clamp)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


def test_lamb_trust_ratio_is_applied() -> None:
    # A large weight with a unit-ish Adam direction: the step is lr·‖w‖/‖u‖·u, not lr·u.
    w = torch.nn.Parameter(torch.full((4, 4), 3.0))
    opt = LAMB([w], lr=0.01, weight_decay=0.0)
    w.grad = torch.ones(4, 4)
    opt.step()
    # u = m̂/(√v̂+ε) ≈ 1 everywhere, ‖u‖ ≈ 4, ‖w‖ = 12: trust = 3, step = 0.03.
    torch.testing.assert_close(w.detach(), torch.full((4, 4), 2.97), atol=1e-5, rtol=0)
    assert opt.param_groups[0]["lr"] == 0.01


def test_lars_excludes_1d_params_and_can_include_them() -> None:
    b = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = LARS([b], lr=0.1, momentum=0.0)
    b.grad = torch.tensor([1.0, 1.0])
    opt.step()
    torch.testing.assert_close(b.detach(), torch.tensor([0.9, 1.9]))
    c = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = LARS([c], lr=0.1, momentum=0.0, trust_coefficient=0.01, exclude_bias_and_norm=False)
    c.grad = torch.tensor([0.6, 0.8])  # ‖g‖ = 1, ‖w‖ = 5: ratio 0.05
    opt.step()
    torch.testing.assert_close(c.detach(), torch.tensor([3.0 - 0.003, 4.0 - 0.004]))


@pytest.mark.parametrize("cls", [LARS, LAMB])
def test_layerwise_closure_and_missing_grads(cls: type[LARS] | type[LAMB]) -> None:
    model = _model()
    opt = cls(model.parameters(), lr=0.01)
    x, y = _batch()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor)
    first = next(model.parameters())
    first.grad = None
    before = first.detach().clone()
    opt.step()  # a parameter without a gradient is skipped
    assert torch.equal(first, before)


@pytest.mark.parametrize("cls", [LARS, LAMB])
def test_layerwise_reject_bad_arguments(cls: type[LARS] | type[LAMB]) -> None:
    with pytest.raises(ValueError, match="learning rate"):
        cls([torch.nn.Parameter(torch.ones(2))], lr=-1.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name: str) -> None:
    plugin = _plugin(name)
    cpu = _model().double()
    gpu = copy.deepcopy(cpu).cuda()
    opt_cpu = plugin.build(list(cpu.parameters()), 1e-2)
    opt_gpu = plugin.build(list(gpu.parameters()), 1e-2)
    x, y = (t.double() for t in _batch())
    for model, opt, (xx, yy) in ((cpu, opt_cpu, (x, y)), (gpu, opt_gpu, (x.cuda(), y.cuda()))):
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(xx), yy).backward()
            opt.step()
    for pc, pg in zip(cpu.parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(pg.cpu(), pc, rtol=1e-9, atol=1e-9)
    assert all(g["lr"] == 1e-2 for g in opt_gpu.param_groups)
