"""`TrialPoint`: one trial's point, in one typed shape from the Tune config to the report.

Every writer (Optuna's define-by-run, the other searchers, the grid, populations, finalize, a
job without a space) builds a `TrialPoint` and writes it with `TrialPoint.to_config`: Optuna's
trials and a space-less job get that as their whole config; the grid, populations and finalize
list one per trial under ``config["point"]`` (one ``tune.grid_search``). Every reader (the
trainable, tracking, results, finalize, the progress view) reads it back through
`TrialPoint.from_config`, the one place that knows those shapes, including those of experiments
saved by earlier versions that a resume reads back.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrtune.policies import LRPolicySpec
from lrtune.policies.populations import MUTABLE_KEY
from lrtune.vocabulary import CONFIG_POINT_KEY

#: Key of lrtune's part of a trial config (inside ``config["point"]`` or at the top level).
POINT_KEY = "lrtune"
#: Key of a finalist's job key inside ``config["point"]``.
FINALIST_KEY = "finalist"
#: Key of a grid point's chosen values (by parameter name) inside ``config["point"]``.
SEARCHED_KEY = "params"


@dataclass(frozen=True)
class TrialPoint:
    """A trial's point: its LR policy and the agent settings around it.

    Attributes:
        policy: the LR policy as data (`LRPolicySpec`'s JSON form), before a population
            member's mutable values (`member_policy` applies them).
        hyperparams: RLlib settings the trial runs with beyond the job's (searched or derived).
        model: searched model settings (the job's ``model:`` is under them).
        agent_settings: searched agent settings (``num_minibatches``...).
        baseline: the agent-default trial a search runs first.
        mutable: a population member's mutable coordinates (changed by exploits).
        finalist: a finalize trial's key into its jobs (None elsewhere).
        searched: a grid point's chosen values by parameter name, as Optuna names them
            (``schedule``, ``optimizer.sgd.lr``; empty elsewhere).
    """

    policy: Mapping[str, Any]
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    agent_settings: Mapping[str, Any] = field(default_factory=dict)
    baseline: bool = False
    mutable: Mapping[str, float] = field(default_factory=dict)
    finalist: str | None = None
    searched: Mapping[str, Any] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        """The point as Tune config data (a deep copy: trials never share mutable parts).

        ``{"lrtune": {"policy", "hyperparams", "baseline"[, "model"][, "agent_settings"]}}``,
        with ``mutable``, ``finalist`` and ``params`` beside ``lrtune`` where set.
        """
        data: dict[str, Any] = {
            "policy": self.policy,
            "hyperparams": self.hyperparams,
            "baseline": self.baseline,
        }
        if self.model:
            data["model"] = self.model
        if self.agent_settings:
            data["agent_settings"] = self.agent_settings
        config: dict[str, Any] = {POINT_KEY: data}
        if self.mutable:
            config[MUTABLE_KEY] = self.mutable
        if self.finalist is not None:
            config[FINALIST_KEY] = self.finalist
        if self.searched:
            config[SEARCHED_KEY] = self.searched
        return _plain(copy.deepcopy(config))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialPoint:
        """Read the point of a Tune trial config (any of the shapes above)."""
        point = config.get(CONFIG_POINT_KEY, config)
        data = point[POINT_KEY]
        coords = point.get(MUTABLE_KEY) or {}
        return cls(
            policy=data["policy"],
            hyperparams=dict(data.get("hyperparams") or {}),
            model=dict(data.get("model") or {}),
            agent_settings=dict(data.get("agent_settings") or {}),
            baseline=bool(data.get("baseline", False)),
            mutable={str(k): float(v) for k, v in dict(coords).items()},
            finalist=point.get(FINALIST_KEY),
            searched=dict(point.get(SEARCHED_KEY) or {}),
        )

    @staticmethod
    def grid_space(points: Sequence[TrialPoint]) -> dict[str, Any]:
        """Tune's ``param_space`` that runs one trial per point, in order (the grid,
        populations, finalize): ``{"point": tune.grid_search([...])}``. Imports Ray."""
        from ray import tune

        return {CONFIG_POINT_KEY: tune.grid_search([point.to_config() for point in points])}

    def member_policy(self, job: Any) -> dict[str, Any]:
        """The policy the trial runs: a population member's mutable values applied to it."""
        population = getattr(job, "population", None)
        if population is None:
            return dict(self.policy)
        return population.member_policy(dict(self.policy), dict(self.mutable))

    def policy_spec(self, job: Any = None) -> LRPolicySpec:
        """`member_policy` validated (``job`` None: the policy as stored)."""
        return LRPolicySpec.model_validate(self.member_policy(job))

    def label(self, job: Any = None) -> str:
        """One short line for progress views: the policy's summary, ``(baseline)`` marked."""
        text = self.policy_spec(job).short()
        return f"{text} (baseline)" if self.baseline else text


def _plain(value: Any) -> Any:
    """Mappings as dicts, all the way down (Tune copies and serialises configs)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
