"""`LRTunePBT`: Tune's PBT with an explore step per parameter (imported when a PBT is built).

What is written here rather than taken from Tune as it is: PBT's perturbation with
*per-parameter* factors, done in value space for log-scaled parameters and clamped to the
bounds (Tune's PBT multiplies every parameter by the same global factors and never clamps).
Everything else (quantiles, checkpoint-and-exploit, ``pbt_global.txt``) is Tune's.
"""

from __future__ import annotations

import copy
from typing import Any

from ray.tune.schedulers import PopulationBasedTraining
from ray.tune.schedulers.pbt import _explore

from lrtune.policies.populations import PopulationSetup


class LRTunePBT(PopulationBasedTraining):
    """Tune's PBT with per-parameter factors, log-scaled parameters and bounds.

    Only `_get_new_config` (the explore step) differs: each mutable parameter goes through
    Tune's own ``_explore`` on its own, in value space (a log-scaled base LR is multiplied, not
    its log), with its own factors, and the result is clamped to the parameter's bounds.
    """

    def __init__(self, setup: PopulationSetup, **kwargs: Any) -> None:
        self._setup = setup
        super().__init__(**kwargs)

    def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict[str, Any], dict]:
        from ray import tune

        config = copy.deepcopy(trial_to_clone.config)
        coords = self._setup.coords_of(config)
        operations: dict[str, Any] = {}
        for path, param in self._setup.mutable.items():
            value = param.to_value(path, float(coords[path]))
            domain = (
                tune.loguniform(param.low, param.high)
                if param.is_log(path)
                else tune.uniform(param.low, param.high)
            )
            new, ops = _explore(
                {"v": value},
                {"v": domain},
                self._resample_probability,
                param.perturbation_factors(),  # type: ignore[arg-type]
                None,
            )
            moved = float(new["v"])
            if param.is_log(path) and moved <= 0:  # cannot happen with positive factors
                moved = param.low
            coords[path] = param.to_coord(path, moved)
            operations[path] = ops.get("v", "")
        return self._setup.clamp(config), self._setup.nest(operations)
