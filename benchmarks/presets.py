"""How an agent learns with lrtune's presets on a task: one trial, no Tune, one CPU.

The presets (``lrtune.learners._presets``) are what every job's agent gets unless the job
overrides them; this checks them on any gymnasium task, shipped jobs or not. It trains one
seed with a fixed LR policy through lrtune's learner (``lrtune.running.train_single``) and
prints the mean episode return every few iterations. Last line:
``final=<return at the end> best=<best return> env_steps_per_s=<x>``.

Run: ``.venv/bin/python benchmarks/presets.py --agent ppo --env Acrobot-v1 --steps 100000
[--lr 1e-3] [--schedule linear] [--seed 0] [--every 5] [--set key=value ...] [--model
key=value ...] [--defaults-only]``. ``--agent`` takes any entry of the ``agents`` slot (ppo,
dqn, sac); ``--every N`` prints the curve every N iterations. ``--defaults-only`` leaves out
the task's per-environment entry (agent defaults and action-space family only: how the presets
do on a task nobody tuned them for); ``--model`` sets a model setting (``vf_share_layers``,
``initializer``, ``normalize_observations``, ``hidden``, ``activation``).

PPO, issue 10 (2026-12-02, one seed each unless stated, one process at a time under ``nice -n
5`` on the shared 2-CPU machine; load average 2-12 from other sessions' work, so the env
steps/s vary 460-3000; returns do not depend on it). "defaults" = ``--defaults-only``; model =
separate value layers + orthogonal init unless stated; the return is the last finite
``episode_return_mean``:

| task | setting (lr constant unless stated) | return at env steps | final |
|---|---|---|---|
| Acrobot-v1 | old network: shared, torch init, vf 0.01; 3e-4 | −500 from 31k | −500 |
| Acrobot-v1 | shared layers, orthogonal, vf 0.01 / 0.5; 3e-4 | — | −500 / −500 |
| Acrobot-v1 | separate layers, torch init, vf 0.01 / 0.5; 3e-4 | — | −500 / −500 |
| Acrobot-v1 | defaults, vf 0.01; 3e-4 | −175 at 21k, −107 at 41k | −95 (seed 1: −97) |
| Acrobot-v1 | defaults (vf 0.5); 3e-4 | −175 at 21k, −108 at 41k | −105 (s1 −133, s2 −111) |
| Acrobot-v1 | defaults + observation filter, vf 0.01 / 0.5; 3e-4 | — | −500 / −500 |
| Acrobot-v1 | + rl-zoo3's batch 4096, 4 epochs, λ 0.94, vf 0.01/0.5; 3e-4 | — | −164/−164 |
| CartPole-v1 | defaults; 3e-4 | 206 at 21k, 278 at 31k | 374 (seed 1: 233) |
| CartPole-v1 | defaults + rl-zoo3's γ 0.98 λ 0.8 (the old entry); 3e-4 | — | 273 |
| Acrobot-v1 | defaults; 1e-3 | −231 at 21k, −100 at 41k | −87 |
| CartPole-v1 | defaults; 1e-3 | 278 at 21k, 340 at 31k | 500 at 51k |
| CartPole-v1 | defaults; 1e-3 linear, 100k | 449 at 21k, 500 at 41k, 395 at 72k | 500 |
| Pendulum-v1 | defaults, minibatch 256; 1e-3, 100k | −1107 at 72k | −1080 (no filter −1081) |
| Pendulum-v1 | defaults + family (minibatch 64, filter); 1e-3, 100k | — | −800 |
| Pendulum-v1 | presets (entry: γ 0.9, batch 4096); 1e-3, 100k | −536 at 41k, −216 at 82k | −178 |
| Pendulum-v1, rewards × 0.1 | defaults + family; 1e-3, 100k | −21 at 61k | −17.5 (−175 raw) |
| MountainCarContinuous-v0 | defaults, minibatch 256; 3e-4, 100k | −0.13 at 82k | −0.05 |
| MountainCarContinuous-v0 | presets (family: minibatch 64, filter); 3e-4, 100k | — | −0.05 |

Reward scaling (``model.normalize_rewards``, 2026-12-03, on by the presets for continuous
actions since then; ``--model normalize_rewards=true|false``; two processes at a time under
``nice -n 10`` beside a driver-load benchmark and test runs, load 13-30, so 64-305 env steps/s):

| task | setting; lr 1e-3 constant, 100k | return at env steps | final (best) |
|---|---|---|---|
| Pendulum-v1 | defaults + family, no scaling, seed 0 | −1016 at 51k | −800 |
| Pendulum-v1 | defaults + family + scaling, seed 0 | −892 at 20k, −653 at 51k | −672 (−636) |
| Pendulum-v1 | defaults + family, no scaling, seed 1 | −1078 at 20k, −994 at 51k | −958 (−829) |
| Pendulum-v1 | defaults + family + scaling, seed 1 | −424 at 31k, −184 at 51k | −213 (−168) |
| Pendulum-v1 | presets (γ 0.9, batch 4096) + scaling, s0 | −340 at 41k, −195 at 82k | −186 (−157) |

What this shows (the presets' comments cite it): the network was what kept RLlib's PPO from
learning Acrobot-v1, not the hyper-parameters: with a separate value network *and* orthogonal
initialisation the agent defaults alone reach −105…−133 at 50k env steps with lr 3e-4 (3
seeds; −95/−97 with vf 0.01) and −87 with lr 1e-3 (rl-zoo3's best in the issue's search:
−87.4); with either one missing, every variant ends at −500. With separate networks
and Adam, the value-loss weight barely matters. RLlib's MeanStdFilter cost Acrobot-v1 its
learning (−500), so discrete tasks run without it. Pendulum-v1 needs its short horizon (γ 0.9,
a per-environment entry; the defaults alone reach −800 at 100k), and MountainCarContinuous-v0 is
not solved by any setting here: PPO without rl-zoo3's gSDE exploration never reaches the flag
in 100k steps and settles on standing still (≈ 0). Reward scale matters: the probe row wraps
Pendulum-v1 in ``gymnasium.wrappers.TransformReward(r * 0.1)`` (a throw-away registration, not
shipped) and the defaults alone, γ 0.99 included, then reach −175 in raw units against −800.
SB3's ``VecNormalize`` reward scaling generalises that; RLlib has none, so lrtune's PPO learner
now scales rewards itself (``lrtune.learners._rewards``, its statistics in lrtune's learner
state so that resumes stay exact). With it the defaults alone (γ 0.99) reached −213 on seed 1
(−958 without) and −672 on seed 0 (−800 without): better on both seeds, on target on one;
with the Pendulum-v1 entry (γ 0.9) seed 0 ended at −186 against −178 without (no change).

Earlier measurements (2026-11-26/27, the presets before issue 10: shared value layers, torch
initialisation, vf 0.01; load 5-25):

| agent | task | lr policy | return at env steps | final / best | load |
|---|---|---|---|---|---|
| ppo | CartPole-v1 | 1e-3 linear | 449 at 32k, 500 from 65k; seed 1: 500 at 41k | 500 | 5-7 |
| ppo | CartPole-v1 | 3e-4 constant | 374 at 98k | 325 / 432 | 5 |
| ppo | Pendulum-v1 | 1e-3 constant | −1166 → −313 at 53k → −292 at 61k | −292 | 18 |
| ppo | Acrobot-v1 | 1e-3 constant | unsolved at 100k (6 variants: −500..−437) | −474 / −394 | 17 |
| ppo | lrtune/RecSys-v0 | 1e-3 constant | 10.6 at 8k, 12.7 at 32k, 13.5 at 100k | 13.5/14.0 | 20 |
| dqn | CartPole-v1 | 5e-4 constant | 83 at 8k, 158 at 12k, 250 at 16k, 338 at 24k | 338 | 20 |
| dqn | lrtune/RecSys-v0 | 5e-4 constant | 9.9 at 1k, 12.5 at 10k, 13.9 at 16k | 13.2 / 14.1 | 25 |

(Those DQN rows ran the presets of the time: 4 envs, batch 128, training_intensity 16.)
Random play on RecSys-v0 gives 10.3 clicks per session, greedy 15.3.

DQN, issue 10 (2026-12-02, seed 0, one process at a time under ``nice -n 5``, the agent
defaults: no DQN per-environment entry exists; all with ``--model hidden=[256,256] --model
activation=relu``, rl-zoo3's DQN network, which the model section's defaults do not yet give
DQN, except the two "64x64 tanh" rows, the model defaults); the return is the training
``episode_return_mean`` (ε-greedy, ε 0.02):

| task | lr constant | return at env steps | final / best | env steps/s | load |
|---|---|---|---|---|---|
| CartPole-v1 | 2e-3 | 196 at 10k, 224 at 20k, 283 at 41k | 361 at 51k / 361 | 229 | 9-15 |
| Acrobot-v1 | 1e-3 | −224 at 20k, −134 at 25k, −99 at 30k | −96 at 51k / −92 | 396 | 15→6 |
| CartPole-v1, seed 1 | 2e-3 | 177 at 10k, 269 at 20k, 500 at 46k | 500 / 500 | 348 | 4-6 |
| Acrobot-v1, seed 1 | 1e-3 | −170 at 20k, −108 at 41k, −122 at 46k | −107 / −107 | 422 | 3-4 |
| CartPole-v1, 64x64 tanh | 2e-3 | 181 at 10k, 289 at 20k, 399 at 46k | 500 / 500 | 566 | 1-2 |
| Acrobot-v1, 64x64 tanh | 1e-3 | −494 at 20k, −294 at 41k, −179 at 46k | −198 / −123 | 547 | 2 |
| MountainCar-v0 | 4e-3, 60k | −200 throughout (goal never reached) | −200 / −200 | 506 | 6→3 |
| MountainCar-v0 | 4e-3, 100k, rl-zoo3 γ/target/ε | −200 throughout | −200 / −200 | 508 | 3→2 |

Where DQN's time goes (cProfile, CartPole-v1, presets before issue 10): per replayed item ~0.25
ms in ``EpisodeReplayBuffer.sample`` (a ``SingleAgentEpisode`` slice per item) and ~0.1 ms in
the learner connector pipeline, ~5 ms fixed per update, ~0.5-0.8 ms per sampled env step;
iterations, metrics and target updates are small. So the replay ratio (``training_intensity``)
sets the throughput, and no RLlib setting makes an item cheaper. Same process, same load
(``uptime`` 3.2), 3 iterations after the first: the old presets 288-327 env steps/s, the new
ones 572-710 (561 with the 256 x 256 network). Replay ratio against learning, CartPole-v1 at
load 6-9 (greedy = mean of 10 greedy episodes after training): intensity 4 ran 470-760 env
steps/s and reached greedy 155-225 at 30-40k; intensity 16 (batch 64) reached greedy 500 at
30k at 157 env steps/s; intensity 8 (the presets then; lr 2e-3) ran 221 env steps/s at load 8.5
and ended at a training return of 256 but greedy 134 at 40k: one greedy snapshot of one seed
is noisy; at 51k the table's runs end at 361 (seed 0) and 500 (seed 1). MountainCar-v0 is not
solved within these budgets: rl-zoo3 replays 64 items per env step there (8 x 128 per 16
steps) for 120k steps, ~8x this replay ratio, which in RLlib 2.60 costs ~20 ms per env step
(≈ 40 min for 120k steps on one CPU, estimated from the costs above); ε-greedy play at
intensity 8 never reached the flag in 100k, with rl-zoo3's γ 0.98, target period 600 and
ε 1 → 0.07 over 24k steps (``--set``) or without.

DQN since 2026-12-05 replays from lrtune's `TransitionReplayBuffer` (the presets' buffer type),
which computes what RLlib's uniform episode buffer computes except at a terminated episode's
end: RLlib 2.60 bootstraps the last ``n_step - 1`` transitions from the terminal observation
(``lrtune.learners._replay``), lrtune does not. Same presets (n_step 3), 50k env steps,
``--every 10``, two runs at a time on the 2-core VM (so env steps/s are not comparable between
rows; returns do not depend on load); final training return (ε 0.02, last episodes), mean over
seeds, each seed's in brackets:

* CartPole-v1, lr 2e-3: lrtune's buffer 302 (seeds 0-5: 199, 255, 458, 211, 336, 356);
  RLlib's ``EpisodeReplayBuffer`` 431 (seeds 0-3: 292, 500, 447, 484); lrtune's buffer with
  RLlib's terminal bootstrap 404 (seeds 0-3: 452, 353, 312, 500).
* Acrobot-v1, lr 1e-3: lrtune's buffer −139 (seeds 0-3: −122, −228, −90, −115); RLlib's
  −109 (seeds 0-1: −100, −118); the third not run.

The third (a scratch patch of the sampled batch, not shipped) learns like RLlib's
buffer, so the two buffers differ in that one correction, not in their plumbing; on CartPole
the presets did better with RLlib's bootstrap from terminal states in these seeds. lrtune
keeps the correct targets (Stable-Baselines3's n-step buffer and the n-step return's
definition treat a terminal as terminal): the presets were tuned on RLlib's, and retuning
them was not done. With ``n_step: 1`` (where both agree) CartPole-v1 reached 233 and 96
(seeds 0, 1). Runs took 1,000-1,150 env steps/s with lrtune's buffer, 430-480 with RLlib's,
two at a time.

The replay ratio, then (same day, same way; lrtune's buffer; ``--set training_intensity=N``;
8 was the presets' value, chosen when a replayed item cost ~0.35 ms):

* CartPole-v1, lr 2e-3: 8 → 302 (6 seeds, above); 16 → 382 (500, 145, 500; every seed's best
  500); 32 → 467 (500, 500, 402; every seed's best 500).
* Acrobot-v1, lr 1e-3: 8 → −139 (4 seeds, above); 16 → −122 (−86, −163, −117); 32 → −101
  (−109, −88, −107).
* Speed, two runs at a time: ~780-810 env steps/s at 16, ~485-525 at 32 (~1,050 at 8).

The presets now run at 32 (rl-zoo3's CartPole-v1 ratio).

SAC, 2026-12-03 (the presets alone: RLlib's tuned ``pendulum_sac.py``, 1,000 env steps per
iteration; Pendulum-v1, 20k env steps, ``--lr 1e-3`` constant for actor, critics and
temperature, ``--every 1``; seeds 0, 1, 2 one after another under ``nice -n 5`` on the shared
2-CPU machine, 1-minute load average 0.4-4.9, this run included, with another session's test
runs and, during seed 0, this session's unit tests and mypy on the cores). The return is the
training ``episode_return_mean`` (the last 5 episodes, ``metrics_num_episodes_for_smoothing``);
env steps/s over the whole run, Ray start and algorithm build included:

| seed | first ≥ −250 at | final (20k) | best | env steps/s | load |
|---|---|---|---|---|---|
| 0 | 8k (−240) | −259 | −111 at 11k | 28 | 0.4-4.9 |
| 1 | 7k (−228) | −193 | −102 at 17k | 30 | 1.3-4.1 |
| 2 | 8k (−198) | −198 | −105 at 18k | 33 | 1.0-2.5 |

Every seed was at −1063…−1259 for its first 5k env steps, crossed −250 at 7-8k and then
moved between −102 and −494 per iteration (seed 0: −494 at 10k, −395 at 16k, −259 at the end;
seed 2: −395 at 9k): the 5-episode window is noisy, and one iteration's value is not a
converged return.

SAC with lrtune's flat uniform replay (the presets since 2026-12-05: ``replay_buffer_config``
``{type: lrtune.learners.TransitionReplayBuffer, capacity: 100000}`` in place of RLlib's
prioritized buffer with alpha 1, beta 0; everything else as above), 2026-12-05, the same
command with that ``--set`` (the presets' value now); seeds 0 and 1 two at a time, then seed 2
beside a run of RLlib's buffer on the same seed:

| seed | first ≥ −250 at | final (20k) | best | env steps/s |
|---|---|---|---|---|
| 0 | 11k (−166) | −238 | −118 at 15k | 53 |
| 1 | 7k (−151) | −202 | −105 at 15k | 55 |
| 2 | 6k (−177) | −195 | −105 at 18k | 54 |

When the flat run of seed 2 reached 20k env steps, RLlib's buffer's run of the same seed,
started with it, was at 15k: 1.33× the env steps/s side by side (that run ended at −197,
best −101, 37 env steps/s over the whole run, its last 5k alone). Both spend most of an
iteration in the SAC update itself (cProfile, one iteration of 1,000 env steps after
warm-up: 14.6 s of 19.5 s in the learner's update with the flat buffer; RLlib's buffer adds
its episode sampling and learner connector). Finals −238, −202, −195 against −259, −193,
−198 with RLlib's buffer (three seeds each, runs on different days): no sign that dropping the
prioritization costs learning at this budget.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import yaml

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from lrtune.learners import ModelSettings, _presets
from lrtune.policies import LRPolicySpec
from lrtune.registry import agents
from lrtune.running import IterationRecord, train_single


def main() -> None:
    """Train one seed; print the curve and the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", choices=agents.names(), default="ppo")
    parser.add_argument("--env", default="CartPole-v1", help="a gymnasium id")
    parser.add_argument("--steps", type=int, default=100_000, help="env steps to train")
    parser.add_argument("--lr", type=float, default=1e-3, help="base learning rate")
    parser.add_argument("--schedule", default="constant", help="a schedule name (its defaults)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--every", type=int, default=5, help="print the curve every N iterations (1: all)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset hyper-parameter (value read as YAML)",
    )
    parser.add_argument(
        "--defaults-only",
        action="store_true",
        help="leave out the task's per-environment preset entry (agent defaults and the "
        "action-space family only): how the presets do on a task nobody tuned them for",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a model setting (vf_share_layers, initializer, normalize_observations, hidden, "
        "activation; value read as YAML)",
    )
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    model_settings: dict[str, Any] = {}
    for item in args.model:
        key, _, value = item.partition("=")
        model_settings[key] = yaml.safe_load(value)
    if "hidden" in model_settings:
        model_settings["hidden"] = tuple(model_settings["hidden"])
    if args.defaults_only:
        # This process only: the lookup then finds no entry for the task.
        _presets.PPO_BY_ENV.pop(_presets.env_name(args.env), None)
        _presets.DQN_BY_ENV.pop(_presets.env_name(args.env), None)
        _presets.SAC_BY_ENV.pop(_presets.env_name(args.env), None)
    policy = LRPolicySpec.model_validate({"lr": args.lr, "schedule": args.schedule})
    start = time.perf_counter()

    def show(record: IterationRecord) -> None:
        if record.iteration % args.every == 0:
            print(
                f"iter {record.iteration:4d}  env steps {record.env_steps:7d}  "
                f"return {record.episode_return:9.2f}  lr {record.lr:.2e}",
                flush=True,
            )

    records = train_single(
        policy,
        agent=args.agent,
        env=args.env,
        env_steps=args.steps,
        seed=args.seed,
        hyperparams=overrides,
        model=ModelSettings(**model_settings),
        on_iteration=show,
    )
    seconds = time.perf_counter() - start
    returns = [r.episode_return for r in records if math.isfinite(r.episode_return)]
    final = returns[-1] if returns else math.nan
    best = max(returns) if returns else math.nan
    steps = records[-1].env_steps if records else 0
    print(f"final={final:.2f} best={best:.2f} env_steps_per_s={steps / seconds:.0f}")


if __name__ == "__main__":
    main()
