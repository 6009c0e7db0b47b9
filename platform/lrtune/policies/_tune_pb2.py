"""`QuietPB2`: Tune's PB2 without sklearn's warnings from its GP fits (imported when a PB2 is
built).

PB2 refits a Gaussian process on the population's few recent results at every exploit, and
sklearn warns when a kernel hyper-parameter ends at its bound ("The optimal value found for
dimension 0 of parameter epsilon is close to the specified lower bound"), which with a handful
of points is the usual case. The warning says nothing a job can change, and it interleaved with
the progress view (4 in a 2.5-minute PB2 run). Everything PB2 decides is Tune's.
"""

from __future__ import annotations

import warnings
from typing import Any

from ray.tune.schedulers.pb2 import PB2


class QuietPB2(PB2):
    """Tune's `PB2`, its GP fits' sklearn ``ConvergenceWarning``s silenced (nothing else)."""

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        """Called by Tune after each result; PB2 explores (fits its GP) from here."""
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            decision: str = super().on_trial_result(tune_controller, trial, result)
        return decision
