"""Agents: the ``agents`` slot, one entry per RLlib algorithm lrtune tunes (PPO, DQN, SAC).

An entry (`AgentPlugin`) declares, without importing Ray, the RLlib config and lrtune learner
classes that build the algorithm, its optimizer roles, the hyper-parameters lrtune owns for it,
its divergence signals, network defaults and presets. Adding an agent is one entry (plus its
learner, usually a two-line mixin over RLlib's torch learner) and its tests; third-party agents
register through the entry-point group ``lrtune.agents``.
"""

from lrtune.agents._base import (
    ACTION_KINDS,
    COMMON_OWNED,
    MODEL_ROLE,
    AgentPlugin,
    AgentPresets,
    action_kind,
    load_attribute,
    offset_part,
    unbounded_part,
)
from lrtune.agents._envs import env_problem, require_env_id
from lrtune.registry import agents


def get_agent(name: str) -> AgentPlugin:
    """The entry called ``name`` (`lrtune.registry.UnknownPluginError` lists close matches)."""
    plugin: AgentPlugin = agents.build(name)
    return plugin


__all__ = [
    "ACTION_KINDS",
    "COMMON_OWNED",
    "MODEL_ROLE",
    "AgentPlugin",
    "AgentPresets",
    "action_kind",
    "env_problem",
    "get_agent",
    "load_attribute",
    "offset_part",
    "require_env_id",
    "unbounded_part",
]
