"""Wall time of a search of short trials with Tune re-using trial actors, against one actor per
trial (before `LRTuneTrainable.reset_config`).

A grid of GRID_POINTS constant learning rates, PPO on CartPole-v1 (train batch 512, minibatch
128, one epoch, one env, no env-runner actors), `--iterations` iterations a trial, two trials at
a time on a 2-CPU embedded Ray, through the real `lrtune run` path (`run_job`). The same job runs
with lrtune's trainable (a finished trial's actor takes on the next trial: Tune's
``reuse_actors``) and with a subclass that cannot reset (Tune starts a new worker process per
trial, which imports torch and RLlib again), alternated so that drift in machine load hits both
alike. Ray itself is started once before the first run. The trials' scores are checked equal
between the two (a re-used actor trains the next trial exactly as a fresh one). Last line:
``ratio=<median wall with one actor per trial ÷ median wall with re-use>``.

Measured 2026-12-06 on the 2-core VM (AMD EPYC 2.0 GHz under KVM, otherwise idle): one actor
per trial 52.7 s and 43.4 s, re-used actors 17.3 s and 16.9 s; ``ratio=2.807``.

Run: ``.venv/bin/python benchmarks/actor_reuse.py [--reps 2] [--iterations 2]``
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ray import tune

from lrtune.running import init_local_ray, run_job
from lrtune.running._trainable import LRTuneTrainable
from lrtune.specs import parse_job

BATCH = 512
GRID_POINTS = 8


class OneActorPerTrial(LRTuneTrainable):
    """lrtune's trainable without ``reset_config``: Tune gives every trial a new actor."""

    reset_config = tune.Trainable.reset_config  # type: ignore[assignment]


def job(folder: Path, name: str, iterations: int) -> Any:
    rates = [1e-4 * 1.5**i for i in range(GRID_POINTS)]
    data = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "space": {"version": 1, "lr": {"values": rates}},
        "search": {"algorithm": "grid"},
        "budget": {"trial_env_steps": BATCH * iterations},
        "trials": {"max_concurrent": 2},
        "resources": {"cpus": 1},
        "scheduler": {"name": "none"},
        "hyperparams": {
            "train_batch_size_per_learner": BATCH,
            "minibatch_size": 128,
            "num_epochs": 1,
            "num_envs_per_env_runner": 1,
        },
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    return parse_job(data, name, folder)


def main() -> None:
    """Alternate the two trainables; print the wall-time ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args()
    init_local_ray(num_cpus=2)
    walls: dict[str, list[float]] = {"reused": [], "fresh": []}
    scores: dict[str, list[float | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rep in range(args.reps):
            for kind, trainable in (("fresh", OneActorPerTrial), ("reused", LRTuneTrainable)):
                name = f"reuse_{kind}_{rep}"
                started = time.perf_counter()
                outcome = run_job(
                    job(folder, name, args.iterations),
                    stream=io.StringIO(),
                    trainable_class=trainable,
                )
                wall = time.perf_counter() - started
                assert outcome.exit_code == 0, name
                walls[kind].append(wall)
                trials = sorted(outcome.trials, key=lambda t: float(t.policy["lr"]))
                run_scores = [t.score for t in trials]
                first = scores.setdefault("first run", run_scores)
                assert run_scores == first, (name, run_scores, first)
                print(
                    f"rep {rep} {kind}: {len(outcome.trials)} trials in {wall:.1f} s",
                    flush=True,
                )
    fresh, reused = statistics.median(walls["fresh"]), statistics.median(walls["reused"])
    print(f"one actor per trial {fresh:.1f} s; re-used actors {reused:.1f} s (median wall)")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"ratio={fresh / reused:.3f}")


if __name__ == "__main__":
    main()
