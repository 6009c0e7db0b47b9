"""Training on the recommender (``lrtune/RecSys-v0``), one CPU: env steps/s and what PPO learns.

Default run (what the last line reports; about 8-10 minutes on the 2-core VM):

1. PPO: lrtune's presets for ``lrtune/RecSys-v0`` (256 native vector envs, batch 16,384,
   minibatch 2,048, 10 epochs; Adam, constant lr ``--lr``, default 1e-3, seed 0) trained for
   ``--train-steps`` env steps (default 1,000,000). Env steps/s in training = env steps sampled
   after the first iteration / the wall time of those ``train()`` calls (evaluation excluded).
   At the first iteration that reaches the evidence's per-run budget
   (``budget.trial_env_steps`` of ``jobs/evidence_recsys.yaml``, 131,072), every
   ``--eval-every`` env steps (default 250,000) and at the end, the greedy policy (argmax of
   the policy's logits) is evaluated exactly as the baselines are
   (``lrtune.envs.baselines.evaluate_policy``: 4,000 sessions in 20 independent groups, seed
   1000, which no baseline anchor uses; 95 % Student-t intervals over the group means), and
   normalised as ``lrtune compare`` normalises: random 10.26 -> 0, the best observable
   baseline (observable myopic, 13.71) -> 1; the oracle's 67.00 (16.45 normalised) is the
   ceiling.
2. DQN: lrtune's presets for the recommender (8 envs x 4 steps per iteration, 32 replayed
   items per env step, 3-step double/dueling Q on 256x256 ReLU; Adam, constant ``--dqn-lr``,
   default 1e-4, SB3's DQN default and lrtune's DQN baseline until 2026-12-05, 1e-3 since;
   seed 0) trained for
   ``--dqn-train-steps`` env steps (default: the evidence's budget), its greedy policy (argmax
   of the Q-values) evaluated at the end as PPO's is. Env steps/s in training as PPO's (the
   first 1,000 env steps, before learning starts, are in the timed part).

Last line: ``ppo_steps_per_s=<x> dqn_steps_per_s=<y> best_normalised_score=<z>
best_agent=<ppo|dqn> at_env_steps=131072 ppo_normalised=<..> dqn_normalised=<..>
ppo_normalised_at_<N>=<..>``: ``z`` is the better agent's greedy score at the evidence's
budget (each agent's evaluation at the first iteration that reached it), and the last field
PPO's at the end of its ``--train-steps``. Until 2026-12-05 DQN (~300 env steps/s then) was
timed only, not trained, and the last line's score was PPO's at ``--train-steps``.

This benchmark, default run, 2026-12-07 09:31-09:35 UTC (6c03e69; a helper's training at
nice 19 on the other core during the PPO part, load 2.1-2.2, then 1.3; 233 s wall), after
lrtune's env runner dropped RLlib's per-step bookkeeping (the same episodes bit for bit,
``lrtune.learners._env_runner``): the same greedy evaluations as below, exactly; PPO 15,303
env steps/s in training (64.8 s to 1.0M), DQN 803 (162.4 s to 131k). Last line:
``ppo_steps_per_s=15303 dqn_steps_per_s=803 best_normalised_score=1.42 best_agent=dqn
at_env_steps=131072 ppo_normalised=1.30 dqn_normalised=1.42 ppo_normalised_at_1008774=1.85``.

This benchmark, default run, 2026-12-07 07:49-07:53 UTC (5daac52; the 2-core VM, nothing else
running: load 1.2 before, 1.0-1.1 during; 237 s wall), after lrtune's PPO loss stopped building
distribution objects and a flat-replay DQN iteration began running all its rounds in one
training step (the same episodes and weights bit for bit; see ``benchmarks/throughput.py``):
every greedy evaluation below reproduced exactly (PPO 1.30 / 1.47 / 1.64 / 1.80 / 1.85
normalised at 132k / 264k / 512k / 760k / 1.0M env steps, DQN 1.42 at 131k); PPO 14,705 env
steps/s in training (67.5 s to 1.0M), DQN 799 (163.1 s to 131k). Last line:
``ppo_steps_per_s=14705 dqn_steps_per_s=799 best_normalised_score=1.42 best_agent=dqn
at_env_steps=131072 ppo_normalised=1.30 dqn_normalised=1.42 ppo_normalised_at_1008774=1.85``.

This benchmark, default run, 2026-12-05 13:39:51-13:45:31 UTC (the 2-core VM, nothing else
running: load 2.1 before, 1.6-2.2 during; 328 s wall): PPO's greedy evaluations reproduced
the 2026-12-02 figures below exactly (seeded), and added the evidence budget: 14.74 [14.61,
14.86] clicks/session = 1.30 [1.26, 1.33] normalised at 132k env steps (9.5 s of training),
then 1.47 / 1.64 / 1.80 / 1.85 [1.80, 1.90] at 264k / 512k / 760k / 1.0M; PPO 11,638 env
steps/s in training. DQN, trained for the first time here: 15.15 [15.02, 15.27] clicks/session
= 1.42 [1.38, 1.45] normalised at 131k env steps, 553 env steps/s in training (236 s). Last
line: ``ppo_steps_per_s=11638 dqn_steps_per_s=553 best_normalised_score=1.42 best_agent=dqn
at_env_steps=131072 ppo_normalised=1.30 dqn_normalised=1.42 ppo_normalised_at_1008774=1.85``.
At the evidence's budget in env steps DQN's greedy policy beat PPO's (disjoint intervals; one
seed each, each agent's default lr, not tuned) and scored as the greedy baseline that reads
hidden state (15.03 [14.90, 15.17] on this seed; the intervals overlap); in wall time PPO got
there 25x sooner and went on to 16.64 at 1.0M.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

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
    """Observations ``(n, obs_dim)`` -> the trained module's greedy actions: the argmax of PPO's
    logits, DQN's argmax over Q-values (its ``forward_inference`` gives the actions)."""

    def policy(obs: np.ndarray) -> np.ndarray:
        module = algo.get_module()
        with torch.no_grad():
            out = module.forward_inference({"obs": torch.from_numpy(np.ascontiguousarray(obs))})
        if "actions" in out:
            return np.asarray(out["actions"])
        return out["action_dist_inputs"].argmax(-1).numpy()

    return policy


def evidence_env_steps() -> int:
    """``budget.trial_env_steps`` of ``jobs/evidence_recsys.yaml``: the per-run budget."""
    job = Path(__file__).resolve().parent.parent / "jobs" / "evidence_recsys.yaml"
    return int(yaml.safe_load(job.read_text())["budget"]["trial_env_steps"])


def train_and_evaluate(
    agent: str, hyperparams: dict[str, Any], lr: float, env_steps: int, eval_at: list[int]
) -> tuple[float, dict[int, BaselineResult], list[str]]:
    """Train ``agent`` for ``env_steps``; evaluate greedily at each of ``eval_at`` (the first
    iteration that reaches it) and at the end (docstring).

    Returns env steps/s in training (after the first iteration), the evaluations by the env
    steps each ran at, and the printed lines."""
    config = build_algorithm_config(
        agent,
        RECSYS_ID,
        policy={"lr": lr},
        hyperparams=hyperparams,
        resources=TrialResources(cpus=1),
        seed=0,
    )
    algo = config.build_algo()
    anchors = task_anchors(RECSYS_ID, measure=False)
    lines: list[str] = []
    evaluations: dict[int, BaselineResult] = {}
    pending = sorted(step for step in eval_at if step < env_steps)
    try:
        result = algo.train()  # the first iteration (builds, compiles): not timed
        first = steps = _sampled(result)
        train_s = 0.0
        while True:
            start = time.perf_counter()
            result = algo.train()
            train_s += time.perf_counter() - start
            steps = _sampled(result)
            last = steps >= env_steps
            reached = [step for step in pending if steps >= step]
            pending = [step for step in pending if steps < step]
            if reached or last:
                final = evaluate_policy(
                    agent, greedy_policy(algo), num_sessions=EVAL_SESSIONS, seed=EVAL_SEED
                )
                for step in reached:
                    evaluations[step] = final
                evaluations[steps] = final
                mean, low, high = final.clicks_ci()
                line = (
                    f"  {agent} lr {lr:g}: {steps:>9,} env steps, {train_s:6.1f} s training, "
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
    return (steps - first) / train_s, evaluations, lines


def _at(evaluations: dict[int, BaselineResult], env_steps: int) -> BaselineResult:
    """The evaluation made at the first iteration that reached ``env_steps``."""
    return evaluations[min(step for step in evaluations if step >= env_steps)]


def main() -> None:
    """Train and evaluate PPO and DQN (``--all``: the throughput table and a profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=1_000_000, help="PPO env steps")
    parser.add_argument("--eval-every", type=int, default=250_000, help="PPO env steps")
    parser.add_argument("--lr", type=float, default=1e-3, help="PPO's constant lr (Adam)")
    parser.add_argument("--min-steps", type=int, default=60_000, help="timed env steps, PPO")
    parser.add_argument(
        "--dqn-train-steps", type=int, default=0,
        help="DQN env steps (default: the evidence job's per-run budget)",
    )  # fmt: skip
    parser.add_argument("--dqn-lr", type=float, default=1e-4, help="DQN's constant lr (Adam)")
    parser.add_argument("--dqn-min-steps", type=int, default=3_000, help="--all: DQN rows' steps")
    parser.add_argument("--warmup", type=int, default=1, help="PPO warm-up iterations")
    parser.add_argument("--all", action="store_true", help="the throughput table and a profile")
    parser.add_argument("--only", default="", help="with --all: comma-separated row names")
    args = parser.parse_args()
    torch.set_num_threads(1)
    init_local_ray(num_cpus=1)
    ppo_now = preset_hyperparams("ppo", RECSYS_ID)
    dqn_now = preset_hyperparams("dqn", RECSYS_ID)
    anchors = task_anchors(RECSYS_ID, measure=False)
    evidence = evidence_env_steps()
    print(
        f"anchors: random {anchors.random:g} -> 0, {anchors.reference_source}: "
        f"{anchors.reference:g} -> 1, ceiling {anchors.ceiling:g} = "
        f"{anchors.normalised_ceiling:.2f} normalised; evidence budget {evidence:,} env steps",
        flush=True,
    )
    print(f"load before: {os.getloadavg()}", flush=True)
    started = time.perf_counter()
    ppo_evals = [evidence, *range(args.eval_every, args.train_steps, args.eval_every)]
    ppo_rate, ppo, _ = train_and_evaluate("ppo", ppo_now, args.lr, args.train_steps, ppo_evals)
    print(f"ppo presets now: {ppo_rate:,.0f} env steps/s in training", flush=True)
    dqn_steps = args.dqn_train_steps or evidence
    dqn_rate, dqn, _ = train_and_evaluate("dqn", dqn_now, args.dqn_lr, dqn_steps, [evidence])
    print(f"dqn presets now: {dqn_rate:,.0f} env steps/s in training", flush=True)
    if args.all:
        throughput_table(args, ppo_now, dqn_now)
    print(f"load after: {os.getloadavg()}; wall {time.perf_counter() - started:.0f} s", flush=True)
    at_evidence = {
        agent: anchors.normalise(_at(evaluations, evidence).clicks_ci()[0])
        for agent, evaluations in (("ppo", ppo), ("dqn", dqn))
        if max(evaluations) >= evidence
    }
    # Both reach it with the defaults; shorter --train-steps runs report nan.
    best_agent = max(at_evidence, key=at_evidence.__getitem__, default="none")
    best_score = at_evidence.get(best_agent, math.nan)
    ppo_final = anchors.normalise(ppo[max(ppo)].clicks_ci()[0])
    print(
        f"ppo_steps_per_s={ppo_rate:.0f} dqn_steps_per_s={dqn_rate:.0f} "
        f"best_normalised_score={best_score:.2f} best_agent={best_agent} "
        f"at_env_steps={evidence} "
        + "".join(f"{agent}_normalised={score:.2f} " for agent, score in at_evidence.items())
        + f"ppo_normalised_at_{max(ppo)}={ppo_final:.2f}"
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
