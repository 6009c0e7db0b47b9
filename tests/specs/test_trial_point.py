"""`TrialPoint`: every config shape a searcher, the grid, a population or finalize writes reads
back as one typed point."""

from __future__ import annotations

from typing import Any

import pytest

from lrtune.specs import TrialPoint

POLICY: dict[str, Any] = {"lr": 1e-3, "schedule": {"name": "cosine", "params": {}}}
LRTUNE: dict[str, Any] = {
    "policy": POLICY,
    "hyperparams": {"gamma": 0.98},
    "model": {"hidden": [32, 32]},
    "agent_settings": {"num_minibatches": 4},
    "baseline": False,
}


@pytest.mark.parametrize(
    ("config", "mutable", "finalist"),
    [
        ({"lrtune": LRTUNE}, {}, None),  # Optuna's searcher
        ({"point": {"lrtune": LRTUNE}}, {}, None),  # the grid
        ({"point": {"lrtune": LRTUNE, "mutable": {"lr": 2}}}, {"lr": 2.0}, None),  # a member
        ({"point": {"lrtune": LRTUNE, "finalist": "f1"}}, {}, "f1"),  # a finalist
    ],
)
def test_every_config_shape_reads_as_one_point(
    config: dict[str, Any], mutable: dict[str, float], finalist: str | None
) -> None:
    point = TrialPoint.from_config(config)
    assert point.policy == POLICY and point.hyperparams == {"gamma": 0.98}
    assert point.model == {"hidden": [32, 32]} and point.agent_settings == {"num_minibatches": 4}
    assert point.baseline is False and point.mutable == mutable and point.finalist == finalist
    assert point.policy_spec().lr == 1e-3
    assert point.label() == "adam 1e-03 cosine"


def test_a_points_missing_sections_are_empty_and_the_baseline_is_marked() -> None:
    point = TrialPoint.from_config({"lrtune": {"policy": POLICY, "baseline": True}})
    assert (point.hyperparams, point.model, point.agent_settings) == ({}, {}, {})
    assert point.label() == "adam 1e-03 cosine (baseline)"


def test_a_jobs_without_population_runs_the_stored_policy() -> None:
    class Job:
        population = None

    point = TrialPoint.from_config({"point": {"lrtune": LRTUNE, "mutable": {"lr": 9.0}}})
    assert point.member_policy(Job()) == POLICY


@pytest.mark.parametrize(
    "point",
    [
        TrialPoint(policy=POLICY),
        TrialPoint(policy=POLICY, hyperparams={"gamma": 0.98}, baseline=True),
        TrialPoint(policy=POLICY, model={"hidden": [32]}, agent_settings={"num_minibatches": 2}),
        TrialPoint(policy=POLICY, mutable={"lr": 2.0}),
        TrialPoint(policy=POLICY, finalist="f1"),
        TrialPoint(policy=POLICY, searched={"schedule": "cosine", "optimizer.sgd.lr": 0.1}),
    ],
)
def test_what_a_writer_stores_reads_back_as_the_same_point(point: TrialPoint) -> None:
    config = point.to_config()
    assert TrialPoint.from_config(config) == point  # Optuna's shape: the whole config
    assert TrialPoint.from_config({"point": config}) == point  # grid, population, finalize


def test_a_written_config_shares_nothing_with_the_point() -> None:
    """Tune mutates configs (a population's exploit rewrites ``mutable``); the job's own
    hyper-parameters and policy must not change with them."""
    hyperparams = {"gamma": 0.98, "epsilon": [[0, 1.0], [100, 0.02]]}
    point = TrialPoint(policy=POLICY, hyperparams=hyperparams, mutable={"lr": 1.0})
    config = point.to_config()
    config["lrtune"]["hyperparams"]["epsilon"][1][1] = 0.5
    config["lrtune"]["policy"]["schedule"]["name"] = "step"
    config["mutable"]["lr"] = 3.0
    assert hyperparams["epsilon"][1][1] == 0.02 and POLICY["schedule"]["name"] == "cosine"
    assert point.mutable == {"lr": 1.0}
