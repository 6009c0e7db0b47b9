"""Env steps per second *in training* on the recommender (``lrtune/RecSys-v0``), one CPU.

What runs: RLlib PPO and DQN built by lrtune's ``build_algorithm_config`` (lrtune's learner,
its presets, a constant LR policy: Adam 3e-4 PPO / 1e-4 DQN), in this process, with
``OMP_NUM_THREADS=1`` and ``torch.set_num_threads(1)``, sampling in the same process
(``num_env_runners=0``, as every lrtune trial). Per configuration: build, ``--warmup``
``algo.train()`` iterations (DQN: until learning has started), then timed iterations until
``--min-steps`` env steps; env steps/s in training = env steps sampled in the timed iterations
(RLlib's ``num_env_steps_sampled_lifetime`` difference) / their wall time (sampling, learner
connectors, updates, metrics: everything ``train()`` does). Configurations, side by side in one
run so that load drift hits all alike:

* PPO ``presets@sync16``: the agent defaults as they were before this benchmark (RLlib's
  ``"sync"`` vectorisation: 16 ``RecSysEnv`` objects; batch 2048, minibatch 256, 10 epochs);
* PPO ``vec<N>``: the native ``BatchedRecSysEnv`` (``gym_env_vectorize_mode=
  "vector_entry_point"``, lrtune's batched module-to-env pipeline) with N envs, the batch N x 64
  env steps, and either minibatch 256 (``mb256``: PPO's learning settings untouched) or batch / 8
  (``mb/8``: 8 minibatches x 10 epochs = 80 updates per iteration, as the 2048 / 256 preset);
  ``vec1024x16`` is 1024 envs x 16 steps (the batch of vec256, more envs per vector step);
  ``vec256-defaultconn`` is vec256 mb/8 with RLlib's default module-to-env pipeline;
* DQN ``presets@sync8``: the DQN defaults in ``"sync"`` mode (8 envs x 4 steps per training
  step, training intensity 8, batch 64) against ``vec<N>``: the native vector env with N envs,
  the same rollout length 4, intensity and batch (same replay ratio).

Then cProfile of one iteration of the PPO preset now in force (``lrtune/RecSys-v0``'s
per-env entry) with its time split into env stepping, the rest of sampling (RLlib's env runner:
episodes, connectors, inference), the learner connector (episodes -> train batch, GAE) and the
gradient updates.

The last line is ``ppo_env_steps_per_s=<x> dqn_env_steps_per_s=<y> (recsys, 1 CPU)`` for the
presets in force (what an lrtune job on ``lrtune/RecSys-v0`` runs with).

Measured (2026-12-02, the project's 2-core VM shared with other sessions; env steps/s in
training; run 1 14:55-15:01 UTC at load 0.4-2.5, run 2 15:20-15:26 at load 1.4-13):

* PPO: presets@sync16 2,848 / 2,728; vec64 mb256 2,906 / 2,914; vec256 mb256 3,156 / 2,889;
  vec64 mb/8 4,089 / 3,749; vec256 mb/8 8,095 / 8,531; vec256 mb/16 (run 2 only) 6,611;
  vec1024 mb/8 8,411 / 7,379; vec1024x16 mb/8 7,333 / 4,445 (load 5.9);
  vec256-defaultconn mb/8 6,371 / 4,497 (load 7.9); presets now (= vec256 mb/8) 7,342 / 6,499
  (load 9).
* DQN: presets@sync8 344 / 154 (load 13); vec8 300 / 346; vec64 339 / 428; vec256 370 / 397;
  presets now (= vec8) 288 / 384: the replay, not the env, sets DQN's rate.
* Profile of one PPO iteration with the presets now (run 1 / run 2): env 1 % / 1 %; RLlib's env
  runner outside the env 37 / 42 %; learner connector 8 / 8 %; gradient updates 44 / 40 %; rest
  of the learner 7 / 7 %.
* Learning (seeded, identical in both runs): the presets now reached 13.39 clicks/session after
  264k env steps (33.5-43 s); the defaults in sync reached 13.15-13.29 in the same wall time
  (82-90k env steps); per env step the defaults learn faster (12.8 against 11.3 at ~66k).

Last lines: run 1 ``ppo_env_steps_per_s=7342 dqn_env_steps_per_s=288 (recsys, 1 CPU)``, run 2
``ppo_env_steps_per_s=6499 dqn_env_steps_per_s=384 (recsys, 1 CPU)``. Goal (PPO >= 10,000) not
met: the updates are compute-bound at 10 epochs (the learner alone ran ~11k env steps/s).

Run: ``.venv/bin/python benchmarks/recsys_training.py [--min-steps 60000] [--learning 0]``
(``--learning N``: also train the PPO presets in force for N env steps and print the return per
iteration, against the random policy's 10.26 and the observable myopic 13.71 clicks/session).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import argparse
import cProfile
import math
import pstats
import time
from typing import Any

import torch

from lrtune.envs import RECSYS_ID
from lrtune.learners import TrialResources, build_algorithm_config
from lrtune.learners._presets import DQN_DEFAULTS, PPO_DEFAULTS, preset_hyperparams
from lrtune.running._local_ray import init_local_ray

LR = {"ppo": 3e-4, "dqn": 1e-4}
SYNC = {"gym_env_vectorize_mode": "sync"}
VEC = {"gym_env_vectorize_mode": "vector_entry_point"}
# What PPO / DQN ran with on the recommender before this benchmark: the agent defaults, sync.
PPO_BEFORE: dict[str, Any] = {**PPO_DEFAULTS, **SYNC}
DQN_BEFORE: dict[str, Any] = {**DQN_DEFAULTS, **SYNC}


def ppo_vec(
    n: int, minibatch: int | None = None, steps_per_env: int = 64, **extra: Any
) -> dict[str, Any]:
    """PPO on the native vector env: N envs, batch N x ``steps_per_env``, minibatch
    ``minibatch`` or batch / 8."""
    batch = n * steps_per_env
    return {
        **PPO_DEFAULTS,
        **VEC,
        "num_envs_per_env_runner": n,
        "train_batch_size_per_learner": batch,
        "minibatch_size": minibatch or batch // 8,
        **extra,
    }


def dqn_vec(n: int) -> dict[str, Any]:
    """DQN on the native vector env, N envs, the presets' rollout, intensity and batch."""
    return {**DQN_DEFAULTS, **VEC, "num_envs_per_env_runner": n}


def build(agent: str, hyperparams: dict[str, Any], seed: int = 0) -> Any:
    """The RLlib algorithm lrtune builds for one trial with these hyper-parameters."""
    config = build_algorithm_config(
        agent,
        RECSYS_ID,
        policy={"lr": LR[agent]},
        hyperparams=hyperparams,
        resources=TrialResources(cpus=1),
        seed=seed,
    )
    return config.build_algo()


def _sampled(result: dict[str, Any]) -> int:
    return int(result["env_runners"]["num_env_steps_sampled_lifetime"])


def time_training(
    agent: str, hyperparams: dict[str, Any], warmup: int, min_steps: int
) -> dict[str, float]:
    """Env steps/s of timed ``train()`` iterations after ``warmup`` ones (see the docstring)."""
    algo = build(agent, hyperparams)
    try:
        result: dict[str, Any] = {}
        for _ in range(warmup):
            result = algo.train()
        start_steps, iterations = _sampled(result) if result else 0, 0
        start = time.perf_counter()
        while True:
            result = algo.train()
            iterations += 1
            if _sampled(result) - start_steps >= min_steps and iterations >= 2:
                break
        seconds = time.perf_counter() - start
        steps = _sampled(result) - start_steps
        ret = result["env_runners"].get("episode_return_mean", math.nan)
        return {
            "rate": steps / seconds,
            "steps": float(steps),
            "seconds": seconds,
            "iterations": float(iterations),
            "return": float(ret) if ret is not None else math.nan,
        }
    finally:
        algo.stop()


def _cum(stats: pstats.Stats, file_part: str, func: str) -> float:
    """Cumulative seconds of the functions named ``func`` in files containing ``file_part``."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    return sum(
        entry[3]
        for (filename, _, name), entry in raw.items()
        if name == func and file_part in filename
    )


def profile_ppo(hyperparams: dict[str, Any]) -> dict[str, float]:
    """cProfile one PPO iteration (after a warm-up one) and split its time."""
    algo = build("ppo", hyperparams)
    try:
        algo.train()
        profiler = cProfile.Profile()
        profiler.enable()
        algo.train()
        profiler.disable()
    finally:
        algo.stop()
    stats = pstats.Stats(profiler)
    total = _cum(stats, "algorithm.py", "_run_one_training_iteration")
    sample = _cum(stats, "single_agent_env_runner.py", "_sample")
    env = _cum(stats, "lrtune/envs/batched.py", "step") + _cum(
        stats, "lrtune/envs/batched.py", "reset"
    )
    learner = _cum(stats, "core/learner/learner.py", "update")
    learner_connector = _cum(stats, "learner_connector_pipeline.py", "__call__")
    updates = _cum(stats, "torch_learner.py", "_uncompiled_update")
    return {
        "total": total,
        "env": env,
        "env runner minus env (episodes, connectors, inference)": sample - env,
        "learner connector (episodes -> batch, GAE)": learner_connector,
        "gradient updates (forward, backward, optimizer)": updates,
        "rest of the learner (minibatch iteration, metrics)": learner - learner_connector - updates,
        "rest of the iteration (metrics, callbacks)": total - sample - learner,
    }


def learning_curve(hyperparams: dict[str, Any], env_steps: int, seconds: float = math.inf) -> float:
    """Train PPO with ``hyperparams`` for ``env_steps`` or ``seconds`` of ``train()``,
    whichever comes first; print the return per iteration; return the seconds taken."""
    algo = build("ppo", hyperparams)
    start = time.perf_counter()
    try:
        steps = 0
        while steps < env_steps and time.perf_counter() - start < seconds:
            result = algo.train()
            steps = _sampled(result)
            ret = result["env_runners"].get("episode_return_mean", math.nan)
            print(
                f"  learning: {steps:>8} env steps, {time.perf_counter() - start:6.1f} s, "
                f"return {ret:.2f} clicks/session",
                flush=True,
            )
    finally:
        algo.stop()
    return time.perf_counter() - start


def main() -> None:
    """Time every configuration, profile the PPO presets, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-steps", type=int, default=60_000, help="timed env steps, PPO")
    parser.add_argument("--dqn-min-steps", type=int, default=3_000, help="timed env steps, DQN")
    parser.add_argument("--warmup", type=int, default=1, help="PPO warm-up iterations")
    parser.add_argument("--learning", type=int, default=0, help="env steps of a learning run")
    parser.add_argument("--only", default="", help="comma-separated row names (default all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    init_local_ray(num_cpus=1)
    ppo_now = preset_hyperparams("ppo", RECSYS_ID)
    dqn_now = preset_hyperparams("dqn", RECSYS_ID)
    ppo_rows: dict[str, dict[str, Any]] = {
        "presets@sync16": PPO_BEFORE,
        "vec64 mb256": ppo_vec(64, 256),
        "vec256 mb256": ppo_vec(256, 256),
        "vec64 mb/8": ppo_vec(64),
        "vec256 mb/8": ppo_vec(256),
        "vec256 mb/16": ppo_vec(256, 1024),
        "vec1024 mb/8": ppo_vec(1024),
        "vec1024x16 mb/8": ppo_vec(1024, steps_per_env=16),
        "vec256-defaultconn mb/8": ppo_vec(
            256, add_default_connectors_to_module_to_env_pipeline=True
        ),
        "presets now": ppo_now,
    }
    dqn_rows: dict[str, dict[str, Any]] = {
        "presets@sync8": DQN_BEFORE,
        "vec8": dqn_vec(8),
        "vec64": dqn_vec(64),
        "vec256": dqn_vec(256),
        "presets now": dqn_now,
    }
    only = {name for name in args.only.split(",") if name}
    print(f"load before: {os.getloadavg()}", flush=True)
    figures: dict[str, float] = {}
    for agent, rows in (("ppo", ppo_rows), ("dqn", dqn_rows)):
        for name, hyperparams in rows.items():
            if only and f"{agent}:{name}" not in only:
                continue
            warmup = args.warmup if agent == "ppo" else 3  # DQN learns from 1,000 env steps
            min_steps = args.min_steps if agent == "ppo" else args.dqn_min_steps
            run = time_training(agent, hyperparams, warmup, min_steps)
            print(
                f"{agent} {name}: {run['rate']:,.0f} env steps/s ({run['steps']:.0f} steps, "
                f"{run['seconds']:.1f} s, {run['iterations']:.0f} iterations, return "
                f"{run['return']:.2f}) load={os.getloadavg()[0]:.2f}",
                flush=True,
            )
            if name == "presets now":
                figures[agent] = run["rate"]
    if not only or "profile" in only:
        split = profile_ppo(ppo_now)
        total = split.pop("total")
        print(f"ppo presets now, one profiled iteration: {total:.2f} s", flush=True)
        for part, seconds in split.items():
            print(f"  {part}: {seconds:.2f} s ({100 * seconds / total:.0f} %)", flush=True)
    if args.learning:
        print(f"ppo presets now, learning for {args.learning} env steps:", flush=True)
        took = learning_curve(ppo_now, args.learning)
        print(f"ppo presets@sync16, learning for the same {took:.0f} s:", flush=True)
        learning_curve(PPO_BEFORE, 10**9, seconds=took)
    print(f"load after: {os.getloadavg()}", flush=True)
    print(
        f"ppo_env_steps_per_s={figures.get('ppo', math.nan):.0f} "
        f"dqn_env_steps_per_s={figures.get('dqn', math.nan):.0f} (recsys, 1 CPU)"
    )


if __name__ == "__main__":
    main()
