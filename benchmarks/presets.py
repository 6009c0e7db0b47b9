"""How an agent learns with lrtune's presets on a task: one trial, no Tune, one CPU.

The presets (``lrtune.learners._presets``) are what every job's agent gets unless the job
overrides them; this checks them on any gymnasium task, shipped jobs or not. It trains one
seed with a fixed LR policy through lrtune's learner (``lrtune.running.train_single``) and
prints the mean episode return every few iterations. Last line:
``final=<return at the end> best=<best return> env_steps_per_s=<x>``.

Run: ``.venv/bin/python benchmarks/presets.py --agent ppo --env Acrobot-v1 --steps 100000
[--lr 1e-3] [--schedule linear] [--seed 0] [--set key=value ...]``

Measured on the 2-CPU machines (RLlib 2.60 new API stack, torch CPU), 2026-11-26/27; "load" is
the load average of the shared machine at the time (timings scale with it, returns do not):

| agent | task | lr policy | return at env steps | final / best | load |
|---|---|---|---|---|---|
| ppo | CartPole-v1 | 1e-3 linear | 449 at 32k, 500 from 65k; seed 1: 500 at 41k | 500 | 5-7 |
| ppo | CartPole-v1 | 3e-4 constant | 374 at 98k | 325 / 432 | 5 |
| ppo | Pendulum-v1 | 1e-3 constant | −1166 → −313 at 53k → −292 at 61k | −292 | 18 |
| ppo | Acrobot-v1 | 1e-3 constant | unsolved at 100k (6 variants: −500..−437) | −474 / −394 | 17 |
| ppo | lrtune/RecSys-v0 | 1e-3 constant | 10.6 at 8k, 12.7 at 32k, 13.5 at 100k | 13.5/14.0 | 20 |
| dqn | CartPole-v1 | 5e-4 constant | 83 at 8k, 158 at 12k, 250 at 16k, 338 at 24k | 338 | 20 |
| dqn | lrtune/RecSys-v0 | 5e-4 constant | 9.9 at 1k, 12.5 at 10k, 13.9 at 16k | 13.2 / 14.1 | 25 |

What the runs showed (and the presets' comments cite): RLlib's default PPO model shares the
value head's layers with the policy and its ``vf_clip_param`` (10) clamps the squared error, so
the value loss either cannot fit CartPole's returns (clipped) or swamps the policy gradient
(unclipped at ``vf_loss_coeff`` 0.5): unclipped at 0.01 with γ 0.98 works. Acrobot-v1 is not
solved at 100k env steps by any variant tried (random play almost never reaches the goal;
rl-zoo3's budget there is 1e6 steps with reward normalisation). DQN's CPU cost is dominated by
replay sampling (51 % of a profile), so its presets replay 128-item batches 16 times per 16 env
steps rather than more. Random play on RecSys-v0 gives 10.3 clicks per session, greedy 15.3.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import yaml

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from lrtune.policies import LRPolicySpec
from lrtune.running import IterationRecord, train_single


def main() -> None:
    """Train one seed; print the curve and the last line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", choices=["ppo", "dqn"], default="ppo")
    parser.add_argument("--env", default="CartPole-v1", help="a gymnasium id")
    parser.add_argument("--steps", type=int, default=100_000, help="env steps to train")
    parser.add_argument("--lr", type=float, default=1e-3, help="base learning rate")
    parser.add_argument("--schedule", default="constant", help="a schedule name (its defaults)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset hyper-parameter (value read as YAML)",
    )
    args = parser.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    policy = LRPolicySpec.model_validate({"lr": args.lr, "schedule": args.schedule})
    start = time.perf_counter()

    def show(record: IterationRecord) -> None:
        if record.iteration % 5 == 0:
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
