"""Where lrtune meets RLlib: learners that own the learning rate, and the config builder."""

from lrtune.learners._callbacks import (
    RESULT_KEY,
    EnvOutputError,
    EnvRaisedError,
    LRTuneCallbacks,
)
from lrtune.learners._config import (
    ModelSettings,
    TrialResources,
    build_algorithm_config,
    default_conv_filters,
)
from lrtune.learners._learner import (
    METRIC_KEYS,
    LRMismatchError,
    LRPolicyLearner,
    LRTuneDQNLearner,
    LRTunePPOLearner,
    LRTuneSACLearner,
)
from lrtune.learners._replay import LRTuneDQN, TransitionReplayBuffer

__all__ = [
    "METRIC_KEYS",
    "RESULT_KEY",
    "EnvOutputError",
    "EnvRaisedError",
    "LRMismatchError",
    "LRPolicyLearner",
    "LRTuneCallbacks",
    "LRTuneDQN",
    "LRTuneDQNLearner",
    "LRTunePPOLearner",
    "LRTuneSACLearner",
    "ModelSettings",
    "TransitionReplayBuffer",
    "TrialResources",
    "build_algorithm_config",
    "default_conv_filters",
]
