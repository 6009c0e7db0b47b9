"""The plugin registry: one `Registry` object per slot, and the errors of lookups.

Slots: `schedules`, `optimizers`, `gradients` (gradient gating), `feedback` (rules that react to
training signals), `populations` (population-based schedules), `searchers` (what proposes each
trial), `schedulers` (early stopping) and `agents` (the RLlib algorithms tuned). Third-party
distributions add entries through the entry-point groups ``lrtune.<slot>``.
"""

from lrtune.registry._errors import (
    DuplicatePluginError,
    LRTuneError,
    PluginLoadError,
    PluginParamsError,
    SpecError,
    UnknownPluginError,
)
from lrtune.registry._registry import (
    Capabilities,
    Entry,
    NoParams,
    PluginParams,
    Registry,
    format_validation_error,
)
from lrtune.registry._slots import (
    SLOTS,
    agents,
    feedback,
    gradients,
    optimizers,
    populations,
    schedulers,
    schedules,
    searchers,
)

__all__ = [
    "SLOTS",
    "Capabilities",
    "DuplicatePluginError",
    "Entry",
    "LRTuneError",
    "NoParams",
    "PluginLoadError",
    "PluginParams",
    "PluginParamsError",
    "Registry",
    "SpecError",
    "UnknownPluginError",
    "agents",
    "feedback",
    "format_validation_error",
    "gradients",
    "optimizers",
    "populations",
    "schedulers",
    "schedules",
    "searchers",
]
