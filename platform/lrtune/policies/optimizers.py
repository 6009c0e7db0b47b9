"""Built-in optimizers: torch's own where torch has one; LARS and LAMB written here.

Every optimizer puts all parameters in param groups whose ``"lr"`` is the rate given to
``build``. The learner sets and reads ``group["lr"]`` before every update; for the layer-wise
optimizers (`LARS`, `LAMB`) it is the *base* rate, and each layer's trust ratio is applied
inside ``step`` without ever being written back to the group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from lrtune.policies._base import OptimizerPlugin
from lrtune.registry import Capabilities, PluginParams, optimizers

if TYPE_CHECKING:
    import torch

    from lrtune.policies._layerwise import LAMB, LARS

__all__ = ["LAMB", "LARS"]


def __getattr__(name: str) -> Any:
    # LARS and LAMB are torch classes: imported on first use, so that looking up a plugin
    # (job validation) does not import torch.
    if name in ("LARS", "LAMB"):
        from lrtune.policies import _layerwise

        return getattr(_layerwise, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------
# torch optimizers
# ---------------------------------------------------------------------------------------------


class TorchOptimizer(OptimizerPlugin):
    """An optimizer plugin that is one of torch's: ``torch.optim.<torch_name>(parameters, lr=lr,
    **kwargs)`` with the plugin's parameters as keyword arguments (``torch_kwargs`` maps them
    where the names differ), plus ``foreach=True`` when every parameter is on the CPU (see
    `build`). Named, not held, so that a plugin lookup does not import torch."""

    #: The class's name in ``torch.optim``.
    torch_name: ClassVar[str]

    def torch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the torch class (default: the parameters as they are)."""
        return self.params.model_dump()

    def build(self, parameters: Sequence[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        import torch

        optimizer_class = getattr(torch.optim, self.torch_name)
        kwargs = self.torch_kwargs()
        parameters = list(parameters)
        # On CPU torch steps parameter by parameter unless told otherwise (its multi-tensor
        # "foreach" kernels are its default on CUDA only). They compute the same values bit for
        # bit (tests/policies/test_optimizers.py) in about 0.6x the CPU time of an Adam step for
        # an RL-sized MLP.
        if parameters and all(p.device.type == "cpu" for p in parameters):
            kwargs["foreach"] = True
        optimizer: torch.optim.Optimizer = optimizer_class(parameters, lr=lr, **kwargs)
        return optimizer


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
    torch_name = "Adam"

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
    torch_name = "AdamW"


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
    torch_name = "RMSprop"


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
    torch_name = "Adagrad"


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
    torch_name = "Adadelta"


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
    torch_name = "SGD"


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
        from lrtune.policies._layerwise import LARS

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
        from lrtune.policies._layerwise import LAMB

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
