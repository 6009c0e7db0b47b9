"""`lrtune run` against a real Ray, a real MLflow store and a real Optuna study."""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from lrtune.cli import main
from lrtune.running import run_job
from lrtune.specs import load_job

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

COSINE_SPACE = {
    "version": 1,
    "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3},
    "schedule": {"cosine": {"min_factor": {"distribution": "uniform", "low": 0.0, "high": 0.5}}},
    "optimizer": {"adam": {}},
}


def cosine_lr(lr: float, min_factor: float, step: int, horizon: int) -> float:
    t = min(step, horizon)
    return lr * (min_factor + (1 - min_factor) * (1 + math.cos(math.pi * t / horizon)) / 2)


def children(client: MlflowClient, experiment: str) -> tuple[Any, list[Any]]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    kids = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    assert len(parents) == 1
    return parents[0], kids


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> None:
    return None


def test_small_run_records_nested_runs_lr_closed_form_and_loadable_artifacts(
    workdir: Path,
    job_file: Any,
) -> None:
    path = job_file(workdir, "small", space=COSINE_SPACE, search={"seed": 1})
    job = load_job(path)
    out = io.StringIO()
    outcome = run_job(job, stream=out)
    assert outcome.exit_code == 0, out.getvalue()
    assert [t.status for t in outcome.trials] == ["completed", "completed"]

    client = MlflowClient(job.tracking.resolved_uri)
    parent, kids = children(client, "small")
    assert len(kids) == 2
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["version.ray"].startswith("2.")
    assert "host.cpu" in parent.data.tags
    for run in kids:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED" and run.data.tags["lrtune.status"] == "completed"
        assert run.data.tags["schedule_family"] == "cosine"
        lr = float(run.data.params["policy.lr"])
        floor = float(run.data.params["policy.schedule.params.min_factor"])
        history = client.get_metric_history(run.info.run_id, "lr")
        assert [m.step for m in history] == [128, 256]
        for m in history:
            assert m.value == pytest.approx(cosine_lr(lr, floor, m.step, 256), rel=1e-9)
        assert {"episode_return_mean", "grad_norm_pre_gating", "kl"} <= set(run.data.metrics)
        # The trial's resolved job, as logged, loads back into a job with the same policy.
        local = client.download_artifacts(run.info.run_id, "", str(workdir / run.info.run_id))
        (artifact,) = list(Path(local).glob("*.yaml"))
        resolved = load_job(artifact)
        assert resolved.space is None and resolved.policy is not None
        assert resolved.policy.lr == pytest.approx(lr)
        assert resolved.policy.schedule.params["min_factor"] == pytest.approx(floor)

    summary = json.loads((workdir / "results" / "small" / "summary.json").read_text())
    assert summary["best"] in {t["trial_id"] for t in summary["trials"]}
    best = load_job(workdir / "results" / "small" / "best.yaml")
    assert best.trials.num == 1 and best.space is None
    assert main(["run", str(workdir / "results" / "small" / "best.yaml"), "--dry-run"]) == 0

    study = optuna.load_study(
        study_name="small", storage=f"sqlite:///{workdir}/results/small/optuna.db"
    )
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2

    # The same job again resumes: no new trial, no new run.
    again = run_job(load_job(path), stream=io.StringIO())
    assert again.resumed and len(again.trials) == 2
    _, kids_after = children(client, "small")
    assert len(kids_after) == 2
    assert (
        len(
            optuna.load_study(
                study_name="small", storage=f"sqlite:///{workdir}/results/small/optuna.db"
            ).trials
        )
        == 2
    )
    # A changed job under the same name is refused with exit 2 before anything is written.
    assert main(["run", str(path), "--set", "budget.trial_env_steps=384"]) == 2


def test_a_failing_trial_is_retried_from_its_checkpoint_and_completes(
    workdir: Path, job_file: Any
) -> None:
    log = workdir / "faults.log"
    env = {
        "id": "lrtune/FaultyCartPole-v0",
        "config": {"fail_at_step": 300, "fault_log": str(log), "max_faults": 1},
    }
    path = job_file(
        workdir,
        "flaky",
        env=env,
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 512},
        trials={"num": 1, "max_failures": 1},
    )
    outcome = run_job(load_job(path), stream=io.StringIO())
    assert log.read_text().count("fault") == 1  # it did fail once
    (trial,) = outcome.trials
    assert trial.status == "completed" and trial.env_steps >= 512
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    _, kids = children(client, "flaky")
    assert len(kids) == 1 and kids[0].info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(kids[0].info.run_id, "lr")]
    assert steps == sorted(set(steps))  # restored from the checkpoint, never restarted at 0


def test_a_trial_that_always_fails_ends_failed_everywhere_and_others_finish(
    workdir: Path,
    job_file: Any,
) -> None:
    log = workdir / "faults.log"
    env = {
        "id": "lrtune/FaultyCartPole-v0",
        "config": {"fail_at_step": 50, "fault_log": str(log), "max_faults": 2},
    }
    space = {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3}}
    path = job_file(
        workdir,
        "broken",
        env=env,
        space=space,
        policy={"lr": 3e-4},
        trials={"num": 2, "max_concurrent": 1, "max_failures": 1},
    )
    out = io.StringIO()
    outcome = run_job(load_job(path), stream=out)
    statuses = sorted(t.status for t in outcome.trials)
    assert statuses == ["completed", "failed"], out.getvalue()
    failed = next(t for t in outcome.trials if t.status == "failed")
    assert "InjectedFault" in (failed.error or "") and "Traceback" not in (failed.error or "")
    assert outcome.exit_code == 0
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    _, kids = children(client, "broken")
    by_status = {r.data.tags["lrtune.status"]: r for r in kids}
    assert by_status["failed"].info.status == "FAILED"
    assert "InjectedFault" in by_status["failed"].data.tags["lrtune.error"]
    study = optuna.load_study(
        study_name="broken", storage=f"sqlite:///{workdir}/results/broken/optuna.db"
    )
    states = sorted(t.state.name for t in study.trials)
    assert states == ["COMPLETE", "FAIL"]
    summary = json.loads((workdir / "results" / "broken" / "summary.json").read_text())
    assert summary["counts"]["failed"] == 1 and summary["best"] != failed.trial_id


def test_a_diverging_trial_ends_diverged_with_a_finite_value_and_is_never_best(
    workdir: Path,
    job_file: Any,
) -> None:
    guard = {"name": "divergence_guard", "params": {"max_events": 2}}
    space = {
        "version": 1,
        "lr": {"distribution": "categorical", "choices": [1000.0]},
        "optimizer": {"sgd": {}},
        "feedback": {"guard": [guard]},
    }
    path = job_file(
        workdir,
        "diverge",
        space=space,
        policy={"lr": 3e-4},
        search={"baseline_first": True},
        budget={"trial_env_steps": 1024},
        hyperparams={**dict(TINY), "num_epochs": 4, "minibatch_size": 32},
    )
    outcome = run_job(load_job(path), stream=io.StringIO())
    diverged = [t for t in outcome.trials if t.status == "diverged"]
    assert len(diverged) == 1, [(t.status, t.policy_short) for t in outcome.trials]
    assert diverged[0].score is not None and math.isfinite(diverged[0].score)
    assert diverged[0].score == -1e6 and diverged[0].env_steps < 1024  # stopped early
    assert outcome.best is not None and outcome.best.trial_id != diverged[0].trial_id
    study = optuna.load_study(
        study_name="diverge", storage=f"sqlite:///{workdir}/results/diverge/optuna.db"
    )
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    # Told to Optuna as COMPLETE with the job's worst value, so samplers learn the region.
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE"]
    told = [t for t in study.trials if t.user_attrs.get("lrtune_status") == "diverged"]
    assert len(told) == 1 and told[0].value == -1e6
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    _, kids = children(client, "diverge")
    assert sorted(r.data.tags["lrtune.status"] for r in kids) == ["completed", "diverged"]
    assert [r.data.tags.get("diverged") for r in kids if r.data.tags.get("diverged")] == ["true"]


TINY = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "num_envs_per_env_runner": 1,
}


def test_dry_run_starts_no_ray_and_bad_jobs_exit_2(tmp_path: Path, job_file: Any) -> None:
    path = job_file(tmp_path, "dry", policy={"lr": 3e-4})
    ray_tmp = tmp_path / "raytmp"
    ray_tmp.mkdir()
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    out = subprocess.run(
        [sys.executable, "-m", "lrtune", "run", str(path), "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["trials"] == 2 and plan["resources_per_trial"] == {"cpu": 1.0, "gpu": 0.0}
    assert list(ray_tmp.iterdir()) == []  # no Ray session was started
    assert not (tmp_path / "results").exists() and not (tmp_path / "mlflow.db").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "agnet": "ppo"}))
    out = subprocess.run(
        [sys.executable, "-m", "lrtune", "run", str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 2 and "agnet" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "results").exists()


def test_all_trials_failing_exits_1(workdir: Path, job_file: Any) -> None:
    env = {"id": "lrtune/FaultyCartPole-v0", "config": {"fail_at_step": 50}}
    path = job_file(
        workdir, "doomed", env=env, policy={"lr": 3e-4}, trials={"num": 1, "max_failures": 0}
    )
    assert main(["run", str(path)]) == 1


def test_shipped_jobs_plan_without_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    jobs = sorted((ROOT / "jobs").glob("*.yaml"))
    for job in jobs:
        assert main(["run", str(job), "--dry-run"]) == 0, job
        capsys.readouterr()


def test_a_search_warm_starts_from_an_earlier_study(workdir: Path, job_file: Any) -> None:
    first = job_file(workdir, "first", space=COSINE_SPACE, trials={"num": 2, "max_concurrent": 2})
    run_job(load_job(first), stream=io.StringIO())
    second = job_file(
        workdir,
        "second",
        space=COSINE_SPACE,
        trials={"num": 1, "max_concurrent": 1},
        search={"warm_start": str(workdir / "results" / "first")},
    )
    out = io.StringIO()
    run_job(load_job(second), stream=out)
    assert "warm start: copied 2 finished trials" in out.getvalue()
    study = optuna.load_study(
        study_name="second", storage=f"sqlite:///{workdir}/results/second/optuna.db"
    )
    assert len(study.trials) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_plan_that_cannot_be_built_leaves_no_records(workdir: Path, job_file: Any) -> None:
    """`run_job` plans before it records: a warm start from a folder with no study is refused
    before the experiment's marker, its MLflow parent run or any trial exists."""
    from lrtune.registry import LRTuneError

    path = job_file(
        workdir,
        "no-source",
        space=COSINE_SPACE,
        search={"warm_start": str(workdir / "results" / "nowhere")},
    )
    job = load_job(path)
    with pytest.raises(LRTuneError, match=r"search\.warm_start: no Optuna study"):
        run_job(job, stream=io.StringIO())
    assert not (workdir / "ray_results" / "no-source").exists()
    assert not (workdir / "results" / "no-source" / "job.yaml").exists()
    client = MlflowClient(job.tracking.resolved_uri)
    assert client.get_experiment_by_name(job.experiment_name) is None


def test_sac_records_each_optimizer_roles_rate_in_mlflow_as_its_closed_form(
    workdir: Path, job_file: Any
) -> None:
    """SAC's three roles through `lrtune run`: the shared linear decay for actor and critic,
    the alpha role's own constant rate; each logged per update step as ``lr.<role>``."""
    path = job_file(
        workdir,
        "sac-roles",
        agent="sac",
        env={"id": "Pendulum-v1"},
        budget={"trial_env_steps": 400},
        trials={"num": 1},
        policy={
            "lr": 1e-3,
            "schedule": {"name": "linear", "params": {"end_factor": 0.2}},
            "roles": {"critic": {"lr": 2e-3}, "alpha": {"lr": 5e-4, "schedule": "constant"}},
        },
        hyperparams={
            "train_batch_size_per_learner": 32,
            "num_steps_sampled_before_learning_starts": 64,
            "min_sample_timesteps_per_iteration": 100,
            "replay_buffer_config": {"capacity": 2000},  # the presets' flat buffer
        },
    )
    outcome = run_job(load_job(path), stream=io.StringIO())
    assert outcome.exit_code == 0 and [t.status for t in outcome.trials] == ["completed"]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    _, (run,) = children(client, "sac-roles")

    def linear(base: float, step: int) -> float:
        return base * (1.0 - 0.8 * min(step, 400) / 400)

    expected = {
        "lr.actor": lambda step: linear(1e-3, step),
        "lr.critic": lambda step: linear(2e-3, step),
        "lr.alpha": lambda step: 5e-4,
        "lr": lambda step: linear(1e-3, step),
    }
    for key, closed_form in expected.items():
        history = client.get_metric_history(run.info.run_id, key)
        assert len(history) >= 3, key
        # Each point is logged at the trial's env steps; the rate was set at the learner's
        # env-step count of its last update (lr_env_step), which the same result reports.
        steps = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "lr_env_step")}
        for m in history:
            assert m.value == pytest.approx(closed_form(int(steps[m.step])), rel=1e-9), key


def test_a_metric_name_in_no_result_fails_the_trial_saying_so(workdir: Path, job_file: Any) -> None:
    """A misspelt metric.name used to leave every trial unscored, and the run's warning
    blamed the episodes' length; once episodes have ended and the name is in no result, the
    trial fails naming metric.name."""
    path = job_file(
        workdir,
        "typo",
        policy={"lr": 3e-4},
        metric={"name": "env_runners/episode_reward_mean"},  # RLlib's old name
        budget={"trial_env_steps": 1024},  # 64 steps of each of 16 envs: episodes end
        trials={"num": 1, "max_concurrent": 1, "max_failures": 0},
    )
    out = io.StringIO()
    outcome = run_job(load_job(path), stream=out)
    text = out.getvalue()
    (trial,) = outcome.trials
    assert trial.status == "failed", text
    assert "MetricNameError: metric.name: 'env_runners/episode_reward_mean' has no value" in text
    assert "no episode ended" not in text


def test_a_non_finite_env_output_fails_the_trial_naming_the_env(
    workdir: Path, job_file: Any
) -> None:
    """Pendulum-v1 with gravity NaN returns NaN observations from its first step. PPO used to
    stop inside torch's Normal ("found invalid values"), or, for a NaN reward, be reported as
    diverged; the trial now fails with `EnvOutputError`, which says it is the env's fault."""
    path = job_file(
        workdir,
        "nanenv",
        env={"id": "Pendulum-v1", "config": {"g": math.nan}},
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 1024},
        trials={"num": 1, "max_concurrent": 1, "max_failures": 0},
    )
    out = io.StringIO()
    outcome = run_job(load_job(path), stream=out)
    text = out.getvalue()
    (trial,) = outcome.trials
    assert trial.status == "failed" and outcome.exit_code == 1, text
    assert (
        "lrtune.learners.EnvOutputError: env.id: the env returned an observation holding nan"
        in text
    )
    assert "diverged" not in text


def test_trials_in_which_no_episode_ended_have_no_score_and_the_run_says_why(
    workdir: Path, job_file: Any
) -> None:
    """Pendulum-v1 without its time limit: no episode ends in the budget. The worst value stands
    in for Tune and Optuna, but the trials get no score (no best, '-' in the table, no `score`
    points in MLflow) and one line says what to change."""
    path = job_file(
        workdir,
        "endless",
        env={"id": "Pendulum-v1", "config": {"max_episode_steps": 1_000_000}},
        policy={"lr": 3e-4},
        trials={"num": 1, "max_concurrent": 1},
    )
    job = load_job(path)
    out = io.StringIO()
    outcome = run_job(job, stream=out)
    text = out.getvalue()
    assert outcome.exit_code == 0, text
    (trial,) = outcome.trials
    assert trial.status == "completed" and trial.score is None and outcome.best is None
    assert f"{trial.trial_id[-12:]:<12} {'completed':<13} {'-':>9}" in text, text
    assert "warning: no episode ended in 1 trial(s)" in text
    assert "env.config: {max_episode_steps: N}" in text
    assert "-1000000" not in text  # the stand-in is never shown as a score
    summary = json.loads((Path(job.results_dir) / "endless" / "summary.json").read_text())
    assert summary["best"] is None
    client = MlflowClient(job.tracking.resolved_uri)
    _, (run,) = children(client, "endless")
    assert client.get_metric_history(run.info.run_id, "score") == []
    assert len(client.get_metric_history(run.info.run_id, "lr")) == 2
