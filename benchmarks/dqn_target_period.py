"""DQN's presets with one target-network period: the greedy return after training, one seed.

Trains one seed of lrtune's DQN presets (``lrtune.learners._presets``, the task's entry if it
has one) with a constant Adam rate and ``target_network_update_freq`` set to ``--period`` env
steps, in this process on one CPU (RLlib's algorithm, lrtune's learner; no Tune, no MLflow),
then plays ``--episodes`` greedy episodes (exploration off) on a separate env, set up as a
trial's evaluation is (``lrtune.running._trainable.evaluation_hyperparams``), and prints one
line of JSON: ``{"env", "seed", "period", "lr", "env_steps", "greedy", "train", "wall_s"}``
(``train`` is the last iteration's training return, with exploration).

Run: ``.venv/bin/python benchmarks/dqn_target_period.py --env Acrobot-v1 --steps 50000
--period 300 [--seed 0] [--lr 1e-3] [--episodes 10]``; a study is a loop over seeds and
periods in the shell, two processes at a time on 2 CPUs.

Measured 2026-12-07 (Acrobot-v1 and CartPole-v1 at 1000 and 100, 15:29-16:26 UTC;
MountainCar-v0 at 1000 and 100 and all three tasks at 300, 17:30-18:47 UTC), lr 1e-3,
10 greedy episodes, the presets otherwise as at 7d158be (periods 1000 / 300 / 100 env steps;
RLlib checks the period once per 32-env-step round of the presets, so the target network is
copied every 1,024 / 320 / 128 env steps, 512 / 160 / 64 updates). Paired by seed; the runs are
seeded, so a seed gives the same run whatever ran beside it. "at target" counts seeds whose
greedy return reached the suite's target (``benchmarks/suite.py``); p is a two-sided
sign-flip test on the paired differences of the means:

| task (env steps, seeds) | at target 1000 / 300 / 100 | mean 1000 / 300 / 100 | p, 1000 vs 300 |
|---|---|---|---|
| Acrobot-v1 (50k, 0-11) | 6 / 10 / 11 of 12 | −261.7 / −95.0 / −88.8 | 0.040 |
| CartPole-v1 (50k, 0-11) | 8 / 12 / 7 of 12 | 435.6 / 499.3 / 374.7 | 0.12 |
| MountainCar-v0 (120k, 0-3, 6-9) | 3 / 2 / 2 of 8 | −147.7 / −167.1 / −159.4 | 0.35 |

Every Acrobot-v1 miss at 1000 was −500 (the greedy policy never swung up); at 300 the misses
were −183.5 and −102.2, at 100 −128.7. On CartPole-v1 at 100, five seeds ended at 117-397. On
MountainCar-v0, 3, 5 and 4 of the 8 seeds ended at −200 at 1000 / 300 / 100 (the car never
reached the flag in the greedy episodes); the three periods are not told apart there. The
presets' period has been 300 since this study (it was 1000).
"""

from __future__ import annotations

import argparse
import json
import time

from lrtune.learners import ModelSettings, build_algorithm_config
from lrtune.learners._presets import over_presets
from lrtune.running import init_local_ray
from lrtune.running._trainable import evaluation_hyperparams
from lrtune.specs import parse_job


def main() -> None:
    """Train one seed with the given target period, evaluate greedily, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Acrobot-v1", help="a gymnasium id")
    parser.add_argument("--steps", type=int, default=50_000, help="env steps to train")
    parser.add_argument("--period", type=int, default=300, help="target period in env steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3, help="constant Adam rate")
    parser.add_argument("--episodes", type=int, default=10, help="greedy episodes at the end")
    args = parser.parse_args()
    init_local_ray(num_cpus=1)
    # A job of one fixed policy, so that evaluation is set up as a trial's (greedy episodes on
    # the trial's own evaluation env runner, a time limit where the env has none).
    job = parse_job(
        {
            "name": "dqn-target-period",
            "agent": "dqn",
            "env": {"id": args.env},
            "budget": {"trial_env_steps": args.steps},
            "policy": {"lr": args.lr},
            "evaluation": {"episodes": args.episodes},
        }
    )
    hyperparams = over_presets("dqn", args.env, None, {"target_network_update_freq": args.period})
    hyperparams.update(evaluation_hyperparams(job, hyperparams))
    algo = build_algorithm_config(
        "dqn",
        args.env,
        policy=job.policy,
        hyperparams=hyperparams,
        model=ModelSettings(),
        budget=args.steps,
        seed=args.seed,
    ).build_algo()
    start = time.perf_counter()
    try:
        steps, result = 0, {}
        while steps < args.steps:
            result = algo.train()
            steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        greedy = algo.evaluate()["env_runners"]["episode_return_mean"]
    finally:
        algo.stop()
    line = {
        "env": args.env,
        "seed": args.seed,
        "period": args.period,
        "lr": args.lr,
        "env_steps": steps,
        "greedy": greedy,
        "train": result["env_runners"].get("episode_return_mean"),
        "wall_s": round(time.perf_counter() - start),
    }
    print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
