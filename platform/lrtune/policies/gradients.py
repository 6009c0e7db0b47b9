"""Built-in gradient gates: transformations of the gradients before the optimizer step.

Gates are stateless and modify the gradients in place, with ``torch._foreach_*`` kernels where
torch has them (one launch per device and dtype on CUDA). Non-finite gradients are never
turned into finite values: a NaN or inf gradient leaves a NaN or inf behind, for the learner's
divergence checks to see.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pydantic import Field

from lrtune.policies._base import GradientGate
from lrtune.registry import Capabilities, NoParams, PluginParams, gradients

# torch.nn.utils.clip_grad_norm_'s guard against a zero norm in max_norm / (norm + _TINY).
_TINY = 1e-6


def _global_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all ``grads`` together (on the first gradient's device)."""
    norms = torch._foreach_norm(list(grads), 2.0)
    device = grads[0].device
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]), 2.0)


def _scale_all(grads: Sequence[torch.Tensor], scale: torch.Tensor) -> None:
    """Multiply every gradient in place by the 0-d tensor ``scale`` (moved to each device)."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    for device, group in by_device.items():
        torch._foreach_mul_(group, scale.to(device))


@gradients.register("none", params=NoParams, capabilities=Capabilities(), example={})
class NoGating(GradientGate):
    """Leave gradients as they are."""

    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        return None


class ClipNormParams(PluginParams):
    """Parameters of `clip_norm`."""

    max_norm: float = Field(1.0, gt=0.0, le=1e6, description="largest L2 norm of each tensor")


@gradients.register(
    "clip_norm", params=ClipNormParams, capabilities=Capabilities(), example={"max_norm": 0.5}
)
class ClipNorm(GradientGate):
    """Clip each gradient tensor's L2 norm to max_norm, separately (g ← g·min(1, c/‖g‖))."""

    params: ClipNormParams

    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        if not grads:
            return
        grads = list(grads)
        norms = torch._foreach_norm(grads, 2.0)
        torch._foreach_add_(norms, _TINY)
        torch._foreach_reciprocal_(norms)
        torch._foreach_mul_(norms, self.params.max_norm)
        torch._foreach_clamp_max_(norms, 1.0)  # NaN stays NaN
        torch._foreach_mul_(grads, norms)


class ClipGlobalNormParams(PluginParams):
    """Parameters of `clip_global_norm`."""

    max_norm: float = Field(
        0.5, gt=0.0, le=1e6, description="largest L2 norm of all gradients together"
    )


@gradients.register(
    "clip_global_norm",
    params=ClipGlobalNormParams,
    capabilities=Capabilities(),
    example={"max_norm": 1.0},
)
class ClipGlobalNorm(GradientGate):
    """Clip the global L2 norm of all gradients to max_norm (torch's clip_grad_norm_)."""

    params: ClipGlobalNormParams

    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        if not grads:
            return
        total = _global_norm(grads)
        coef = torch.clamp(self.params.max_norm / (total + _TINY), max=1.0)
        _scale_all(grads, coef)


class ClipValueParams(PluginParams):
    """Parameters of `clip_value`."""

    clip_value: float = Field(
        1.0, gt=0.0, le=1e6, description="each gradient element is clipped to ±clip_value"
    )


@gradients.register(
    "clip_value", params=ClipValueParams, capabilities=Capabilities(), example={"clip_value": 0.1}
)
class ClipValue(GradientGate):
    """Clip every gradient element to [-clip_value, clip_value] (torch's clip_grad_value_)."""

    params: ClipValueParams

    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        if not grads:
            return
        grads = list(grads)
        c = self.params.clip_value
        torch._foreach_clamp_min_(grads, -c)
        torch._foreach_clamp_max_(grads, c)


class AGCParams(PluginParams):
    """Parameters of `agc`."""

    clipping: float = Field(
        0.01, gt=0.0, le=1e3, description="λ: largest ratio ‖g‖/‖w‖ per unit (output row)"
    )
    eps: float = Field(1e-3, gt=0.0, le=1.0, description="floor of ‖w‖ (zero-init weights)")


def _unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    """‖x‖ per output unit: over all dims but 0 for ≥2-D tensors, the whole tensor otherwise."""
    if x.ndim <= 1:
        return torch.linalg.vector_norm(x)
    return torch.linalg.vector_norm(x, 2.0, dim=tuple(range(1, x.ndim)), keepdim=True)


@gradients.register(
    "agc", params=AGCParams, capabilities=Capabilities(), example={"clipping": 0.02}
)
class AGC(GradientGate):
    """Adaptive gradient clipping, unit-wise (Brock et al. 2021): ‖g‖ ≤ λ·max(‖w‖, ε)."""

    params: AGCParams

    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        clipping, eps = self.params.clipping, self.params.eps
        for g, w in zip(grads, params, strict=True):
            w_norm = _unitwise_norm(w.detach()).clamp_(min=eps)
            g_norm = _unitwise_norm(g)
            max_norm = w_norm.mul_(clipping)
            # Where the norm is NaN the comparison is False: the NaN gradient is left as it is.
            scale = torch.where(g_norm > max_norm, max_norm / g_norm.clamp(min=_TINY), 1.0)
            g.mul_(scale)


class NormalizeParams(PluginParams):
    """Parameters of `normalize`."""

    eps: float = Field(
        1e-6, gt=0.0, le=1.0, description="floor of the global norm (zero gradients stay zero)"
    )


@gradients.register(
    "normalize", params=NormalizeParams, capabilities=Capabilities(), example={"eps": 1e-8}
)
class Normalize(GradientGate):
    """Scale all gradients to unit global L2 norm: g ← g / max(‖g‖, ε)."""

    params: NormalizeParams

    def apply(self, grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        if not grads:
            return
        total = _global_norm(grads)
        _scale_all(grads, 1.0 / torch.clamp(total, min=self.params.eps))
