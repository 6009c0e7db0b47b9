"""The job model: defaults, properties, overrides, round trips and the resolved hash."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from lrtune.agents import COMMON_OWNED
from lrtune.specs import JobSpec, SpecError, load_job, load_space, parse_job

ROOT = Path(__file__).resolve().parents[2]
SPACE_FILE = ROOT / "search_spaces" / "lr_policies.yaml"
JOB_TEXT = f"""\
name: ppo-cartpole
description: first try
agent: ppo
env: {{id: CartPole-v1}}
budget: {{trial_env_steps: 5e4}}
space: {SPACE_FILE}
hyperparams: {{gamma: 0.98, num_epochs: 4}}
"""


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(JOB_TEXT)
    return path


def test_defaults_and_properties(job_file: Path) -> None:
    job = load_job(job_file)
    assert job.version == 1 and job.budget.trial_env_steps == 50_000
    assert job.model.hidden is None and job.model.activation is None  # the agent's defaults
    assert not job.model.vf_share_layers and job.model.initializer is None
    assert job.model.normalize_observations is None
    assert (job.trials.num, job.trials.max_concurrent, job.trials.max_failures) == (8, 2, 1)
    assert job.seeds.tuning == (0,) and job.seeds.test == (1000, 1001, 1002)
    assert job.metric.name == "env_runners/episode_return_mean" and job.metric.mode == "max"
    assert job.metric.worst_value == -1e6
    assert job.evaluation.interval == 0 and job.evaluation.episodes == 10
    assert job.resources.cpus == 1.0 and job.resources.gpus == 0.0
    assert job.search.algorithm == "optuna" and job.search.sampler == "tpe"
    assert job.search.seed == 0 and not job.search.baseline_first
    assert job.scheduler.name == "asha" and job.grace_period_steps == 50_000 // 4
    assert job.experiment_name == "ppo-cartpole"
    assert job.tracking.resolved_uri == f"sqlite:///{(Path.cwd() / 'mlflow.db').as_posix()}"
    assert job.space_path == str(SPACE_FILE.resolve())
    assert job.space == load_space(SPACE_FILE)
    assert job.policy is None and job.cluster is None
    assert job.storage_path == "ray_results" and job.results_dir == "results"
    with pytest.raises(ValidationError):  # frozen
        job.name = "other"  # type: ignore[misc]


def test_metric_worst_for_min_and_explicit() -> None:
    from lrtune.specs import MetricSpec

    assert MetricSpec(mode="min").worst_value == 1e6
    assert MetricSpec(worst=-500).worst_value == -500.0


def test_overrides(job_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "spaces" / "small.yaml"
    other.parent.mkdir()
    other.write_text("lr: {distribution: log_uniform, low: 1e-4, high: 1e-3}\n")
    job = load_job(
        job_file,
        [
            "budget.trial_env_steps=2e4",
            "search.sampler=random",
            "hyperparams.gamma=0.97",
            "hyperparams.lambda_=0.9",
            "trials.num=3",
            "seeds.tuning=[0, 1, 2]",
            "space=spaces/small.yaml",  # relative to the job file's folder
            "space.lr.high=2e-3",  # reaches into the file just named
        ],
    )
    assert job.budget.trial_env_steps == 20_000
    assert job.search.sampler == "random" and job.trials.num == 3
    assert job.hyperparams == {"gamma": 0.97, "num_epochs": 4, "lambda_": 0.9}
    assert job.seeds.tuning == (0, 1, 2)
    assert job.space_path == str(other.resolve())
    assert job.space is not None and job.space.lr is not None
    assert job.space.lr.high == 2e-3  # type: ignore[union-attr]
    assert job.space.schedule is None


def test_override_into_the_referenced_space(job_file: Path) -> None:
    job = load_job(job_file, ["space.schedule.cosine.min_factor.high=0.1"])
    assert job.space_path == str(SPACE_FILE.resolve())
    assert job.space is not None and job.space.schedule is not None
    assert job.space.schedule["cosine"]["min_factor"].high == 0.1


def test_bad_override_lists_valid_keys(job_file: Path) -> None:
    with pytest.raises(SpecError) as err:
        load_job(job_file, ["scheduler.grace=100"])
    assert "scheduler.grace: unknown key" in str(err.value)
    assert "name, grace_period, grace_fraction, reduction_factor" in str(err.value)


def test_round_trip_through_yaml(job_file: Path, tmp_path: Path) -> None:
    job = load_job(
        job_file, ["policy={lr: 1e-3, gradients: clip_norm}", "cluster={install: preinstalled}"]
    )
    data = job.to_yaml_dict()
    assert isinstance(data["space"], dict)
    text = yaml.safe_dump(data, sort_keys=False)
    again = parse_job(yaml.safe_load(text), "<again>")
    assert again == job
    assert again.resolved_hash() == job.resolved_hash()


def test_resolved_hash(job_file: Path) -> None:
    h = load_job(job_file).resolved_hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert load_job(job_file).resolved_hash() == h  # stable across reloads
    for same in (
        ["description=another try"],
        ["trials.max_concurrent=4"],
        ["tracking.experiment=x"],
        ["storage_path=/tmp/r"],
        ["results_dir=out"],
    ):
        assert load_job(job_file, same).resolved_hash() == h, same
    for changed in (
        ["budget.trial_env_steps=60000"],
        ["seeds.tuning=[0, 1]"],
        ["hyperparams.gamma=0.99"],
        ["trials.num=9"],
        ["space.lr.high=1e-3"],
    ):
        assert load_job(job_file, changed).resolved_hash() != h, changed


def test_space_is_also_found_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    (tmp_path / "job.yaml").write_text(
        JOB_TEXT.replace(str(SPACE_FILE), "search_spaces/lr_policies.yaml")
    )
    assert load_job(tmp_path / "job.yaml").space_path == str(SPACE_FILE.resolve())


def test_policy_only_job_and_policy_file(tmp_path: Path) -> None:
    job = parse_job(
        {
            "name": "p",
            "agent": "dqn",
            "env": {"id": "CartPole-v1"},
            "budget": {"trial_env_steps": 1000},
            "policy": {"lr": "1e-4"},
        },
        "<p>",
    )
    assert job.space is None and job.policy is not None and job.policy.lr == 1e-4
    (tmp_path / "pol.yaml").write_text(
        (ROOT / "jobs" / "policies" / "warmup_cosine.yaml").read_text()
    )
    job = parse_job(
        {
            "name": "p",
            "agent": "ppo",
            "env": {"id": "CartPole-v1"},
            "budget": {"trial_env_steps": 10000},
            "policy": "pol.yaml",
        },
        "<p>",
        base_dir=tmp_path,
    )
    assert job.policy is not None and job.policy.schedule.name == "warmup"


@pytest.mark.parametrize(
    "env_id",
    [
        "CartPole-v1",
        "lrtune/RecSys-v0",
        "lrtune.envs:lrtune/RecSysHard-v0",
        "gymnasium.envs.classic_control:Pendulum-v1",
    ],
)
def test_env_ids_are_checked_without_making_the_env(env_id: str) -> None:
    if env_id.startswith("lrtune") and importlib.util.find_spec("lrtune.envs") is None:
        pytest.skip("lrtune.envs not present")
    job = parse_job(
        {
            "name": "e",
            "agent": "ppo",
            "env": {"id": env_id, "config": {"x": "1e3"}},
            "budget": {"trial_env_steps": 1000},
            "policy": {"lr": 1e-3},
        },
        "<e>",
    )
    assert job.env.id == env_id and job.env.config == {"x": 1000.0}


def test_numbers_written_as_yaml_strings_are_numbers(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "lr: {distribution: log_uniform, low: 1e-5, high: 1e-3, values: [1e-5, 1e-4]}\n"
        "optimizer: {adam: {eps: 1e-5}}\n"
        "hyperparams: {epsilon: [[0, 1.0], [1e4, 0.05]]}\n"
    )
    space = load_space(tmp_path / "s.yaml")
    assert space.lr is not None and space.lr.low == 1e-5  # type: ignore[union-attr]
    assert space.lr.values == (1e-5, 1e-4)  # type: ignore[union-attr]
    assert space.optimizer == {"adam": {"eps": 1e-5}}
    assert space.hyperparams["epsilon"] == [[0, 1.0], [10000.0, 0.05]]


@pytest.mark.parametrize("agent", ["ppo", "dqn", "sac"])
def test_every_owned_hyperparam_of_an_agent_is_refused_in_a_job(agent: str) -> None:
    from lrtune.agents import get_agent

    owned = get_agent(agent).owned()
    assert set(COMMON_OWNED) <= set(owned)
    for key in owned:
        data = {
            "name": "owned",
            "agent": agent,
            "env": {"id": "Pendulum-v1"},
            "budget": {"trial_env_steps": 1000},
            "policy": {"lr": 1e-3},
            "hyperparams": {key: 0.1},
        }
        with pytest.raises(ValidationError, match=f"hyperparams.{key}\\n  lrtune sets this itself"):
            JobSpec.model_validate(data)


def test_hash_ignores_excluded_fields_only() -> None:
    base: dict[str, Any] = {
        "name": "h",
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": 1000},
        "policy": {"lr": 1e-3},
    }
    h = JobSpec.model_validate(base).resolved_hash()
    assert (
        JobSpec.model_validate(
            {**base, "cluster": {"address": "http://ray-head:8265"}}
        ).resolved_hash()
        == h
    )
    assert JobSpec.model_validate({**base, "name": "h2"}).resolved_hash() != h


#: A job that sets none of the fields added later (`HASH_LATER_FIELDS`).
_OLD_JOB: dict[str, Any] = {
    "version": 1,
    "name": "old",
    "agent": "ppo",
    "env": {"id": "CartPole-v1"},
    "budget": {"trial_env_steps": 4096},
    "trials": {"num": 2},
    "policy": {"lr": 1e-3},
}


def test_a_job_from_before_the_later_fields_keeps_its_hash() -> None:
    # The literal is the hash lrtune gave this job at 69880fe, before trials.checkpoint_seconds
    # existed (computed there): an experiment started then resumes only while it stays the
    # same. A new job field must leave the hash alone at its default (add it to
    # HASH_LATER_FIELDS), or this fails.
    assert parse_job(dict(_OLD_JOB)).resolved_hash() == _OLD_JOB_HASH
    with_params = {**_OLD_JOB, "search": {"algorithm": "optuna", "params": {}, "batch": False}}
    assert parse_job(with_params).resolved_hash() == _OLD_JOB_HASH
    cadence = {**_OLD_JOB, "trials": {"num": 2, "checkpoint_seconds": 30}}
    assert parse_job(cadence).resolved_hash() != _OLD_JOB_HASH


_OLD_JOB_HASH = "dc62fa5fa2931541114bcb4fee1fa55a43c017346d6531fbb9130cc92907c46a"


def test_an_env_given_by_its_id_alone_is_the_same_job() -> None:
    """``env: CartPole-v1`` is short for ``env: {id: CartPole-v1}``: the same spec and hash
    (a resume finds the experiment either way)."""
    base = {"name": "short", "agent": "ppo", "budget": {"trial_env_steps": 1000}}
    short = parse_job({**base, "env": "CartPole-v1", "policy": {"lr": 1e-3}}, "<test>")
    long = parse_job({**base, "env": {"id": "CartPole-v1"}, "policy": {"lr": 1e-3}}, "<test>")
    assert short == long and short.resolved_hash() == long.resolved_hash()
    assert short.to_yaml_dict()["env"] == {"id": "CartPole-v1", "config": {}}
