"""The RLlib callback that closes each training iteration for lrtune's learners."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core import ALL_MODULES

from lrtune.registry import LRTuneError

#: Top-level key of lrtune's metrics in every training result (Tune flattens to ``lrtune/lr``).
RESULT_KEY = "lrtune"


def share_connector_states_with_evaluation(algorithm: Any) -> None:
    """Give the evaluation env runner the training env runner's connector states (the
    observation filter's running mean and std among them), as RLlib does for remote evaluation
    env runners (``evaluation_config.broadcast_env_runner_states``).

    RLlib 2.60's `EnvRunnerGroup.sync_env_runner_states` returns early when the evaluation
    group has no remote env runners, having set only the env-step count: lrtune evaluates in
    the trial's own process (``evaluation_num_env_runners`` 0), so without this the
    evaluation normalised observations with statistics of its own few episodes. PPO on
    Pendulum-v1 (presets: observation filter; lr 1e-3, 57k env steps) evaluated greedily at
    −1,312 while it trained at −294.
    """
    from ray.rllib.core import COMPONENT_ENV_TO_MODULE_CONNECTOR, COMPONENT_MODULE_TO_ENV_CONNECTOR

    group = algorithm.eval_env_runner_group
    training = algorithm.env_runner
    if (
        group is None
        or training is None
        or group.num_healthy_remote_workers() > 0  # RLlib's own sync covered them
        or not algorithm.evaluation_config.broadcast_env_runner_states
    ):
        return
    evaluation = group.local_env_runner
    if evaluation is None or evaluation is training:
        return
    components = [COMPONENT_ENV_TO_MODULE_CONNECTOR, COMPONENT_MODULE_TO_ENV_CONNECTOR]
    evaluation.set_state(training.get_state(components=components))


def _end_iteration(learner: Any, episode_return: float | None) -> dict[str, float]:
    return learner.end_iteration(episode_return)  # type: ignore[no-any-return]


class EnvOutputError(LRTuneError):
    """The env returned a NaN or infinite reward or observation (`env_output_problem`)."""


class EnvRaisedError(LRTuneError):
    """The env's own reset or step raised while a trial sampled (`env_raised`)."""


# A failed trial's table line shows the class by module: the public one, not this file.
EnvOutputError.__module__ = EnvRaisedError.__module__ = "lrtune.learners"


def _first_non_finite(value: Any) -> float | None:
    """The first NaN or infinite number in ``value`` (an array, a number, or a list, tuple or
    dict of them: an episode's observations, composite spaces); None where all are finite."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        try:  # one call for an episode of equal-shaped arrays or numbers
            value = np.asarray(value, dtype=float)
        except (TypeError, ValueError):  # parts of composite spaces, or ragged
            for part in value:
                found = _first_non_finite(part)
                if found is not None:
                    return found
            return None
    array = np.asarray(value)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return None
    return float(array[~np.isfinite(array)].flat[0])


def env_output_problem(episodes: Any) -> str | None:
    """Why ``episodes`` (one `EnvRunner.sample()` call's) cannot be trained on: a NaN or
    infinite reward or observation from the env; None when there is none."""
    for episode in episodes:
        for what, values in (
            ("reward", episode.get_rewards()),
            ("observation", episode.get_observations()),
        ):
            found = _first_non_finite(values)
            if found is not None:
                article = "an" if what == "observation" else "a"
                return (
                    f"env.id: the env returned {article} {what} holding {found}: a non-finite "
                    f"{what} reaches the network and every trial fails or diverges on it, "
                    "whatever its LR policy. Fix the env (gymnasium's check_env tests a few "
                    "steps), or clip or replace the value in a wrapper."
                )
    return None


def env_raised(exc: BaseException) -> str | None:
    """Why a trial failed when ``exc`` was raised inside the env's own code (its ``reset``,
    ``step`` or constructor, below gymnasium's and RLlib's wrappers), naming the method, the
    line and RLlib's setting that rebuilds a failed env; None where no env method is on the
    traceback (an RLlib or lrtune fault). Reads the traceback of the local env runner: a
    remote one's arrives as text."""
    import gymnasium

    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:  # RLlib raises its own from the env's
        seen.add(id(error))
        tb, entered, last = error.__traceback__, None, None
        while tb is not None:
            owner = tb.tb_frame.f_locals.get("self")
            if (
                entered is None
                and isinstance(owner, gymnasium.Env)
                and not isinstance(owner, gymnasium.Wrapper)
            ):
                entered = tb.tb_frame.f_code.co_name, type(owner).__qualname__
            last, tb = tb, tb.tb_next
        if entered is not None and last is not None:
            where = f"{Path(last.tb_frame.f_code.co_filename).name} line {last.tb_lineno}"
            return (
                f"env.id: the env's {entered[0]}() ({entered[1]}) raised "
                f"{type(error).__name__}: {str(error)[:200]} ({where}). If it fails only now "
                "and then (a simulator that drops its connection, an unstable physics step), "
                "set hyperparams: {restart_failed_sub_environments: true} in the job: RLlib "
                "then rebuilds the env and drops the unfinished episodes; otherwise fix the env."
            )
        error = error.__cause__ or error.__context__
    return None


def sampling_problem(algo: Any) -> str | None:
    """After ``algo.train()`` raised: `env_output_problem` of the episodes its local env
    runner was sampling (a NaN observation stops RLlib's sampling inside the action
    distribution, before `LRTuneCallbacks.on_sample_end`); None where there is none or the env
    runners are remote."""
    try:
        runner = algo.env_runner
    except Exception:  # no local env runner
        return None
    episodes = getattr(runner, "_ongoing_episodes", None)
    return env_output_problem(episodes) if episodes else None


def env_fault(algos: Iterable[Any], exc: BaseException) -> LRTuneError | None:
    """The env's fault behind ``exc``, raised by ``algo.train()`` of one of ``algos``: a
    non-finite output in the episodes being sampled (`sampling_problem`), else the env's own
    code raising (`env_raised`); None where neither is found (RLlib's or lrtune's error)."""
    problem = next(filter(None, map(sampling_problem, algos)), None)
    if problem is not None:
        return EnvOutputError(problem)
    raised = env_raised(exc)
    return EnvRaisedError(raised) if raised is not None else None


def reset_exploration_noise(module: Any) -> None:
    """Have ``module`` (an env runner's RLModule, or each module of a multi-agent one) draw
    new state-dependent exploration noise at its next exploring pass, where it has any
    (`lrtune.learners._modules.LRTunePPOTorchRLModule.reset_noise`)."""
    if module is None:
        return
    reset = getattr(module, "reset_noise", None)
    if callable(reset):
        reset()
        return
    values = getattr(module, "values", None)
    if callable(values):
        for sub in values():
            reset = getattr(sub, "reset_noise", None)
            if callable(reset):
                reset()


class LRTuneCallbacks(RLlibCallback):
    """Feeds iteration signals to the learners' feedback rules and surfaces lrtune's metrics.

    `on_train_result` runs once per iteration in the algorithm's process, after the
    iteration's updates: it sends the mean episode return to every learner (which combine it
    with the KL they measured) and copies the learners' ``lrtune_*`` metrics into
    ``result["lrtune"]``.

    `on_sample_end` runs once per `EnvRunner.sample()` call, before its episodes are trained
    on: it fails the trial with `EnvOutputError` when the env returned a NaN or infinite
    reward or observation. Without it a NaN reward reached the loss and the trial was reported
    as diverged, blaming the LR policy and telling the search that region was bad. A NaN
    observation that the agent acts on stops sampling before this, with torch's "invalid
    multinomial distribution" or "probability tensor contains either inf, nan"; the trainable
    then asks `sampling_problem`. Checking whole episodes once per call costs nothing per env
    step. It also has the env runner's gSDE module (``model.exploration: gsde``) draw new
    exploration noise for the next call (`reset_exploration_noise`): SB3 draws it at the start
    of each rollout.
    """

    def on_sample_end(
        self, *, env_runner: Any = None, metrics_logger: Any = None, samples: Any, **kwargs: Any
    ) -> None:
        """Called by RLlib at the end of every `EnvRunner.sample()` call."""
        problem = env_output_problem(samples)
        if problem is not None:
            raise EnvOutputError(problem)
        reset_exploration_noise(getattr(env_runner, "module", None))

    def on_evaluate_start(
        self, *, algorithm: Any, metrics_logger: Any = None, **kwargs: Any
    ) -> None:
        """Called by RLlib in `Algorithm.evaluate()`, after its weight and state sync."""
        share_connector_states_with_evaluation(algorithm)

    def on_train_result(
        self, *, algorithm: Any, metrics_logger: Any = None, result: dict[str, Any], **kwargs: Any
    ) -> None:
        """Called by RLlib at the end of every `Algorithm.train()` call."""
        env_results = result.get("env_runners", {}) or {}
        ret = env_results.get("episode_return_mean")
        ret = float(ret) if ret is not None and math.isfinite(float(ret)) else None
        outcomes = algorithm.learner_group.foreach_learner(_end_iteration, episode_return=ret)
        learner_results = (result.get("learners", {}) or {}).get(ALL_MODULES, {}) or {}
        metrics = {
            key[len("lrtune_") :]: float(value)
            for key, value in learner_results.items()
            if key.startswith("lrtune_")
        }
        # A local learner group answers with plain values, a remote one with call results.
        for outcome in outcomes:
            value = outcome.get() if hasattr(outcome, "ok") else outcome
            if isinstance(value, dict) and "feedback_factor" in value:
                metrics["next_feedback_factor"] = float(value["feedback_factor"])
                break
        result[RESULT_KEY] = metrics
