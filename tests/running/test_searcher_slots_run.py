"""Searchers from the ``searchers`` slot in real runs (Ray Tune, MLflow, tiny budgets): HyperOpt
through Tune's HyperOptSearch runs its trials with no Optuna study, and a sampler's ``params``
reach the Optuna sampler Tune drove (read back from the searcher state Tune saved)."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient
from ray import cloudpickle

from lrtune.running import run_job
from lrtune.specs import load_job

pytestmark = pytest.mark.slow

SPACE = {
    "version": 1,
    "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2},
    "hyperparams": {"gamma": {"distribution": "categorical", "choices": [0.95, 0.99]}},
}


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> None:
    return None


def _saved_searcher(workdir: Path, name: str, load: Any) -> dict[str, Any]:
    """The searcher state Tune saved in the experiment folder (what a resume restores)."""
    (state_file,) = (workdir / "ray_results" / name).glob("searcher-state-*.pkl")
    with state_file.open("rb") as handle:
        state: dict[str, Any] = load(handle)
    return state


def _children(workdir: Path, name: str) -> tuple[Any, list[Any]]:
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    return parent, [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]


def test_hyperopt_searcher_runs_its_trials_without_a_study(workdir: Path, job_file: Any) -> None:
    pytest.importorskip("hyperopt")
    path = job_file(
        workdir,
        "hyper",
        space=SPACE,
        trials={"num": 3, "max_concurrent": 2, "max_failures": 0},
        search={"algorithm": "hyperopt", "seed": 1, "startup_trials": 2, "params": {"gamma": 0.3}},
    )
    out = io.StringIO()
    outcome = run_job(load_job(path), stream=out)
    assert outcome.exit_code == 0, out.getvalue()
    assert [t.status for t in outcome.trials] == ["completed"] * 3
    lrs = {t.policy["lr"] for t in outcome.trials}
    assert len(lrs) == 3 and all(1e-4 <= lr <= 1e-2 for lr in lrs)
    assert {t.hyperparams["gamma"] for t in outcome.trials} <= {0.95, 0.99}
    assert not (workdir / "results" / "hyper" / "optuna.db").exists()

    parent, kids = _children(workdir, "hyper")
    assert parent.data.params["search"] == "hyperopt" and len(kids) == 3
    assert sorted(float(k.data.params["policy.lr"]) for k in kids) == pytest.approx(sorted(lrs))

    # HyperOpt was built with the job's parameters and was told every trial's score (its own
    # state file, which Tune saves beside lrtune's wrapper's).
    hyperopt = _saved_searcher(workdir, "hyper", cloudpickle.load)
    assert hyperopt["algo"].keywords == {"n_startup_jobs": 2, "gamma": 0.3}
    losses = sorted(hyperopt["_hpopt_trials"].losses())
    assert losses == pytest.approx(sorted(-t.score for t in outcome.trials))

    # The same job again resumes from Tune's saved state (lrtune's wrapper's and HyperOpt's):
    # no new trial, no new run.
    again = run_job(load_job(path), stream=io.StringIO())
    assert again.resumed and len(again.trials) == 3
    assert len(_children(workdir, "hyper")[1]) == 3


def test_sampler_params_reach_the_sampler_that_ran(workdir: Path, job_file: Any) -> None:
    path = job_file(
        workdir,
        "tuned",
        space=SPACE,
        trials={"num": 2, "max_concurrent": 2, "max_failures": 0},
        search={
            "algorithm": "optuna",
            "sampler": "tpe",
            "startup_trials": 1,
            "params": {"n_ei_candidates": 5, "constant_liar": False},
        },
    )
    out = io.StringIO()
    outcome = run_job(load_job(path), stream=out)
    assert outcome.exit_code == 0, out.getvalue()
    assert [t.status for t in outcome.trials] == ["completed"] * 2
    sampler = _saved_searcher(workdir, "tuned", pickle.load)["_sampler"]
    assert (sampler._n_ei_candidates, sampler._constant_liar) == (5, False)
    assert sampler._n_startup_trials == 1
