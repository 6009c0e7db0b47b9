"""Parallel efficiency of lrtune trials on 2 CPUs (issue target: ≥ 0.92).

One trial alone, then two identical trials at once, each holding one CPU, through the real
`lrtune run` path (`run_job`: Tune, lrtune's trainable and learner, MLflow logging in the
driver). Throughput is the env steps all trials of a run trained over the wall time of the whole
`run_job` call (trial start-up, algorithm builds, checkpoints, result processing and MLflow
logging included; Ray itself is started once before the first run, so no run pays for it).
Repetitions alternate alone and pair. Also printed: each trial's median env steps/s over its
iterations after the first (the learner's own rate, which leaves the driver's costs out). Last
line: ``efficiency=<env steps/s of the pair ÷ (2 × alone)>``.

The config is STACK.md's reference: PPO on CartPole-v1, train batch 2000, minibatch 128,
4 epochs, one env per trial, no env-runner actors (measured by hand there: 1,177 env steps/s
alone, efficiency 0.91 for a hand-written Tune script).

Run: ``.venv/bin/python benchmarks/parallel.py [--reps 2] [--iterations 8]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from lrtune.running import init_local_ray, run_job
from lrtune.specs import parse_job

BATCH = 2000


def job(folder: Path, name: str, trials: int, iterations: int) -> Any:
    data = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "policy": {"lr": 3e-4},
        "budget": {"trial_env_steps": BATCH * iterations},
        "trials": {"num": trials, "max_concurrent": trials},
        "resources": {"cpus": 1},
        "scheduler": {"name": "none"},
        "hyperparams": {
            "train_batch_size_per_learner": BATCH,
            "minibatch_size": 128,
            "num_epochs": 4,
            "num_envs_per_env_runner": 1,
        },
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    return parse_job(data, name, folder)


def trial_rates(experiment_dir: Path) -> list[float]:
    """Median env-steps/s (iterations after the first) of each trial of an experiment."""
    rates = []
    for result_file in sorted(experiment_dir.glob("trial_*/result.json")):
        rows = [json.loads(line) for line in result_file.read_text().splitlines() if line]
        steady = [r["env_steps_per_s"] for r in rows if r["training_iteration"] > 1]
        rates.append(statistics.median(steady))
    return rates


def main() -> None:
    """Alternate one trial alone and two at once; print the efficiency of the pair."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=8)
    args = parser.parse_args()
    init_local_ray(num_cpus=2)
    alone: list[float] = []
    pair: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rep in range(args.reps):
            for trials in (1, 2):
                name = f"parallel_{trials}_{rep}"
                started = time.perf_counter()
                outcome = run_job(job(folder, name, trials, args.iterations), stream=io.StringIO())
                wall = time.perf_counter() - started
                env_steps = sum(t.env_steps for t in outcome.trials)
                rates = trial_rates(outcome.experiment_dir)
                assert len(rates) == trials, rates
                (alone if trials == 1 else pair).append(env_steps / wall)
                print(
                    f"rep {rep} trials {trials}: {env_steps} env steps in {wall:.1f} s = "
                    f"{env_steps / wall:.0f} env steps/s (per-iteration medians: "
                    + " + ".join(f"{r:.0f}" for r in rates)
                    + ")",
                    flush=True,
                )
    one, two = statistics.median(alone), statistics.median(pair)
    print(f"alone {one:.0f} env steps/s; pair {two:.0f} env steps/s together (2 CPUs)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"efficiency={two / (2 * one):.3f}")


if __name__ == "__main__":
    main()
