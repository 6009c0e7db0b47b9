"""rl-zoo3's own hyper-parameter search and `lrtune run`, on the same task, side by side.

Both tools search one agent on one gymnasium task with the same number of trials, env steps per
trial and trials at once, on this machine, one after the other in one run of this script:

* **rl-zoo3** (``python -m rl_zoo3.train -optimize``, installed by the ``bench`` extra): its own
  sampler over all of the agent's settings (``rl_zoo3/hyperparams_opt.py``), Optuna TPE with
  rl-zoo3's default 10 random start-up trials (so with 8 trials every one is sampled at random,
  as a user running the command would get), median pruner, ``--n-jobs`` trials at once (threads
  of one process), each trial's value the mean return of a deterministic evaluation (5 episodes)
  at its end;
* **lrtune** (``lrtune run`` on a job this script writes): the LR-policy space and the agent's
  space combined (``search_spaces/lr_policies.yaml`` + ``search_spaces/<agent>_agent.yaml``, or
  ``--space``), Optuna TPE after ``search.startup_trials`` random trials, ASHA on env steps,
  ``trials.max_concurrent`` trials at once (1 CPU each), each trial scored on a deterministic
  evaluation at its end (``evaluation.score``), as rl-zoo3 scores.

For each tool: ``best`` is the best trial value in its Optuna study; ``s`` is the wall time from
the tool's start (process start-up and Ray start-up included) to the end of the first trial
whose value reached ``--target`` (``inf`` when none did). ``ratio_s`` is lrtune's time over
rl-zoo3's (``inf`` when lrtune never reached the target, ``0`` when only lrtune did).
Last line: ``task=<t> agent=<a> zoo_best=<x> zoo_s=<s> lrtune_best=<y> lrtune_s=<s> ratio_s=<r>``.

Run: ``.venv/bin/python benchmarks/vs_zoo.py [--task Acrobot-v1] [--agent ppo] [--trials 8]
[--steps 50000] [--concurrent 2] [--target -100] [--seed 0]`` (set up with
``.venv/bin/pip install -e '.[bench]'``).

Measured on 2026-12-07 (lrtune's code as at 95f52cd, load 0.3-2.0, nothing else running):

* PPO, the defaults, 15:06-15:16 UTC: ``task=Acrobot-v1 agent=ppo zoo_best=-128.0 zoo_s=inf
  lrtune_best=-87.6 lrtune_s=22 ratio_s=0.00``. rl-zoo3: 8 trials finished, none at the target
  this time (-128.0, -145.8, the rest -500), its whole search 521 s; lrtune: 4 finished, the
  first at the target 22 s after `lrtune run` started, the whole search 44 s (lrtune's best is
  the value of every earlier run; rl-zoo3's threads make its runs differ).
* DQN, ``--agent dqn``, 14:53-15:05 UTC: ``task=Acrobot-v1 agent=dqn zoo_best=-82.8 zoo_s=195
  lrtune_best=-500.0 lrtune_s=inf ratio_s=inf``. rl-zoo3: 2 of 8 trials at the target (-86.6,
  -82.8), the rest -500, its whole search 522 s; lrtune: every trial's greedy evaluation -500,
  the whole search 185 s. lrtune loses here. The job this script writes, with
  ``scheduler: {name: none}`` added and run by ``lrtune run`` alone (every trial trained its
  50k env steps, 188 s), also ended with all 8 at -500, so ASHA's cuts are not the cause. The
  best training returns of 6 of the 8 trials were -117 to -197 (with exploration), but their
  final Q-networks, loaded from each trial's last checkpoint (``RLModule.from_checkpoint``),
  were nearly flat: on 300 states of a random-action episode, each action's Q-value varied by
  a standard deviation of 0.09-1.6 across states, 6 of the 7 tanh networks had hidden units at
  a mean magnitude of 0.92-0.99 (saturated), and 5 of the 8 greedy policies chose one action
  in 84 % or more of those states. rl-zoo3's two trials at the target synchronised their
  target network every 3 and 79 env steps; lrtune's DQN space samples 100-20,000 (the
  presets: 1,000).

DQN again on 2026-12-07 19:20-19:41 UTC, on 8e5eb5b (the presets' target period 300 env steps
instead of 1,000; this job has no baseline trial, so the presets' period reaches no trial here),
the suite's MountainCar-v0 DQN row beside it (load 1.5-5.9): ``task=Acrobot-v1 agent=dqn
zoo_best=-80.4 zoo_s=201 lrtune_best=-500.0 lrtune_s=inf ratio_s=inf``. rl-zoo3: 8 trials
finished, the first at the target 201 s in, its whole search 760 s; lrtune: every trial's
greedy evaluation -500 again (5 completed, 3 stopped by ASHA), the whole search 509 s. All 8
of lrtune's trials drew tanh networks (2 random trials, then TPE), including the two whose
sampled target periods (222 and 282 env steps) were near the presets' new one. lrtune still
loses here.

DQN on 2026-12-07 22:27-22:40 UTC, on 13094b9's code (later commits changed text only),
after the DQN agent space began sampling updates per env step (0.25-1) instead of RLlib's
``training_intensity``, target periods of 100-2,000 env steps (was 20,000), γ from 0.97 and
relu only (``search_spaces/dqn_agent.yaml`` has the random-trial study behind it), nothing
else running (load 1.3-1.7):
``task=Acrobot-v1 agent=dqn zoo_best=-354.0 zoo_s=inf lrtune_best=-85.8 lrtune_s=126
ratio_s=0.00``. rl-zoo3: 8 trials finished, none at the target this time (-354.0, -356.8,
-372.8, -499.6, the rest -500), its whole search 464 s; lrtune: 3 of 8 trials at the target
(-86.8, -91.6, -85.8), the first 126 s after ``lrtune run`` started, 4 completed and 4 stopped
by ASHA, the whole search 312 s. Two of the four ASHA stopped (-259.0 and -492.6 at their
rung) reached -85.4 and -89.8 when the same points trained their full 50k in the random study.
``--only lrtune`` at 21:46-21:51 UTC gave the same trials and values (the search is seeded;
first at the target after 133 s, 306 s in all). rl-zoo3's earlier two runs (above) reached
-82.8 and -80.4, the first at the target after 195 and 201 s: against those, lrtune's 126-133 s
is about 0.65 of rl-zoo3's time, from runs an hour or more apart, not side by side.

Measured again with the defaults on 2026-12-05 08:33-08:42 UTC (lrtune's code as at bd5e10d;
load 0.2 at the start, 1.6 at the end, nothing else running):
``task=Acrobot-v1 agent=ppo zoo_best=-84.2 zoo_s=188 lrtune_best=-87.6 lrtune_s=25
ratio_s=0.13``. rl-zoo3: 8 trials finished, its whole search 271 s; lrtune: 4 finished (the
rest stopped by ASHA), the first trial at the target 25 s after `lrtune run` started, the
whole search 77 s. lrtune's best is the 2026-12-02 run's value again (the first trials are
proposed before any result, and the run is seeded).

Measured with the defaults (PPO, Acrobot-v1, 8 trials × 50k env steps, 2 at a time, target
−100, seed 0) on the project's 2-core VM, 2026-12-02 09:22-09:31 UTC, load average 2.1 (other
sessions' work was winding down; one run, one seed of each search):
``task=Acrobot-v1 agent=ppo zoo_best=-78.6 zoo_s=171 lrtune_best=-87.6 lrtune_s=23
ratio_s=0.14``. rl-zoo3: 8 trials finished (all random samples: 8 < its 10 start-up trials),
3 reached −100 (−78.6, −90.0, −103.8 is one short), the first at 171 s; the whole search took
448 s, of which one trial (minibatch 8, 20 epochs) took ~6 min. lrtune: 2 random trials, then
TPE; 4 finished and 4 were stopped by ASHA at a quarter or half of the budget; the first trial
(a random one, −87.6) ended 23 s after `lrtune run` started, Ray start-up included; the whole
search took 65 s. Both tools' values are deterministic evaluations (rl-zoo3 5 episodes, lrtune
5), so they compare; a single seed per tool does not say which search is better, only that
lrtune reaches the target within this budget, several times faster here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass
class Outcome:
    """One tool's search: best value, seconds to the target, trials that finished, wall time."""

    best: float
    seconds_to_target: float
    finished: int
    wall: float


def study_outcome(storage: str, target: float, started: float, wall: float) -> Outcome:
    """Best value and time to the first finished trial at or above ``target`` of the study."""
    names = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=names[0], storage=storage)
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if t.value is not None and math.isfinite(t.value) and t.datetime_complete is not None
    ]
    best = max((t.value for t in done if t.value is not None), default=-math.inf)
    reached = [
        _epoch(t.datetime_complete) - started
        for t in done
        if t.value is not None and t.value >= target and t.datetime_complete is not None
    ]
    return Outcome(best, min(reached, default=math.inf), len(done), wall)


def _epoch(moment: datetime) -> float:
    # Optuna stores naive local times.
    return time.mktime(moment.timetuple()) + moment.microsecond / 1e6


def run_zoo(args: argparse.Namespace, folder: Path) -> Outcome:
    """rl-zoo3's ``train.py -optimize`` as a user runs it, its study in sqlite."""
    storage = f"sqlite:///{folder / 'zoo.db'}"
    command = [
        str(BIN / "python"),
        "-m",
        "rl_zoo3.train",
        "--algo",
        args.agent,
        "--env",
        args.task,
        "-optimize",
        "--n-trials",
        str(args.trials),
        "--n-jobs",
        str(args.concurrent),
        "-n",
        str(args.steps),
        "--sampler",
        "tpe",
        "--pruner",
        "median",
        "--storage",
        storage,
        "--study-name",
        "zoo",
        "--seed",
        str(args.seed),
        "--no-optim-plots",
        "-f",
        str(folder / "zoo_logs"),
        "--verbose",
        "0",
    ]
    print("zoo:", " ".join(command), flush=True)
    started = time.time()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - started
    return study_outcome(storage, args.target, started, wall)


def lrtune_job(args: argparse.Namespace) -> dict[str, Any]:
    """The lrtune job: same task, agent, trials, env steps per trial and concurrency."""
    spaces = args.space or [
        str(ROOT / "search_spaces" / "lr_policies.yaml")
        if args.agent == "ppo"
        else str(ROOT / "search_spaces" / "dqn_policies.yaml"),
        str(ROOT / "search_spaces" / f"{args.agent}_agent.yaml"),
    ]
    return {
        "version": 1,
        "name": "vs_zoo",
        "agent": args.agent,
        "env": {"id": args.task},
        "budget": {"trial_env_steps": args.steps},
        "trials": {"num": args.trials, "max_concurrent": args.concurrent},
        "seeds": {"tuning": [args.seed], "test": [1000 + args.seed]},
        "space": spaces if len(spaces) > 1 else spaces[0],
        "search": {"algorithm": "optuna", "sampler": "tpe", "seed": args.seed},
        "evaluation": {"episodes": 5, "score": True},
        "resources": {"cpus": 1},
    }


def run_lrtune(args: argparse.Namespace, folder: Path) -> Outcome:
    """``lrtune run`` on the job above, MLflow and results in ``folder``."""
    job_file = folder / "vs_zoo.yaml"
    job_file.write_text(yaml.safe_dump(lrtune_job(args), sort_keys=False))
    command = [
        str(BIN / "lrtune"),
        "run",
        str(job_file),
        "--tracking-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--storage-path",
        str(folder / "ray_results"),
    ]
    print("lrtune:", " ".join(command), flush=True)
    started = time.time()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - started
    storage = f"sqlite:///{folder / 'results' / 'vs_zoo' / 'optuna.db'}"
    return study_outcome(storage, args.target, started, wall)


def main() -> None:
    """Run both searches back to back and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="Acrobot-v1")
    parser.add_argument("--agent", choices=("ppo", "dqn"), default="ppo")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--target", type=float, default=-100.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--space", action="append", help="lrtune space file(s) (repeatable)")
    parser.add_argument("--only", choices=("zoo", "lrtune"), help="run one side only")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="lrtune-vs-zoo-"))
    print(f"working folder: {folder}  (load average {os.getloadavg()[0]:.1f})", flush=True)
    nan = Outcome(math.nan, math.nan, 0, math.nan)
    try:
        zoo = run_zoo(args, folder) if args.only != "lrtune" else nan
        print(f"zoo: {json.dumps(zoo.__dict__)}", flush=True)
        ours = run_lrtune(args, folder) if args.only != "zoo" else nan
        print(f"lrtune: {json.dumps(ours.__dict__)}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if math.isinf(ours.seconds_to_target):
        ratio = math.inf
    elif math.isinf(zoo.seconds_to_target):
        ratio = 0.0
    else:
        ratio = ours.seconds_to_target / zoo.seconds_to_target
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print(
        f"task={args.task} agent={args.agent} zoo_best={zoo.best:.1f} "
        f"zoo_s={zoo.seconds_to_target:.0f} lrtune_best={ours.best:.1f} "
        f"lrtune_s={ours.seconds_to_target:.0f} ratio_s={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
