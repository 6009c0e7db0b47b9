"""`TrialPoint`: one trial's point, in one typed shape from the Tune config to the report.

Searchers, the grid and populations write a trial's point into its Tune config (Optuna's
searcher at ``config["lrtune"]``; the grid, populations and finalize under ``config["point"]``,
beside a population member's ``mutable`` coordinates and a finalist's key). Every reader (the
trainable, tracking, results, finalize, the progress view) reads it through
`TrialPoint.from_config`, the one place that knows those shapes, including those of experiments
saved by earlier versions that a resume reads back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lrtune.policies import LRPolicySpec
from lrtune.policies.populations import MUTABLE_KEY

#: Key of lrtune's part of a trial config (inside ``config["point"]`` or at the top level).
POINT_KEY = "lrtune"
#: Key of a finalist's job key inside ``config["point"]``.
FINALIST_KEY = "finalist"


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
    """

    policy: Mapping[str, Any]
    hyperparams: Mapping[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] = field(default_factory=dict)
    agent_settings: Mapping[str, Any] = field(default_factory=dict)
    baseline: bool = False
    mutable: Mapping[str, float] = field(default_factory=dict)
    finalist: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrialPoint:
        """Read the point of a Tune trial config (any of the shapes above)."""
        point = config.get("point", config)
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
        )

    def member_policy(self, job: Any) -> dict[str, Any]:
        """The policy the trial runs: a population member's mutable values applied to it."""
        population = getattr(job, "population", None)
        if population is None:
            return dict(self.policy)
        result: dict[str, Any] = population.member_policy(dict(self.policy), dict(self.mutable))
        return result

    def policy_spec(self, job: Any = None) -> LRPolicySpec:
        """`member_policy` validated (``job`` None: the policy as stored)."""
        return LRPolicySpec.model_validate(
            self.member_policy(job) if job is not None else self.policy
        )

    def label(self, job: Any = None) -> str:
        """One short line for progress views: the policy's summary, ``(baseline)`` marked."""
        text = self.policy_spec(job).short()
        return f"{text} (baseline)" if self.baseline else text
