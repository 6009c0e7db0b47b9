"""Run-start warnings: a schedule duration shorter than one PPO iteration (it never shows), a
trials.num that a grid does not honour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lrtune.running import start_warnings
from lrtune.running._run import (
    budget_warnings,
    population_warnings,
    schedule_resolution_warnings,
    trial_count_warnings,
)
from lrtune.specs import load_job, parse_job

ROOT = Path(__file__).resolve().parents[2]


def test_a_warm_up_shorter_than_an_iteration_is_named() -> None:
    # The evidence job's first run had a 13,107-step warm-up under 16,384-step PPO iterations:
    # its first update came after the warm-up had ended (the LR read 0.998 x base).
    job = load_job(
        ROOT / "jobs" / "evidence_recsys.yaml",
        [
            "space.schedule={warmup: {steps: 13107, then: {name: cosine}}, constant: {}}",
            "trials.num=40",  # 2 schedules x 5 optimizers x 4 rates
        ],
    )
    (warning,) = schedule_resolution_warnings(job)
    assert "space.schedule.warmup.steps = 13107" in warning
    assert "train_batch_size_per_learner = 16384" in warning and "never shows" in warning
    assert schedule_resolution_warnings(load_job(ROOT / "jobs" / "evidence_recsys.yaml")) == []


def test_the_iteration_is_the_jobs_batch_and_only_batch_sampling_agents_are_checked() -> None:
    base = {"name": "w", "env": {"id": "CartPole-v1"}, "budget": {"trial_env_steps": 100_000}}
    policy = {"lr": 1e-3, "schedule": {"name": "step", "params": {"step_size": 1500}}}
    # PPO's CartPole presets sample 2,048 env steps per iteration.
    ppo = parse_job({**base, "agent": "ppo", "policy": policy}, "<test>")
    (warning,) = schedule_resolution_warnings(ppo)
    assert "policy.schedule.params.step_size = 1500" in warning
    assert "(train_batch_size_per_learner = 2048 env steps)" in warning
    smaller = {"train_batch_size_per_learner": 1024}
    ok = parse_job({**base, "agent": "ppo", "policy": policy, "hyperparams": smaller}, "<test>")
    assert schedule_resolution_warnings(ok) == []
    # DQN updates every few env steps: no iteration-sized granularity to warn about.
    dqn = parse_job({**base, "agent": "dqn", "policy": policy}, "<test>")
    assert schedule_resolution_warnings(dqn) == []


def test_a_budget_below_one_iteration_is_named_with_what_a_trial_runs_instead() -> None:
    base = {"name": "b", "env": {"id": "CartPole-v1"}, "policy": {"lr": 1e-3}}
    short = parse_job({**base, "agent": "ppo", "budget": {"trial_env_steps": 100}}, "<test>")
    (warning,) = budget_warnings(short)
    assert "budget.trial_env_steps (100) is less than one ppo training iteration" in warning
    assert "(train_batch_size_per_learner = 2048 env steps)" in warning
    assert "each trial runs one iteration: 2048 env steps" in warning
    assert warning in start_warnings(short)
    enough = parse_job({**base, "agent": "ppo", "budget": {"trial_env_steps": 2048}}, "<test>")
    assert budget_warnings(enough) == []
    smaller = parse_job(
        {
            **base,
            "agent": "ppo",
            "budget": {"trial_env_steps": 100},
            "hyperparams": {"train_batch_size_per_learner": 64, "minibatch_size": 32},
        },
        "<test>",
    )
    assert budget_warnings(smaller) == []
    # DQN and SAC sample at least min_sample_timesteps_per_iteration per iteration (RLlib's
    # default where the presets leave it out).
    dqn = parse_job({**base, "agent": "dqn", "budget": {"trial_env_steps": 100}}, "<test>")
    (warning,) = budget_warnings(dqn)
    assert "(min_sample_timesteps_per_iteration = 1000 env steps)" in warning


def test_a_population_interval_shorter_than_an_iteration_is_named() -> None:
    job = {
        "name": "p",
        "agent": "sac",
        "env": {"id": "Pendulum-v1"},
        "budget": {"trial_env_steps": 4000},
        "policy": {"lr": 1e-3},
        "scheduler": {"name": "none"},
        "population": {
            "name": "pbt",
            "size": 2,
            "interval": 400,
            "mutable": {"lr": {"low": 3e-4, "high": 5e-3}},
        },
    }
    (warning,) = population_warnings(parse_job(job, "<test>"))
    assert "population.interval (400) is shorter than one sac training iteration" in warning
    assert "(min_sample_timesteps_per_iteration = 1000 env steps)" in warning
    job["population"] = {**job["population"], "interval": 2000}
    assert population_warnings(parse_job(job, "<test>")) == []


def test_a_trial_count_the_grid_does_not_honour_is_named_and_the_grid_counted() -> None:
    evidence = ROOT / "jobs" / "evidence_recsys.yaml"
    two = load_job(evidence, ["trials.num=2"])
    assert two.trial_count == 150  # 5 schedules x 5 optimizers x 6 rates: every point runs
    (warning,) = trial_count_warnings(two)
    assert "trials.num is 2" in warning and "each of its 150 points" in warning
    assert trial_count_warnings(load_job(evidence)) == []  # trials.num: 150
    # A results folder's job.yaml carries the default trials.num (8) and loads (finalize).
    unset = load_job(ROOT / "jobs" / "evidence_recsys_gating.yaml")
    assert unset.trial_count == 30 and trial_count_warnings(unset) == []
    stored = parse_job(unset.to_yaml_dict(), "<results job.yaml>")
    assert stored.trials.num == 8 and stored.trial_count == 30


def test_a_fixed_policy_runs_one_trial_unless_told_and_repeats_are_named() -> None:
    """A job with `policy:` and no space used to run trials.num's default (8) identical trials:
    the same policy with the same seeds, computing the same thing 8 times."""
    data = {
        "name": "fixed",
        "agent": "ppo",
        "env": "CartPole-v1",
        "budget": {"trial_env_steps": 4096},
        "policy": {"lr": 1.0e-3},
    }
    fixed = parse_job(data, "<job>")
    assert fixed.trial_count == 1 and fixed.concurrent_trials == 1
    assert trial_count_warnings(fixed) == []
    three = parse_job({**data, "trials": {"num": 3}}, "<job>")
    assert three.trial_count == 3
    (warning,) = trial_count_warnings(three)
    assert "trials.num is 3, but the job has no space" in warning
    assert "compute the same thing 3 times" in warning
    searched = parse_job({**data, "space": "search_spaces/lr_policies.yaml"}, "<job>", ROOT)
    assert searched.trial_count == 8


def test_a_dry_run_lists_the_warnings_the_run_would_print(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    import json

    from lrtune.cli import main

    monkeypatch.chdir(tmp_path)  # where a run would write results/ and mlflow.db

    job = tmp_path / "short.yaml"
    job.write_text(
        "version: 1\nname: short\nagent: ppo\nenv: {id: CartPole-v1}\n"
        "budget: {trial_env_steps: 100000}\n"
        "policy: {lr: 0.001, schedule: {name: step, params: {step_size: 1500}}}\n"
    )
    assert main(["run", str(job), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    (warning,) = plan["warnings"]
    assert "policy.schedule.params.step_size = 1500" in warning and "never shows" in warning
    assert plan["warnings"] == start_warnings(load_job(job))
    evidence = ROOT / "jobs" / "evidence_recsys.yaml"  # a grid of 150 points
    assert main(["run", str(evidence), "--set", "trials.num=2", "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert any("trials.num is 2" in w for w in plan["warnings"]), plan["warnings"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.yaml"]  # nothing written
