"""Tiny job files for tests (imported by name: test folders have no __init__.py, and pytest puts
``tests/`` on ``sys.path`` for its top-level conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: PPO settings that make an iteration 128 env steps and a fraction of a second.
TINY_PPO = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "num_envs_per_env_runner": 1,
}


#: A tiny RLlib set-up per agent: PPO two minibatch updates per iteration of 128 env steps;
#: DQN about three of 32 per iteration of ~110 env steps (``training_intensity`` 1: as many
#: items replayed as sampled; the presets' 32 made ~100 updates, most of a test's time); SAC
#: one per rollout fragment. DQN keeps RLlib's own episode buffer under test;
#: SAC replays from the presets' flat buffer.
TINY_AGENT: dict[str, dict[str, Any]] = {
    "ppo": {"train_batch_size_per_learner": 128, "minibatch_size": 64, "num_epochs": 1},
    "dqn": {
        "train_batch_size_per_learner": 32,
        "num_steps_sampled_before_learning_starts": 64,
        "min_sample_timesteps_per_iteration": 100,
        "training_intensity": 1,
        "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 5000},
    },
    "sac": {
        "train_batch_size_per_learner": 32,
        "num_steps_sampled_before_learning_starts": 64,
        "min_sample_timesteps_per_iteration": 100,
        "replay_buffer_config": {
            "type": "lrtune.learners.TransitionReplayBuffer",
            "capacity": 5000,
        },
    },
}


def env_for_agent(agent: str) -> str:
    """CartPole-v1 for an agent with discrete actions, Pendulum-v1 otherwise."""
    from lrtune.agents import get_agent

    return "CartPole-v1" if "discrete" in get_agent(agent).action_spaces else "Pendulum-v1"


def tiny_trial(
    agent: str,
    store: Path,
    seeds: list[int],
    name: str = "trial",
    lr: float = 1e-3,
    **fields: Any,
) -> Any:
    """A started `LRTuneTrainable` of a tiny ``agent`` job (`TINY_AGENT`, `env_for_agent`,
    constant ``lr``) training ``seeds`` in lockstep; ``fields`` replace more of the job's
    top-level keys (``evaluation``). The caller stops it."""
    from ray import tune

    from lrtune.running._trainable import LRTuneTrainable
    from lrtune.specs._load import parse_job
    from lrtune.specs._point import TrialPoint

    data = tiny_job(
        name,
        store,
        agent=agent,
        env={"id": env_for_agent(agent)},
        hyperparams=TINY_AGENT.get(agent, {}),
        budget={"trial_env_steps": 100_000},
        seeds={"tuning": seeds, "test": [7]},
        policy={"lr": 1e-3},
        **fields,
    )
    trainable = tune.with_parameters(LRTuneTrainable, job=parse_job(data))
    return trainable(TrialPoint(policy={"lr": lr}).to_config())


def train_trial(trial: Any, iterations: int) -> tuple[list[float], list[dict[str, str]]]:
    """Train a `tiny_trial` ``iterations`` times: its scores, then each seed's `state_hash`
    (weights and optimizer state)."""
    from lrtune.running._trainable import state_hash

    scores = [trial.train()["score"] for _ in range(iterations)]
    return scores, [state_hash(algo) for algo in trial.algos]


def tiny_job(name: str, store: Path, **fields: Any) -> dict[str, Any]:
    """A tiny PPO CartPole job as plain data: results, Ray storage and the MLflow sqlite file
    under ``store``; ``fields`` replace top-level keys."""
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": 256},
        # One trial at a time: a trial actor re-used by the next trial instead of two started
        # (about 7 s of CPU each); tests of concurrent trials say so in their own "trials".
        "trials": {"num": 2, "max_concurrent": 1, "max_failures": 1},
        "scheduler": {"name": "none"},
        "hyperparams": dict(TINY_PPO),
        "storage_path": str(store / "ray_results"),
        "results_dir": str(store / "results"),
        "tracking": {"uri": f"sqlite:///{store / 'mlflow.db'}"},
    }
    data.update(fields)
    # Tests pin a checkpoint after every iteration (deterministic fault points), where users get
    # a time cadence, unless the test gives a cadence of its own.
    trials = dict(data["trials"])
    if "checkpoint_seconds" not in trials and "checkpoint_env_steps" not in trials:
        data["trials"] = {**trials, "checkpoint_seconds": 0}
    return data


def write_yaml(folder: Path, name: str, data: dict[str, Any]) -> Path:
    """Write ``data`` as ``folder/name.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
