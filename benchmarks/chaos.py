"""Chaos: a real `lrtune run` SIGKILLed at random moments, rerun each time, until one run ends.

The job is small (PPO CartPole-v1, 4 trials × 2,560 env steps of 128-step iterations, a
checkpoint after each, an Optuna search over the LR, 2 trials at a time, sqlite MLflow and
everything else in a temporary folder). ``python -m lrtune run JOB`` runs as a child process;
after a random delay it gets a SIGKILL (no handler runs, as on an OOM kill or a lost machine),
the Ray processes that driver started are killed too (its process family, never ``ray stop``:
other Rays on the machine live on), and the same command runs again. After ``--kills`` kills a
run is left to end; a run that ends normally before its kill also ends the loop. Then the
records are checked:

- every trial finished once: results/<name>/summary.json lists ``trials.num`` distinct trials,
  each ``completed`` at its budget, and the summary is not marked interrupted;
- MLflow: exactly one run per trial of the summary (tag ``lrtune.trial_id``), no trial run for a
  trial the summary does not have, one parent run, and no run left RUNNING (``zombie_runs``);
- Optuna: no trial left RUNNING in results/<name>/optuna.db (``zombie_trials``);
- metric steps: each trial run's ``score`` history against the trial's iterations. The job's
  iterations are exactly 128 env steps, so a trial that reached ``E`` env steps reported every
  multiple of 128 up to ``E``: a step logged twice, or one off that grid, is a duplicate point;
  a step of the grid absent from MLflow, a missing point. The rows of Tune's result.json must
  lie on the grid too. The grid, not result.json, is the reference: when a trial restarts from
  a checkpoint, Tune's JSON logger copies result.json back from the storage path and drops
  rows written since its last sync (Ray 2.60 ``LoggerCallback._restore_from_remote``).

Last line: ``kills=<n> finished=<k>/<trials> duplicate_points=<d> missing_points=<m>
zombie_runs=<r> zombie_trials=<t>``; the line before lists every failed check.

Run: ``.venv/bin/python benchmarks/chaos.py [--kills 5] [--min-delay 0] [--max-delay 25]
[--seed 0] [--keep]``. `tests/running/test_chaos.py` imports the helpers below.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

from lrtune.testing import start_lrtune

#: PPO settings that make an iteration 128 env steps and a fraction of a second.
TINY_PPO = {
    "train_batch_size_per_learner": 128,
    "minibatch_size": 64,
    "num_epochs": 1,
    "num_envs_per_env_runner": 1,
}


def chaos_job(folder: Path, name: str, trials: int = 4, env_steps: int = 2560) -> Path:
    """Write the chaos job (results, Ray storage and MLflow's sqlite file under ``folder``)."""
    data: dict[str, Any] = {
        "version": 1,
        "name": name,
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": env_steps},
        # A checkpoint after every iteration (not the default 60 s of training): kills land
        # between a result and its checkpoint, and a rerun continues from one.
        "trials": {"num": trials, "max_concurrent": 2, "max_failures": 1, "checkpoint_seconds": 0},
        "scheduler": {"name": "none"},
        "space": {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3}},
        "hyperparams": dict(TINY_PPO),
        "storage_path": str(folder / "ray_results"),
        "results_dir": str(folder / "results"),
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Driver:
    """One ``python -m lrtune run JOB`` child process; its output is read by a thread into a
    queue (so a test can poll files and output at once) and kept in ``lines``."""

    def __init__(self, job: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = start_lrtune("run", str(job), cwd=cwd, env=env)
        self.started = time.monotonic()
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._eof = False

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def poll_lines(self, wait: float = 0.0) -> list[str]:
        """The lines that arrived since the last call (waits up to ``wait`` s for the first)."""
        out: list[str] = []
        try:
            item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            while True:
                if item is None:
                    self._eof = True
                    break
                out.append(item)
                self.lines.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            pass
        return out

    @property
    def exited(self) -> bool:
        """True once the process ended and all its output was read."""
        return self._eof and self.proc.poll() is not None

    def output(self, tail: int = 4000) -> str:
        """The last ``tail`` characters of what it printed."""
        return "".join(self.lines)[-tail:]

    def wait(self, limit: float) -> int:
        """Read output until the process ends (at most ``limit`` s); its exit code."""
        deadline = time.monotonic() + limit
        while not self.exited:
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"lrtune run did not end in {limit:.0f} s:\n{self.output()}")
            self.poll_lines(0.2)
        return int(self.proc.returncode)

    def kill(self) -> str:
        """SIGKILL the driver, then every process of its family (the Ray it started: GCS,
        raylet, dashboard, workers), by process id; says what it killed."""
        try:
            root = psutil.Process(self.proc.pid)
            family = root.children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        session = ray_session_name(family)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        kill_family(family)
        # Drain what was printed before the kill.
        while not self._eof:
            self.poll_lines(0.2)
        return f"{len(family)} processes of Ray {session or '(session not read)'}"


def is_result_line(line: str) -> bool:
    """A line of the progress view that reports a trial result (its status column)."""
    return line.rstrip().endswith((" running", " diverged"))


def ray_session_name(family: list[psutil.Process]) -> str | None:
    """The ``session_…`` name on a Ray process's command line (GCS and raylet carry it)."""
    for proc in family:
        with contextlib.suppress(psutil.Error):
            for arg in proc.cmdline():
                for key in ("--session-name=", "--session_name="):
                    if arg.startswith(key):
                        return arg[len(key) :]
    return None


def kill_family(family: list[psutil.Process], limit: float = 30.0) -> None:
    """SIGKILL ``family`` and whatever children they have meanwhile started, until none is
    left (Ray's fate sharing may beat us to some: a missing process is fine)."""
    known = {p.pid: p for p in family}
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        alive: list[psutil.Process] = []
        for proc in list(known.values()):
            with contextlib.suppress(psutil.Error):
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
                    for child in proc.children(recursive=True):
                        known.setdefault(child.pid, child)
                        alive.append(child)
        if not alive:
            return
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
    raise RuntimeError(f"Ray processes of a killed driver would not die: {sorted(known)}")


# --- the checks ---------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    """What the records of a chaos run show (see the module docstring)."""

    trials: int
    finished: int = 0
    duplicate_points: int = 0
    missing_points: int = 0
    zombie_runs: int = 0
    zombie_trials: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self, kills: int) -> str:
        """The benchmark's last line."""
        return (
            f"kills={kills} finished={self.finished}/{self.trials} "
            f"duplicate_points={self.duplicate_points} missing_points={self.missing_points} "
            f"zombie_runs={self.zombie_runs} zombie_trials={self.zombie_trials}"
        )


def check_records(
    folder: Path,
    name: str,
    trials: int,
    env_steps: int,
    study: bool = True,
    iteration_steps: int = TINY_PPO["train_batch_size_per_learner"],
) -> ChaosReport:
    """Check summary, MLflow runs and metric steps, and (``study``) the Optuna study of
    experiment ``name`` whose files are under ``folder`` (as `chaos_job` put them); every
    iteration of the job is ``iteration_steps`` env steps."""
    report = ChaosReport(trials=trials)
    fail = report.failures.append
    results = folder / "results" / name
    summary_path = results / "summary.json"
    summary: dict[str, Any] = {}
    if not summary_path.exists():
        fail("no summary.json")
    else:
        summary = json.loads(summary_path.read_text())
    rows = summary.get("trials", [])
    ids = [str(t["trial_id"]) for t in rows]
    if summary and summary.get("interrupted"):
        fail("summary.json says interrupted")
    if len(ids) != trials or len(set(ids)) != len(ids):
        fail(f"summary has {len(ids)} trials ({len(set(ids))} distinct), want {trials}")
    for row in rows:
        if row["status"] == "completed" and int(row["env_steps"]) >= env_steps:
            report.finished += 1
        else:
            fail(f"trial {row['trial_id']}: {row['status']} at {row['env_steps']} env steps")
    if summary and summary.get("best") is None:
        fail("summary names no best trial")

    _check_mlflow(folder, name, summary, ids, report, iteration_steps)
    if study:
        _check_optuna(results, name, report)
    return report


def _check_mlflow(
    folder: Path,
    name: str,
    summary: dict[str, Any],
    ids: list[str],
    report: ChaosReport,
    iteration_steps: int,
) -> None:
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    fail = report.failures.append
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        fail("no MLflow experiment")
        return
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    running = [r for r in runs if r.info.status == "RUNNING"]
    report.zombie_runs = len(running)
    if running:
        roles = Counter(r.data.tags.get("lrtune.role", "?") for r in running)
        fail(f"{len(running)} MLflow runs RUNNING ({dict(roles)})")
    parents = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    if len(parents) != 1:
        fail(f"{len(parents)} parent runs, want 1")
    kids = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    per_trial = Counter(r.data.tags.get("lrtune.trial_id") for r in kids)
    for trial_id in ids:
        if per_trial.get(trial_id, 0) != 1:
            fail(f"trial {trial_id}: {per_trial.get(trial_id, 0)} MLflow runs, want 1")
    strays = sorted(str(t) for t in per_trial if t not in ids)
    if strays:
        fail(f"MLflow runs of trials the summary does not list: {strays}")

    experiment_dir = Path(summary.get("experiment_dir") or folder / "ray_results" / name)
    reached = {str(t["trial_id"]): int(t["env_steps"]) for t in summary.get("trials", [])}
    for run in kids:
        trial_id = str(run.data.tags.get("lrtune.trial_id"))
        if trial_id not in ids:
            continue
        steps = [int(m.step) for m in client.get_metric_history(run.info.run_id, "score")]
        grid = set(range(iteration_steps, reached[trial_id] + 1, iteration_steps))
        tune_rows = tune_result_steps(experiment_dir / f"trial_{trial_id}" / "result.json")
        counts = Counter(steps)
        twice = sum(n - 1 for n in counts.values())
        off_grid = len(set(counts) - grid)
        missing = len(grid - set(counts))
        report.duplicate_points += twice + off_grid
        report.missing_points += missing
        if twice or off_grid or missing:
            fail(
                f"trial {trial_id}: score steps logged twice {twice}, off the "
                f"{iteration_steps}-step grid {off_grid}, missing {missing} (MLflow "
                f"{sorted(counts)}, {reached[trial_id]} env steps reached)"
            )
        if tune_rows - grid:
            fail(f"trial {trial_id}: result.json rows off the grid {sorted(tune_rows - grid)}")


def tune_result_steps(path: Path) -> set[int]:
    """The env steps of every result row in a trial's result.json (a row torn by a kill is
    skipped)."""
    steps: set[int] = set()
    if not path.exists():
        return steps
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            steps.add(int(json.loads(line)["env_steps"]))
    return steps


def _check_optuna(results: Path, name: str, report: ChaosReport) -> None:
    import optuna

    study_file = results / "optuna.db"
    if not study_file.exists():
        report.failures.append("no optuna.db")
        return
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{study_file}")
    running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    report.zombie_trials = len(running)
    if running:
        report.failures.append(f"{len(running)} Optuna trials RUNNING")


# --- the benchmark ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Kill and rerun until a run ends; print the checks."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="kills before a run may end")
    parser.add_argument("--min-delay", type=float, default=0.0, help="s after 1st result")
    parser.add_argument("--max-delay", type=float, default=25.0, help="s after 1st result")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--env-steps", type=int, default=2560, help="env steps per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="lrtune-chaos-"))
    name = "chaos"
    job = chaos_job(folder, name, args.trials, args.env_steps)
    env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    kills, runs = 0, 0
    try:
        while True:
            runs += 1
            driver = Driver(job, folder, env)
            # The delay counts from the run's first result line: kills land while trials train
            # and checkpoint, not only while Ray starts (which takes tens of seconds here).
            delay = rng.uniform(args.min_delay, args.max_delay) if kills < args.kills else None
            first_result: float | None = None
            while not driver.exited and time.monotonic() - driver.started < 900:
                for line in driver.poll_lines(0.05):
                    if first_result is None and is_result_line(line):
                        first_result = time.monotonic()
                if (
                    delay is not None
                    and first_result is not None
                    and time.monotonic() >= first_result + delay
                ):
                    break
            if not driver.exited:
                session = driver.kill()
                if delay is None or first_result is None:
                    print(f"run {runs}: no end in 900 s\n{driver.output()}")
                    return 1
                kills += 1
                results_seen = sum(1 for line in driver.lines if is_result_line(line))
                print(
                    f"run {runs}: SIGKILL {delay:.1f} s after its first result "
                    f"({results_seen} result lines; killed the driver and {session})",
                    flush=True,
                )
                continue
            code = int(driver.proc.returncode)
            print(f"run {runs}: exit {code} after {time.monotonic() - driver.started:.1f} s")
            if code != 0:
                print(driver.output())
                if runs - kills > 2:  # a failing rerun is a finding, not a reason to loop
                    break
                continue
            break
        report = check_records(folder, name, args.trials, args.env_steps)
        print("failed checks: " + ("; ".join(report.failures) or "none"))
        print(report.line(kills))
        return 0 if not report.failures else 1
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
