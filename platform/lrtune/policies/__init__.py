"""Learning-rate policies: the slot bases, the policy spec, and (in submodules) the built-ins.

``lrtune.policies.schedules``, ``.optimizers``, ``.gradients`` and ``.feedback`` register the
built-in entries of each slot when imported (the registry imports them on first lookup).
"""

from lrtune.policies._base import (
    FeedbackRule,
    FeedbackState,
    GradientGate,
    IterationSignals,
    OptimizerPlugin,
    Schedule,
    UpdateSignals,
)
from lrtune.policies._spec import (
    PLUGIN_SLOTS,
    LRPolicy,
    LRPolicySpec,
    PluginRef,
    PolicyError,
    RolePolicy,
)

__all__ = [
    "PLUGIN_SLOTS",
    "FeedbackRule",
    "FeedbackState",
    "GradientGate",
    "IterationSignals",
    "LRPolicy",
    "LRPolicySpec",
    "OptimizerPlugin",
    "PluginRef",
    "PolicyError",
    "RolePolicy",
    "Schedule",
    "UpdateSignals",
]
