"""Built-in optimizers: torch's own where torch has one; LARS and LAMB written here.

Every optimizer puts all parameters in param groups whose ``"lr"`` is the rate given to
``build``. The learner sets and reads ``group["lr"]`` before every update; for the layer-wise
optimizers (`LARS`, `LAMB`) it is the *base* rate, and each layer's trust ratio is applied
inside ``step`` without ever being written back to the group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator

from lrtune.policies._base import OptimizerPlugin
from lrtune.registry import Capabilities, PluginParams, optimizers

__all__ = ["LAMB", "LARS"]


# ---------------------------------------------------------------------------------------------
# torch optimizers
# ---------------------------------------------------------------------------------------------


class TorchOptimizer(OptimizerPlugin):
    """An optimizer plugin that is one of torch's: ``torch_class(parameters, lr=lr, **kwargs)``
    with the plugin's parameters as keyword arguments (``torch_kwargs`` maps them where the names
    differ)."""

    torch_class: ClassVar[Callable[..., torch.optim.Optimizer]]

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``torch_class`` (default: the parameters as they are)."""
        return self.params.model_dump()

    def build(self, parameters: Sequence[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        return self.torch_class(parameters, lr=lr, **self.torch_kwargs())


class AdamParams(PluginParams):
    """Parameters of `adam` (torch.optim.Adam)."""

    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="first-moment decay")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="second-moment decay")
    eps: float = Field(1e-8, gt=0.0, le=1.0, description="denominator term")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty (coupled)")
    amsgrad: bool = Field(False, description="use the AMSGrad variant")


@optimizers.register("adam", params=AdamParams, capabilities=Capabilities(), example={"eps": 1e-5})
class Adam(TorchOptimizer):
    """Adam (torch.optim.Adam): θ ← θ - η·m̂/(√v̂ + ε)."""

    params: AdamParams
    torch_class: ClassVar[Callable[..., torch.optim.Optimizer]] = torch.optim.Adam

    def torch_kwargs(self) -> dict[str, Any]:
        """torch takes the two decays as one ``betas`` pair."""
        kwargs = self.params.model_dump()
        kwargs["betas"] = (kwargs.pop("beta1"), kwargs.pop("beta2"))
        return kwargs


class AdamWParams(AdamParams):
    """Parameters of `adamw` (torch.optim.AdamW): Adam's, with decoupled weight decay."""

    weight_decay: float = Field(
        0.01, ge=0.0, le=1.0, description="decoupled weight decay (θ ← θ - η·λ·θ)"
    )


@optimizers.register(
    "adamw",
    params=AdamWParams,
    capabilities=Capabilities(),
    example={"weight_decay": 0.05, "eps": 1e-5},
)
class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay."""

    params: AdamWParams
    torch_class = torch.optim.AdamW


class RMSpropParams(PluginParams):
    """Parameters of `rmsprop` (torch.optim.RMSprop)."""

    alpha: float = Field(0.99, ge=0.0, le=1.0, description="smoothing of the squared gradient")
    eps: float = Field(1e-8, gt=0.0, le=1.0, description="denominator term")
    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="momentum factor")
    centered: bool = Field(False, description="normalise by the gradient's estimated variance")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty (coupled)")


@optimizers.register(
    "rmsprop",
    params=RMSpropParams,
    capabilities=Capabilities(),
    example={"alpha": 0.95, "eps": 1e-5, "centered": True},
)
class RMSprop(TorchOptimizer):
    """RMSprop (torch.optim.RMSprop): θ ← θ - η·g/(√E[g²] + ε)."""

    params: RMSpropParams
    torch_class = torch.optim.RMSprop


class AdagradParams(PluginParams):
    """Parameters of `adagrad` (torch.optim.Adagrad)."""

    lr_decay: float = Field(
        0.0, ge=0.0, le=1.0, description="rate decay: η_t = η / (1 + (t - 1)·lr_decay)"
    )
    eps: float = Field(1e-10, gt=0.0, le=1.0, description="denominator term")
    initial_accumulator_value: float = Field(
        0.0, ge=0.0, le=1e6, description="start value of the sum of squared gradients"
    )
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty (coupled)")


@optimizers.register(
    "adagrad",
    params=AdagradParams,
    capabilities=Capabilities(),
    example={"initial_accumulator_value": 0.1},
)
class Adagrad(TorchOptimizer):
    """Adagrad (torch.optim.Adagrad): θ ← θ - η·g/(√Σg² + ε)."""

    params: AdagradParams
    torch_class = torch.optim.Adagrad


class AdadeltaParams(PluginParams):
    """Parameters of `adadelta` (torch.optim.Adadelta)."""

    rho: float = Field(0.9, ge=0.0, le=1.0, description="smoothing of the running averages")
    eps: float = Field(1e-6, gt=0.0, le=1.0, description="term added inside the square roots")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty (coupled)")


@optimizers.register(
    "adadelta", params=AdadeltaParams, capabilities=Capabilities(), example={"rho": 0.95}
)
class Adadelta(TorchOptimizer):
    """Adadelta (torch.optim.Adadelta): step sizes from running RMS of steps and gradients."""

    params: AdadeltaParams
    torch_class = torch.optim.Adadelta


class SGDParams(PluginParams):
    """Parameters of `sgd` (torch.optim.SGD)."""

    momentum: float = Field(0.0, ge=0.0, lt=1.0, description="momentum factor")
    dampening: float = Field(0.0, ge=0.0, le=1.0, description="dampening of the momentum")
    nesterov: bool = Field(False, description="Nesterov momentum (needs momentum > 0)")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="L2 penalty (coupled)")

    @model_validator(mode="after")
    def _check_nesterov(self) -> SGDParams:
        if self.nesterov and (self.momentum <= 0.0 or self.dampening != 0.0):
            raise ValueError(
                "nesterov=true needs momentum > 0 and dampening = 0 "
                f"(got momentum={self.momentum}, dampening={self.dampening})"
            )
        return self


@optimizers.register(
    "sgd",
    params=SGDParams,
    capabilities=Capabilities(),
    example={"momentum": 0.9, "nesterov": True},
)
class SGD(TorchOptimizer):
    """SGD (torch.optim.SGD), optionally with (Nesterov) momentum."""

    params: SGDParams
    torch_class = torch.optim.SGD


# ---------------------------------------------------------------------------------------------
# Layer-wise optimizers written here
# ---------------------------------------------------------------------------------------------

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


class LARSParams(PluginParams):
    """Parameters of `lars` (`LARS`)."""

    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="momentum factor")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="weight decay β (in the ratio)")
    trust_coefficient: float = Field(
        0.001, gt=0.0, le=1.0, description="η: the layer rate is η·‖w‖/(‖g‖ + β‖w‖ + ε)"
    )
    eps: float = Field(1e-8, ge=0.0, le=1.0, description="denominator term of the trust ratio")
    exclude_bias_and_norm: bool = Field(
        True, description="1-D tensors (biases, norm scales) get no trust ratio and no decay"
    )


@optimizers.register(
    "lars",
    params=LARSParams,
    capabilities=Capabilities(),
    example={"momentum": 0.9, "weight_decay": 1e-4, "trust_coefficient": 0.02},
)
class LARSOptimizer(OptimizerPlugin):
    """LARS (You et al. 2017): momentum SGD with a layer-wise trust ratio; lr is the base rate."""

    params: LARSParams

    def build(self, parameters: Sequence[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        p = self.params
        return LARS(
            parameters,
            lr=lr,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            trust_coefficient=p.trust_coefficient,
            eps=p.eps,
            exclude_bias_and_norm=p.exclude_bias_and_norm,
        )


class LAMBParams(PluginParams):
    """Parameters of `lamb` (`LAMB`)."""

    beta1: float = Field(0.9, ge=0.0, lt=1.0, description="first-moment decay")
    beta2: float = Field(0.999, ge=0.0, lt=1.0, description="second-moment decay")
    eps: float = Field(1e-6, gt=0.0, le=1.0, description="denominator term")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="decoupled weight decay λ")
    clamp: float = Field(10.0, gt=0.0, le=1e6, description="upper clip of the trust ratio ‖w‖/‖u‖")
    bias_correction: bool = Field(True, description="divide the moments by 1 - βᵗ")
    exclude_bias_and_norm: bool = Field(
        True, description="1-D tensors (biases, norm scales) get no trust ratio and no decay"
    )


@optimizers.register(
    "lamb",
    params=LAMBParams,
    capabilities=Capabilities(),
    example={"weight_decay": 0.0, "clamp": 5.0},
)
class LAMBOptimizer(OptimizerPlugin):
    """LAMB (You et al. 2019): Adam with a clipped layer-wise trust ratio; lr is the base rate."""

    params: LAMBParams

    def build(self, parameters: Sequence[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        p = self.params
        return LAMB(
            parameters,
            lr=lr,
            betas=(p.beta1, p.beta2),
            eps=p.eps,
            weight_decay=p.weight_decay,
            clamp=p.clamp,
            bias_correction=p.bias_correction,
            exclude_bias_and_norm=p.exclude_bias_and_norm,
        )
