"""LARS and LAMB, torch optimizers written here (torch has neither).

A module apart from `lrtune.policies.optimizers` so that looking up an optimizer plugin (as job
validation does) does not import torch; the plugins import this module when they build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

Closure = Callable[[], Any]


def _run_closure(closure: Closure | None) -> Any:
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def _check_lr(lr: float) -> None:
    if not isinstance(lr, (int, float)) or lr < 0.0:
        raise ValueError(f"invalid learning rate {lr!r}: must be a float >= 0")


class LARS(torch.optim.Optimizer):
    """LARS (You, Gitman & Ginsburg 2017): SGD with momentum and a layer-wise trust ratio.

    For each parameter tensor ``w`` with gradient ``g`` (``η`` = trust coefficient, ``β`` =
    weight decay, ``lr`` = the group's rate, ``m`` = momentum)::

        λ = η·‖w‖ / (‖g‖ + β·‖w‖ + ε)      (λ = 1 where ‖w‖ = 0 or ‖g‖ = 0)
        d = λ·(g + β·w)
        v ← m·v + d                          (v = 0 before the first step)
        w ← w - lr·v

    With ``exclude_bias_and_norm`` the 1-D (and 0-D) tensors — biases and normalisation
    scales — get neither the trust ratio nor weight decay: ``d = g``. ``group["lr"]`` stays
    the base rate; ``λ`` is never written back to it.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        eps: float = 1e-8,
        exclude_bias_and_norm: bool = True,
    ) -> None:
        _check_lr(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"invalid momentum {momentum!r}: must be in [0, 1)")
        if weight_decay < 0.0:
            raise ValueError(f"invalid weight_decay {weight_decay!r}: must be >= 0")
        if trust_coefficient <= 0.0:
            raise ValueError(f"invalid trust_coefficient {trust_coefficient!r}: must be > 0")
        if eps < 0.0:
            raise ValueError(f"invalid eps {eps!r}: must be >= 0")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "eps": eps,
            "exclude_bias_and_norm": exclude_bias_and_norm,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One LARS step over every parameter that has a gradient; returns the closure's loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr: float = group["lr"]
            momentum: float = group["momentum"]
            wd: float = group["weight_decay"]
            coef: float = group["trust_coefficient"]
            eps: float = group["eps"]
            exclude: bool = group["exclude_bias_and_norm"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("LARS does not support sparse gradients")
                if exclude and p.ndim <= 1:
                    d = grad
                else:
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(grad)
                    ratio = coef * w_norm / (g_norm + wd * w_norm + eps)
                    ratio = torch.where((w_norm > 0) & (g_norm > 0), ratio, 1.0)
                    d = grad.add(p, alpha=wd) if wd != 0.0 else grad
                    d = d.mul(ratio)
                if momentum != 0.0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = torch.clone(d).detach()
                        state["momentum_buffer"] = buf
                    else:
                        buf.mul_(momentum).add_(d)
                    d = buf
                p.add_(d, alpha=-lr)
        return loss


class LAMB(torch.optim.Optimizer):
    """LAMB (You et al. 2019): Adam's direction scaled per layer by a clipped trust ratio.

    For each parameter tensor ``w`` with gradient ``g`` at step ``t`` (``lr`` = the
    group's rate, ``λ`` = weight decay)::

        m ← β₁·m + (1 - β₁)·g           v ← β₂·v + (1 - β₂)·g²
        m̂ = m / (1 - β₁ᵗ)               v̂ = v / (1 - β₂ᵗ)       (without bias correction: m, v)
        u = m̂ / (√v̂ + ε) + λ·w
        r = clamp(‖w‖ / ‖u‖, 0, clamp)  (r = 1 where ‖w‖ = 0 or ‖u‖ = 0)
        w ← w - lr·r·u

    With ``exclude_bias_and_norm`` the 1-D (and 0-D) tensors get neither the trust ratio nor
    weight decay (``r = 1``, ``λ = 0``): a plain Adam step. ``group["lr"]`` stays the base rate.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        clamp: float = 10.0,
        bias_correction: bool = True,
        exclude_bias_and_norm: bool = True,
    ) -> None:
        _check_lr(lr)
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas {betas!r}: each must be in [0, 1)")
        if eps < 0.0:
            raise ValueError(f"invalid eps {eps!r}: must be >= 0")
        if weight_decay < 0.0:
            raise ValueError(f"invalid weight_decay {weight_decay!r}: must be >= 0")
        if clamp <= 0.0:
            raise ValueError(f"invalid clamp {clamp!r}: must be > 0")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "clamp": clamp,
            "bias_correction": bias_correction,
            "exclude_bias_and_norm": exclude_bias_and_norm,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Any:  # type: ignore[override]
        """One LAMB step over every parameter that has a gradient; returns the closure's loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr: float = group["lr"]
            beta1, beta2 = group["betas"]
            eps: float = group["eps"]
            wd: float = group["weight_decay"]
            clamp: float = group["clamp"]
            exclude: bool = group["exclude_bias_and_norm"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError("LAMB does not support sparse gradients")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] = int(state["step"]) + 1
                t: int = state["step"]
                exp_avg: torch.Tensor = state["exp_avg"]
                exp_avg_sq: torch.Tensor = state["exp_avg_sq"]
                exp_avg.lerp_(grad, 1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                if group["bias_correction"]:
                    bc1 = 1.0 - beta1**t
                    bc2 = 1.0 - beta2**t
                else:
                    bc1 = bc2 = 1.0
                denom = (exp_avg_sq / bc2).sqrt_().add_(eps)
                update = (exp_avg / bc1).div_(denom)
                if exclude and p.ndim <= 1:
                    p.add_(update, alpha=-lr)
                    continue
                if wd != 0.0:
                    update.add_(p, alpha=wd)
                w_norm = torch.linalg.vector_norm(p)
                u_norm = torch.linalg.vector_norm(update)
                ratio = (w_norm / u_norm).clamp_(0.0, clamp)
                ratio = torch.where((w_norm > 0) & (u_norm > 0), ratio, 1.0)
                p.sub_(update.mul_(ratio * lr))
        return loss
