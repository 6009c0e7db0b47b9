"""Reading a job's ``env.id`` (``Name-v0`` or ``package.module:Name-v0``) the one way.

gymnasium imports the module before ``:`` itself when it makes an env, but lrtune's own ids
(``lrtune/RecSys-v0``) are registered by importing `lrtune.envs`, which a bare id does not
trigger; every place that looks an id up or builds it calls `register_lrtune_envs` first.
`check_env_id` is the one check that an id is registered, at validation and where envs are built.
"""

from __future__ import annotations

import difflib
import importlib
import re
import sys
from typing import Any


def env_name(env_id: str) -> str:
    """The registered name in ``env_id``: the part after ``module:`` where there is one."""
    return env_id.partition(":")[2] if ":" in env_id else env_id


def register_lrtune_envs(env_id: str) -> None:
    """Import `lrtune.envs` (which registers the ``lrtune/`` ids) when ``env_id`` names one."""
    if env_name(env_id).startswith("lrtune/"):
        importlib.import_module("lrtune.envs")


_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def check_env_id(env_id: str, *, import_module: bool = False) -> str | None:
    """Why ``env_id`` is not a registered gymnasium id (None when it is). Never builds the env.

    ``pkg.mod:Name-v0``: validation (the default) only finds ``pkg.mod`` on the import path,
    without running it, so checking a job never executes a user's code; the name is then
    checked where the env is built (``import_module=True``: the module is imported, as
    gymnasium.make does, and the name must be registered by it). Ids under ``lrtune/`` import
    `lrtune.envs`, which registers them.
    """
    import gymnasium
    from gymnasium import error as gym_error

    module, _, name = env_id.partition(":") if ":" in env_id else ("", "", env_id)
    if module:
        if not _MODULE.match(module):
            return f"{module!r} is not a module name (ids read `package.module:Name-v0`)"
        if not import_module:
            if module in sys.modules or _module_on_path(module):
                return None  # the name is checked where the env is built
            return (
                f"no module {module!r} (the part before ':') on the import path; install the "
                "package that registers the environment, run lrtune from the folder that "
                "holds the module (lrtune and its trials import from the current folder), or "
                "fix the id"
            )
        try:
            importlib.import_module(module)
        except Exception as exc:  # any failure of a user module to import
            return (
                f"importing {module!r} (the part before ':') failed: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            )
    register_lrtune_envs(name)
    try:
        gymnasium.spec(name)
        return None
    except gym_error.Error as exc:
        detail = str(exc).split(". ")[0]
    close = difflib.get_close_matches(name, list(gymnasium.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return (
        f"no gymnasium environment {name!r} ({detail}){hint} Ids of other packages read "
        "`package.module:Name-v0`"
    )


def _module_on_path(dotted: str) -> bool:
    """Whether ``dotted`` can be imported, found without executing it or its parent packages.

    `importlib.util.find_spec` imports the parents of a submodule; this asks the import
    system's finders level by level instead, handing each the parent's search locations.
    """
    path: Any = None
    parts = dotted.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        loaded = sys.modules.get(name)
        if loaded is not None:
            path = getattr(loaded, "__path__", None)
        else:
            spec = None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if find is not None:
                    spec = find(name, path, None)
                    if spec is not None:
                        break
            if spec is None:
                return False
            path = spec.submodule_search_locations
        if path is None and depth < len(parts):
            return False  # a plain module has no submodules
    return True
