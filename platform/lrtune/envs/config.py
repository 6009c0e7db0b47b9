"""Configuration of the recommender simulator: defaults, presets and validation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from lrtune.envs.catalog import Catalog, load_catalog, synthetic_catalog

__all__ = ["PRESETS", "RecSysConfig", "resolve_config"]

_REWARDS = ("click", "engagement")


@dataclass(frozen=True)
class RecSysConfig:
    """All parameters of the simulator (see :mod:`lrtune.envs.recsys` for the equations).

    Pass any of these as ``env_config`` keys or keyword arguments; ``preset`` picks a named set
    of defaults from :data:`PRESETS` that explicit keys then override.
    """

    preset: str = "default"
    #: Synthetic catalog size N (ignored when ``catalog_path`` is given).
    num_items: int = 2000
    #: Number of topics T (ignored when ``catalog_path`` is given).
    num_topics: int = 10
    #: Candidates offered per step K (the action space is Discrete(K)).
    num_candidates: int = 10
    #: Expected share of clickbait items in the synthetic catalog.
    clickbait_fraction: float = 0.2
    #: Seed of the synthetic catalog and of the user population (the "world"), not of sessions.
    catalog_seed: int = 0
    #: CSV/Parquet item table or MovieLens-100k directory; None -> synthetic catalog.
    catalog_path: str | None = None
    #: Size of the user population sessions are drawn from.
    num_users: int = 1000
    #: Dirichlet concentration of users' interest vectors (small -> focused users).
    interest_concentration: float = 0.3
    #: Mean initial time budget B0 of a user (minutes); budgets are B0 * U(1 - j, 1 + j).
    budget: float = 30.0
    #: Relative spread j of user budgets around ``budget``.
    budget_jitter: float = 0.25
    #: Time every step costs (c).
    step_cost: float = 1.0
    #: Budget change per unit quality of a consumed item (g): B += g * q on a click.
    quality_gain: float = 2.0
    #: Weight of interest affinity T * <u, x> in the click logit (beta_u).
    interest_weight: float = 0.6
    #: Weight of appeal in the click logit (beta_a).
    appeal_weight: float = 1.0
    #: Weight of boredom <h, x> in the click logit (beta_b).
    boredom_weight: float = 0.6
    #: Per-step decay of the topic click history h (rho), in [0, 1).
    boredom_decay: float = 0.8
    #: Utility of the no-click option (v0).
    no_click_utility: float = 1.5
    #: Step size of interest drift towards a consumed item's topic (eta), in [0, 1].
    interest_drift: float = 0.05
    #: Step limit of a session (truncation).
    max_steps: int = 200
    #: "click" (0/1) or "engagement" (consumed time 1 + q on a click).
    reward: str = "click"

    def __post_init__(self) -> None:
        """Validate every field; raise ValueError naming the key and what is allowed."""

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                value = getattr(self, name)
                raise ValueError(f"RecSys env_config {name!r}={value!r} is invalid: {allowed}")

        def is_int(name: str) -> bool:
            v = getattr(self, name)
            return isinstance(v, int) and not isinstance(v, bool)

        def is_real(name: str) -> bool:
            v = getattr(self, name)
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        need(self.preset in PRESETS, "preset", f"allowed: {sorted(PRESETS)}")
        for name in ("num_items", "num_topics", "num_candidates", "num_users", "max_steps"):
            need(is_int(name) and getattr(self, name) >= 1, name, "must be an integer >= 1")
        need(is_int("catalog_seed") and self.catalog_seed >= 0, "catalog_seed", "integer >= 0")
        for name in (
            "clickbait_fraction", "interest_concentration", "budget", "budget_jitter",
            "step_cost", "quality_gain", "interest_weight", "appeal_weight", "boredom_weight",
            "boredom_decay", "no_click_utility", "interest_drift",
        ):  # fmt: skip
            need(is_real(name), name, "must be a finite number")
        need(0.0 <= self.clickbait_fraction <= 1.0, "clickbait_fraction", "allowed: [0, 1]")
        need(self.interest_concentration > 0, "interest_concentration", "must be > 0")
        need(self.budget > 0, "budget", "must be > 0 (a user's initial time budget)")
        need(0.0 <= self.budget_jitter < 1.0, "budget_jitter", "allowed: [0, 1)")
        need(self.step_cost > 0, "step_cost", "must be > 0 (every step costs time)")
        need(self.quality_gain >= 0, "quality_gain", "must be >= 0")
        need(self.boredom_weight >= 0, "boredom_weight", "must be >= 0")
        need(0.0 <= self.boredom_decay < 1.0, "boredom_decay", "allowed: [0, 1)")
        need(0.0 <= self.interest_drift <= 1.0, "interest_drift", "allowed: [0, 1]")
        need(self.reward in _REWARDS, "reward", f"allowed: {list(_REWARDS)}")
        need(
            self.catalog_path is None or isinstance(self.catalog_path, str),
            "catalog_path",
            "must be None or a path string",
        )
        if self.catalog_path is None:
            need(
                self.num_candidates <= self.num_items,
                "num_candidates",
                f"must be <= num_items={self.num_items} (K candidates are distinct items)",
            )

    def build_catalog(self) -> Catalog:
        """Build the catalog this configuration describes (synthetic or loaded from a path)."""
        if self.catalog_path is not None:
            catalog = load_catalog(self.catalog_path)
        else:
            catalog = synthetic_catalog(
                self.num_items, self.num_topics, self.clickbait_fraction, seed=self.catalog_seed
            )
        if self.num_candidates > catalog.num_items:
            raise ValueError(
                f"RecSys env_config 'num_candidates'={self.num_candidates} is invalid: must be <= "
                f"the catalog size {catalog.num_items} (K candidates are distinct items)"
            )
        return catalog

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a plain dict."""
        return dataclasses.asdict(self)


#: Named parameter sets; explicit keys override them. "hard": 10x the catalog, more topics,
#: twice the clickbait, stronger boredom, faster interest drift.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "hard": {
        "num_items": 20000,
        "num_topics": 16,
        "clickbait_fraction": 0.4,
        "boredom_weight": 1.0,
        "interest_drift": 0.08,
    },
}

_FIELDS = frozenset(f.name for f in fields(RecSysConfig))


def resolve_config(
    config: Mapping[str, Any] | RecSysConfig | None = None, **kwargs: Any
) -> RecSysConfig:
    """Merge ``config`` (a dict, RLlib EnvContext or RecSysConfig) and ``kwargs`` into a config.

    Precedence: class defaults < preset < ``config`` < ``kwargs``. Unknown keys raise ValueError.
    """
    if isinstance(config, RecSysConfig):
        merged: dict[str, Any] = config.to_dict()
    elif config is None:
        merged = {}
    elif isinstance(config, Mapping):
        merged = {str(k): v for k, v in config.items()}
    else:
        raise ValueError(
            f"RecSys config must be a mapping (dict or RLlib EnvContext) or None, "
            f"got {type(config).__name__}"
        )
    merged.update(kwargs)
    unknown = sorted(set(merged) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown RecSys env_config keys {unknown}; allowed: {sorted(_FIELDS)}")
    preset = merged.get("preset", "default")
    if preset not in PRESETS:
        raise ValueError(
            f"RecSys env_config 'preset'={preset!r} is invalid: allowed: {sorted(PRESETS)}"
        )
    params = {**PRESETS[preset], **merged}
    if params.get("catalog_path") is not None:
        params["catalog_path"] = str(params["catalog_path"])
    return RecSysConfig(**params)
