"""The RLlib callback that closes each training iteration for lrtune's learners."""

from __future__ import annotations

import math
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core import ALL_MODULES

#: Top-level key of lrtune's metrics in every training result (Tune flattens to ``lrtune/lr``).
RESULT_KEY = "lrtune"


def _end_iteration(learner: Any, episode_return: float | None) -> dict[str, float]:
    return learner.end_iteration(episode_return)  # type: ignore[no-any-return]


class LRTuneCallbacks(RLlibCallback):
    """Feeds iteration signals to the learners' feedback rules and surfaces lrtune's metrics.

    `on_train_result` runs once per iteration in the algorithm's process, after the
    iteration's updates: it sends the mean episode return to every learner (which combine it
    with the KL they measured) and copies the learners' ``lrtune_*`` metrics into
    ``result["lrtune"]``.
    """

    def on_train_result(
        self, *, algorithm: Any, metrics_logger: Any = None, result: dict[str, Any], **kwargs: Any
    ) -> None:
        """Called by RLlib at the end of every `Algorithm.train()` call."""
        env_results = result.get("env_runners", {}) or {}
        ret = env_results.get("episode_return_mean")
        ret = float(ret) if ret is not None and math.isfinite(float(ret)) else None
        outcomes = algorithm.learner_group.foreach_learner(_end_iteration, episode_return=ret)
        learner_results = (result.get("learners", {}) or {}).get(ALL_MODULES, {}) or {}
        metrics = {
            key[len("lrtune_") :]: float(value)
            for key, value in learner_results.items()
            if key.startswith("lrtune_")
        }
        # A local learner group answers with plain values, a remote one with call results.
        for outcome in outcomes:
            value = outcome.get() if hasattr(outcome, "ok") else outcome
            if isinstance(value, dict) and "feedback_factor" in value:
                metrics["next_feedback_factor"] = float(value["feedback_factor"])
                break
        result[RESULT_KEY] = metrics
