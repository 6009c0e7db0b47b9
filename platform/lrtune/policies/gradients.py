"""Built-in gradient gates: transformations of the gradients before the optimizer step.

Norms and clipping are torch's own where torch has them (``torch.nn.utils.get_total_norm``,
``clip_grad_norm_``, ``clip_grad_value_``), so the gates keep torch's formulas and its
one-launch-per-device-and-dtype ``foreach`` kernels. Where torch has no public function
(per-tensor norm clipping, scaling to unit norm) the gates use the ``torch._foreach_*`` kernels
torch's own clipping uses; `lrtune._upstream` lists them. Gates are stateless and modify the
gradients in place. Non-finite gradients are never turned into finite values: a NaN or inf
gradient leaves a NaN or inf behind, for the learner's divergence checks to see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from lrtune.policies._base import GradientGate
from lrtune.registry import Capabilities, NoParams, PluginParams, gradients

if TYPE_CHECKING:
    import torch

# torch is imported where a gate runs (in the learner), not here: looking up a gate (job
# validation) must not import it.

# torch.nn.utils.clip_grad_norm_'s guard against a zero norm in max_norm / (norm + 1e-6); the
# per-tensor clip below uses the same one so that it equals clip_grad_norm_ on each tensor.
_TINY = 1e-6


def _as_parameters(grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``grads`` as the ``.grad`` of tensors, the form ``torch.nn.utils``' clipping takes.

    Gates receive the gradient tensors themselves; each becomes the ``.grad`` of a detached alias
    of itself (a view: nothing is copied), so torch's in-place clipping changes ``grads``.
    """
    holders = []
    for grad in grads:
        holder = grad.detach()
        holder.grad = grad
        holders.append(holder)
    return holders


def _scale_all(grads: Sequence[torch.Tensor], scale: torch.Tensor) -> None:
    """Multiply every gradient in place by the 0-d tensor ``scale`` (moved to each device)."""
    import torch

    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for g in grads:
        by_device.setdefault(g.device, []).append(g)
    for device, group in by_device.items():
        torch._foreach_mul_(group, scale.to(device))


@gradients.register("none", params=NoParams, capabilities=Capabilities(), example={})
class NoGating(GradientGate):
    """Leave gradients as they are."""

    changes_gradients = False

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
        import torch

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
        import torch

        if not grads:
            return
        torch.nn.utils.clip_grad_norm_(_as_parameters(grads), self.params.max_norm)


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
        import torch

        if not grads:
            return
        torch.nn.utils.clip_grad_value_(_as_parameters(grads), self.params.clip_value)


class AGCParams(PluginParams):
    """Parameters of `agc`."""

    clipping: float = Field(
        0.01, gt=0.0, le=1e3, description="λ: largest ratio ‖g‖/‖w‖ per unit (output row)"
    )
    eps: float = Field(1e-3, gt=0.0, le=1.0, description="floor of ‖w‖ (zero-init weights)")


def _unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    """‖x‖ per output unit: over all dims but 0 for ≥2-D tensors, the whole tensor otherwise."""
    import torch

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
        import torch

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
        import torch

        if not grads:
            return
        total = torch.nn.utils.get_total_norm(grads)
        _scale_all(grads, 1.0 / torch.clamp(total, min=self.params.eps))
