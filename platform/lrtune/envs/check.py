"""A run-start probe of an environment: one ``reset`` and one ``step``, checked against
gymnasium's API and the env's declared spaces.

RLlib's env runner steps envs through ``gymnasium.vector.SyncVectorEnv``, which fails deep inside
every trial, with a message that names neither the env nor the fix, when an env follows gym's
old API (``reset`` returning the observation alone: "too many values to unpack"), returns
observations of another shape than it declares ("Output array is the wrong shape"), a reward
that is not a number ("setting an array element with a sequence") or an info that is no dict.
`api_problem` finds these once, where the run starts, and says what to change. It checks much
less than gymnasium's ``check_env`` (no determinism, bounds or render checks), so that no env
that trains is refused.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from gymnasium import Env, spaces


def api_problem(env: Env[Any, Any]) -> str | None:
    """Why RLlib could not step ``env``, found by one ``reset(seed=0)`` and one ``step`` with a
    sampled action; None when both return what gymnasium's API and the env's spaces say."""
    with warnings.catch_warnings():  # gymnasium's passive checker: the trials will warn too
        warnings.simplefilter("ignore")
        out: Any = env.reset(seed=0)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
            return (
                f"reset() returned {_kind(out)}, not (observation, info): the env follows gym's "
                "old API. Return (observation, info) from reset and (observation, reward, "
                "terminated, truncated, info) from step (gymnasium >= 0.26), or wrap the env "
                "with shimmy's GymV21CompatibilityV0"
            )
        problem = _value_problem(env.observation_space, out[0], "reset()'s observation")
        if problem is not None:
            return problem
        out = env.step(env.action_space.sample())
    if not (isinstance(out, tuple) and len(out) == 5):
        return (
            f"step() returned {_kind(out)}, not (observation, reward, terminated, truncated, "
            "info): return the five of gymnasium's API (>= 0.26; gym's old 4-tuple had one "
            "`done`)"
        )
    observation, reward, _, _, info = out
    if not isinstance(info, dict):
        return f"step()'s info (the fifth value) is {_kind(info)}, not a dict: return a dict"
    problem = _value_problem(env.observation_space, observation, "step()'s observation")
    if problem is not None:
        return problem
    if np.ndim(reward) != 0 or not isinstance(np.asarray(reward).item(), numbers.Real):
        return f"step()'s reward is {_kind(reward)}, not a number: return a float"
    return None


def _value_problem(space: spaces.Space[Any], value: Any, what: str) -> str | None:
    """Why ``value`` does not have ``space``'s structure (a Box's shape, a discrete space's
    values, a Tuple's or Dict's parts); None when it does. A Box's bounds are not checked:
    they are often declared loosely, and networks read values outside them."""
    if isinstance(space, spaces.Box):
        shape = np.shape(value)
        if shape != space.shape:
            return (
                f"{what} has shape {shape}, but the env declares {space}: make "
                "observation_space's shape the observations' shape"
            )
        return None
    if isinstance(space, spaces.Tuple):
        if not isinstance(value, tuple) or len(value) != len(space.spaces):
            return f"{what} is {_kind(value)}, but the env declares {space}"
        parts: Any = enumerate(zip(space.spaces, value, strict=True))
        for index, (part, item) in parts:
            problem = _value_problem(part, item, f"{what}[{index}]")
            if problem is not None:
                return problem
        return None
    if isinstance(space, spaces.Dict):
        if not isinstance(value, dict) or set(value) != set(space.spaces):
            return f"{what} is {_kind(value)}, but the env declares {space}"
        for key, part in space.spaces.items():
            problem = _value_problem(part, value[key], f"{what}[{key!r}]")
            if problem is not None:
                return problem
        return None
    if not space.contains(value):
        return f"{what} is {value!r}, not in the env's observation_space {space}"
    return None


def _kind(value: Any) -> str:
    """``value``'s type, with its length or shape where it has one, for messages."""
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"
