"""Reading a job's ``env.id`` (``Name-v0`` or ``package.module:Name-v0``) the one way.

gymnasium imports the module before ``:`` itself when it makes an env, but lrtune's own ids
(``lrtune/RecSys-v0``) are registered by importing `lrtune.envs`, which a bare id does not
trigger; every place that looks an id up or builds it calls `register_lrtune_envs` first.
"""

from __future__ import annotations

import importlib


def env_name(env_id: str) -> str:
    """The registered name in ``env_id``: the part after ``module:`` where there is one."""
    return env_id.partition(":")[2] if ":" in env_id else env_id


def register_lrtune_envs(env_id: str) -> None:
    """Import `lrtune.envs` (which registers the ``lrtune/`` ids) when ``env_id`` names one."""
    if env_name(env_id).startswith("lrtune/"):
        importlib.import_module("lrtune.envs")
