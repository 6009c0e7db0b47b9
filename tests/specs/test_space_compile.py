"""Compiling a job's space for a real Optuna study: define-by-run, baseline, grid, samplers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from lrtune.policies import LRPolicySpec
from lrtune.search import make_sampler, sampler_warning
from lrtune.specs import JobSpec, SearchSpec, compile_space, parse_job

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 40_000

optuna.logging.set_verbosity(optuna.logging.WARNING)


def ppo_job(**extra: Any) -> JobSpec:
    data: dict[str, Any] = {
        "name": "ppo-cartpole",
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": BUDGET},
        "space": str(ROOT / "search_spaces" / "lr_policies.yaml"),
        "hyperparams": {"num_epochs": 5},
    }
    data.update(extra)
    return parse_job(data, "<test>")


def run_study(job: JobSpec, sampler: str, n: int = 50) -> list[tuple[optuna.Trial, dict]]:
    compiled = compile_space(job)
    job = job.model_copy(update={"search": job.search.model_copy(update={"sampler": sampler})})
    study = optuna.create_study(direction="maximize", sampler=make_sampler(job))
    out = []
    for i in range(n):
        trial = study.ask()
        constants = compiled.define(trial)
        out.append((trial, constants))
        study.tell(trial, float(i % 7))
    return out


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_define_by_run_gives_valid_policies(sampler: str) -> None:
    job = ppo_job(
        space={
            **ppo_job().to_yaml_dict()["space"],
            "hyperparams": {"gamma": {"distribution": "uniform", "low": 0.97, "high": 0.999}},
        }
    )
    compiled = compile_space(job)
    distributions = compiled.distributions()
    seen_families: set[str] = set()
    for trial, constants in run_study(job, sampler):
        assert set(constants) == {"lrtune"}
        c = constants["lrtune"]
        assert c["baseline"] is False
        policy = LRPolicySpec.model_validate(c["policy"])
        policy.check_agent("ppo")
        policy.build(budget=BUDGET)  # every schedule builds with the trial budget
        assert c["hyperparams"]["num_epochs"] == 5
        assert 0.97 <= c["hyperparams"]["gamma"] <= 0.999
        params = trial.params
        assert set(params) <= set(distributions)
        chosen = {slot: params[slot] for slot in ("schedule", "optimizer", "gradients")}
        assert policy.schedule.name == chosen["schedule"]
        assert policy.optimizer.name == chosen["optimizer"]
        assert policy.gradients.name == chosen["gradients"]
        seen_families.add(chosen["schedule"])
        for name in params:  # only the chosen family's parameters are suggested
            head = name.split(".")
            if len(head) == 3 and head[0] in chosen:
                assert head[1] == chosen[head[0]], (name, chosen)
        # Per-optimizer lr branches: rmsprop and sgd search their own lr, the rest the base.
        own = f"optimizer.{chosen['optimizer']}.lr"
        if chosen["optimizer"] in ("rmsprop", "sgd"):
            assert "lr" not in params and own in params
            assert policy.lr == params[own]
        else:
            assert own not in params and policy.lr == params["lr"]
            assert 1e-5 <= policy.lr <= 3e-3
        if chosen["schedule"] == "warmup":
            assert policy.schedule.params["then"]["name"] == "cosine"
            assert 1000 <= policy.schedule.params["steps"] <= 8000
        assert [r.name for r in policy.feedback] == (
            ["divergence_guard"] if params["feedback"] == "guard" else []
        )
    if sampler == "random":
        assert len(seen_families) >= 4


def test_baseline_trial_comes_first_and_once() -> None:
    job = ppo_job(search={"baseline_first": True})
    results = run_study(job, "tpe", n=6)
    first_trial, first = results[0]
    assert first["lrtune"]["baseline"] is True
    assert first_trial.params == {}
    assert first_trial.user_attrs.get("lrtune_baseline") is True
    policy = LRPolicySpec.model_validate(first["lrtune"]["policy"])
    assert policy == LRPolicySpec(lr=3e-4)
    assert first["lrtune"]["hyperparams"] == {"num_epochs": 5}
    assert all(c["lrtune"]["baseline"] is False for _, c in results[1:])


def test_baseline_uses_the_job_policy_and_dqn_default() -> None:
    job = ppo_job(search={"baseline_first": True}, policy={"lr": 1e-3, "gradients": "clip_norm"})
    base = compile_space(job).baseline_point()
    assert base.baseline and LRPolicySpec.model_validate(base.policy) == job.policy
    dqn = parse_job(
        {
            **ppo_job().to_yaml_dict(),
            "agent": "dqn",
            "space": str(ROOT / "search_spaces" / "dqn_policies.yaml"),
        },
        "<dqn>",
    )
    assert compile_space(dqn).baseline_point().policy["lr"] == 1e-3


def test_fixed_policy_fills_the_slots_the_space_leaves_out() -> None:
    job = ppo_job(
        space={"schedule": {"cosine": {}, "constant": {}}},
        policy={
            "lr": 2e-4,
            "optimizer": {"name": "sgd", "params": {"momentum": 0.9}},
            "feedback": ["divergence_guard"],
        },
    )
    compiled = compile_space(job)
    assert set(compiled.distributions()) == {"schedule"}
    for _, c in run_study(job, "random", n=8):
        policy = LRPolicySpec.model_validate(c["lrtune"]["policy"])
        assert policy.lr == 2e-4 and policy.optimizer.name == "sgd"
        assert policy.optimizer.params["momentum"] == 0.9
        assert [r.name for r in policy.feedback] == ["divergence_guard"]


def test_single_family_slots_suggest_no_categorical() -> None:
    job = ppo_job(
        space={
            "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3},
            "schedule": {
                "cosine": {"min_factor": {"distribution": "uniform", "low": 0.0, "high": 0.1}}
            },
        }
    )
    compiled = compile_space(job)
    assert job.space is not None and not job.space.is_conditional
    assert set(compiled.distributions()) == {"lr", "schedule.cosine.min_factor"}
    assert sampler_warning(job.model_copy(update={"search": SearchSpec(sampler="cmaes")})) is None
    gp = job.model_copy(update={"search": SearchSpec(sampler="gp")})
    assert "conditional" not in (sampler_warning(gp) or "")
    worst = gp.model_copy(update={"metric": gp.metric.model_copy(update={"worst": 0.0})})
    assert sampler_warning(worst) is None


def test_steps_logs_and_non_primitive_choices() -> None:
    job = ppo_job(
        space={
            "lr": 1e-3,
            "schedule": {
                "warmup": {
                    "steps": {"distribution": "int", "low": 1000, "high": 5000, "step": 1000},
                    "then": {
                        "distribution": "categorical",
                        "choices": [{"name": "cosine"}, {"name": "linear"}, "constant"],
                    },
                }
            },
            "hyperparams": {
                "num_envs_per_env_runner": {"distribution": "log_int", "low": 1, "high": 16},
                "minibatch_size": {"values": [128, 256]},
                "entropy_coeff": {
                    "distribution": "uniform",
                    "low": 0.0,
                    "high": 0.01,
                    "step": 0.002,
                },
            },
        }
    )
    dists = compile_space(job).distributions()
    assert isinstance(dists["schedule.warmup.then"], optuna.distributions.CategoricalDistribution)
    assert dists["hyperparams.num_envs_per_env_runner"].log  # type: ignore[attr-defined]
    thens = set()
    for trial, c in run_study(job, "random", n=30):
        policy = LRPolicySpec.model_validate(c["lrtune"]["policy"])
        assert policy.schedule.params["steps"] in (1000, 2000, 3000, 4000, 5000)
        thens.add(policy.schedule.params["then"]["name"])
        hp = c["lrtune"]["hyperparams"]
        assert 1 <= hp["num_envs_per_env_runner"] <= 16
        assert hp["minibatch_size"] in (128, 256)
        assert math.isclose(
            hp["entropy_coeff"] / 0.002, round(hp["entropy_coeff"] / 0.002), abs_tol=1e-9
        )
        assert isinstance(trial.params["schedule.warmup.then"], str)
    assert thens == {"cosine", "linear", "constant"}


GRID_SPACE = {
    "lr": {"values": [1e-4, 3e-4, 1e-3]},
    "schedule": {
        "constant": {},
        "cosine": {
            "min_factor": {"distribution": "uniform", "low": 0.0, "high": 0.2, "values": [0.0, 0.1]}
        },
    },
    "optimizer": {
        "adam": {},
        "sgd": {"lr": {"values": [0.01, 0.1]}, "momentum": {"values": [0.0, 0.9]}},
    },
    "feedback": {"off": [], "guard": ["divergence_guard"]},
    "hyperparams": {"gamma": {"values": [0.98, 0.99]}},
}


def test_grid_expansion_is_the_full_product() -> None:
    job = ppo_job(space=GRID_SPACE, search={"algorithm": "grid"})
    compiled = compile_space(job)
    # schedule: constant (1) + cosine (2); optimizer: adam × base lr (3) + sgd (2 × 2);
    # feedback 2; gamma 2.
    expected = (1 + 2) * (3 + 4) * 2 * 2
    assert job.space is not None and job.space.grid_size() == expected
    points = compiled.grid_points()
    assert len(points) == expected
    keys = {tuple(sorted(p.searched.items())) for p in points}
    assert len(keys) == expected  # all distinct
    dists = compiled.distributions()
    study = optuna.create_study()
    for point in points:
        policy = LRPolicySpec.model_validate(point.policy)
        if policy.optimizer.name == "sgd":
            assert policy.lr in (0.01, 0.1) and "lr" not in point.searched
        else:
            assert policy.lr in (1e-4, 3e-4, 1e-3)
        study.add_trial(
            optuna.trial.create_trial(
                params=dict(point.searched),
                distributions={k: dists[k] for k in point.searched},
                value=0.0,
            )
        )
    with_baseline = compile_space(
        ppo_job(space=GRID_SPACE, search={"algorithm": "grid", "baseline_first": True})
    ).grid_points()
    assert len(with_baseline) == expected + 1 and with_baseline[0].baseline


def test_a_grid_runs_as_many_trials_as_it_has_points() -> None:
    """The run's header, concurrency limit and cluster sizing read `trial_count`, which for a
    grid is its size (plus the baseline), not the default ``trials.num``."""
    expected = (1 + 2) * (3 + 4) * 2 * 2
    grid = ppo_job(space=GRID_SPACE, search={"algorithm": "grid"})
    assert grid.trials.num == 8 and grid.trial_count == expected
    assert grid.concurrent_trials == 2
    baseline = ppo_job(space=GRID_SPACE, search={"algorithm": "grid", "baseline_first": True})
    assert baseline.trial_count == expected + 1
    exact = ppo_job(space=GRID_SPACE, search={"algorithm": "grid"}, trials={"num": expected})
    assert exact.trial_count == expected
    tpe = ppo_job(space=GRID_SPACE, trials={"num": 3, "max_concurrent": 4})
    assert tpe.trial_count == 3 and tpe.concurrent_trials == 3


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("gp", optuna.samplers.GPSampler),
        ("random", optuna.samplers.RandomSampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_samplers_by_name(name: str, cls: type) -> None:
    job = ppo_job()
    job = job.model_copy(update={"search": SearchSpec.model_validate({"sampler": name, "seed": 7})})
    assert isinstance(make_sampler(job), cls)
    warning = sampler_warning(job)
    if name in ("cmaes", "gp", "qmc"):
        assert warning is not None and warning.startswith(
            f"sampler {name} cannot model a conditional space; it samples the "
            "conditional parameters independently (Optuna's RandomSampler)"
        )
        # GP also fits the values: the default worst value of a diverged trial distorts it.
        assert ("set metric.worst" in warning) == (name == "gp")
    else:
        assert warning is None


def test_seeded_sampling_is_reproducible_and_order_free() -> None:
    job = ppo_job()
    first = [c for _, c in run_study(job, "tpe", n=12)]
    again = [c for _, c in run_study(job, "tpe", n=12)]
    assert first == again
    space = job.to_yaml_dict()["space"]
    reordered = {
        k: dict(reversed(list(v.items()))) if isinstance(v, dict) else v
        for k, v in reversed(list(space.items()))
    }
    job2 = ppo_job(space=reordered)
    assert job2.resolved_hash() == job.resolved_hash()
    assert [c for _, c in run_study(job2, "tpe", n=12)] == first
