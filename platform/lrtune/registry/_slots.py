"""The registry objects, one per slot.

The registry room imports nothing of lrtune's other rooms; it only names the built-in modules
(strings), which are imported on first lookup so that every process sees the same entries.
"""

from __future__ import annotations

from typing import Any

from lrtune.registry._registry import Registry

schedules: Registry[Any] = Registry("schedules", builtin_modules=("lrtune.policies.schedules",))
optimizers: Registry[Any] = Registry("optimizers", builtin_modules=("lrtune.policies.optimizers",))
gradients: Registry[Any] = Registry("gradients", builtin_modules=("lrtune.policies.gradients",))
feedback: Registry[Any] = Registry("feedback", builtin_modules=("lrtune.policies.feedback",))
# Population-based training (pbt, pb2): Tune schedulers, built when a run starts.
populations: Registry[Any] = Registry(
    "populations", builtin_modules=("lrtune.policies.populations",)
)
# Searchers (Optuna samplers, the grid, other Tune searchers) and early-stopping schedulers:
# declared without Ray or Optuna, their Tune objects built when a run starts.
searchers: Registry[Any] = Registry("searchers", builtin_modules=("lrtune.search.searchers",))
schedulers: Registry[Any] = Registry("schedulers", builtin_modules=("lrtune.search.schedulers",))
# Agents (PPO, DQN, SAC): declared without Ray; their RLlib classes imported when a trial builds.
agents: Registry[Any] = Registry("agents", builtin_modules=("lrtune.agents._builtin",))

SLOTS: dict[str, Registry[Any]] = {
    "schedules": schedules,
    "optimizers": optimizers,
    "gradients": gradients,
    "feedback": feedback,
    "populations": populations,
    "searchers": searchers,
    "schedulers": schedulers,
    "agents": agents,
}
