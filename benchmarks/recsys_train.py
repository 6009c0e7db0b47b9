"""Training on the recommender (``lrtune/RecSys-v0``), one CPU: env steps/s and what PPO learns.

Default run (what the last line reports; about 4-8 minutes on the 2-core VM):

1. PPO: lrtune's presets for ``lrtune/RecSys-v0`` (256 native vector envs, batch 16,384,
   minibatch 2,048, 10 epochs; Adam, constant lr ``--lr``, default 1e-3, seed 0) trained for
   ``--train-steps`` env steps (default 1,000,000). Env steps/s in training = env steps sampled
   after the first iteration / the wall time of those ``train()`` calls (evaluation excluded).
   Every ``--eval-every`` env steps (default 250,000) and at the end, the greedy policy (argmax
   of the policy's logits) is evaluated exactly as the baselines are
   (``lrtune.envs.baselines.evaluate_policy``: 4,000 sessions in 20 independent groups, seed
   1000, which no baseline anchor uses; 95 % Student-t intervals over the group means), and
   normalised as ``lrtune compare`` normalises: random 10.26 -> 0, the best observable
   baseline (observable myopic, 13.71) -> 1; the oracle's 67.00 (16.45 normalised) is the
   ceiling.
2. DQN: the presets now, timed as below (3 warm-up iterations, then >= ``--dqn-min-steps``).

Last line: ``ppo_steps_per_s=<x> dqn_steps_per_s=<y> best_normalised_score=<z>``, ``z`` the
best agent's final evaluation normalised (the PPO agent of step 1, at ``--train-steps``; DQN at
~300 env steps/s cannot reach that budget in a benchmark's time, so it is timed, not trained).

LR sweep behind the default lr (2026-12-02, the same code path, seed 0, greedy evaluation as
above; 2-core VM shared with other sessions, load 10-30; clicks/session [95 % CI]):

* lr 3e-4: 14.76 [14.61, 14.91] at 511k env steps, 15.70 [15.55, 15.85] at 1.0M, 16.40
  [16.20, 16.60] at 1.5M (the run was then killed from outside at 1.78M);
* lr 1e-3: 15.32 [15.17, 15.46] at 264k, 15.91 [15.76, 16.05] at 512k, 16.46 [16.31, 16.62]
  at 760k, 16.64 [16.46, 16.81] at 1.0M (321 s of training);
* lr 3e-3: 15.15 at 265k, 15.57 at 513k, 15.76 at 761k, 15.72 [15.56, 15.88] at 1.0M.

This benchmark, default run, 2026-12-02 17:19-17:23 UTC (load 3.6 before, 7-9 during, from
other sessions; 4 min 6 s wall in all, 226 s from the first train() to the end): PPO lr 1e-3
reproduced the sweep's numbers exactly (seeded) -- 15.32 / 15.91 / 16.46 / 16.64 [16.46,
16.81] clicks/session at 264k / 512k / 760k / 1.0M env steps = 1.47 / 1.64 / 1.80 / 1.85
[1.80, 1.90] normalised, 198 s of training; PPO 5,012 env steps/s in training, DQN 313. Last
line: ``ppo_steps_per_s=5012 dqn_steps_per_s=313 best_normalised_score=1.85``. On the
evaluation's own seed (1000) the baselines score random 10.30, observable myopic 13.72 [13.59,
13.85], bandit 13.66, greedy (hidden) 15.03 [14.90, 15.17], oracle 67.64.

Against observable myopic 13.71 [13.58, 13.84] (and greedy on hidden state, 15.00): on the
default config the long-term trade-off is learnable from observations, every lr beats the best
observable baseline with disjoint intervals from 264k env steps on, and ``RecSys-v0`` stays the
default (no v1 was needed).

``--all`` adds the throughput comparison below (the table that chose the presets) and a
profile. What it runs: RLlib PPO and DQN built by lrtune's ``build_algorithm_config``
(lrtune's learner, its presets, a constant LR policy: Adam 3e-4 PPO / 1e-4 DQN), in this
process, with
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

Measured with ``--all`` (2026-12-02, the project's 2-core VM shared with other sessions; env
steps/s in training; run 1 14:55-15:01 UTC at load 0.4-2.5, run 2 15:20-15:26 at load 1.4-13):

* PPO: presets@sync16 2,848 / 2,728; vec64 mb256 2,906 / 2,914; vec256 mb256 3,156 / 2,889;
  vec64 mb/8 4,089 / 3,749; vec256 mb/8 8,095 / 8,531; vec256 mb/16 (run 2 only) 6,611;
  vec1024 mb/8 8,411 / 7,379; vec1024x16 mb/8 7,333 / 4,445 (load 5.9);
  vec256-defaultconn mb/8 6,371 / 4,497 (load 7.9); presets now (= vec256 mb/8) 7,342 / 6,499
  (load 9).
* DQN: presets@sync8 344 / 154 (load 13); vec8 300 / 346; vec64 339 / 428; vec256 370 / 397;
  presets now (= vec8) 288 / 384: the replay, not the env, sets DQN's rate.
* Profile of one PPO iteration with the presets now (run 1 / run 2): env 1 % / 1 %; RLlib's env
  runner outside the env 37 / 42 %; learner connector 8 / 8 %; gradient updates 44 / 40 %; rest
  of the learner 7 / 7 %. Goal (PPO >= 10,000) not met that day: the updates are compute-bound at 10
  epochs (the learner alone ran ~11k env steps/s).

2026-12-05, DQN rows only, after DQN moved to lrtune's replay buffer and the presets' replay
ratio to 32 (``--all --only "dqn:presets@sync8,dqn:vec8,dqn:vec64,dqn:vec256,dqn:presets now"
--train-steps 16384 --eval-every 16384``, load 0.9, nothing else running; the PPO figures that
run printed are at 16k env steps and not comparable): presets@sync8 536, vec8 551, vec64 609,
vec256 674, presets now (= vec8) 535 and 557: four times the updates per env step of the rows
above, at about 1.4-1.9× their env steps/s. The updates still set DQN's rate, the env does not.

2026-12-04 on the same VM, quiet (load 0.8-1.9 with this benchmark's process; a lint, a type
check and four short test runs of mine, 5-18 s each, ran during run 1; run 2 ran alone): run 1
(default, ``--all --only
"ppo:presets now,ppo:vec1024 mb/8,dqn:presets now,profile"``) PPO 10,265 env steps/s in
training over 1.0M env steps, the greedy scores above exactly (seeded), last line
``ppo_steps_per_s=10265 dqn_steps_per_s=480 best_normalised_score=1.85``; rows: vec1024 mb/8
13,770, presets now 10,952, DQN 534; profile env 1 %, env runner minus env 38 %, learner
connector 8 %, updates 43 %. Run 2 (``--train-steps 600000 --eval-every 600000 --all --only
"ppo:presets now,ppo:vec256 mb/8,ppo:presets@sync16"``): PPO 11,184 in training over 611k
(greedy 16.13 [15.96, 16.29] = 1.70), presets@sync16 3,466, vec256 mb/8 9,961, presets now
10,967 (the same settings: the spread is noise), DQN 418. The goal (PPO >= 10,000 on one CPU)
is met on a quiet host, missed under the 2026-12-02 load; the ratio to the old defaults
(about 3x on both days) is what carries across hosts.

Run: ``.venv/bin/python benchmarks/recsys_train.py [--train-steps 1000000] [--lr 3e-4]
[--all]``.
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

import numpy as np
import torch

from lrtune.analysis import task_anchors
from lrtune.envs import RECSYS_ID
from lrtune.envs.baselines import BaselineResult, evaluate_policy
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


#: Held-out session seed of the agent's evaluation (the anchors use seed 0).
EVAL_SEED = 1000
EVAL_SESSIONS = 4000


def greedy_policy(algo: Any) -> Any:
    """Observations ``(n, obs_dim)`` -> the argmax of the trained policy's logits."""

    def policy(obs: np.ndarray) -> np.ndarray:
        module = algo.get_module()
        with torch.no_grad():
            out = module.forward_inference({"obs": torch.from_numpy(np.ascontiguousarray(obs))})
        return out["action_dist_inputs"].argmax(-1).numpy()

    return policy


def train_and_evaluate(
    hyperparams: dict[str, Any], lr: float, env_steps: int, eval_every: int
) -> tuple[float, BaselineResult, list[str]]:
    """Train PPO for ``env_steps``; evaluate every ``eval_every`` and at the end (docstring).

    Returns env steps/s in training (after the first iteration), the final evaluation and the
    printed lines."""
    config = build_algorithm_config(
        "ppo",
        RECSYS_ID,
        policy={"lr": lr},
        hyperparams=hyperparams,
        resources=TrialResources(cpus=1),
        seed=0,
    )
    algo = config.build_algo()
    anchors = task_anchors(RECSYS_ID, measure=False)
    lines: list[str] = []
    try:
        result = algo.train()  # the first iteration (builds, compiles): not timed
        first = steps = _sampled(result)
        train_s, next_eval = 0.0, eval_every
        while True:
            start = time.perf_counter()
            result = algo.train()
            train_s += time.perf_counter() - start
            steps = _sampled(result)
            last = steps >= env_steps
            if steps >= next_eval or last:
                next_eval += eval_every
                final = evaluate_policy(
                    "ppo", greedy_policy(algo), num_sessions=EVAL_SESSIONS, seed=EVAL_SEED
                )
                mean, low, high = final.clicks_ci()
                line = (
                    f"  ppo lr {lr:g}: {steps:>9,} env steps, {train_s:6.1f} s training, "
                    f"greedy {mean:.2f} [{low:.2f}, {high:.2f}] clicks/session = "
                    f"{anchors.normalise(mean):.2f} [{anchors.normalise(low):.2f}, "
                    f"{anchors.normalise(high):.2f}] normalised, load {os.getloadavg()[0]:.1f}"
                )
                print(line, flush=True)
                lines.append(line)
            if last:
                break
    finally:
        algo.stop()
    return (steps - first) / train_s, final, lines


def main() -> None:
    """Train and evaluate PPO, time DQN (``--all``: the throughput table and a profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=1_000_000, help="PPO env steps")
    parser.add_argument("--eval-every", type=int, default=250_000, help="PPO env steps")
    parser.add_argument("--lr", type=float, default=1e-3, help="PPO's constant lr (Adam)")
    parser.add_argument("--min-steps", type=int, default=60_000, help="timed env steps, PPO")
    parser.add_argument("--dqn-min-steps", type=int, default=3_000, help="timed env steps, DQN")
    parser.add_argument("--warmup", type=int, default=1, help="PPO warm-up iterations")
    parser.add_argument("--all", action="store_true", help="the throughput table and a profile")
    parser.add_argument("--only", default="", help="with --all: comma-separated row names")
    args = parser.parse_args()
    torch.set_num_threads(1)
    init_local_ray(num_cpus=1)
    ppo_now = preset_hyperparams("ppo", RECSYS_ID)
    dqn_now = preset_hyperparams("dqn", RECSYS_ID)
    anchors = task_anchors(RECSYS_ID, measure=False)
    print(
        f"anchors: random {anchors.random:g} -> 0, {anchors.reference_source}: "
        f"{anchors.reference:g} -> 1, ceiling {anchors.ceiling:g} = "
        f"{anchors.normalised_ceiling:.2f} normalised",
        flush=True,
    )
    print(f"load before: {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    ppo_rate, final, _ = train_and_evaluate(ppo_now, args.lr, args.train_steps, args.eval_every)
    print(f"ppo presets now: {ppo_rate:,.0f} env steps/s in training", flush=True)
    dqn = time_training("dqn", dqn_now, 3, args.dqn_min_steps)  # DQN learns from 1,000 steps
    print(
        f"dqn presets now: {dqn['rate']:,.0f} env steps/s ({dqn['steps']:.0f} steps, "
        f"{dqn['seconds']:.1f} s) load={os.getloadavg()[0]:.2f}",
        flush=True,
    )
    if args.all:
        throughput_table(args, ppo_now, dqn_now)
    print(f"load after: {os.getloadavg()}; wall {time.perf_counter() - started:.0f} s", flush=True)
    best = anchors.normalise(final.clicks_ci()[0])
    print(
        f"ppo_steps_per_s={ppo_rate:.0f} dqn_steps_per_s={dqn['rate']:.0f} "
        f"best_normalised_score={best:.2f}"
    )


def throughput_table(
    args: argparse.Namespace, ppo_now: dict[str, Any], dqn_now: dict[str, Any]
) -> None:
    """``--all``: every configuration of the docstring's table side by side, and the profile."""
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
    if not only or "profile" in only:
        split = profile_ppo(ppo_now)
        total = split.pop("total")
        print(f"ppo presets now, one profiled iteration: {total:.2f} s", flush=True)
        for part, seconds in split.items():
            print(f"  {part}: {seconds:.2f} s ({100 * seconds / total:.0f} %)", flush=True)


if __name__ == "__main__":
    main()
