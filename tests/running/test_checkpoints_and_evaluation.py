"""Checkpoint frequency (``trials.checkpoint_env_steps``) and scoring on a deterministic
evaluation (``evaluation.score``), against a real Ray Tune, RLlib and MLflow."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from lrtune.cli import main
from lrtune.running import run_job
from lrtune.specs import load_job

ROOT = Path(__file__).resolve().parents[2]


def cosine_lr(lr: float, min_factor: float, step: int, horizon: int) -> float:
    """The cosine schedule's LR at ``step`` env steps (the closed form the trial must follow)."""
    t = min(step, horizon)
    return lr * (min_factor + (1 - min_factor) * (1 + math.cos(math.pi * t / horizon)) / 2)


def trial_results(outcome: Any) -> list[dict[str, Any]]:
    """Every result Tune recorded for the run's only trial, in order (restores included)."""
    (trial,) = outcome.trials
    lines = (outcome.experiment_dir / f"trial_{trial.trial_id}" / "result.json").read_text()
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_failed_trial_resumes_from_its_last_checkpoint_by_env_steps_with_the_lr_exact(
    ray_session: Any, workdir: Path, job_file: Any
) -> None:
    # Iterations of 128 env steps, a checkpoint every 256: the fault during the fourth
    # iteration (env step 450 of the process) sends the trial back to the checkpoint at 256,
    # so the third iteration (384) is trained twice and everything after it once.
    log = workdir / "faults.log"
    env = {
        "id": "lrtune/FaultyCartPole-v0",
        "config": {"fail_at_step": 450, "fault_log": str(log), "max_faults": 1},
    }
    policy = {"lr": 1e-3, "schedule": {"name": "cosine", "params": {"min_factor": 0.1}}}
    path = job_file(
        workdir,
        "sparse",
        env=env,
        policy=policy,
        budget={"trial_env_steps": 768},
        trials={"num": 1, "max_failures": 1, "checkpoint_env_steps": 256},
    )
    outcome = run_job(load_job(path), stream=io.StringIO())
    assert log.read_text().count("fault") == 1  # it did fail once
    (trial,) = outcome.trials
    assert trial.status == "completed" and trial.env_steps == 768

    results = trial_results(outcome)
    # The rows since the restore: Tune restarted the trial from the checkpoint at 256 env steps.
    restart = max(i for i, r in enumerate(results) if r["iterations_since_restore"] == 1)
    resumed = results[restart:]
    assert resumed[0]["training_iteration"] == 3, results  # restored from iteration 2's
    assert [r["env_steps"] for r in resumed] == [384, 512, 640, 768]
    assert [r["iterations_since_restore"] for r in resumed] == [1, 2, 3, 4]
    # The rows before it are the first run's 128, 256, 384, or the first of them: on a retry
    # Tune copies the trial's result.json back from the storage path over the driver's copy,
    # so rows written after its last sync are gone from that file (MLflow keeps them, below).
    before = [r["env_steps"] for r in results[:restart]]
    assert before == [128, 256, 384][: len(before)], before
    for result in results:
        expected = cosine_lr(1e-3, 0.1, result["env_steps"], 768)
        assert result["lrtune"]["lr"] == pytest.approx(expected, rel=1e-9)
        # A checkpoint each time the env steps pass a multiple of 256 (iterations of 128).
        assert bool(result.get("should_checkpoint")) == (result["env_steps"] % 256 == 0), result
    # MLflow holds the whole trajectory, each env step once (the recorder logs a step once).
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (run,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name("sparse").experiment_id])
        if r.data.tags.get("lrtune.role") == "trial"
    ]
    history = client.get_metric_history(run.info.run_id, "lr")
    steps = [128, 256, 384, 512, 640, 768]
    assert sorted(m.step for m in history) == steps
    assert {m.step: m.value for m in history} == pytest.approx(
        {s: cosine_lr(1e-3, 0.1, s, 768) for s in steps}, rel=1e-9
    )


@pytest.mark.slow
def test_scoring_on_the_evaluation_reports_the_deterministic_evaluation_of_the_final_policy(
    ray_session: Any, workdir: Path, job_file: Any
) -> None:
    from ray.rllib.algorithms.algorithm import Algorithm

    outcome, trial = _scored_on_evaluation(workdir, job_file, "evaluated", episodes=3)
    first, second, third = trial_results(outcome)
    # Before the first evaluation: the training value; RLlib evaluates at iteration 2; the last
    # iteration (3) has none of RLlib's, so the trial evaluates its final policy itself.
    assert math.isnan(first["evaluation_return"]) and first["score"] == first["metric_raw"]
    assert second["score"] == second["evaluation_return"] != second["metric_raw"]
    assert third["score"] == third["evaluation_return"] != third["metric_raw"]
    assert trial.score == third["score"]
    # The training value stays on the outcome: it breaks ties between equal scores.
    assert math.isfinite(third["metric_raw"])
    assert trial.training_score == third["training_score"] == third["metric_raw"]

    # The same evaluation, run again here on the final checkpoint, gives the same mean: the
    # episodes are greedy and the evaluation env is re-seeded at every evaluation.
    assert trial.checkpoint is not None
    algo = Algorithm.from_checkpoint(str(Path(trial.checkpoint) / "seed0"))
    try:
        again = algo.evaluate()["env_runners"]
        assert again["num_episodes"] == 3
        assert again["episode_return_mean"] == pytest.approx(trial.score, rel=1e-12)
    finally:
        algo.stop()
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run = _only_trial_run(client, "evaluated")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "evaluation_return")] == [
        256,
        384,
    ]


def test_an_evaluation_on_an_env_without_a_time_limit_ends_and_says_where_it_cuts(
    ray_session: Any, workdir: Path, job_file: Any
) -> None:
    """CliffWalking-v1 has no time limit and its episodes end only at the goal, which an
    untrained greedy policy does not reach: RLlib's evaluation, which plays whole episodes,
    would never return. Evaluation episodes are cut at budget.trial_env_steps, and the run
    says so under its header."""
    path = job_file(
        workdir,
        "endless",
        env={"id": "CliffWalking-v1"},
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 256},
        trials={"num": 1},
        evaluation={"episodes": 2, "score": True},
    )
    stream = io.StringIO()
    outcome = run_job(load_job(path), stream=stream)
    assert (
        "warning: env.id 'CliffWalking-v1' has no time limit (max_episode_steps), so "
        "evaluation episodes are cut at 256 env steps"
    ) in stream.getvalue()
    (trial,) = outcome.trials
    assert trial.status == "completed" and trial.checkpoint is not None
    from ray.rllib.algorithms.algorithm import Algorithm

    # The final policy, evaluated again: both greedy episodes run into the cut (seeded).
    algo = Algorithm.from_checkpoint(str(Path(trial.checkpoint) / "seed0"))
    try:
        again = algo.evaluate()["env_runners"]
    finally:
        algo.stop()
    assert again["num_episodes"] == 2 and again["episode_len_min"] == 256
    assert again["episode_return_mean"] == pytest.approx(trial.score, rel=1e-12)
    assert trial.score <= -256


@pytest.mark.slow
def test_finalize_scores_finalists_on_the_deterministic_evaluation_when_asked(
    ray_session: Any, workdir: Path, job_file: Any
) -> None:
    from lrtune.running._finalize import finalize

    path = job_file(workdir, "trained", policy={"lr": 3e-4}, trials={"num": 1})
    outcome = run_job(load_job(path), stream=io.StringIO())
    assert outcome.exit_code == 0
    out = io.StringIO()
    final = finalize(str(outcome.results_dir), top=1, seeds=1, evaluation_episodes=2, stream=out)
    assert final.exit_code == 0, out.getvalue()
    assert final.scored_on == "deterministic evaluation (2 greedy episodes)"
    assert "(the search scored: training value)" in out.getvalue()
    recorded = json.loads((outcome.results_dir / "finalists.json").read_text())
    assert recorded["scored_on"] == final.scored_on
    (finalist,) = final.finalists
    (folder,) = (workdir / "ray_results").glob(f"trained-finalists-{final.round_id}/trial_*")
    lines = (folder / "result.json").read_text().splitlines()
    last = json.loads(lines[-1])
    assert last["score"] == last["evaluation_return"] != last["metric_raw"]
    assert finalist.test_scores == {1000: last["score"]}

    # Again with a second test seed: seed 1000's finished run joins the new round as it is, and
    # only seed 1001 trains.
    out = io.StringIO()
    again = finalize(str(outcome.results_dir), top=1, seeds=2, evaluation_episodes=2, stream=out)
    assert again.exit_code == 0 and again.round_id != final.round_id, out.getvalue()
    assert "1 of 2 test runs re-used from earlier rounds" in out.getvalue()
    assert f"1000:{last['score']:.2f}*" in out.getvalue()  # marked re-used in the table
    (second,) = again.finalists
    assert second.reused_seeds == [1000] and list(second.test_scores) == [1000, 1001]
    assert second.test_scores[1000] == last["score"] and second.test_scores[1001] is not None
    trained = (workdir / "ray_results").glob(f"trained-finalists-{again.round_id}/trial_*")
    assert len(list(trained)) == 1
    from lrtune.analysis import load_experiment

    runs = load_experiment(str(outcome.results_dir)).finalists()  # compare's: the latest round
    assert {r.finalize_round for r in runs} == {again.round_id}
    by_seed = {r.tags["lrtune.test_seed"]: r for r in runs}
    assert sorted(by_seed) == ["1000", "1001"]
    assert by_seed["1000"].tags["lrtune.trained_in_round"] == final.round_id
    assert by_seed["1000"].score == last["score"]
    assert "lrtune.trained_in_round" not in by_seed["1001"].tags


@pytest.mark.slow
def test_a_dqn_checkpoint_carries_its_replay_buffer(ray_session: Any, tmp_path: Path) -> None:
    from lrtune.learners import build_algorithm_config
    from lrtune.running._trainable import load_replay_buffer, save_replay_buffer

    hyperparams = {
        "num_envs_per_env_runner": 1,
        "rollout_fragment_length": 4,
        "train_batch_size_per_learner": 32,
        "min_sample_timesteps_per_iteration": 200,
        "num_steps_sampled_before_learning_starts": 100,
    }

    def build() -> Any:
        return build_algorithm_config(
            "dqn", "CartPole-v1", policy={"lr": 1e-4}, hyperparams=hyperparams, seed=0
        ).build_algo()

    trained, fresh = build(), build()
    try:
        trained.train()
        trained.train()
        saved = trained.local_replay_buffer
        assert saved.get_num_timesteps() >= 400
        trained.save_to_path(str(tmp_path))
        save_replay_buffer(trained, str(tmp_path))
        fresh.restore_from_path(str(tmp_path))
        assert fresh.local_replay_buffer.get_num_timesteps() == 0  # RLlib alone drops it
        assert load_replay_buffer(fresh, str(tmp_path))
        restored = fresh.local_replay_buffer
        assert restored.get_num_timesteps() == saved.get_num_timesteps()
        assert restored.get_added_timesteps() == saved.get_added_timesteps()
        assert [e.get_return() for e in restored.episodes] == [
            e.get_return() for e in saved.episodes
        ]
        fresh.train()  # learns on from the restored buffer
    finally:
        trained.stop()
        fresh.stop()


BAD_SETTINGS = [
    ({"trials": {"checkpoint_env_steps": 0}}, "trials.checkpoint_env_steps"),
    ({"trials": {"checkpoint_env_steps": "often"}}, "trials.checkpoint_env_steps"),
    ({"trials": {"checkpoint_every": 5}}, "trials.checkpoint_every"),
    ({"trials": {"checkpoint_seconds": -1}}, "trials.checkpoint_seconds"),
    ({"trials": {"checkpoint_seconds": "hourly"}}, "trials.checkpoint_seconds"),
    (
        {"trials": {"checkpoint_seconds": 30, "checkpoint_env_steps": 1000}},
        "trials.checkpoint_seconds: give one checkpoint cadence",
    ),
    ({"evaluation": {"episodes": 0}}, "evaluation.episodes"),
    ({"evaluation": {"episodes": 100_000}}, "evaluation.episodes"),
    ({"evaluation": {"interval": -1}}, "evaluation.interval"),
    ({"evaluation": {"score": "yes"}}, "evaluation.score"),
    ({"evaluation": {"deterministic": True}}, "evaluation.deterministic"),
    (
        {"evaluation": {"score": True}, "metric": {"name": "learners/default_policy/total_loss"}},
        "evaluation.score",
    ),
]


@pytest.mark.parametrize(("fields", "field"), BAD_SETTINGS)
def test_bad_checkpoint_and_evaluation_settings_exit_2_naming_the_field(
    tmp_path: Path, job_file: Any, capsys: pytest.CaptureFixture[str], fields: Any, field: str
) -> None:
    path = job_file(tmp_path, "bad", policy={"lr": 3e-4}, **fields)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_good_checkpoint_and_evaluation_settings_plan(tmp_path: Path, job_file: Any) -> None:
    path = job_file(
        tmp_path,
        "good",
        policy={"lr": 3e-4},
        trials={"num": 1, "checkpoint_env_steps": "1e4"},
        evaluation={"interval": 0, "episodes": 5, "score": True},
    )
    job = load_job(path)
    assert job.trials.checkpoint_env_steps == 10_000
    assert job.evaluation.enabled and job.evaluation.score


def test_the_checkpoint_cadence_by_seconds_by_env_steps_and_after_every_iteration() -> None:
    from lrtune.specs import TrialsSpec

    default = TrialsSpec()
    assert not default.checkpoints_every_iteration
    assert not default.checkpoint_due(128, 0, 59.9) and default.checkpoint_due(128, 0, 60.0)
    by_time = TrialsSpec(checkpoint_seconds=5)
    assert [by_time.checkpoint_due(256, 128, s) for s in (0.0, 4.99, 5.0, 70.0)] == [
        False,
        False,
        True,
        True,
    ]
    assert TrialsSpec(checkpoint_seconds=0).checkpoints_every_iteration  # Tune's frequency 1
    by_steps = TrialsSpec(checkpoint_env_steps=256)
    # Env steps alone decide: passing a multiple of 256, however long it took.
    assert [by_steps.checkpoint_due(e, e - 128, 1e6) for e in (128, 256, 384, 512)] == [
        False,
        True,
        False,
        True,
    ]
    assert by_steps.checkpoint_due(300, 250, 0.0) and not by_steps.checkpoint_due(500, 300, 0.0)


@pytest.mark.slow
def test_by_default_a_short_trial_saves_only_at_its_end(
    ray_session: Any, workdir: Path, job_file: Any
) -> None:
    # The default cadence (60 s of training between checkpoints) asks for none in a trial of a
    # few seconds; Tune's checkpoint at the end still saves the final policy.
    path = job_file(
        workdir,
        "cadence",
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 384},
        trials={"num": 1, "checkpoint_seconds": None},
    )
    job = load_job(path)
    assert job.trials.checkpoint_seconds is None and job.trials.checkpoint_env_steps is None
    outcome = run_job(job, stream=io.StringIO())
    (trial,) = outcome.trials
    assert trial.status == "completed" and trial.env_steps == 384
    results = trial_results(outcome)
    assert [r["env_steps"] for r in results] == [128, 256, 384]
    assert results[-1]["trial_seconds"] < 60, results[-1]
    assert not any(r.get("should_checkpoint") for r in results), results
    assert trial.checkpoint is not None and (Path(trial.checkpoint) / "seed0").is_dir()
    saved = sorted(p.name for p in (outcome.experiment_dir / f"trial_{trial.trial_id}").iterdir())
    assert [name for name in saved if name.startswith("checkpoint_")] == ["checkpoint_000000"]


@pytest.mark.slow
def test_a_trial_of_several_seeds_reports_each_seeds_values_behind_its_means(
    ray_session: Any, workdir: Path, job_file: Any
) -> None:
    outcome, _ = _scored_on_evaluation(
        workdir, job_file, "per-seed", episodes=2, seeds={"tuning": [3, 8], "test": [7]}
    )
    results = trial_results(outcome)
    for result in results:
        by_seed = result["by_seed"]
        assert list(by_seed) == ["3", "8"]
        training = [by_seed[s]["metric_raw"] for s in by_seed]
        if all(math.isfinite(v) for v in training):
            assert result["metric_raw"] == pytest.approx(sum(training) / 2, rel=1e-12)
    first, second, third = results
    assert all(math.isnan(first["by_seed"][s]["evaluation_return"]) for s in ("3", "8"))
    for result in (second, third):
        evaluations = [result["by_seed"][s]["evaluation_return"] for s in ("3", "8")]
        assert result["evaluation_return"] == pytest.approx(sum(evaluations) / 2, rel=1e-12)

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    run = _only_trial_run(client, "per-seed")
    for seed in ("3", "8"):
        history = client.get_metric_history(run.info.run_id, f"by_seed.{seed}.evaluation_return")
        assert [m.step for m in history] == [256, 384]
        last = third["by_seed"][seed]["evaluation_return"]
        assert history[-1].value == pytest.approx(last, rel=1e-12)


def _only_trial_run(client: MlflowClient, experiment: str) -> Any:
    """The one trial run of ``experiment`` in MLflow."""
    (run,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        if r.data.tags.get("lrtune.role") == "trial"
    ]
    return run


def _scored_on_evaluation(
    workdir: Path, job_file: Any, name: str, episodes: int, **fields: Any
) -> tuple[Any, Any]:
    """Run a one-trial job of 3 iterations (384 env steps) scored on an evaluation every 2
    iterations of ``episodes`` episodes; its outcome and its completed trial."""
    path = job_file(
        workdir,
        name,
        policy={"lr": 3e-4},
        budget={"trial_env_steps": 384},
        trials={"num": 1},
        evaluation={"interval": 2, "episodes": episodes, "score": True},
        **fields,
    )
    outcome = run_job(load_job(path), stream=io.StringIO())
    (trial,) = outcome.trials
    assert trial.status == "completed"
    return outcome, trial
