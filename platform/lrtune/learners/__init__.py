"""Where lrtune meets RLlib: learners that own the learning rate, and the config builder."""

from lrtune.learners._callbacks import RESULT_KEY, LRTuneCallbacks
from lrtune.learners._config import (
    AGENTS,
    ModelSettings,
    TrialResources,
    build_algorithm_config,
)
from lrtune.learners._learner import (
    LEARNERS,
    METRIC_KEYS,
    LRMismatchError,
    LRPolicyLearner,
    LRTuneDQNLearner,
    LRTunePPOLearner,
)

__all__ = [
    "AGENTS",
    "LEARNERS",
    "METRIC_KEYS",
    "RESULT_KEY",
    "LRMismatchError",
    "LRPolicyLearner",
    "LRTuneCallbacks",
    "LRTuneDQNLearner",
    "LRTunePPOLearner",
    "ModelSettings",
    "TrialResources",
    "build_algorithm_config",
]
