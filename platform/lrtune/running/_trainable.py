"""The Tune trainable of one lrtune trial: K tuning seeds trained in lockstep.

Why the seeds of one configuration run inside one trial rather than as K grouped Tune trials:
Optuna, the early-stopping scheduler and MLflow then all see one unit per configuration (one
Optuna trial, one ASHA rung entry, one MLflow run), so a configuration is judged on the mean over
its seeds without a custom searcher that groups trials; the cost is that a trial takes K times
as long, which is the same total work.

What the trial reports each iteration (Tune's metric is ``score``, always finite):
``env_steps`` (lifetime env steps of each seed), ``score`` (the job's metric, mean over seeds;
before any episode ends, the last finite value or the job's worst value), ``lrtune/...`` (the
learner's LR metrics of the first seed), ``diverged`` (0/1) and ``done`` at the budget.
A trial whose divergence persists (the guard's limit, or non-finite losses two iterations in a
row) reports the job's finite worst value, is tagged diverged and stops (in searches).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ray import tune

from lrtune.learners import RESULT_KEY, ModelSettings, TrialResources, build_algorithm_config
from lrtune.learners._presets import preset_hyperparams
from lrtune.policies import LRPolicySpec

STATE_FILE = "lrtune_trial.json"


def trial_point(config: dict[str, Any]) -> dict[str, Any]:
    """The lrtune part of a trial config (searchers put it at ``lrtune``; grids under ``point``)."""
    point = config.get("point", config)
    return dict(point["lrtune"])


def nested_get(result: dict[str, Any], path: str) -> Any:
    """``result["a"]["b"]`` for ``path == "a/b"`` (or the flat key itself)."""
    if path in result:
        return result[path]
    node: Any = result
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


class LRTuneTrainable(tune.Trainable):
    """One trial: build one RLlib algorithm per tuning seed, train them in lockstep."""

    def setup(self, config: dict[str, Any], job: Any = None) -> None:
        """Build the algorithms from the job and this trial's sampled policy and params."""
        if job is None:
            raise ValueError("LRTuneTrainable needs the job: tune.with_parameters(..., job=job)")
        self.job = job
        if job.env.id.startswith(("lrtune/", "lrtune.envs:")):
            import lrtune.envs  # noqa: F401  (registers lrtune's ids in this worker process)
        point = trial_point(config)
        self.policy = LRPolicySpec.model_validate(point["policy"])
        self.hyperparams = {
            **preset_hyperparams(job.agent, job.env.id),
            **job.hyperparams,
            **point.get("hyperparams", {}),
        }
        if job.evaluation.interval > 0:
            self.hyperparams.update(
                evaluation_interval=job.evaluation.interval,
                evaluation_duration=job.evaluation.episodes,
                evaluation_duration_unit="episodes",
            )
        resources = TrialResources(cpus=job.resources.cpus, gpus=job.resources.gpus)
        model = ModelSettings(hidden=tuple(job.model.hidden), activation=job.model.activation)
        self.algos = [
            build_algorithm_config(
                job.agent,
                job.env.id,
                policy=self.policy,
                env_config=job.env.config,
                hyperparams=self.hyperparams,
                resources=resources,
                model=model,
                budget=job.budget.trial_env_steps,
                seed=seed,
            ).build_algo()
            for seed in job.seeds.tuning
        ]
        self.last_score: float | None = None
        self.bad_loss_iterations = 0
        self.started = time.monotonic()
        self.seconds_before = 0.0

    def step(self) -> dict[str, Any]:
        """Train every seed one iteration; report the aggregate."""
        job = self.job
        start = time.perf_counter()
        results = [algo.train() for algo in self.algos]
        elapsed = time.perf_counter() - start
        steps = [
            int(nested_get(r, "env_runners/num_env_steps_sampled_lifetime") or 0) for r in results
        ]
        env_steps = min(steps)
        values = [nested_get(r, job.metric.name) for r in results]
        finite_values = [float(v) for v in values if _finite(v)]
        raw = sum(finite_values) / len(finite_values) if finite_values else math.nan
        lr_metrics = dict(results[0].get(RESULT_KEY, {}))
        losses = [nested_get(r, "learners/default_policy/total_loss") for r in results]
        if any(loss is not None and not _finite(loss) for loss in losses):
            self.bad_loss_iterations += 1
        else:
            self.bad_loss_iterations = 0
        diverged = bool(lr_metrics.get("diverged", 0.0)) or self.bad_loss_iterations >= 2
        if diverged:
            score = job.metric.worst_value
        elif _finite(raw):
            score = raw
            self.last_score = raw
        else:
            score = self.last_score if self.last_score is not None else job.metric.worst_value
        seconds = self.seconds_before + time.monotonic() - self.started
        out_of_time = job.budget.trial_seconds is not None and seconds >= job.budget.trial_seconds
        done = env_steps >= job.budget.trial_env_steps or out_of_time
        if diverged and not getattr(job, "population", None):
            done = True
        prev = getattr(self, "_prev_steps", 0)
        self._prev_steps = env_steps
        report: dict[str, Any] = {
            "env_steps": env_steps,
            "score": float(score),
            "metric_raw": raw,
            "episode_return_mean": raw,
            "diverged": int(diverged),
            "env_steps_per_s": (env_steps - prev) * len(self.algos) / max(elapsed, 1e-9),
            "trial_seconds": seconds,
            "lrtune": lr_metrics,
            "node_id": _node_id(),
            "seeds": len(self.algos),
            # Explicit: Tune also marks the last result of a trial a scheduler stopped `done`.
            "budget_reached": int(env_steps >= job.budget.trial_env_steps or out_of_time),
            "done": done,
        }
        return report

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Save every seed's algorithm (weights, optimizer, lrtune's learner state)."""
        for i, algo in enumerate(self.algos):
            algo.save_to_path(os.path.join(checkpoint_dir, f"seed{i}"))
        state = {
            "last_score": self.last_score,
            "bad_loss_iterations": self.bad_loss_iterations,
            "seconds": self.seconds_before + time.monotonic() - self.started,
            "prev_steps": getattr(self, "_prev_steps", 0),
        }
        Path(checkpoint_dir, STATE_FILE).write_text(json.dumps(state))
        # Returning None (not a dict) makes Tune hand the folder back to `load_checkpoint`.

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Restore every seed's algorithm; the LR policy comes from this trial's config."""
        directory = checkpoint if isinstance(checkpoint, str) else checkpoint.path
        for i, algo in enumerate(self.algos):
            algo.restore_from_path(os.path.join(directory, f"seed{i}"))
        state_path = Path(directory, STATE_FILE)
        if state_path.exists():
            state = json.loads(state_path.read_text())
            self.last_score = state.get("last_score")
            self.bad_loss_iterations = int(state.get("bad_loss_iterations", 0))
            self.seconds_before = float(state.get("seconds", 0.0))
            self.started = time.monotonic()
            self._prev_steps = int(state.get("prev_steps", 0))

    def cleanup(self) -> None:
        """Stop the algorithms."""
        for algo in getattr(self, "algos", []):
            algo.stop()


def _node_id() -> str:
    import ray

    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # outside Ray (direct use in tests)
        return "local"
