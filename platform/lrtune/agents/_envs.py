"""Whether an agent can act in an env, checked where a run starts: the env is built once with
the job's ``env.config`` (and reset and stepped once), never at validation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrtune._env_ids import check_env_id, register_lrtune_envs
from lrtune.agents._base import (
    ACTION_KINDS,
    READABLE_OBSERVATIONS,
    action_kind,
    offset_part,
    unbounded_part,
    unreadable_part,
)
from lrtune.registry import SpecError
from lrtune.registry import agents as agent_registry


def env_problem(
    env_id: str, agent: str, env_config: Mapping[str, Any], must_build: bool
) -> tuple[str, str | None]:
    """(field, why a run of ``agent`` on ``env_id`` would fail every trial), the reason None
    when nothing is found. Builds the env once with ``env_config`` and checks, in order:

    * that it builds here (``must_build``; False where the trials run elsewhere);
    * that its action and observation spaces start at 0 (`offset_part`) and its observations
      are readable (`unreadable_part`);
    * that ``agent`` acts in its kind of actions (`AgentPlugin.action_spaces`), within finite
      bounds where it squashes them (`AgentPlugin.squashes_actions`, `unbounded_part`);
    * that its first reset and step follow gymnasium's API (`lrtune.envs.check.api_problem`;
      ``must_build`` only).

    Called where a run starts and by ``lrtune presets``, never at validation."""
    import gymnasium
    import numpy as np
    from gymnasium import spaces

    register_lrtune_envs(env_id)

    plugin = agent_registry.build(agent)
    kinds = plugin.action_spaces
    try:
        env = gymnasium.make(env_id, **dict(env_config))
    except Exception as exc:  # the trials would fail the same way
        if not must_build:
            return "env.id", None
        why = f"{env_id!r} cannot be built here ({type(exc).__name__}: {str(exc)[:300]})"
        if isinstance(exc, ImportError | gymnasium.error.DependencyNotInstalled):
            return "env.id", (
                f"{why}; install the package it needs in this environment (where the trials "
                "run), or choose another env"
            )
        return ("env.config" if env_config else "env.id"), (
            f"{why}; every trial would fail the same way: fix "
            + ("the env's keyword arguments" if env_config else "the environment")
        )
    from lrtune.learners._config import remember_env_facts

    try:
        space, observations = env.action_space, env.observation_space
        remember_env_facts(env_id, env_config, env)  # the presets and trials read them
        api = _api_problem(env) if must_build else None
    finally:
        env.close()
    for what, part in (
        ("actions", offset_part(space)),
        ("observations", offset_part(observations)),
    ):
        if part is not None:
            return "env.id", (
                f"{env_id!r} has {what} {part}, whose values do not start at 0; RLlib ignores a "
                f"space's start (it acts with 0..n-1 and one-hot encodes from 0), so every "
                f"trial would fail: declare the space with start 0 and add the offset in the "
                f"env (or a gymnasium wrapper), or choose another env"
            )
    unreadable = unreadable_part(observations)
    if unreadable is not None:
        return "env.id", (
            f"{env_id!r} has observations {unreadable}, which RLlib's networks cannot read "
            f"(they read {READABLE_OBSERVATIONS}), so every trial would fail: encode them as "
            "one of those in the env (text as token ids in a MultiDiscrete, a sequence padded "
            "to a Box), or choose another env"
        )
    kind = action_kind(space)
    if kind is None:
        if isinstance(space, spaces.MultiBinary) and len(space.shape) == 1:
            fix = f"declare it as MultiDiscrete({[2] * int(space.n)}) (the same actions), "
        elif isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.integer):
            counts = (space.high - space.low + 1).ravel().tolist()
            shift = "" if not space.low.any() else " and add the Box's low in the env"
            fix = f"declare it as MultiDiscrete({counts}) (the same actions){shift}, "
        elif isinstance(space, spaces.Box) and len(space.shape) > 1:
            size = math.prod(space.shape)
            fix = f"declare it as a 1-D Box of shape ({size},) and reshape in the env, "
        else:
            fix = "change the env's action space to one of them, "
        return "env.id", (
            f"{env_id!r} has actions {space}, for which RLlib has no action distribution "
            f"(agents act in {', '.join(ACTION_KINDS.values())}): {fix}or choose "
            "another env"
        )
    unbounded = unbounded_part(space) if plugin.squashes_actions else None
    if kind in kinds and unbounded is not None:
        others = _agents_for(kind, unbounded=True)
        return "env.id", (
            f"{env_id!r} has actions {unbounded}, with an infinite bound; agent '{agent}' "
            "squashes its actions into a Box's bounds, and RLlib leaves those of a Box without "
            "finite bounds in [-1, 1], so no trial could act outside them: declare the finite "
            "range the env accepts (or rescale in a gymnasium wrapper)"
            + (f", or choose agent {' or '.join(others)}" if others else "")
        )
    if kind in kinds:
        if api is None:
            return "env.id", None
        # A reset or step that raised with keyword arguments given: they are the likelier cause.
        field = "env.config" if env_config and api.startswith(_RAISED) else "env.id"
        return field, f"{env_id!r}: {api}; every trial would fail the same way"
    others = _agents_for(kind)
    choose = (
        f"choose agent {' or '.join(others)}, or another env" if others else "choose another env"
    )
    return "env.id", (
        f"{env_id!r} has {kind.replace('_', '-')} actions ({space}) and agent '{agent}' "
        f"handles {' and '.join(k.replace('_', '-') for k in sorted(kinds))} ones only: {choose}"
    )


_RAISED = "its first reset or step raised"


def _agents_for(kind: str, *, unbounded: bool = False) -> list[str]:
    """The registered agents that act in ``kind`` of actions (`ACTION_KINDS`), leaving out,
    for a Box with an infinite bound (``unbounded``), those that squash their actions."""
    found = []
    for name in agent_registry.names():
        entry = agent_registry.build(name)
        if kind in entry.action_spaces and not (unbounded and entry.squashes_actions):
            found.append(name)
    return found


def _api_problem(env: Any) -> str | None:
    """`lrtune.envs.check.api_problem` of ``env``, or what its reset or step raised."""
    from lrtune.envs.check import api_problem

    try:
        return api_problem(env)
    except Exception as exc:  # any failure of a user's reset or step
        return f"{_RAISED} {type(exc).__name__}: {str(exc)[:300]}"


def require_env_id(
    env_id: str,
    agent: str | None = None,
    *,
    env_config: Mapping[str, Any] | None = None,
    must_build: bool = True,
) -> None:
    """Raise `SpecError` (exit 2) unless ``env_id`` can be built here (imports its module)
    and, given ``agent``, has actions the agent handles, spaces that start at 0 and a first
    reset and step that follow gymnasium's API (`lrtune.envs.check.api_problem`): builds the
    env once, with ``env_config``, and steps it once.

    ``must_build``: an env that fails to build or step here (a package it needs is missing, its
    ``env.config`` is refused) is refused too, since every trial would fail the same way;
    False where the trials run elsewhere (``lrtune submit``: the cluster may have what this
    machine lacks). Called where a run starts (before anything is written), not at validation.
    """
    field, problem = "env.id", check_env_id(env_id, import_module=True)
    if problem is None and agent is not None:
        field, problem = env_problem(env_id, agent, env_config or {}, must_build)
    if problem:
        raise SpecError(f"{field}: {problem}")
