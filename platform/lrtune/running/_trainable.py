"""The Tune trainable of one lrtune trial: K tuning seeds trained in lockstep.

Why the seeds of one configuration run inside one trial rather than as K grouped Tune trials:
Optuna, the early-stopping scheduler and MLflow then all see one unit per configuration (one
Optuna trial, one ASHA rung entry, one MLflow run), so a configuration is judged on the mean over
its seeds without a custom searcher that groups trials; the cost is that a trial takes K times
as long, which is the same total work. Each seed draws from its own copy of the process-wide
random generators (`SeedStreams`), so seed s trained beside others is the run it is alone.

What the trial reports each iteration (Tune's metric is ``score``, always finite):
``env_steps`` (lifetime env steps of each seed), ``score`` (the job's metric, mean over seeds;
before any episode ends, the last finite value or the job's worst value, with ``scored`` 0
until a value was measured), ``lrtune/...`` (the
learner's LR metrics of the first seed), ``evaluation_return`` (the job's metric as the latest
deterministic evaluation measured it, mean over seeds; NaN before the first or with evaluation
off: see `lrtune.specs.EvaluationSpec`; with ``evaluation.score`` it is the score),
``by_seed`` (with several tuning seeds: each seed's ``metric_raw`` and ``evaluation_return``,
keyed by the seed), ``diverged`` (0/1) and ``done`` at the budget. A result asks Tune for a
checkpoint (``should_checkpoint``) when the job's cadence says so (`TrialsSpec.checkpoint_due`:
by seconds of training since the last checkpoint, 60 unless the job says otherwise, or by env
steps). A checkpoint holds all a resume needs to go on exactly: RLlib's state, the replay
buffer and each seed's envs, episodes and random streams (`lrtune.running._sampling_state`).
A trial whose divergence persists (the guard's limit, or non-finite losses two iterations in a
row) reports the job's finite worst value, is tagged diverged and stops (in searches).

In a population job (``job.population``) a member's LR policy is its base policy with the mutable
coordinates of its config applied (``config["point"]["mutable"]``); it also reports ``mutable``
(the parameter values) and ``lineage``: the actor's ``incarnation`` and, in the first result after
a start or restore, ``announce`` (JSON text): its ``ancestry`` (which trial's checkpoints it
continues, from which env step), its ``policy`` and ``restored_from`` (the checkpoint's trial, env
steps and a hash of the weights and optimizer state as saved and as restored). After a restore the
optimizer's settings (betas, momentum, eps...) are re-set from this member's policy: torch's
``load_state_dict`` would otherwise bring back the donor's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune
from ray.tune.result import SHOULD_CHECKPOINT

from lrtune._files import atomic_write_text
from lrtune.learners import (
    RESULT_KEY,
    ModelSettings,
    TrialResources,
    build_algorithm_config,
)
from lrtune.learners._callbacks import env_fault
from lrtune.learners._presets import over_presets
from lrtune.learners._vector import VECTOR_ENTRY_POINT
from lrtune.registry import LRTuneError
from lrtune.running._sampling_state import load_sampling_state, save_sampling_state
from lrtune.running._seed_streams import SeedStreams
from lrtune.specs._compile import trial_model
from lrtune.specs._job import EVALUATED_METRIC_PREFIX, JobSpec
from lrtune.specs._point import TrialPoint

logger = logging.getLogger(__name__)

STATE_FILE = "lrtune_trial.json"
REPLAY_FILE = "lrtune_replay_buffer.pkl"
_BUFFER_RNG_KEY = "lrtune_sampling_rng"  # an RLlib buffer's generator, beside its own state


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


def seed_lr_metrics(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The learner metrics a trial reports for all its seeds together: the first seed's, with
    ``diverged`` set when *any* seed's learner diverged, and ``lr_min`` / ``lr_max`` over the
    seeds (feedback rules act per seed, so seeds may apply different rates; ``lr`` itself stays
    the first seed's read-back rate, the one its closed form describes)."""
    out = dict(per_seed[0]) if per_seed else {}
    if len(per_seed) > 1:
        out["diverged"] = max(float(m.get("diverged", 0.0)) for m in per_seed)
        rates = [float(m["lr"]) for m in per_seed if "lr" in m]
        if rates:
            out["lr_min"], out["lr_max"] = min(rates), max(rates)
    return out


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _float_or_nan(value: Any) -> float:
    """``value`` as a float, NaN where it is not a finite number (a seed that measured none)."""
    return float(value) if _finite(value) else math.nan


class LRTuneTrainable(tune.Trainable):
    """One trial: build one RLlib algorithm per tuning seed, train them in lockstep."""

    def setup(self, config: dict[str, Any], job: Any = None, env_facts: Any = None) -> None:
        """Build the algorithms from the job and this trial's sampled policy and params;
        ``env_facts``: the driver's `known_env_facts`, so the trial builds its env only where
        RLlib does."""
        if job is None:
            raise ValueError("LRTuneTrainable needs the job: tune.with_parameters(..., job=job)")
        from lrtune.learners._config import adopt_env_facts

        adopt_env_facts(env_facts)
        self.job = job
        if job.env.id.startswith(("lrtune/", "lrtune.envs:")):
            import lrtune.envs  # noqa: F401  (registers lrtune's ids in this worker process)
        point = TrialPoint.from_config(config)
        self.population = getattr(job, "population", None)
        self.mutable_values: dict[str, float] = {}
        if self.population is not None:
            self.mutable_values = self.population.values(dict(point.mutable))
        self.policy = point.policy_spec(job)
        self.hyperparams = over_presets(
            job.agent, job.env.id, job.env.config, job.hyperparams, point.hyperparams
        )
        if job.evaluation.enabled:
            self.hyperparams.update(evaluation_hyperparams(job, self.hyperparams))
        resources = TrialResources(cpus=job.resources.cpus, gpus=job.resources.gpus)
        # The job's model with the trial's searched model settings (a space's `model:`) over it.
        model = ModelSettings(**trial_model(job, point).model_dump())
        # Each seed keeps its own process-wide random streams (`SeedStreams`: why).
        self.streams = SeedStreams()
        self.algos: list[Any] = []
        for seed in job.seeds.tuning:
            algo_config = build_algorithm_config(
                job.agent,
                job.env.id,
                policy=self.policy,
                env_config=job.env.config,
                hyperparams=self.hyperparams,
                resources=resources,
                model=model,
                budget=job.budget.trial_env_steps,
                seed=seed,
            )
            self.algos.append(algo_config.build_algo())
            self.streams.built()
        self.last_score: float | None = None
        self.last_evaluation: float | None = None
        # Each seed's value in that evaluation (NaN where a seed measured none).
        self.last_evaluation_by_seed: list[float] | None = None
        self.bad_loss_iterations = 0
        # Learner metrics a diverged update leaves non-finite (the agent entry's).
        self.loss_metrics = job.agent_plugin.loss_metrics
        self.started = time.monotonic()
        self.seconds_before = 0.0
        self.last_checkpoint_at = self.started  # saved or restored (checkpoint_seconds)
        # Lineage (populations): this actor's id and whose checkpoints it continues.
        self.incarnation = uuid.uuid4().hex[:12]
        self.ancestry: list[dict[str, Any]] = [
            {"trial_id": self.trial_id, "incarnation": self.incarnation, "from_env_steps": 0}
        ]
        self.restored_from: dict[str, Any] | None = None
        self._announced = False
        # Whether metric.name has had a finite value in this process (`_check_metric_name`).
        self._metric_seen = False

    def _check_metric_name(self, results: list[dict[str, Any]], values: list[Any]) -> None:
        """Fail the trial, naming ``metric.name``, when episodes have ended but the metric has
        had no finite value in any result (a misspelt name, or one of RLlib's old names such as
        ``episode_reward_mean`` that it still reports as NaN, would otherwise leave every
        trial unscored, blamed on episode length)."""
        name = self.job.metric.name
        if any(_finite(v) for v in values):  # RLlib keeps some old names, always NaN
            self._metric_seen = True
            return
        if name.startswith("evaluation/"):  # RLlib's evaluation results: not every iteration
            return
        ended = any(nested_get(r, "env_runners/num_episodes_lifetime") for r in results)
        if self._metric_seen or not ended:
            return
        raise MetricNameError(
            f"metric.name: {name!r} has no value in this trial's results, although episodes "
            "have ended: fix metric.name, a '/'-joined path of RLlib's result (the default "
            "env_runners/episode_return_mean; others such as env_runners/episode_len_mean or "
            "env_runners/episode_return_max)"
        )

    def step(self) -> dict[str, Any]:
        """Train every seed one iteration; report the aggregate."""
        job = self.job
        start = time.perf_counter()
        try:
            results = []
            for index, algo in enumerate(self.algos):
                with self.streams.active(index):
                    results.append(algo.train())
        except Exception as exc:
            fault = env_fault(self.algos, exc)
            if fault is not None:  # the env's fault, not RLlib's: say so
                raise fault from exc
            raise
        elapsed = time.perf_counter() - start
        steps = [
            int(nested_get(r, "env_runners/num_env_steps_sampled_lifetime") or 0) for r in results
        ]
        env_steps = min(steps)
        values = [nested_get(r, job.metric.name) for r in results]
        self._check_metric_name(results, values)
        finite_values = [float(v) for v in values if _finite(v)]
        raw = sum(finite_values) / len(finite_values) if finite_values else math.nan
        lr_metrics = seed_lr_metrics([r.get(RESULT_KEY, {}) for r in results])
        losses = [
            nested_get(r, f"learners/default_policy/{key}")
            for r in results
            for key in self.loss_metrics
        ]
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
        evaluation = self._evaluate(results, final=done and not diverged)
        if job.evaluation.score and not diverged and evaluation is not None:
            score = evaluation
        # Whether ``score`` measures anything yet: no episode has ended (and no evaluation
        # scored) while it stands in as the worst value.
        scored = (
            diverged
            or self.last_score is not None
            or (job.evaluation.score and evaluation is not None)
        )
        prev = getattr(self, "_prev_steps", 0)
        self._prev_steps = env_steps
        report: dict[str, Any] = {
            "env_steps": env_steps,
            "score": float(score),
            "metric_raw": raw,
            "episode_return_mean": raw,
            # The training episodes' metric at its latest value: it breaks ties between equal
            # scores (a capped evaluation) when the best trial and finalists are picked.
            "training_score": math.nan if self.last_score is None else self.last_score,
            "diverged": int(diverged),
            "scored": int(scored),
            "env_steps_per_s": (env_steps - prev) * len(self.algos) / max(elapsed, 1e-9),
            "trial_seconds": seconds,
            "evaluation_return": math.nan if evaluation is None else evaluation,
            "lrtune": lr_metrics,
            "node_id": _node_id(),
            "seeds": len(self.algos),
            # Explicit: Tune also marks the last result of a trial a scheduler stopped `done`.
            "budget_reached": int(env_steps >= job.budget.trial_env_steps or out_of_time),
            "done": done,
        }
        # A population saves at its own interval (Tune's checkpoint_frequency), never here.
        trials, since = job.trials, time.monotonic() - self.last_checkpoint_at
        if (
            self.population is None
            and not trials.checkpoints_every_iteration
            and trials.checkpoint_due(env_steps, prev, since)
        ):
            report[SHOULD_CHECKPOINT] = True  # Tune saves one now (checkpoint_frequency is 0)
        if len(self.algos) > 1:
            report["by_seed"] = self._by_seed(values)
        if self.population is not None:
            report["mutable"] = dict(self.mutable_values)
            report["lineage"] = self._lineage_report()
        return report

    def _by_seed(self, values: list[Any]) -> dict[str, dict[str, float]]:
        """Each tuning seed's training metric (NaN when none of its episodes ended this
        iteration) and latest evaluation (NaN before the first), keyed by the seed: the spread
        behind the trial's means."""
        evaluations = self.last_evaluation_by_seed
        # None yet, or a saved list of other seeds (never raise over a report).
        if evaluations is None or len(evaluations) != len(values):
            evaluations = [math.nan] * len(values)
        return {
            str(seed): {"metric_raw": _float_or_nan(value), "evaluation_return": evaluation}
            for seed, value, evaluation in zip(
                self.job.seeds.tuning, values, evaluations, strict=True
            )
        }

    def _evaluate(self, results: list[dict[str, Any]], final: bool) -> float | None:
        """The latest evaluation's value of the job's metric, mean over seeds (None before the
        first). RLlib evaluates inside ``train()`` every ``evaluation.interval`` iterations; a
        trial that scores on the evaluation and ends with no evaluation in its last iteration
        is evaluated here, so its final score is its final policy's."""
        evaluation = self.job.evaluation
        if not evaluation.enabled:
            return None
        name = evaluated_metric(self.job.metric.name)
        interval = evaluation.interval
        values: list[Any] = []
        for index, (algo, result) in enumerate(zip(self.algos, results, strict=True)):
            if interval and algo.iteration % interval == 0:  # RLlib's own rule, after train()
                values.append(nested_get(result, f"evaluation/{name}"))
            elif final and evaluation.score:
                with self.streams.active(index):
                    values.append(nested_get(algo.evaluate(), name))
            else:
                return self.last_evaluation
        finite = [float(v) for v in values if _finite(v)]
        if finite:
            self.last_evaluation = sum(finite) / len(finite)
            self.last_evaluation_by_seed = [_float_or_nan(v) for v in values]
        return self.last_evaluation

    def _lineage_report(self) -> dict[str, Any]:
        """``{"incarnation"}``, plus ``"announce"`` (JSON text: ancestry, policy, restored_from)
        in the first result of an actor (text, so loggers do not flatten or refuse it)."""
        out: dict[str, Any] = {"incarnation": self.incarnation}
        if not self._announced:
            self._announced = True
            announce: dict[str, Any] = {
                "trial_id": self.trial_id,
                "ancestry": [dict(s) for s in self.ancestry],
                "policy": self.policy.model_dump(mode="json"),
            }
            if self.restored_from is not None:
                announce["restored_from"] = self.restored_from
            out["announce"] = json.dumps(announce)
        return out

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Save every seed's algorithm (weights, optimizer, lrtune's learner state, DQN's
        replay buffer) and its sampling state (envs, episodes, random streams)."""
        self.last_checkpoint_at = time.monotonic()
        for i, algo in enumerate(self.algos):
            seed_dir = os.path.join(checkpoint_dir, f"seed{i}")
            algo.save_to_path(seed_dir)
            save_replay_buffer(algo, seed_dir)
            save_sampling_state(algo, self.streams.state_of(i), seed_dir)
        state = {
            "trial_id": self.trial_id,
            "last_score": self.last_score,
            "bad_loss_iterations": self.bad_loss_iterations,
            "last_evaluation": self.last_evaluation,
            "last_evaluation_by_seed": self.last_evaluation_by_seed,
            "seconds": self.seconds_before + time.monotonic() - self.started,
            "prev_steps": getattr(self, "_prev_steps", 0),
            "metric_seen": self._metric_seen,
        }
        if self.population is not None:
            state.update(
                incarnation=self.incarnation,
                ancestry=self.ancestry,
                env_steps=getattr(self, "_prev_steps", 0),
                iteration=self.iteration,
                policy=self.policy.model_dump(mode="json"),
                mutable=self.mutable_values,
                state_hash=[state_hash(algo) for algo in self.algos],
            )
        atomic_write_text(Path(checkpoint_dir, STATE_FILE), json.dumps(state))
        # Returning None (not a dict) makes Tune hand the folder back to `load_checkpoint`.

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Restore every seed's algorithm; the LR policy comes from this trial's config. A
        checkpoint of this trial's own (a retry, a resume) also brings back each seed's envs,
        episodes and random streams (`load_sampling_state`), so the run goes on as if never
        stopped; a population member that exploits another's checkpoint keeps its own."""
        directory = checkpoint if isinstance(checkpoint, str) else checkpoint.path
        state_path = Path(directory, STATE_FILE)
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        own = state.get("trial_id") == self.trial_id
        for i, algo in enumerate(self.algos):
            seed_dir = os.path.join(directory, f"seed{i}")
            algo.restore_from_path(seed_dir)
            load_replay_buffer(algo, seed_dir)
            sampling = load_sampling_state(algo, seed_dir) if own else None
            if sampling is not None:
                self.streams.resume(i, sampling.streams)
                if sampling.why_not is not None:
                    logger.warning(
                        "trial %s, seed %d: its envs start new episodes after this restore: %s",
                        self.trial_id,
                        self.job.seeds.tuning[i],
                        sampling.why_not,
                    )
        if state:
            self.last_score = state.get("last_score")
            self.bad_loss_iterations = int(state.get("bad_loss_iterations", 0))
            self.last_evaluation = state.get("last_evaluation")
            self.last_evaluation_by_seed = state.get("last_evaluation_by_seed")
            self.seconds_before = float(state.get("seconds", 0.0))
            self.started = time.monotonic()
            self.last_checkpoint_at = self.started
            self._prev_steps = int(state.get("prev_steps", 0))
            self._metric_seen = bool(state.get("metric_seen", False))
            if self.population is not None:
                self._continue_lineage(state)

    def _continue_lineage(self, state: dict[str, Any]) -> None:
        """After a restore: re-set this policy's optimizer settings; record whose state it is."""
        settings = [reapply_optimizer_settings(algo) for algo in self.algos]
        steps = int(state.get("env_steps", state.get("prev_steps", 0)))
        self.ancestry = [dict(s) for s in state.get("ancestry", [])] + [
            {"trial_id": self.trial_id, "incarnation": self.incarnation, "from_env_steps": steps}
        ]
        self.restored_from = {
            "trial_id": state.get("trial_id"),
            "incarnation": state.get("incarnation"),
            "env_steps": steps,
            "iteration": state.get("iteration"),
            "policy": state.get("policy"),
            "mutable": state.get("mutable"),
            "saved_hash": state.get("state_hash"),
            "restored_hash": [state_hash(algo) for algo in self.algos],
            "optimizer_settings": settings[0] if settings else {},
        }
        self._announced = False

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Called by Tune (``reuse_actors``) when this actor takes on the next trial: stop the
        algorithms and build the new trial's from scratch, exactly as a new actor's `setup`
        would (RLlib re-seeds the process's random streams in each build). What the re-use
        saves is the new worker process and its imports of torch and RLlib: most of a short
        trial's start-up. Returns True (Tune's contract)."""
        self.cleanup()
        self.algos = []
        # Through Tune's `with_parameters` subclass, which hands `setup` the job again.
        self.setup(new_config)
        return True

    def cleanup(self) -> None:
        """Stop the algorithms."""
        for algo in getattr(self, "algos", []):
            algo.stop()


def save_replay_buffer(algo: Any, directory: str) -> None:
    """Write ``algo``'s replay buffer (DQN) next to its checkpoint; nothing for PPO.

    RLlib 2.60's new-stack ``Algorithm.get_state`` leaves the replay buffer out (only the old
    stack's ``store_buffer_in_checkpoints`` kept it), so a restored DQN trial would otherwise
    go on learning from an empty buffer. Its own ``get_state`` is plain picklable data; RLlib's
    episode buffers leave out the generator they sample with, which is added here so a resumed
    trial draws the batches the uninterrupted one draws."""
    buffer = getattr(algo, "local_replay_buffer", None)
    if buffer is None:
        return
    state = buffer.get_state()
    rng = getattr(buffer, "rng", None)
    if "rng" not in state and isinstance(rng, np.random.Generator):
        state = {**state, _BUFFER_RNG_KEY: rng.bit_generator.state}
    with open(os.path.join(directory, REPLAY_FILE), "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load_replay_buffer(algo: Any, directory: str) -> bool:
    """Restore the replay buffer `save_replay_buffer` wrote (this trial's own checkpoint);
    False when there is none to restore."""
    buffer = getattr(algo, "local_replay_buffer", None)
    path = os.path.join(directory, REPLAY_FILE)
    if buffer is None or not os.path.exists(path):
        return False
    with open(path, "rb") as handle:
        state = pickle.load(handle)
    rng_state = state.pop(_BUFFER_RNG_KEY, None)
    buffer.set_state(state)
    if rng_state is not None:
        buffer.rng.bit_generator.state = rng_state
    return True


# RLlib evaluates only when `evaluation_interval` is set; scoring on a final evaluation alone
# (evaluation.interval 0) needs the evaluation env runner built but never run along the way.
_NEVER = 2**31 - 1


class MetricNameError(LRTuneError):
    """``metric.name`` has no value in a trial's results although episodes have ended."""


def check_trial_settings(job: JobSpec) -> None:
    """Build one trial's RLlib config from what every trial of ``job`` shares (presets, the
    job's and the space's fixed hyper-parameters, model, evaluation) and check the names of
    the hyper-parameters its space samples. Called where a run starts, before Ray does: a
    misspelt, deprecated or owned setting exits 2 naming it (`PolicyError`) instead of failing
    every trial."""
    from lrtune.learners._config import check_hyperparam_names
    from lrtune.policies import PolicyError

    hyperparams = over_presets(job.agent, job.env.id, job.env.config, job.fixed_hyperparams)
    if job.evaluation.enabled:
        hyperparams.update(evaluation_hyperparams(job, hyperparams))
    build_algorithm_config(
        job.agent,
        job.env.id,
        policy=job.policy if job.policy is not None else {"lr": job.agent_plugin.baseline_lr},
        env_config=job.env.config,
        hyperparams=hyperparams,
        resources=TrialResources(cpus=job.resources.cpus, gpus=job.resources.gpus),
        model=ModelSettings(**job.model.model_dump()),
        budget=job.budget.trial_env_steps,
        seed=0,
    )
    if job.space is not None:
        try:
            check_hyperparam_names(job.agent, job.space.hyperparams)
        except PolicyError as exc:
            raise PolicyError(f"space.{exc}") from None


def evaluation_hyperparams(job: JobSpec, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """RLlib settings of the job's `EvaluationSpec`: greedy (``explore=False``) whole episodes
    on the evaluation env runner of the trial's own process, one env at a time, the mean taken
    over exactly this evaluation's episodes (the smoothing window is the episode count).

    An env without a time limit (no ``max_episode_steps`` in its registration or in
    ``env.config``) gets one in evaluation only: ``budget.trial_env_steps``
    (`evaluation_time_limit`). RLlib plays evaluation episodes to their end, so an episode that
    never ends would hold the trial forever. Not for a native vector env (``hyperparams``'
    ``gym_env_vectorize_mode: vector_entry_point``, lrtune's recommender): gymnasium passes
    ``max_episode_steps`` to its constructor, and such an env ends its own episodes."""
    evaluation = job.evaluation
    settings: dict[str, Any] = {
        "explore": False,
        "num_envs_per_env_runner": 1,
        "metrics_num_episodes_for_smoothing": evaluation.episodes,
    }
    limit = evaluation_time_limit(job, hyperparams)
    if limit is not None:
        settings["env_config"] = {**job.env.config, "max_episode_steps": limit}
    return {
        "evaluation_interval": evaluation.interval or _NEVER,
        "evaluation_duration": evaluation.episodes,
        "evaluation_duration_unit": "episodes",
        "evaluation_num_env_runners": 0,
        "evaluation_config": settings,
    }


def evaluation_time_limit(job: JobSpec, hyperparams: Mapping[str, Any] | None = None) -> int | None:
    """The time limit evaluation episodes get (``budget.trial_env_steps``) where the job's env
    has none of its own; None where it has one, cannot be built here, or is a native vector
    env (``hyperparams``; default: the presets with the job's fixed ones over them)."""
    from lrtune.learners._config import env_facts

    if hyperparams is None:
        hyperparams = over_presets(job.agent, job.env.id, job.env.config, job.fixed_hyperparams)
    mode = hyperparams.get("gym_env_vectorize_mode", "")
    if str(getattr(mode, "value", mode)).lower() == VECTOR_ENTRY_POINT:
        return None
    facts = env_facts(job.env.id, job.env.config)
    if facts is None or facts.max_episode_steps is not None:
        return None
    return int(job.budget.trial_env_steps)


def evaluated_metric(name: str) -> str:
    """The result path, under ``evaluation/``, of what an evaluation measures for ``name``
    (the metric itself when RLlib's evaluation reports it, else the episode return)."""
    if name.startswith(EVALUATED_METRIC_PREFIX):
        return name
    return f"{EVALUATED_METRIC_PREFIX}episode_return_mean"


def _local_learner(algo: Any) -> Any:
    results = list(algo.learner_group.foreach_learner(lambda learner: learner))
    return results[0].get()


def state_hash(algo: Any) -> dict[str, str]:
    """sha256 of the learner's weights and of its optimizers' state (moments, step counts)."""
    import torch

    learner = _local_learner(algo)
    weights = hashlib.sha256()
    for module_id in sorted(learner.module.keys()):
        for name, tensor in sorted(learner.module[module_id].state_dict().items()):
            weights.update(name.encode())
            weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    moments = hashlib.sha256()
    for name in sorted(learner._named_optimizers):
        state = learner._named_optimizers[name].state_dict()["state"]
        for index in sorted(state):
            for key in sorted(state[index]):
                value = state[index][key]
                moments.update(f"{name}/{index}/{key}".encode())
                if torch.is_tensor(value):
                    moments.update(value.detach().cpu().contiguous().numpy().tobytes())
                else:
                    moments.update(repr(value).encode())
    return {"weights": weights.hexdigest(), "optimizer": moments.hexdigest()}


def reapply_optimizer_settings(algo: Any) -> dict[str, Any]:
    """Set every optimizer param group's settings (all but params and lr) to this policy's.

    A restore loads the checkpoint's param groups (torch's ``load_state_dict``), i.e. a donor's
    betas or momentum; a fresh optimizer of the learner's policy over the same parameters gives
    the member's own. Returns the first group's settings after the change.
    """
    learner = _local_learner(algo)
    first: dict[str, Any] = {}
    for module_id in learner.module.keys():
        for name, optimizer in learner.get_optimizers_for_module(module_id):
            # Each optimizer's own role policy (SAC: actor, critic, alpha) over its own params.
            role = learner.role_for(name)
            params = [p for group in optimizer.param_groups for p in group["params"]]
            fresh = role.policy.optimizer.build(params, lr=learner.current_lr(role.name))
            for group, new in zip(optimizer.param_groups, fresh.param_groups, strict=False):
                for key, value in new.items():
                    if key not in ("params", "lr"):
                        group[key] = value
            if not first and optimizer.param_groups:
                first = {
                    k: v
                    for k, v in optimizer.param_groups[0].items()
                    if k != "params" and isinstance(v, (int, float, bool, str, tuple, list))
                }
    return first


def _node_id() -> str:
    import ray

    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # outside Ray (direct use in tests)
        return "local"
