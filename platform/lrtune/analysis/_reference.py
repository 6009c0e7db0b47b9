"""The anchors of score normalisation per task: the random policy's score (→ 0), the
environment's reference score (→ 1) and, where one is known, a ceiling shown beside them.

Where they come from, first match wins:

1. the user's override (``--random-score`` / ``--reference-score``, for every env or per env id);
2. a small built-in table for lrtune's recommender ids with their default configuration: random
   → 0, the best *observable* baseline (the higher of ``observable_myopic`` and ``bandit``: what a
   real system could run) → 1, and the oracle (which reads hidden interest and quality) as the
   ceiling, never the reference -- normalised by the oracle, every agent scored about 0.03 and
   every difference looked like noise. Clicks per session as ``lrtune baselines ENV_ID
   --sessions 4000 --seed 0`` prints them; tests/analysis/test_anchors.py recomputes them;
3. the reference: gymnasium's ``reward_threshold`` of the env's spec where it is set; the random
   score: measured by a short random-action rollout of the env (seeded, cached on disk in
   ``$LRTUNE_CACHE_DIR`` or ``~/.cache/lrtune/random_scores.json``).

Normalisation assumes the job's metric is an episode return (the default
``env_runners/episode_return_mean``); for other metrics give both anchors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from lrtune._env_ids import register_lrtune_envs
from lrtune._files import atomic_write_text
from lrtune.registry import LRTuneError

#: The baselines behind the recommender anchors: the random anchor, the observable baselines
#: whose best is the reference, and the ceiling.
BUILTIN_RANDOM = "random"
BUILTIN_OBSERVABLE: tuple[str, ...] = ("observable_myopic", "bandit")
BUILTIN_CEILING = "oracle"
#: Every baseline the built-in table is computed from (``lrtune baselines --baseline ...``).
BUILTIN_BASELINES: tuple[str, ...] = (BUILTIN_RANDOM, *BUILTIN_OBSERVABLE, BUILTIN_CEILING)
#: The protocol: this many sessions, this seed -- ``lrtune baselines ENV_ID --sessions 4000
#: --seed 0``.
BUILTIN_SESSIONS = 4000
BUILTIN_SEED = 0

_BUILTIN_SOURCE = "built-in table (lrtune baselines, 4000 sessions, seed 0)"


class BuiltinAnchors(NamedTuple):
    """One env's row of the built-in table (clicks per session, default config)."""

    #: The random policy's mean (normalised 0).
    random: float
    #: The best observable baseline's mean (normalised 1).
    reference: float
    #: The oracle's mean: the ceiling shown beside the normalised scores.
    ceiling: float
    #: Which observable baseline is the reference.
    reference_baseline: str


#: The built-in anchors of lrtune's own env ids, default config: the means of ``lrtune
#: baselines`` (protocol above) rounded to two decimals. Recompute with
#: ``lrtune baselines ENV_ID --sessions 4000 --seed 0`` (tests/analysis/test_anchors.py does).
#: Until 2026-12-02 the reference was the oracle (67.00 / 41.39), which no observable policy
#: can approach (it is now the ceiling); the random anchors are unchanged.
BUILTIN: dict[str, BuiltinAnchors] = {
    "lrtune/RecSys-v0": BuiltinAnchors(10.26, 13.71, 67.00, "observable_myopic"),
    "lrtune/RecSysHard-v0": BuiltinAnchors(10.67, 12.23, 41.39, "observable_myopic"),
}

RANDOM_EPISODES = 30
RANDOM_MAX_STEPS = 50_000
RANDOM_SEED = 12345


class AnchorError(LRTuneError):
    """No reference (or random) score is known for an environment."""


#: The anchor source of a task compared in its own units (no anchors: random 0, reference 1).
UNNORMALISED = "none"


@dataclass(frozen=True)
class TaskAnchors:
    """The normalisation anchors of one task (env id + env config); sources `UNNORMALISED`
    (random 0, reference 1) where the task's scores stay in its own units."""

    task: str
    env_id: str
    random: float
    reference: float
    random_source: str
    reference_source: str
    #: A score shown as the ceiling (the recommender's oracle), or None where none is known.
    ceiling: float | None = None
    ceiling_source: str = ""

    @property
    def normalised(self) -> bool:
        """Whether scores are normalised (False: the task's own units, see `UNNORMALISED`)."""
        return self.random_source != UNNORMALISED

    def normalise(self, score: float) -> float:
        """``score`` on the normalised scale: random → 0, reference → 1."""
        return (score - self.random) / (self.reference - self.random)

    @property
    def normalised_ceiling(self) -> float | None:
        """The ceiling on the normalised scale (None where no ceiling is known)."""
        return None if self.ceiling is None else self.normalise(self.ceiling)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "task": self.task,
            "env": self.env_id,
            "random": self.random,
            "reference": self.reference,
            "random_source": self.random_source,
            "reference_source": self.reference_source,
            "ceiling": self.ceiling,
            "ceiling_source": self.ceiling_source,
            "normalised_ceiling": self.normalised_ceiling,
        }


def task_key(env_id: str, env_config: Mapping[str, Any] | None) -> str:
    """A task's name: the env id, plus a short hash of its config when it has one."""
    if not env_config:
        return env_id
    text = json.dumps(dict(env_config), sort_keys=True, default=str)
    return f"{env_id}#{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _bare_id(env_id: str) -> str:
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def parse_overrides(values: list[str] | None) -> dict[str, float]:
    """Parse score overrides: ``["66"]`` → ``{"*": 66.0}`` (every env);
    ``["lrtune/RecSys-v0=66"]`` → ``{"lrtune/RecSys-v0": 66.0}``."""
    out: dict[str, float] = {}
    for raw in values or []:
        env, sep, number = raw.rpartition("=")
        key = env if sep else "*"
        try:
            out[key] = float(number)
        except ValueError:
            raise AnchorError(
                f"expected a number or ENV_ID=NUMBER, got {raw!r} (e.g. --reference-score 66 or "
                "--reference-score lrtune/RecSys-v0=66)"
            ) from None
        if not math.isfinite(out[key]):
            raise AnchorError(f"{raw!r}: the score must be finite")
    return out


def _override(overrides: Mapping[str, float], env_id: str) -> float | None:
    for key in (env_id, _bare_id(env_id), "*"):
        if key in overrides:
            return overrides[key]
    return None


def task_anchors(
    env_id: str,
    env_config: Mapping[str, Any] | None = None,
    *,
    random_override: Mapping[str, float] | None = None,
    reference_override: Mapping[str, float] | None = None,
    measure: bool = True,
) -> TaskAnchors:
    """The anchors of a task; raises `AnchorError` (exit 2) when one cannot be found."""
    bare = _bare_id(env_id)
    builtin = BUILTIN.get(bare) if not env_config else None
    random = _override(random_override or {}, env_id)
    random_source = "--random-score"
    if random is None and builtin is not None:
        random, random_source = builtin.random, f"{BUILTIN_RANDOM}, {_BUILTIN_SOURCE}"
    reference = _override(reference_override or {}, env_id)
    reference_source = "--reference-score"
    if reference is None and builtin is not None:
        reference = builtin.reference
        reference_source = (
            f"best observable baseline: {builtin.reference_baseline}, {_BUILTIN_SOURCE}"
        )
    if reference is None:
        threshold = _reward_threshold(env_id)
        if threshold is not None:
            reference, reference_source = threshold, "gymnasium reward_threshold"
    if reference is None:
        raise AnchorError(
            f"no reference score for {env_id}"
            + (" with this env config" if env_config else "")
            + ": gymnasium's spec sets no reward_threshold. Give one with --reference-score "
            f"{bare}=NUMBER (the score that counts as solved; it normalises to 1)."
        )
    # Measured last (it builds and plays the env), once the reference is known.
    if random is None and measure:
        try:
            random = measure_random_score(env_id, env_config)
        except Exception as exc:  # the env's module or package is missing here, or it fails
            raise AnchorError(
                f"no random-policy score for {env_id}: it cannot be measured here, since the "
                f"env fails to build or play ({type(exc).__name__}: {str(exc)[:200]}). Give one "
                f"with --random-score {bare}=NUMBER."
            ) from None
        random_source = f"measured: random actions, {RANDOM_EPISODES} episodes (cached)"
    if random is None:
        raise AnchorError(
            f"no random-policy score for {env_id}: give one with --random-score {bare}=NUMBER."
        )
    if random == reference:
        raise AnchorError(
            f"{env_id}: the random score and the reference score are both {random}; they must "
            "differ (give --random-score / --reference-score)."
        )
    ceiling = builtin.ceiling if builtin is not None else None
    return TaskAnchors(
        task_key(env_id, env_config),
        env_id,
        float(random),
        float(reference),
        random_source,
        reference_source,
        ceiling=ceiling,
        ceiling_source=f"{BUILTIN_CEILING}, {_BUILTIN_SOURCE}" if ceiling is not None else "",
    )


def _reward_threshold(env_id: str) -> float | None:
    import gymnasium

    try:
        spec = gymnasium.spec(env_id)
    except Exception:  # unknown id (a module that is not importable here): no threshold
        return None
    threshold = getattr(spec, "reward_threshold", None)
    return float(threshold) if threshold is not None else None


def cache_path() -> Path:
    """Where measured random scores are cached."""
    base = os.environ.get("LRTUNE_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "lrtune"
    return root / "random_scores.json"


def measure_random_score(
    env_id: str,
    env_config: Mapping[str, Any] | None = None,
    *,
    episodes: int = RANDOM_EPISODES,
    max_steps: int = RANDOM_MAX_STEPS,
    seed: int = RANDOM_SEED,
) -> float:
    """Mean return of uniformly random actions over ``episodes`` seeded episodes (cached)."""
    key = f"{task_key(env_id, env_config)}|{episodes}|{max_steps}|{seed}"
    path = cache_path()
    cache: dict[str, float] = {}
    if path.exists():
        try:
            cache = {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            cache = {}
    if key in cache:
        return cache[key]
    import gymnasium

    register_lrtune_envs(env_id)
    env = gymnasium.make(env_id, **dict(env_config or {}))
    try:
        env.action_space.seed(seed)
        returns: list[float] = []
        steps = 0
        for episode in range(episodes):
            env.reset(seed=seed + episode)
            total, done = 0.0, False
            while not done and steps < max_steps:
                _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
                total += float(reward)
                steps += 1
                done = terminated or truncated
            if done:
                returns.append(total)
            if steps >= max_steps:
                break
    finally:
        env.close()
    if not returns:
        raise AnchorError(
            f"{env_id}: no random-action episode ended within {max_steps} steps; give "
            "--random-score."
        )
    value = float(sum(returns) / len(returns))
    cache[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(cache, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home: measure again next time
    return value
