"""Train one trial directly (no Tune): the simplest way to watch an LR policy at work."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lrtune.learners import RESULT_KEY, ModelSettings, TrialResources, build_algorithm_config
from lrtune.learners._callbacks import env_fault
from lrtune.learners._presets import over_presets
from lrtune.policies import LRPolicySpec
from lrtune.running._local_ray import init_local_ray


@dataclass(frozen=True)
class IterationRecord:
    """What one training iteration reports: env steps, the applied LR, and the mean return."""

    iteration: int
    env_steps: int
    lr: float
    episode_return: float
    seconds: float


def train_single(
    policy: LRPolicySpec,
    *,
    agent: str = "ppo",
    env: str = "CartPole-v1",
    env_config: Mapping[str, Any] | None = None,
    env_steps: int = 30_000,
    seed: int = 0,
    hyperparams: Mapping[str, Any] | None = None,
    model: ModelSettings | None = None,
    on_iteration: Callable[[IterationRecord], None] | None = None,
) -> list[IterationRecord]:
    """Train until ``env_steps`` lifetime env steps on ``env`` built with ``env_config`` (a
    job's ``env.config``); call ``on_iteration`` after each iteration."""
    from lrtune.agents import require_env_id

    require_env_id(env, agent, env_config=env_config)  # bad input (exit 2), not a failure
    init_local_ray(num_cpus=1)
    params = over_presets(agent, env, env_config, hyperparams)
    config = build_algorithm_config(
        agent,
        env,
        policy=policy,
        env_config=env_config,
        hyperparams=params,
        resources=TrialResources(cpus=1),
        model=model,
        budget=env_steps,
        seed=seed,
    )
    algo = config.build_algo()
    records: list[IterationRecord] = []
    try:
        steps = 0
        while steps < env_steps:
            start = time.perf_counter()
            try:
                result = algo.train()
            except Exception as exc:
                fault = env_fault([algo], exc)
                if fault is not None:  # the env's fault: say which, as a trial's line does
                    raise fault from exc
                raise
            steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
            ret = result["env_runners"].get("episode_return_mean", math.nan)
            record = IterationRecord(
                iteration=int(result["training_iteration"]),
                env_steps=steps,
                lr=float(result[RESULT_KEY]["lr"]),
                episode_return=float(ret) if ret is not None else math.nan,
                seconds=time.perf_counter() - start,
            )
            records.append(record)
            if on_iteration is not None:
                on_iteration(record)
    finally:
        algo.stop()
    return records
