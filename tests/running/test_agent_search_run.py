"""A real search over a combined LR-policy + agent space (Ray Tune, Optuna, MLflow, tiny
budgets): the agent settings reach the trials, MLflow and best.yaml, and best.yaml runs as it
is with the best trial's settings."""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from lrtune.analysis import compare, load_experiment, parse_by
from lrtune.running import run_job
from lrtune.specs import load_job

pytestmark = pytest.mark.slow

LR_PART = {
    "version": 1,
    "description": "lr part",
    "lr": {"distribution": "log_uniform", "low": 3e-4, "high": 3e-3},
    "schedule": {
        "constant": {},
        "linear": {"end_factor": {"distribution": "uniform", "low": 0.0, "high": 0.5}},
    },
}
AGENT_PART = {
    "version": 1,
    "description": "agent part",
    "hyperparams": {
        "gamma": {"distribution": "categorical", "choices": [0.95, 0.99]},
        "train_batch_size_per_learner": {"distribution": "categorical", "choices": [128, 256]},
    },
    "model": {
        "hidden": {"distribution": "categorical", "choices": [[16], [32, 32]]},
        "activation": {"distribution": "categorical", "choices": ["tanh", "relu"]},
    },
    "agent_settings": {"num_minibatches": {"distribution": "categorical", "choices": [1, 2, 4]}},
}
TINY = {"num_epochs": 1, "num_envs_per_env_runner": 1}


def _hidden_sizes(checkpoint: str | None) -> list[int]:
    """The hidden layer sizes of the policy network a trial's checkpoint holds (first seed)."""
    assert checkpoint is not None
    state_file = (
        Path(checkpoint) / "seed0/learner_group/learner/rl_module/default_policy/module_state.pkl"
    )
    with state_file.open("rb") as handle:
        state = pickle.load(handle)
    layers = {
        key: tensor
        for key, tensor in state.items()
        if re.fullmatch(r"encoder\.(actor_)?encoder\.net\.mlp\.\d+\.weight", key)
    }
    ordered = sorted(layers, key=lambda key: int(key.split(".")[-2]))
    return [int(layers[key].shape[0]) for key in ordered]


def _children(client: MlflowClient, experiment: str) -> list[Any]:
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_best_yaml_of_a_combined_search_runs_as_it_is_with_the_trials_settings(
    workdir: Path, job_file: Any
) -> None:
    (workdir / "lr.yaml").write_text(yaml.safe_dump(LR_PART))
    (workdir / "agent.yaml").write_text(yaml.safe_dump(AGENT_PART))
    path = job_file(
        workdir,
        "combined",
        space=["lr.yaml", "agent.yaml"],
        hyperparams=TINY,
        budget={"trial_env_steps": 512},
        trials={"num": 3, "max_concurrent": 1, "max_failures": 0},
        search={"startup_trials": 2},
    )
    job = load_job(path)
    assert len(job.space_files) == 2
    outcome = run_job(job, stream=io.StringIO())
    assert [t.status for t in outcome.trials] == ["completed"] * 3
    for trial in outcome.trials:
        hyper = trial.hyperparams
        n = trial.agent_settings["num_minibatches"]
        assert hyper["minibatch_size"] == hyper["train_batch_size_per_learner"] // n
        assert set(trial.model) == {"hidden", "activation"}
        # The network the trial trained has the sampled hidden sizes.
        assert _hidden_sizes(trial.checkpoint) == trial.model["hidden"]

    # The third trial was proposed by TPE's model (two startup trials).
    study = optuna.load_study(
        study_name="combined", storage=f"sqlite:///{workdir}/results/combined/optuna.db"
    )
    ordered = sorted(study.trials, key=lambda t: t.number)
    assert ["tpe:relative_params:0" in t.system_attrs for t in ordered] == [False, False, True]

    # MLflow: the agent settings are params, and the model/agent tags group runs.
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = _children(client, "combined")
    assert len(runs) == 3
    for run in runs:
        params = run.data.params
        for key in (
            "model.hidden",
            "model.activation",
            "agent_settings.num_minibatches",
            "hyperparams.minibatch_size",
            "hyperparams.gamma",
        ):
            assert key in params, (key, sorted(params))
        assert run.data.tags["lrtune.agent"].count("=") == 5
    # compare --by model / agent groups the trials by those tags.
    experiment = load_experiment(str(workdir / "results" / "combined"))
    for by in ("model", "agent"):
        result = compare(
            [experiment],
            by=parse_by(by),
            source="trials",
            resamples=50,
            random_override={"CartPole-v1": 20.0},
            reference_override={"CartPole-v1": 500.0},
        )
        assert {g.group for g in result.groups} == {r.data.tags[f"lrtune.{by}"] for r in runs}
    best = outcome.best
    assert best is not None
    best_run = next(r for r in runs if r.data.tags["lrtune.trial_id"] == best.trial_id)

    # best.yaml runs as it is, with the best trial's policy, hyper-parameters and network.
    best_file = workdir / "results" / "combined" / "best.yaml"
    best_job = load_job(best_file)
    assert best_job.space is None and best_job.space_files == ()
    assert best_job.policy is not None
    assert best_job.policy.model_dump(mode="json") == best.policy
    assert {**best_job.hyperparams} == {**TINY, **best.hyperparams}
    assert list(best_job.model.hidden) == best.model["hidden"]
    assert best_job.model.activation == best.model["activation"]
    rerun = run_job(best_job, stream=io.StringIO())
    assert [t.status for t in rerun.trials] == ["completed"]
    assert _hidden_sizes(rerun.trials[0].checkpoint) == best.model["hidden"]
    again = _children(client, "combined-best")
    assert len(again) == 1
    params, tags = again[0].data.params, again[0].data.tags
    for key, value in best_run.data.params.items():
        if key.startswith(("policy.", "hyperparams.")):
            assert params[key] == value, key
    assert tags["lrtune.model"] == best_run.data.tags["lrtune.model"]
    assert tags["lrtune.policy"] == best_run.data.tags["lrtune.policy"]
