"""Throughput of lrtune's recommender simulator.

* single: env steps/s of one ``lrtune/RecSys-v0`` made by plain ``gymnasium.make`` (default
  wrappers: PassiveEnvChecker and OrderEnforcing), random actions, reset on session end;
* batched: user-steps/s of :class:`lrtune.envs.BatchedRecSysEnv` with ``--users`` users.

Each figure is the best of ``--repeats`` timed runs (wall clock) after a warm-up. Run on one
core: ``OMP_NUM_THREADS=1 python benchmarks/recsys_env.py``. The last line is exactly
``steps_per_s=<single> batched_steps_per_s=<batched>``.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time

import gymnasium as gym
import numpy as np

from lrtune.envs import RECSYS_ID, BatchedRecSysEnv


def bench_single(steps: int, repeats: int, **make_kwargs: object) -> float:
    """Best env steps/s over ``repeats`` runs of ``steps`` random-action steps."""
    env = gym.make(RECSYS_ID, **make_kwargs)  # type: ignore[arg-type]
    env.reset(seed=0)
    num_actions = int(env.unwrapped.model.num_candidates)  # type: ignore[attr-defined]
    actions = np.random.default_rng(0).integers(num_actions, size=steps).tolist()
    best = 0.0
    for rep in range(repeats + 1):
        start = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        rate = steps / (time.perf_counter() - start)
        if rep > 0:  # the first run warms up
            best = max(best, rate)
    env.close()
    return best


def bench_batched(users: int, steps: int, repeats: int) -> float:
    """Best user-steps/s of the batched env over ``repeats`` runs of ``steps`` steps."""
    venv = BatchedRecSysEnv(users)
    venv.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.integers(venv.model.num_candidates, size=users) for _ in range(64)]
    best = 0.0
    for rep in range(repeats + 1):
        start = time.perf_counter()
        for i in range(steps):
            venv.step(actions[i & 63])
        rate = users * steps / (time.perf_counter() - start)
        if rep > 0:
            best = max(best, rate)
    venv.close()
    return best


def main() -> None:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000, help="single-env steps per run")
    parser.add_argument("--users", type=int, default=1024, help="users of the batched env")
    parser.add_argument("--batched-steps", type=int, default=2000, help="batched steps per run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best is reported)")
    parser.add_argument("--extra", action="store_true", help="also time variants (no checker)")
    args = parser.parse_args()
    single = bench_single(args.steps, args.repeats)
    print(f"single env via gymnasium.make (default wrappers): {single:,.0f} steps/s")
    if args.extra:
        raw = bench_single(args.steps, args.repeats, disable_env_checker=True)
        print(f"single env, disable_env_checker=True (not the headline): {raw:,.0f} steps/s")
    batched = bench_batched(args.users, args.batched_steps, args.repeats)
    print(f"batched env, {args.users} users: {batched:,.0f} user-steps/s")
    print(f"steps_per_s={single:.0f} batched_steps_per_s={batched:.0f}")


if __name__ == "__main__":
    main()
