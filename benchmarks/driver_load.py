"""Driver load: what lrtune's Tune driver spends per trial result (issue 11: goal ≤ 5 ms).

A job of TRIALS trials × RESULTS results runs through lrtune's real run path (`run_job`: Optuna
search on a one-dimensional LR space, the job's scheduler, MLflow tracking, the progress view,
Tune's experiment and trial checkpoints); only the RL inside a trial is replaced by
`SyntheticTrainable`, which reports the result keys lrtune's callbacks read (``env_steps``,
``score``, ``episode_return_mean``, ``lrtune/{lr, grad_norm_*, kl, ...}``, ``budget_reached``,
``diverged``, ``done``) without training. The job runs once per store: an sqlite file
(``sqlite:///…``) and a real ``mlflow server`` on 127.0.0.1 over its own sqlite file.

Measured per store, over the results the driver processed:
``driver_ms_per_result``: wall time inside Tune's ``TuneController._process_trial_result`` (stopper,
scheduler, searcher, and every callback: lrtune's MLflow recorder and progress view, Tune's
loggers) per result; the driver's critical path for one result.
``callbacks_ms_per_result``: the callbacks' share of it (``CallbackList.on_trial_result``).
``driver_cpu_ms_per_result``: the CPU time of the driver's thread inside that same call (what is
left of it when other processes compete for the cores; waits on disk and sockets excluded).
``cpu_ms_per_result``: the driver process's whole CPU time (its own threads, a background
writer included; not the trial actors, not Ray's own processes) over the run, per result.
``results_per_s``: results over the wall time of ``run_job``.
Each store prints ``store=<s> ms_per_result: searcher=… <each callback>=… tune_rest=…`` (where
the driver's time per result goes: the searcher's ``on_trial_result``, each Tune callback's, and
the rest of Tune's processing: stopper, scheduler, result statistics, checkpoint scheduling), then
``store=<s> trials=<n> finished=<k> results=<r> wall_s=… results_per_s=<x>
driver_ms_per_result=<y> driver_cpu_ms_per_result=<z> callbacks_ms_per_result=<c>
cpu_ms_per_result=<p>``; the last line is
``trials=<n> results_per_s=<x> driver_ms_per_result=<y>`` of the worse store.

Each synthetic iteration sleeps ``--step-s`` (default 0.1 s) and takes no CPU, as a trial on
another node costs the driver's machine nothing; ``--step-s 0`` lets the trials spin on the
driver's cores instead. The synthetic trainable implements ``reset_config``, so Tune re-uses its
actors across trials (lrtune's own trainable has none: each real trial starts an actor, Ray's
cost, outside the per-result figures); without that, 1,000 trials take about an hour a store
here, almost all of it actor starts. ``--profile`` prints a cProfile of the per-result work.

History, all on the shared 2-core VM, 20 results a trial:
1. 200 trials at load 13-25, tracking journal in place: 59.3 ms per result (sqlite) and 54.1
   (server): Optuna's ``report`` of each intermediate value to the study's sqlite file 27.9 /
   25.7 ms, Tune's TensorBoard logger 24.5 / 22.0, the rest of Tune 4.0, lrtune's recorder 0.6.
2. Tune's TensorBoard logger off (``result_loggers``; ``LRTUNE_TENSORBOARD=1`` restores it), the
   study in WAL mode (``study_storage``): 30 trials at load ~2, 14.81 ms (searcher 7.52).
3. (2026-12-02, second session) Optuna's intermediate values stored by a background thread
   (``IntermediateValueWriter``, flushed before a trial is told and before a save), the
   progress view describing a trial once per config: 30 trials, ``--step-s 0``: 10.69 ms
   before (load 1-4), 7.10 ms after (load rising to 9; searcher 5.36 → 0.20 ms); with
   ``--step-s 0.1`` and actor re-use, 30 trials at load 9-13: **4.40 ms** (driver thread CPU
   1.34 ms; searcher 0.07, Tune's JSON and CSV loggers 0.57 + 0.33, lrtune's recorder 0.70,
   progress 0.06, the rest of Tune 2.64).
4. 1,000 trials × 20 results, sqlite store, at load 11-22 (three other jobs shared the two
   cores): ``store=sqlite trials=1000 finished=1000 results=20000 wall_s=2044.4
   results_per_s=9.8 driver_ms_per_result=14.17 driver_cpu_ms_per_result=1.63
   callbacks_ms_per_result=4.96 cpu_ms_per_result=82.42``; the rest of Tune 8.82 ms (it grows
   with the number of trials), recorder 2.21, JSON logger 1.69. The driver thread's own CPU
   stays at 1.6 ms per result; the wall time is waiting for the cores (the driver process ran
   at ~80 % of a core, its MLflow writer thread with the in-process sqlite store included). The
   server store's 1,000-trial run was not made (see the issue note).

5. (2026-12-03) Both stores, 1,000 trials × 20 results, on a freshly booted VM whose load was
   13-17 from the benchmark's own Ray processes and 18-30 with other niced work:
   ``store=sqlite ... wall_s=1759.2 results_per_s=11.4 driver_ms_per_result=10.30
   driver_cpu_ms_per_result=1.54 callbacks_ms_per_result=4.08 cpu_ms_per_result=70.20`` (rest
   of Tune 5.98, recorder 1.91); ``store=server ... wall_s=3563.9 results_per_s=5.6
   driver_ms_per_result=18.72 driver_cpu_ms_per_result=2.44 callbacks_ms_per_result=6.73
   cpu_ms_per_result=113.85`` (rest of Tune 11.49, recorder 2.90, JSON logger 2.26). py-spy of
   the server run: 40 % of the driver thread's samples were Tune's experiment snapshot
   (``TuneController.checkpoint`` -> ``save_to_dir``: the JSON of every trial), which Tune
   forces whenever a trial has saved ``num_to_keep`` (lrtune: 2) checkpoints since the last
   one; with a checkpoint every iteration that is every few results, so its O(trials) cost is
   paid per result. The tracking writer thread (MLflow REST) took 294 of 1,374 samples.
6. (2026-12-03, eighth session) Checkpoint cadence, ``--trials 200 --stores sqlite
   --checkpoint-every 1,5`` (the option is now ``--checkpoint iteration,5``), one process, the
   two runs one after the other (every iteration first), load ~9 from the benchmark itself:
   every iteration ``driver_ms_per_result=5.76`` (rest of Tune 3.29, wall 161 s); every 5
   results ``2.91`` (rest of Tune 1.05, wall 100 s): ratios 0.505 and 0.320. Fewer checkpoints
   mean fewer forced snapshots. One order, one run each; the default was then every iteration.
7. (2026-12-03, ninth session) The default cadence became one checkpoint per 60 s of a
   trial's training (``trials.checkpoint_seconds``); with 0.1-s synthetic iterations a 20-result
   trial then saves only at its end. ``--trials 200 --stores sqlite --checkpoint
   default,iteration``, one process, default first, load ~7 from the benchmark itself: default
   ``driver_ms_per_result=2.55`` (rest of Tune 0.77, wall 96 s, driver thread CPU 1.38); every
   iteration ``5.08`` (rest of Tune 2.92, wall 143 s): ratio 1.996 against the default.
   A real trial whose iterations take a second or more saves about every 60 iterations.
   Then ``--trials 1000 --stores sqlite,server --checkpoint default``, load 3 (nothing else
   running): ``store=sqlite trials=1000 finished=1000 results=20000 wall_s=409.2
   results_per_s=48.9 driver_ms_per_result=2.31 driver_cpu_ms_per_result=1.21
   callbacks_ms_per_result=1.62 cpu_ms_per_result=20.24`` (rest of Tune 0.64, recorder 0.52,
   JSON logger 0.60); ``store=server ... wall_s=422.4 results_per_s=47.4
   driver_ms_per_result=2.30 driver_cpu_ms_per_result=1.14 callbacks_ms_per_result=1.57
   cpu_ms_per_result=14.77`` (rest of Tune 0.67, recorder 0.71). Right after it, in a process
   of its own, the old cadence: ``--trials 1000 --stores sqlite --checkpoint iteration``:
   ``driver_ms_per_result=5.81 driver_cpu_ms_per_result=1.56 wall_s=1325.8
   results_per_s=15.1 cpu_ms_per_result=78.39`` (rest of Tune 3.23), at load 10-12 from its
   own checkpoint traffic; 2.31 / 5.81 = 0.40 (two processes, one after the other, not
   interleaved).

The goal (≤ 5 ms per result) is met at 1,000 trials with both stores under the default
cadence (history 7: 2.31 and 2.30 ms, at load 3, with trials of 0.1-s iterations that save
only at their end); with a checkpoint after every iteration it was not (history 5, 7). In CPU
the driver thread needs 1.1-1.6 ms per result at any size; the rest is waiting for the cores.

Run: ``.venv/bin/python benchmarks/driver_load.py [--trials 1000] [--results 20]
[--concurrent 8] [--stores sqlite,server] [--scheduler none] [--step-s 0.1] [--profile]
[--checkpoint default[,iteration,5]]``
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import yaml
from ray import tune
from ray.tune.callback import CallbackList
from ray.tune.execution.tune_controller import TuneController
from ray.tune.result import SHOULD_CHECKPOINT
from ray.tune.search.search_generator import SearchGenerator

from lrtune.running import init_local_ray, run_job
from lrtune.specs import load_job

#: Env steps a synthetic iteration stands for (as TINY_PPO's batch in the tests).
STEPS_PER_RESULT = 128


class SyntheticTrainable(tune.Trainable):
    """A trial that trains nothing: each step reports a made-up result with the keys and types
    `LRTuneTrainable` reports, ending at the job's env-step budget; checkpoints are one small
    file. Takes the same ``job`` parameter (``tune.with_parameters``) as the real one.

    Each step sleeps ``step_s`` first: a trial that runs on another node (as on a cluster)
    takes time per iteration but no CPU of the driver's machine. With ``step_s=0`` the
    trials report as fast as they can and compete with the driver for the cores."""

    #: Seconds one synthetic iteration takes (``--step-s``); set before the run starts.
    step_s = 0.0

    def setup(self, config: dict[str, Any], job: Any = None) -> None:
        """Read the budget from the job; the sampled LR sets the synthetic learning curve."""
        self.budget = int(job.budget.trial_env_steps)
        self.trials = job.trials  # the checkpoint cadence, asked as `LRTuneTrainable` asks
        self.last_checkpoint_at = time.monotonic()
        point = config.get("point", config).get("lrtune", {})
        self.lr = float((point.get("policy") or {}).get("lr", 3e-4) or 3e-4)
        self.env_steps = 0

    def step(self) -> dict[str, Any]:
        """One made-up iteration."""
        if self.step_s > 0:
            time.sleep(self.step_s)
        prev = self.env_steps
        self.env_steps += STEPS_PER_RESULT
        progress = self.env_steps / self.budget
        score = 500.0 * progress * min(1.0, self.lr * 3e3)
        done = self.env_steps >= self.budget
        report = {
            "env_steps": self.env_steps,
            "score": score,
            "metric_raw": score,
            "episode_return_mean": score,
            "diverged": 0,
            "env_steps_per_s": 1000.0,
            "trial_seconds": float(self.iteration),
            "evaluation_return": float("nan"),
            "lrtune": {
                "lr": self.lr * (1.0 - 0.5 * progress),
                "grad_norm_pre_gating": 1.0,
                "grad_norm_post_gating": 1.0,
                "kl": 0.01,
                "schedule_factor": 1.0 - 0.5 * progress,
                "divergence_events": 0.0,
                "skipped_updates": 0.0,
                "diverged": 0.0,
            },
            "node_id": "synthetic",
            "seeds": 1,
            "budget_reached": int(done),
            "done": done,
        }
        since = time.monotonic() - self.last_checkpoint_at
        if not self.trials.checkpoints_every_iteration and self.trials.checkpoint_due(
            self.env_steps, prev, since
        ):
            report[SHOULD_CHECKPOINT] = True  # as `LRTuneTrainable` asks for one
        return report

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Start the next trial in this actor (Tune re-uses actors of trainables that reset):
        what is measured is the driver's work per result, not Ray's actor starts."""
        point = new_config.get("point", new_config).get("lrtune", {})
        self.lr = float((point.get("policy") or {}).get("lr", 3e-4) or 3e-4)
        self.env_steps = 0
        self.last_checkpoint_at = time.monotonic()
        return True

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """One small JSON file."""
        self.last_checkpoint_at = time.monotonic()
        Path(checkpoint_dir, "synthetic.json").write_text(json.dumps({"env_steps": self.env_steps}))

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Back to the saved env steps."""
        directory = checkpoint if isinstance(checkpoint, str) else checkpoint.path
        self.env_steps = json.loads(Path(directory, "synthetic.json").read_text())["env_steps"]


class Timers:
    """Wall time inside Tune's per-result processing, its callback list (and each callback)
    and its searcher, in this process."""

    def __init__(self, profile: bool = False) -> None:
        #: cProfile of the driver's per-result processing (``--profile``), or None.
        self.profile = cProfile.Profile() if profile else None
        self.results = 0
        self.process_s = 0.0
        self.process_cpu_s = 0.0
        self.callbacks_s = 0.0
        self.searcher_s = 0.0
        self.per_callback_s: dict[str, float] = {}

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap ``TuneController._process_trial_result`` and ``CallbackList.on_trial_result``."""
        process, callbacks = TuneController._process_trial_result, CallbackList.on_trial_result
        searcher = SearchGenerator.on_trial_result
        timers = self

        def timed_process(controller: Any, trial: Any, result: dict[str, Any]) -> Any:
            start, cpu_start = time.perf_counter(), time.thread_time()
            if timers.profile is not None:
                timers.profile.enable()
            try:
                return process(controller, trial, result)
            finally:
                if timers.profile is not None:
                    timers.profile.disable()
                timers.process_s += time.perf_counter() - start
                timers.process_cpu_s += time.thread_time() - cpu_start
                timers.results += 1

        def timed_callbacks(callback_list: Any, **info: Any) -> None:
            # CallbackList.on_trial_result's own loop, each callback timed.
            start = time.perf_counter()
            try:
                for callback in callback_list._callbacks:
                    began = time.perf_counter()
                    callback.on_trial_result(**info)
                    name = type(callback).__name__
                    spent = time.perf_counter() - began
                    timers.per_callback_s[name] = timers.per_callback_s.get(name, 0.0) + spent
            finally:
                timers.callbacks_s += time.perf_counter() - start

        def timed_searcher(generator: Any, trial_id: str, result: dict[str, Any]) -> None:
            start = time.perf_counter()
            try:
                searcher(generator, trial_id, result)
            finally:
                timers.searcher_s += time.perf_counter() - start

        TuneController._process_trial_result = timed_process  # type: ignore[method-assign,assignment]
        CallbackList.on_trial_result = timed_callbacks  # type: ignore[method-assign,assignment]
        SearchGenerator.on_trial_result = timed_searcher  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            TuneController._process_trial_result = process  # type: ignore[method-assign,assignment]
            CallbackList.on_trial_result = callbacks  # type: ignore[method-assign,assignment]
            SearchGenerator.on_trial_result = searcher  # type: ignore[method-assign,assignment]


def driver_cpu_s() -> float:
    """CPU seconds of this process, all its threads (children excluded: Ray's processes)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 over an sqlite file in ``folder``."""
    from lrtune.testing import local_mlflow_server

    with local_mlflow_server(
        f"sqlite:///{folder / 'server.db'}", artifacts=folder / "artifacts", cwd=folder
    ) as url:
        yield url


def cadence_fields(cadence: str) -> dict[str, Any]:
    """The ``trials`` fields of a ``--checkpoint`` cadence: ``default`` (none: the job's default
    cadence, 60 s of training), ``iteration`` (``checkpoint_seconds: 0``) or a whole number N
    of results (``checkpoint_env_steps``)."""
    if cadence == "default":
        return {}
    if cadence == "iteration":
        return {"checkpoint_seconds": 0}
    return {"checkpoint_env_steps": int(cadence) * STEPS_PER_RESULT}


def make_job(folder: Path, name: str, args: argparse.Namespace, uri: str, cadence: str) -> Any:
    """The benchmark's job: an Optuna search over the LR, ``args.trials`` trials, each saving
    checkpoints at ``cadence`` (see `cadence_fields`)."""
    data = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": args.results * STEPS_PER_RESULT},
        "trials": {
            "num": args.trials,
            "max_concurrent": args.concurrent,
            "max_failures": 1,
            **cadence_fields(cadence),
        },
        "scheduler": {"name": args.scheduler},
        "resources": {"cpus": args.cpus},
        "space": {
            "version": 1,
            "lr": {"distribution": "log_uniform", "low": 1e-5, "high": 1e-2},
        },
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": uri},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_job(path)


def measure(
    folder: Path, store: str, uri: str, args: argparse.Namespace, cadence: str
) -> dict[str, Any]:
    """Run the job once against ``uri``, checkpointing at ``cadence``; its figures."""
    job = make_job(folder, f"driver-load-{store}-ckpt-{cadence}", args, uri, cadence)
    timers = Timers(profile=args.profile)
    with timers.installed():
        cpu0, wall0 = driver_cpu_s(), time.perf_counter()
        outcome = run_job(
            job, restart=True, stream=io.StringIO(), trainable_class=SyntheticTrainable
        )
        wall, cpu = time.perf_counter() - wall0, driver_cpu_s() - cpu0
    if timers.profile is not None:  # where the per-result time goes, to stderr
        stats = pstats.Stats(timers.profile, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(30)
    finished = sum(1 for t in outcome.trials if t.status in ("completed", "pruned"))
    results = max(timers.results, 1)
    return {
        "trials": len(outcome.trials),
        "finished": finished,
        "results": timers.results,
        "wall_s": wall,
        "results_per_s": timers.results / wall,
        "driver_ms_per_result": 1e3 * timers.process_s / results,
        "driver_cpu_ms_per_result": 1e3 * timers.process_cpu_s / results,
        "callbacks_ms_per_result": 1e3 * timers.callbacks_s / results,
        "cpu_ms_per_result": 1e3 * cpu / results,
        "breakdown": {
            "searcher": 1e3 * timers.searcher_s / results,
            **{k: 1e3 * v / results for k, v in sorted(timers.per_callback_s.items())},
            "tune_rest": 1e3
            * (timers.process_s - timers.callbacks_s - timers.searcher_s)
            / results,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one line per store, then the summary line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--results", type=int, default=20, help="results per trial")
    parser.add_argument("--concurrent", type=int, default=8, help="trials at a time")
    parser.add_argument("--cpus", type=float, default=0.25, help="CPUs per trial actor")
    parser.add_argument("--stores", default="sqlite,server", help="sqlite, server or both")
    parser.add_argument("--scheduler", default="none", help="the job's scheduler (none, asha)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--step-s",
        type=float,
        default=0.1,
        help="seconds each synthetic iteration sleeps (0: trials spin on the driver's cores)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the per-result work (stderr)"
    )
    parser.add_argument(
        "--checkpoint",
        default="default",
        help=(
            "a trial's checkpoint cadence: default (the job's default, 60 s of training), "
            "iteration (after every one) or N results; a list (default,iteration,5) runs each "
            "in turn, the first as the reference of the ratios"
        ),
    )
    args = parser.parse_args(argv)
    cadences = args.checkpoint.split(",")
    if not all(c in ("default", "iteration") or (c.isdigit() and int(c) >= 1) for c in cadences):
        parser.error("--checkpoint: default, iteration or whole numbers of results (5)")
    SyntheticTrainable.step_s = args.step_s  # cloudpickled with the class (it lives in __main__)
    folder = Path(tempfile.mkdtemp(prefix="lrtune-driver-load-"))
    init_local_ray(num_cpus=os.cpu_count() or 2)
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        for every in cadences:
            for store in args.stores.split(","):
                here = folder / f"{store}-ckpt-{every}"  # a store of its own per run
                here.mkdir()
                if store == "sqlite":
                    figures = measure(here, store, f"sqlite:///{here / 'mlflow.db'}", args, every)
                elif store == "server":
                    with mlflow_server(here) as url:
                        figures = measure(here, store, url, args, every)
                else:
                    parser.error(f"--stores: unknown store {store!r} (sqlite, server)")
                runs[store, every] = figures
                tag = f"store={store} checkpoint={every}"
                parts = " ".join(f"{k}={v:.2f}" for k, v in figures["breakdown"].items())
                print(f"{tag} ms_per_result: {parts}", flush=True)
                print(
                    f"{tag} trials={figures['trials']:.0f} "
                    f"finished={figures['finished']:.0f} "
                    f"results={figures['results']:.0f} wall_s={figures['wall_s']:.1f} "
                    f"results_per_s={figures['results_per_s']:.1f} "
                    f"driver_ms_per_result={figures['driver_ms_per_result']:.2f} "
                    f"driver_cpu_ms_per_result={figures['driver_cpu_ms_per_result']:.2f} "
                    f"callbacks_ms_per_result={figures['callbacks_ms_per_result']:.2f} "
                    f"cpu_ms_per_result={figures['cpu_ms_per_result']:.2f}",
                    flush=True,
                )
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    reference = cadences[0]
    for (store, every), figures in runs.items():
        if every != reference:
            base = runs[store, reference]
            driver = figures["driver_ms_per_result"] / base["driver_ms_per_result"]
            rest = figures["breakdown"]["tune_rest"] / base["breakdown"]["tune_rest"]
            print(
                f"store={store} checkpoint={every} vs {reference}: "
                f"driver_ms_ratio={driver:.3f} tune_rest_ms_ratio={rest:.3f}"
            )
    worst = max(
        (f for (_, every), f in runs.items() if every == reference),
        key=lambda f: f["driver_ms_per_result"],
    )
    print(
        f"trials={worst['trials']:.0f} results_per_s={worst['results_per_s']:.1f} "
        f"driver_ms_per_result={worst['driver_ms_per_result']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
