"""lrtune's single-agent env runner: RLlib's, with less bookkeeping per vector step.

RLlib 2.60's ``SingleAgentEnvRunner._sample`` does, on every vector step, work whose result no
trial reads: it times the module's forward pass, the env step, both connector pipelines and
each piece in them (an EMA stats object per timer: six per step with lrtune's one-piece
pipelines, one more per piece of RLlib's default ones), logs the episodes' summed lengths
before and after the env-to-module pipeline, counts the step in a Prometheus counter, splits
the batched observations and actions with dm-tree's generic ``unbatch`` and calls
``on_episode_step`` on every callback object for every env, which is a no-op unless a callback
class overrides it. With ``benchmarks/throughput.py``'s PPO settings (CartPole-v1, 16 envs)
that was about a quarter of a 2,048-step ``sample()``.

`LRTuneEnvRunner` samples a number of env steps (what PPO, DQN and SAC ask for) with the same
calls in the same order (the module's forward pass, the module-to-env pieces, the env step,
the episodes' ``add_env_reset`` / ``add_env_step``, the env-to-module pieces, the episode
callbacks), so the episodes, actions and random draws are those RLlib's loop gives, bit for bit
(``tests/learners/test_env_runner.py``). What it leaves out, per vector step:

* the timers and the summed lengths: an env runner's results lack ``rlmodule_inference_timer``,
  ``env_step_timer`` and the module-to-env pipeline's ``connector_pipeline_timer`` and
  per-piece ``timers/connectors/...``; the env-to-module ones and
  ``env_to_module_sum_episodes_length_in`` / ``_out`` are logged only when the envs are reset
  (RLlib's reset runs that pipeline), so they describe resets; ``sample_timer``, one per
  ``sample()`` call, stays;
* the ``on_episode_step`` calls when no callback overrides it (a callback class or
  ``callbacks_on_episode_step`` that does gets every call, as from RLlib);
* one increment of Ray's ``rllib_env_runner_num_try_env_step_counter`` per step: it is
  incremented once per ``sample()`` call by the number of vector steps taken.

Sampling whole episodes (evaluation), random actions, an env runner without a module, and a
job that brings its own env runner class (``hyperparams: {env_runner_cls: ...}``) go through
RLlib's loop unchanged. A failing env step is handled as RLlib's
``_try_env_step`` handles it: counted, then the envs recreated and reset when
``restart_failed_sub_environments`` is set, else raised as ``RuntimeError`` from the env's
error.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.env_errors import StepFailedRecreateEnvError
from ray.rllib.env.env_runner import ENV_STEP_FAILURE, NUM_ENV_STEP_FAILURES_LIFETIME
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO
from ray.rllib.utils.spaces.space_utils import unbatch

logger = logging.getLogger(__name__)


def _rows(value: Any) -> Any:
    """``value`` split by env index, as RLlib's ``unbatch`` splits it: one row per env (a
    plain array's rows are what ``unbatch`` returns for it, without dm-tree's walk)."""
    return list(value) if isinstance(value, np.ndarray) else unbatch(value)


def _run_pieces(pipeline: Any, *, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``pipeline``'s connector pieces called in order as RLlib's ``ConnectorPipelineV2``
    calls them (with the deprecated ``data`` argument), without its timers."""
    shared_data = kwargs.pop("shared_data", None)
    kwargs["shared_data"] = shared_data if shared_data is not None else {}
    for piece in pipeline.connectors:
        batch = piece(batch=batch, data=batch, **kwargs)
        if not isinstance(batch, dict):
            raise ValueError(
                f"connector piece {piece} returned {type(batch).__name__}, not the batch dict; "
                "its __call__ must return the batch it was given (altered or not)."
            )
    return batch


class LRTuneEnvRunner(SingleAgentEnvRunner):  # type: ignore[misc]
    """RLlib's ``SingleAgentEnvRunner`` whose ``sample(num_timesteps=...)`` runs a leaner loop
    with the same results (see the module docstring for what it leaves out)."""

    #: False: every ``sample()`` goes through RLlib's loop (the tests compare the two).
    lean_sampling: ClassVar[bool] = True

    def _sample(
        self,
        *,
        num_timesteps: int | None = None,
        num_episodes: int | None = None,
        explore: bool,
        random_actions: bool = False,
        force_reset: bool = False,
    ) -> list[Any]:
        """Called by RLlib's ``sample()`` with the steps or episodes to collect."""
        lean = self.lean_sampling and self.module is not None and not random_actions
        if num_timesteps is None or not lean:
            return super()._sample(  # type: ignore[no-any-return]
                num_timesteps=num_timesteps,
                num_episodes=num_episodes,
                explore=explore,
                random_actions=random_actions,
                force_reset=force_reset,
            )
        if force_reset or self._needs_initial_reset:
            self._reset_envs_and_episodes(explore)
        done_episodes: list[Any] = []
        steps = vector_steps = 0
        step_callbacks = self._calls_on_episode_step()
        runners = self.config.num_env_runners or 1
        module: Any = self.module
        while steps < num_timesteps:
            to_module = self._cached_to_module
            self._cached_to_module = None
            if explore:
                # RLlib's estimate of the env steps sampled by all env runners so far.
                lifetime = (self.num_env_steps_sampled_lifetime // runners + steps) * runners
                to_env = module.forward_exploration(to_module, t=lifetime)
            else:
                to_env = module.forward_inference(to_module)
            to_env = _run_pieces(
                self._module_to_env,
                rl_module=module,
                batch=to_env,
                episodes=self._ongoing_episodes,
                explore=explore,
                shared_data=self._shared_data,
                metrics=self.metrics,
            )
            actions = to_env.pop(Columns.ACTIONS)
            actions_for_env = to_env.pop(Columns.ACTIONS_FOR_ENV, actions)
            results = self._step_envs(actions_for_env)
            if results is ENV_STEP_FAILURE:
                steps = 0
                self._reset_envs_and_episodes(explore)
                continue
            vector_steps += 1
            steps += self._add_step(
                results, actions, to_env, explore, done_episodes, step_callbacks
            )
        return self._end_of_sample(done_episodes, steps, vector_steps)

    def _calls_on_episode_step(self) -> bool:
        """Whether any callback would act on ``on_episode_step`` (RLlib's base is a no-op)."""
        overridden = any(
            type(callback).on_episode_step is not RLlibCallback.on_episode_step
            for callback in self._callbacks
        )
        return overridden or self.config.callbacks_on_episode_step is not None

    def _step_envs(self, actions: Any) -> Any:
        """``env.step(actions)``; on an error, what RLlib's ``_try_env_step`` does."""
        env: Any = self.env
        try:
            return env.step(actions)
        except Exception as exc:
            self.metrics.log_value(NUM_ENV_STEP_FAILURES_LIFETIME, 1, reduce="lifetime_sum")
            if not self.config.restart_failed_sub_environments:
                raise RuntimeError(
                    f"{type(self).__name__}: the environment's step failed and "
                    "restart_failed_sub_environments is False, so the env is not recreated: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(exc, StepFailedRecreateEnvError):
                logger.exception("Environment step failed; recreating and resetting the envs.")
            self.make_env()
            return ENV_STEP_FAILURE

    def _add_step(
        self,
        results: Any,
        actions: Any,
        to_env: dict[str, Any],
        explore: bool,
        done_episodes: list[Any],
        step_callbacks: bool,
    ) -> int:
        """Add one vector step's results to the episodes, run the env-to-module pieces for
        the next action and the episode callbacks (RLlib's order); returns the env steps
        added (envs that were just reset add none)."""
        observations, rewards, terminateds, truncateds, infos = results
        observations, actions = _rows(observations), _rows(actions)
        # Each extra model output (log-probabilities, value predictions) as one row per env.
        columns = [
            (key, list(value) if isinstance(value, np.ndarray) else value)
            for key, value in to_env.items()
        ]
        episodes: list[Any] = self._ongoing_episodes
        started = set()
        added = 0
        for index, episode in enumerate(episodes):
            if not episode.is_reset:
                episode.add_env_reset(observation=observations[index], infos=infos[index])
                started.add(index)
                continue
            added += 1
            extra = {key: rows[index] for key, rows in columns}
            extra[WEIGHTS_SEQ_NO] = self._weights_seq_no
            episode.add_env_step(
                observation=observations[index],
                action=actions[index],
                reward=rewards[index],
                infos=infos[index],
                terminated=terminateds[index],
                truncated=truncateds[index],
                extra_model_outputs=extra,
            )
        self._cached_to_module = _run_pieces(  # type: ignore[assignment]
            self._env_to_module,
            episodes=episodes,
            batch={},
            explore=explore,
            rl_module=self.module,
            shared_data=self._shared_data,
            metrics=self.metrics,
            **{
                Columns.OBS: observations,
                Columns.ACTIONS: actions,
                Columns.REWARDS: rewards,
                Columns.INFOS: infos,
                Columns.TERMINATEDS: terminateds,
                Columns.TRUNCATEDS: truncateds,
            },
        )
        for index in range(self.num_envs):
            if index in started:
                self._make_on_episode_callback("on_episode_start", index, episodes)
            elif step_callbacks:
                self._make_on_episode_callback("on_episode_step", index, episodes)
            if episodes[index].is_done:
                self._make_on_episode_callback("on_episode_end", index, episodes)
                episode = episodes[index]
                done_episodes.append(episode.to_numpy() if self.episodes_to_numpy else episode)
                self._new_episode(index, episodes)
        return added

    def _end_of_sample(self, done_episodes: list[Any], steps: int, vector_steps: int) -> list[Any]:
        """RLlib's end of a ``sample(num_timesteps=...)``: the done episodes and a chunk of
        each ongoing one are returned, the ongoing ones cut to go on in the next call, and
        the sampled steps counted."""
        self._done_episodes_for_metrics.extend(done_episodes)
        episodes: list[Any] = self._ongoing_episodes
        continuations = [
            episode.cut(len_lookback_buffer=self.config.episode_lookback_horizon)
            for episode in episodes
        ]
        ongoing: list[Any] = []
        for episode in episodes:
            if episode.t == 0:  # just started: no data in it
                continue
            episode.validate()
            self._ongoing_episodes_for_metrics[episode.id_].append(episode)
            ongoing.append(episode.to_numpy() if self.episodes_to_numpy else episode)
        self._ongoing_episodes = continuations
        if vector_steps:
            self._log_env_steps(metric=self._metrics_num_try_env_step, num_steps=vector_steps)
        self._log_env_steps(metric=self._metrics_num_env_steps_sampled, num_steps=steps)
        self._increase_sampled_metrics(steps, len(done_episodes))
        return done_episodes + ongoing
