"""Agent search spaces combined with LR-policy spaces: one conditional space that samples only
valid combinations, with the agent settings turned into RLlib's per trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from lrtune.learners._presets import preset_hyperparams
from lrtune.specs import ModelSpec, compile_space, load_job, parse_job

ROOT = Path(__file__).resolve().parents[2]
SPACES = ROOT / "search_spaces"

#: The RLlib SAC settings search_spaces/sac_agent.yaml searches (besides model and buffer size).
SAC_SEARCHED = (
    "gamma",
    "tau",
    "train_batch_size_per_learner",
    "num_steps_sampled_before_learning_starts",
    "n_step",
    "initial_alpha",
)


def _job(agent: str, spaces: list[Any], **fields: Any) -> Any:
    env = {"ppo": "Acrobot-v1", "dqn": "CartPole-v1", "sac": "Pendulum-v1"}[agent]
    data = {
        "name": f"{agent}-agent",
        "agent": agent,
        "env": {"id": env},
        "budget": {"trial_env_steps": 50_000},
        "trials": {"num": 8},
        "space": spaces,
        **fields,
    }
    return parse_job(data, base_dir=ROOT)


def _points(job: Any, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` random points of the job's compiled space: (Optuna params, trial constants)."""
    compiled = compile_space(job)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    out = []
    for _ in range(n):
        trial = study.ask()
        constants = compiled.define(trial)["lrtune"]
        out.append((trial.params, constants))
    return out


def test_the_shipped_ppo_spaces_combine_into_one_conditional_space() -> None:
    job = _job("ppo", ["search_spaces/lr_policies.yaml", "search_spaces/ppo_agent.yaml"])
    assert job.space_files == (
        str(SPACES / "lr_policies.yaml"),
        str(SPACES / "ppo_agent.yaml"),
    )
    assert job.space_path is None and job.space.is_conditional
    assert " + " in job.space.description
    names = set(compile_space(job).distributions())
    assert {"schedule", "optimizer", "lr", "hyperparams.gamma", "hyperparams.lambda_"} <= names
    assert {"agent_settings.num_minibatches", "model.hidden", "model.activation"} <= names
    # The resolved job (space inlined) loads back to the same job.
    assert parse_job(job.to_yaml_dict()) == job


def test_ppo_samples_only_valid_combinations() -> None:
    job = _job("ppo", ["search_spaces/lr_policies.yaml", "search_spaces/ppo_agent.yaml"])
    seen_minibatches = set()
    for params, point in _points(job, 200):
        hyper = point["hyperparams"]
        batch = hyper["train_batch_size_per_learner"]
        n = params["agent_settings.num_minibatches"]
        assert hyper["minibatch_size"] == batch // n
        assert 1 <= hyper["minibatch_size"] <= batch
        seen_minibatches.add(n)
        model = ModelSpec.model_validate({**job.model.model_dump(), **point["model"]})
        assert list(model.hidden) == point["model"]["hidden"]
        assert point["agent_settings"] == {"num_minibatches": n}
    assert seen_minibatches == {1, 2, 4, 8, 16, 32}


def test_dqn_samples_only_valid_combinations() -> None:
    job = _job("dqn", ["search_spaces/dqn_policies.yaml", "search_spaces/dqn_agent.yaml"])
    presets = preset_hyperparams("dqn", "CartPole-v1")
    batches = set()
    for params, point in _points(job, 200):
        hyper = point["hyperparams"]
        (start, initial), (end, final) = hyper["epsilon"]
        assert (start, initial) == (0, 1.0)
        assert end == round(params["agent_settings.exploration_fraction"] * 50_000)
        assert 0 < end <= 25_000 and final == params["agent_settings.exploration_final_eps"]
        assert hyper["replay_buffer_config"] == {
            **presets["replay_buffer_config"],
            "capacity": params["agent_settings.buffer_size"],
        }
        assert hyper["n_step"] <= presets["rollout_fragment_length"]
        assert 100 <= hyper["target_network_update_freq"] <= 2_000
        # RLlib's training_intensity counts replayed items per env step: updates x batch.
        updates = params["agent_settings.updates_per_env_step"]
        assert 0.25 <= updates <= 1.0
        batch = hyper["train_batch_size_per_learner"]
        assert hyper["training_intensity"] == pytest.approx(updates * batch)
        batches.add(batch)
    assert batches == {32, 64, 128, 256}


def test_updates_per_env_step_follows_the_jobs_own_batch() -> None:
    part = {"agent_settings": {"updates_per_env_step": 0.5}}
    job = _job(
        "dqn",
        ["search_spaces/dqn_policies.yaml", part],
        hyperparams={"train_batch_size_per_learner": 96},
    )
    (_, point), *_ = _points(job, 1)
    assert point["hyperparams"]["training_intensity"] == 48.0
    # Left out of the job, the batch is the agent's presets'.
    job = _job("dqn", ["search_spaces/dqn_policies.yaml", part])
    (_, point), *_ = _points(job, 1)
    batch = preset_hyperparams("dqn", "CartPole-v1")["train_batch_size_per_learner"]
    assert point["hyperparams"]["training_intensity"] == 0.5 * batch


def test_an_exploration_setting_left_out_keeps_the_agents_ramp_end() -> None:
    part = {"agent_settings": {"exploration_final_eps": 0.02}}
    job = _job("dqn", ["search_spaces/dqn_policies.yaml", part])
    (_, point), *_ = _points(job, 1)
    ramp_end = preset_hyperparams("dqn", "CartPole-v1")["epsilon"][-1][0]
    assert point["hyperparams"]["epsilon"] == [[0, 1.0], [ramp_end, 0.02]]
    # The baseline trial gets the space's agent constants too.
    baseline = compile_space(job).baseline_point()
    assert baseline.hyperparams["epsilon"] == [[0, 1.0], [ramp_end, 0.02]]


def test_overrides_reach_into_a_combined_space(tmp_path: Path) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        "name: comb\nagent: ppo\nenv: {id: CartPole-v1}\nbudget: {trial_env_steps: 50000}\n"
        f"space: [{SPACES / 'lr_policies.yaml'}, {SPACES / 'ppo_agent.yaml'}]\n"
    )
    job = load_job(job_file, ["space.hyperparams.gamma=0.97", "space.model.activation=relu"])
    assert job.space.hyperparams["gamma"] == 0.97
    assert job.space.model["activation"] == "relu"
    assert len(job.space_files) == 2
    (_, point), *_ = _points(job, 1)
    assert point["hyperparams"]["gamma"] == 0.97 and point["model"]["activation"] == "relu"


def test_a_grid_crosses_the_agent_dimensions() -> None:
    agent_part = {
        "model": {"hidden": {"values": [[32], [64, 64]]}},
        "agent_settings": {"num_minibatches": {"values": [2, 4]}},
    }
    job = _job(
        "ppo",
        [{"lr": {"values": [1e-3, 3e-4]}}, agent_part],
        search={"algorithm": "grid"},
        hyperparams={"train_batch_size_per_learner": 512},
    )
    points = compile_space(job).grid_points()
    assert job.space.grid_size() == len(points) == 8
    combos = {
        (
            p.policy["lr"],
            str(p.model["hidden"]),
            p.hyperparams["minibatch_size"],
        )
        for p in points
    }
    assert len(combos) == 8
    assert {c[2] for c in combos} == {256, 128}


SAC_SPACES = ["search_spaces/sac_policies.yaml", "search_spaces/sac_agent.yaml"]
# As jobs/sac_pendulum.yaml: the temperature's rate stays constant at every point.
SAC_POLICY = {"lr": 1e-3, "roles": {"alpha": {"schedule": "constant"}}}


def test_the_shipped_sac_spaces_combine_into_one_conditional_space() -> None:
    job = _job("sac", SAC_SPACES, policy=SAC_POLICY)
    assert job.space_files == (str(SPACES / "sac_policies.yaml"), str(SPACES / "sac_agent.yaml"))
    assert job.space.is_conditional
    names = set(compile_space(job).distributions())
    assert {f"hyperparams.{key}" for key in SAC_SEARCHED} <= names
    assert {"agent_settings.buffer_size", "model.hidden", "model.activation"} <= names
    assert parse_job(job.to_yaml_dict()) == job


def test_sac_points_build_valid_rllib_sac_configs() -> None:
    """Every sampled point becomes an RLlib SACConfig that passes RLlib's own checks, with each
    searched setting where RLlib's SAC reads it (the config is built, never trained)."""
    from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights
    from ray.rllib.algorithms.sac import SACConfig

    from lrtune.learners import ModelSettings, build_algorithm_config
    from lrtune.specs import TrialPoint
    from lrtune.specs._compile import trial_model

    job = _job("sac", SAC_SPACES, policy=SAC_POLICY)
    presets = preset_hyperparams("sac", "Pendulum-v1")
    compiled = compile_space(job)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen: dict[str, set[Any]] = {
        "n_step": set(),
        "hidden": set(),
        "buffer_size": set(),
        "batch": set(),
    }
    for _ in range(12):
        trial = study.ask()
        point = TrialPoint.from_config(compiled.define(trial))
        # As LRTuneTrainable.setup: presets, then the job's settings, then the point's.
        hyper = {**presets, **job.hyperparams, **point.hyperparams}
        model = ModelSettings(**trial_model(job, point).model_dump())
        config = build_algorithm_config(
            "sac",
            "Pendulum-v1",
            policy=point.policy_spec(job),
            hyperparams=hyper,
            model=model,
            budget=job.budget.trial_env_steps,
            seed=0,
        )
        assert isinstance(config, SACConfig)
        config.validate()
        for key in SAC_SEARCHED:
            assert getattr(config, key) == trial.params[f"hyperparams.{key}"], key
        # Updates per env step, whatever the batch: RLlib's replay ratio is that x the batch,
        # and its round-robin weights give that rate to within their rounding to whole
        # fragments or updates (at worst 1.5 fragments' worth becomes 1 or 2: x2/3 or x4/3).
        updates = trial.params["agent_settings.updates_per_env_step"]
        assert 0.1 <= updates <= 1.0
        batch = config.train_batch_size_per_learner
        assert config.training_intensity == pytest.approx(updates * batch)
        stores, trains = calculate_rr_weights(config)
        sampled = config.get_rollout_fragment_length() * config.num_envs_per_env_runner
        rate = trains / (stores * sampled)
        assert 0.66 * updates <= rate <= 1.34 * updates, (updates, rate)
        seen["batch"].add(batch)
        # RLlib's rollout fragment ("auto") follows n_step, which its validation checks.
        assert config.get_rollout_fragment_length() == config.n_step
        buffer = config.replay_buffer_config
        assert buffer["capacity"] == trial.params["agent_settings.buffer_size"]
        assert buffer["type"] == presets["replay_buffer_config"]["type"]
        assert config.model_config["fcnet_hiddens"] == list(point.model["hidden"])
        assert config.model_config["fcnet_activation"] == point.model["activation"]
        # The roles' rates are the point's (the shared policy's, alpha's constant).
        rate = point.policy_spec(job).lr
        assert config.actor_lr == config.critic_lr == config.alpha_lr == rate
        assert config.lr is None
        seen["n_step"].add(config.n_step)
        seen["hidden"].add(tuple(point.model["hidden"]))
        seen["buffer_size"].add(buffer["capacity"])
    assert len(seen["n_step"]) > 1 and len(seen["hidden"]) == 2 and len(seen["buffer_size"]) == 2
    assert len(seen["batch"]) > 1


def test_sacs_buffer_size_is_an_agent_setting_ppo_refuses() -> None:
    from lrtune.specs import SpecError

    with pytest.raises(SpecError, match="buffer_size"):
        _job("ppo", ["search_spaces/lr_policies.yaml", "search_spaces/sac_agent.yaml"])


@pytest.mark.parametrize("agent", ["ppo", "dqn", "sac"])
def test_an_agent_space_alone_validates_as_a_space(agent: str) -> None:
    from lrtune.specs import load_space

    space = load_space(SPACES / f"{agent}_agent.yaml")
    assert space.model and space.agent_settings and space.hyperparams
