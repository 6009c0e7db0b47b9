"""lrtune's environments: a fast recommender-system simulator and its no-learning baselines.

Importing this package registers (idempotently) the gymnasium ids

* ``lrtune/RecSys-v0`` -- default parameters;
* ``lrtune/RecSysHard-v0`` -- ``preset="hard"``: bigger catalog, more clickbait, stronger boredom.

Without importing anything, ``gymnasium.make("lrtune.envs:lrtune/RecSys-v0")`` imports this
package and finds the id; RLlib accepts the same string as its env. Both ids have a vector entry
point, so ``gymnasium.make_vec(id, num_envs=n, vectorization_mode="vector_entry_point")`` builds
the batched :class:`BatchedRecSysEnv`.
"""

from __future__ import annotations

import gymnasium as gym

from lrtune.envs.baselines import (
    BASELINES,
    BaselineResult,
    evaluate_baseline,
    evaluate_policy,
    greedy_action,
    greedy_actions,
    oracle_action,
    oracle_actions,
    random_action,
    random_actions,
)
from lrtune.envs.batched import BatchedRecSysEnv
from lrtune.envs.catalog import (
    Catalog,
    example_catalog,
    example_catalog_path,
    load_catalog,
    load_movielens_100k,
    synthetic_catalog,
    write_example_catalog,
)
from lrtune.envs.config import PRESETS, RecSysConfig, resolve_config
from lrtune.envs.faulty import FAULTY_CARTPOLE_ID, FaultyCartPole, InjectedFault, register_faulty
from lrtune.envs.recsys import RecSysEnv, RecSysModel

__all__ = [
    "BASELINES",
    "ENV_IDS",
    "FAULTY_CARTPOLE_ID",
    "PRESETS",
    "RECSYS_HARD_ID",
    "RECSYS_ID",
    "BaselineResult",
    "BatchedRecSysEnv",
    "Catalog",
    "FaultyCartPole",
    "InjectedFault",
    "RecSysConfig",
    "RecSysEnv",
    "RecSysModel",
    "evaluate_baseline",
    "evaluate_policy",
    "example_catalog",
    "example_catalog_path",
    "greedy_action",
    "greedy_actions",
    "load_catalog",
    "load_movielens_100k",
    "oracle_action",
    "oracle_actions",
    "random_action",
    "random_actions",
    "register_envs",
    "resolve_config",
    "synthetic_catalog",
    "write_example_catalog",
]

#: Default recommender environment id.
RECSYS_ID = "lrtune/RecSys-v0"
#: Harder variant (``preset="hard"``).
RECSYS_HARD_ID = "lrtune/RecSysHard-v0"
#: All ids registered by :func:`register_envs`, mapped to their preset.
ENV_IDS: dict[str, str] = {RECSYS_ID: "default", RECSYS_HARD_ID: "hard"}


def register_envs() -> None:
    """Register the lrtune environment ids with gymnasium; a no-op for ids already present."""
    for env_id, preset in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="lrtune.envs.recsys:RecSysEnv",
            vector_entry_point="lrtune.envs.batched:BatchedRecSysEnv",
            kwargs={"preset": preset},
        )
    register_faulty()


register_envs()
