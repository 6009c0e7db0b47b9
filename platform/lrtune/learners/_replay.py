"""Uniform n-step replay for DQN over flat arrays, and the DQN that trains from it.

RLlib 2.60's new-stack DQN keeps whole `SingleAgentEpisode` objects in its
``EpisodeReplayBuffer``, slices one small episode out of them per replayed transition, and runs
the learner connector pipeline over those episodes to build each train batch. cProfile on
CartPole-v1 with lrtune's DQN presets (3 iterations, 3,069 env steps, 352 updates of 64):
40 % of the time in the buffer's ``sample`` (22,528 episode slices), 13 % in the learner
connector, 5 % in ``add`` and 5 % in the buffer's metrics; the gradient steps themselves 7 %.

`TransitionReplayBuffer` stores each observation once, in a ring of preallocated arrays in the
env's own dtype (uint8 images stay uint8), with the action and reward that left it and a link
to the slot of the next observation of its episode. A train batch is a handful of vectorised
index operations; `LRTuneDQN` hands it to the learner as a batch, so the learner connector is
skipped. A batch means what RLlib's uniform episode replay means (a uniformly drawn step, the
discounted rewards of the next ``n_step`` steps, the observation after them), with two
corrections where a transition is cut short by its episode's end:

* RLlib marks it not terminated: it slices the episode past its end, and
  ``SingleAgentEpisode.slice`` keeps the episode's ``is_terminated`` only for a slice that
  stops exactly at the end. So the last ``n_step - 1`` transitions of every terminated
  episode bootstrap from the terminal observation. Here they are terminated, as in
  Stable-Baselines3's n-step buffer and the n-step return's definition.
* RLlib discounts the bootstrap by γ to the nominal ``n_step``; here by γ to the steps the
  transition spans (a truncated episode's last steps, the newest stored steps).

Measured: ``benchmarks/throughput.py`` (DQN against Stable-Baselines3) and the module's tests,
which check every transition of a sampled batch against the closed form of its n-step return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import tree  # dm-tree, RLlib's own dependency: observations may be nested (Dict, Tuple)
from ray.rllib.algorithms.dqn.dqn import DQN, calculate_rr_weights
from ray.rllib.algorithms.sac.sac import SAC, SACConfig
from ray.rllib.core import DEFAULT_AGENT_ID, DEFAULT_MODULE_ID
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    ENV_RUNNER_RESULTS,
    ENV_RUNNER_SAMPLING_TIMER,
    LEARNER_RESULTS,
    LEARNER_UPDATE_TIMER,
    NUM_AGENT_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    REPLAY_BUFFER_ADD_DATA_TIMER,
    REPLAY_BUFFER_SAMPLE_TIMER,
    SYNCH_WORKER_WEIGHTS_TIMER,
    TD_ERROR_KEY,
    TIMERS,
)

STATE_FORMAT = "TransitionReplayBuffer/1"
# Running episodes remembered for linking their next chunk (far above any env count).
_OPEN_LIMIT = 4096


class TransitionReplayBuffer:
    """A ring of ``capacity`` observation slots; uniform n-step transitions out of it.

    Slot ``s`` holds an observation, the action taken from it and the reward that followed,
    ``next[s]`` (the slot of the episode's next observation, or -1: the episode ended there
    or its next step has not arrived yet) and ``terminal[s]`` (the observation ends a
    terminated episode, so nothing is bootstrapped from it). The oldest slots are overwritten
    first; a link always points to a newer slot, so a live slot's whole chain is live.

    Args:
        capacity: observation slots (about one per env step: an episode of T steps takes
            T + 1). Must hold at least two.
        seed: seed of the sampling generator (the trial's seed, so a seeded run replays the
            same transitions).
    """

    def __init__(self, capacity: int = 50_000, *, seed: int | None = None, **unknown: Any) -> None:
        self.check_settings({"capacity": capacity, **unknown})
        self.capacity = int(capacity)
        self.rng = np.random.default_rng(seed)
        self._clear()

    @staticmethod
    def check_settings(settings: Mapping[str, Any]) -> None:
        """Raise ValueError, its message starting with the field, unless ``settings`` (a
        job's ``replay_buffer_config`` without ``type``) is one this buffer takes. Called
        where a run's settings are checked, before Ray starts, and by the constructor."""
        unknown = sorted(set(settings) - {"capacity"})
        if unknown:
            raise ValueError(
                "replay_buffer_config: TransitionReplayBuffer takes capacity only; remove "
                f"{', '.join(unknown)} (or name another buffer type, e.g. RLlib's "
                "PrioritizedEpisodeReplayBuffer, whose settings these are)."
            )
        capacity = settings.get("capacity", 50_000)
        if (
            isinstance(capacity, bool)
            or not isinstance(capacity, int | float)
            or not math.isfinite(capacity)  # int() of inf or NaN raises its own error
            or (capacity != int(capacity) or capacity < 2)
        ):
            raise ValueError(
                "replay_buffer_config.capacity: a whole number of observation slots, at least "
                f"2, not {capacity!r}."
            )

    def _clear(self) -> None:
        capacity = self.capacity
        self._obs: Any = None  # a tree of (capacity, ...) arrays, allocated on the first add
        self._actions: np.ndarray | None = None
        self._rewards = np.zeros(capacity, np.float64)
        self._next = np.full(capacity, -1, np.int64)
        self._terminal = np.zeros(capacity, bool)
        self._generation = np.zeros(capacity, np.int64)
        self._cursor = 0  # the slot written next
        self._filled = 0  # slots written at least once
        self._added = 0  # env steps added over the buffer's life
        self._sampled = 0  # transitions sampled over the buffer's life
        # Episodes still running: id -> (slot of their newest observation, its generation).
        self._open: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        """Transitions that can be sampled now."""
        return int(np.count_nonzero(self._next[: self._filled] >= 0))

    @property
    def bytes_per_slot(self) -> int:
        """Bytes one slot takes: its observation (the env's dtype), action, reward and links;
        the buffer allocates ``capacity`` of them on its first add."""
        arrays = [self._rewards, self._next, self._terminal, self._generation]
        if self._obs is not None and self._actions is not None:
            arrays += [*tree.flatten(self._obs), self._actions]
        return sum(a.itemsize * int(np.prod(a.shape[1:])) for a in arrays)

    @property
    def added_env_steps(self) -> int:
        """Env steps added over the buffer's life (evicted ones included)."""
        return self._added

    @property
    def running_episodes(self) -> int:
        """Running episodes whose next chunk the buffer would link to their last slot (the
        newest 4,096 at most: an abandoned episode is forgotten, its transitions kept)."""
        return len(self._open)

    # --- adding -------------------------------------------------------------------------------

    def add(self, episodes: Iterable[Any]) -> None:
        """Store the steps of RLlib episode chunks (``SingleAgentEpisode``), as the env runner
        returns them. A chunk that continues an episode begins with the observation the
        previous chunk ended on; that observation is linked to, not stored again."""
        for episode in episodes:
            steps = len(episode)
            if steps == 0:
                continue
            if steps + 1 > self.capacity:
                raise ValueError(
                    f"replay_buffer_config.capacity ({self.capacity}) is smaller than one "
                    f"sampled chunk of {steps + 1} observations; raise the capacity."
                )
            observations = episode.get_observations()
            actions = np.asarray(episode.get_actions())
            rewards = np.asarray(episode.get_rewards(), np.float64)
            if self._obs is None:
                self._allocate(observations, actions)
            previous = self._open.pop(episode.id_, None)
            if previous is not None and self._generation[previous[0]] == previous[1]:
                first = previous[0]
            else:
                first = int(self._claim(1)[0])
                self._write_obs(first, 0, observations, single=True)
            slots = self._claim(steps)
            self._write_obs(slots, 1, observations, single=False)
            chain = np.concatenate([[first], slots])
            assert self._actions is not None
            self._actions[chain[:-1]] = actions
            self._rewards[chain[:-1]] = rewards
            self._next[chain[:-1]] = chain[1:]
            last = int(chain[-1])
            self._terminal[last] = bool(episode.is_terminated)
            if not (episode.is_terminated or episode.is_truncated):
                self._open[episode.id_] = (last, int(self._generation[last]))
            self._added += steps
        if len(self._open) > _OPEN_LIMIT:
            # Episodes that never continued (the env runner restarted, a restore) or whose
            # newest slot was overwritten can no longer be linked to.
            self._open = {
                key: (slot, generation)
                for key, (slot, generation) in self._open.items()
                if self._generation[slot] == generation
            }
            while len(self._open) > _OPEN_LIMIT:  # oldest first (dicts keep insertion order)
                del self._open[next(iter(self._open))]

    def _allocate(self, observations: Any, actions: np.ndarray) -> None:
        def ring(array: Any) -> np.ndarray:
            array = np.asarray(array)
            return np.empty((self.capacity, *array.shape[1:]), array.dtype)

        self._obs = tree.map_structure(ring, observations)
        self._actions = np.empty((self.capacity, *actions.shape[1:]), actions.dtype)

    def _claim(self, count: int) -> np.ndarray:
        """The next ``count`` slots in ring order, emptied of what they held."""
        slots = (self._cursor + np.arange(count)) % self.capacity
        self._cursor = int((self._cursor + count) % self.capacity)
        self._filled = min(self.capacity, self._filled + count)
        self._next[slots] = -1
        self._terminal[slots] = False
        self._generation[slots] += 1
        return slots

    def _write_obs(self, slots: Any, start: int, observations: Any, *, single: bool) -> None:
        def write(store: np.ndarray, values: Any) -> None:
            values = np.asarray(values)
            store[slots] = values[start] if single else values[start:]

        tree.map_structure(write, self._obs, observations)

    # --- sampling -----------------------------------------------------------------------------

    def sample(
        self, num_items: int, *, n_step: int | tuple[int, int] = 1, gamma: float = 0.99
    ) -> dict[str, Any]:
        """``num_items`` transitions drawn uniformly (with replacement) from those stored, as
        the columns RLlib's DQN loss reads: ``obs``, ``actions``, ``rewards`` (the discounted
        sum over the transition's steps), ``new_obs`` (the observation it bootstraps from),
        ``terminateds``, ``n_step`` (the steps it spans) and ``weights`` (ones).

        ``n_step``: steps per transition; a ``(low, high)`` pair draws each transition's from
        ``low`` to ``high - 1``, as RLlib's buffers do. A transition stops early at its
        episode's end or at the newest stored step."""
        starts = self._draw(num_items)
        if isinstance(n_step, (tuple, list)):
            horizon = self.rng.integers(int(n_step[0]), int(n_step[1]), size=num_items)
            longest = int(horizon.max())
        else:
            horizon = np.full(num_items, int(n_step))
            longest = int(n_step)
        current = starts.copy()
        returns = np.zeros(num_items, np.float64)
        discount = np.ones(num_items, np.float64)
        spanned = np.zeros(num_items, np.int64)
        going = np.ones(num_items, bool)
        for step in range(longest):
            following = self._next[current]
            going &= (following >= 0) & (step < horizon)
            returns[going] += discount[going] * self._rewards[current[going]]
            discount[going] *= gamma
            spanned[going] += 1
            current[going] = following[going]
        self._sampled += num_items
        assert self._actions is not None
        return {
            "obs": tree.map_structure(lambda store: store[starts], self._obs),
            "actions": self._actions[starts],
            "rewards": returns.astype(np.float32),
            "new_obs": tree.map_structure(lambda store: store[current], self._obs),
            "terminateds": self._terminal[current],
            "n_step": spanned,
            "weights": np.ones(num_items, np.float32),
        }

    def _draw(self, count: int) -> np.ndarray:
        """``count`` uniformly drawn slots that begin a transition (rejection sampling: most
        slots do; an episode's last observation and each running episode's newest do not)."""
        valid = self._next[: self._filled] >= 0
        if not valid.any():
            raise ValueError("the replay buffer holds no complete transition yet")
        drawn: list[np.ndarray] = []
        missing = count
        while missing > 0:
            candidates = self.rng.integers(0, self._filled, size=missing + missing // 4 + 8)
            candidates = candidates[valid[candidates]][:missing]
            drawn.append(candidates)
            missing -= len(candidates)
        return np.concatenate(drawn)

    # --- checkpoints --------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """The buffer as plain picklable data (what lrtune writes next to a checkpoint)."""
        filled = self._filled

        def head(store: np.ndarray) -> np.ndarray:
            return store[:filled].copy()

        return {
            "format": STATE_FORMAT,
            "capacity": self.capacity,
            "obs": None if self._obs is None else tree.map_structure(head, self._obs),
            "actions": None if self._actions is None else head(self._actions),
            "rewards": head(self._rewards),
            "next": head(self._next),
            "terminal": head(self._terminal),
            "generation": head(self._generation),
            "cursor": self._cursor,
            "filled": filled,
            "added": self._added,
            "sampled": self._sampled,
            "open": dict(self._open),
            "rng": self.rng.bit_generator.state,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore `get_state`'s data; the state of RLlib's ``EpisodeReplayBuffer`` or its
        prioritized subclass (a DQN or SAC checkpoint written before lrtune used this buffer)
        is read episode by episode, priorities dropped."""
        if state.get("format") != STATE_FORMAT:
            self._adopt_episode_buffer_state(state)
            return
        if int(state["capacity"]) != self.capacity:
            raise ValueError(
                f"the checkpoint's replay buffer holds {state['capacity']} slots, this trial's "
                f"replay_buffer_config.capacity is {self.capacity}; restore with the same capacity."
            )
        filled = int(state["filled"])
        self._clear()
        if state["obs"] is not None:
            actions = np.asarray(state["actions"])
            self._allocate(state["obs"], actions)

            def put(store: np.ndarray, saved: np.ndarray) -> None:
                store[:filled] = saved

            tree.map_structure(put, self._obs, state["obs"])
            assert self._actions is not None
            self._actions[:filled] = actions
        self._rewards[:filled] = state["rewards"]
        self._next[:filled] = state["next"]
        self._terminal[:filled] = state["terminal"]
        self._generation[:filled] = state["generation"]
        self._cursor = int(state["cursor"])
        self._filled = filled
        self._added = int(state["added"])
        self._sampled = int(state["sampled"])
        self._open = dict(state["open"])
        self.rng.bit_generator.state = state["rng"]

    def _adopt_episode_buffer_state(self, state: Mapping[str, Any]) -> None:
        from ray.rllib.env.single_agent_episode import SingleAgentEpisode

        if "episodes" not in state:
            raise ValueError(
                "not a replay buffer state lrtune can read (no 'format', no 'episodes')"
            )
        episodes = [SingleAgentEpisode.from_state(saved) for saved in state["episodes"]]
        for episode in episodes:
            episode.to_numpy()
        self.add(episodes)


# The import path a job's ``replay_buffer_config.type`` names (RLlib imports dotted paths).
TRANSITION_REPLAY_TYPE = "lrtune.learners.TransitionReplayBuffer"


def check_flat_replay(config: Any) -> None:
    """Raise ValueError, its message starting with the field, when ``config`` (an RLlib
    ``AlgorithmConfig``) names `TransitionReplayBuffer` with settings it does not take or for
    a module it cannot serve (multi-agent, or with memory: an LSTM). Called where a run's
    settings are checked (`lrtune.learners.build_algorithm_config`) and where the algorithm
    builds its buffer (a config built by hand)."""
    settings = dict(getattr(config, "replay_buffer_config", None) or {})
    if settings.pop("type", None) != TRANSITION_REPLAY_TYPE:
        return
    TransitionReplayBuffer.check_settings(settings)
    if config.is_multi_agent or config.model_config.get("use_lstm"):
        raise ValueError(
            "replay_buffer_config.type: TransitionReplayBuffer replays single-agent, "
            "memoryless modules only; name RLlib's EpisodeReplayBuffer instead."
        )


class FlatReplayTraining:
    """The training step of RLlib's DQN over a `TransitionReplayBuffer`:
    sample, store, draw ``updates x train_batch_size`` transitions at once and run them as
    that many minibatch updates in one learner call (one call per update when the target
    network is Polyak-averaged, ``tau < 1``, as RLlib steps it once per call). With any other
    buffer type the algorithm trains as RLlib's does. Mixed in before the RLlib algorithm
    class: `LRTuneDQN`, and `LRTuneSAC` (RLlib's SAC is a DQN subclass with DQN's training
    step; `LRTuneSACConfig` lets its validation accept this buffer's type)."""

    # Set by RLlib's `Algorithm` (declared for the type checker).
    config: Any
    metrics: Any
    local_replay_buffer: Any
    learner_group: Any
    env_runner_group: Any

    def _create_local_replay_buffer_if_necessary(self, config: Any) -> Any:
        buffer_config = dict(config.get("replay_buffer_config") or {})
        if buffer_config.get("type") != TRANSITION_REPLAY_TYPE:
            buffer = super()._create_local_replay_buffer_if_necessary(config)  # type: ignore[misc]
            # RLlib's episode buffers draw from `default_rng(seed=None)`: seeded runs would
            # replay different transitions every time.
            if isinstance(getattr(buffer, "rng", None), np.random.Generator):
                buffer.rng = np.random.default_rng(self.config.seed)
            return buffer
        check_flat_replay(self.config)
        buffer_config.pop("type")
        return TransitionReplayBuffer(**buffer_config, seed=self.config.seed)

    def _training_step_new_api_stack(self) -> None:
        buffer = self.local_replay_buffer
        if not isinstance(buffer, TransitionReplayBuffer):
            return super()._training_step_new_api_stack()  # type: ignore[misc]
        if self._whole_iteration_in_one_step():
            return self._train_one_iteration_locally(buffer)
        config = self.config
        store_weight, updates = (int(w) for w in calculate_rr_weights(config))
        for _ in range(store_weight):
            with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                sampled: Any = synchronous_parallel_sample(
                    worker_set=self.env_runner_group,
                    concat=True,
                    sample_timeout_s=config.sample_timeout_s,
                    _uses_new_env_runners=True,
                    _return_metrics=True,
                )
                episodes, env_runner_results = sampled
            self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
            with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
                buffer.add(episodes)

        env_steps = self.metrics.peek(
            (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0
        )
        agent_steps = self.metrics.peek(
            (ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={}
        )
        current = sum(agent_steps.values()) if config.count_steps_by == "agent_steps" else env_steps
        if current < config.num_steps_sampled_before_learning_starts:
            return None
        learner_results = self._update_from_buffer(
            buffer, updates, env_steps, agent_steps, reduce=True
        )
        for call_results in learner_results:
            self.metrics.aggregate(
                [_without_td_errors(r) for r in call_results], key=LEARNER_RESULTS
            )
        with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
            self._sync_env_runner_weights(set(learner_results[-1][0].keys()) - {ALL_MODULES})
        return None

    def _update_from_buffer(
        self,
        buffer: TransitionReplayBuffer,
        updates: int,
        env_steps: int,
        agent_steps: Mapping[str, int],
        *,
        reduce: bool,
    ) -> list[Any]:
        """Draw ``updates`` minibatches at once and train on them: one learner call, or one
        per update where the target network is Polyak-averaged. Returns each call's results
        (none where ``reduce`` is False: the learner keeps its metrics to reduce later)."""
        config = self.config
        size = config.total_train_batch_size
        with self.metrics.log_time((TIMERS, REPLAY_BUFFER_SAMPLE_TIMER)):
            columns = buffer.sample(size * updates, n_step=config.n_step, gamma=config.gamma)
        timesteps = {
            NUM_ENV_STEPS_SAMPLED_LIFETIME: env_steps,
            NUM_AGENT_STEPS_SAMPLED_LIFETIME: agent_steps,
        }
        # RLlib's DQN checks its target network once per learner call, and each of its calls
        # is one update. A hard copy (tau 1) at most once per training step is the same in
        # one call of `updates` minibatches; Polyak averaging (tau < 1) steps once per call,
        # so it keeps one call per update.
        calls = 1 if config.tau >= 1.0 else updates
        results = []
        for call in range(calls):
            part = {
                key: tree.map_structure(
                    lambda a, c=call: a[c * len(a) // calls : (c + 1) * len(a) // calls], value
                )
                for key, value in columns.items()
            }
            # RLlib's minibatch iterator gives every minibatch the whole batch's `env_steps`,
            # which the learner counts as env steps trained: one minibatch's size keeps that
            # count at the items replayed, as RLlib's calls count them.
            batch = MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(part)}, env_steps=size)
            with self.metrics.log_time((TIMERS, LEARNER_UPDATE_TIMER)):
                result = self.learner_group.update(
                    batch=batch,
                    minibatch_size=size,
                    num_epochs=1,
                    timesteps=timesteps,
                    _no_metrics_reduce=not reduce,
                )
            if reduce:
                results.append(result)
        return results

    def _whole_iteration_in_one_step(self) -> bool:
        """Whether one call of the training step can run the iteration's every round itself
        (`_train_one_iteration_locally`): the env runner and the learner live in this
        process, and the iteration ends on a count of env steps sampled alone, which the step
        can count as RLlib's iteration loop does."""
        config = self.config
        group = self.env_runner_group
        return bool(
            self.fused_iterations
            and group.local_env_runner is not None
            and group.num_remote_workers() == 0
            and self.learner_group.is_local
            and config.count_steps_by == "env_steps"
            and config.min_sample_timesteps_per_iteration
            and not config.min_time_s_per_iteration
            and not config.min_train_timesteps_per_iteration
        )

    #: Whether one training step may run a whole iteration (False: one round per step, as
    #: RLlib's, as tests compare).
    fused_iterations = True

    def _train_one_iteration_locally(self, buffer: TransitionReplayBuffer) -> None:
        """Every round of one training iteration (sample, store, update, sync weights) in one
        call, with the env runner's and the learner's metrics reduced once at its end.

        RLlib's iteration loop calls the training step until ``min_sample_timesteps_per_
        iteration`` env steps are sampled, and RLlib's step reduces the env runner's metrics
        after every sample and the learner's after every update, then aggregates both into
        the algorithm's: about 2 ms of a 12 ms DQN training step of 16 env steps on CartPole
        (``benchmarks/throughput.py``'s settings, CPU time). Here the rounds are the same, in
        the same order. The lifetime env-step count (when learning starts, target-network
        updates, the learning rate) is the algorithm's at the iteration's start plus the steps
        of the episode chunks sampled since, the count RLlib's metrics would read; the
        iteration ends after the same round. The weights, episodes and counters are the same,
        bit for bit (``tests/learners/test_replay.py``). What is reported differs where RLlib
        averages over its training steps:

        * ``episode_return_mean`` (and the other episode means) is the mean over the episodes
          the iteration completed, as PPO's (one sample per iteration); RLlib's loop gives a
          mean of each sample's mean, weighting an episode by how few others ended with it.
        * The learner's window-1 values (losses, Q statistics, ``weights_seq_no``) are the
          iteration's last update's; RLlib's loop gives the mean over its training steps of
          each step's last one. lrtune's own values (rates, norms) are the last update's
          either way.
        * RLlib's timers, and its count of training-step calls per iteration (1 here)."""
        config = self.config
        runner = self.env_runner_group.local_env_runner
        store_weight, updates = (int(w) for w in calculate_rr_weights(config))
        env_steps = int(
            self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        )
        agents_at_start = dict(
            self.metrics.peek((ENV_RUNNER_RESULTS, NUM_AGENT_STEPS_SAMPLED_LIFETIME), default={})
        )
        start, updated = env_steps, False
        while env_steps - start < config.min_sample_timesteps_per_iteration:
            for _ in range(store_weight):
                with self.metrics.log_time((TIMERS, ENV_RUNNER_SAMPLING_TIMER)):
                    episodes = runner.sample()
                with self.metrics.log_time((TIMERS, REPLAY_BUFFER_ADD_DATA_TIMER)):
                    buffer.add(episodes)
                env_steps += sum(len(episode) for episode in episodes)
            if env_steps < config.num_steps_sampled_before_learning_starts:
                continue
            sampled = env_steps - start
            agent_steps = {agent: n + sampled for agent, n in agents_at_start.items()}
            self._update_from_buffer(
                buffer,
                updates,
                env_steps,
                agent_steps or {DEFAULT_AGENT_ID: env_steps},
                reduce=False,
            )
            updated = True
            with self.metrics.log_time((TIMERS, SYNCH_WORKER_WEIGHTS_TIMER)):
                self._sync_env_runner_weights({DEFAULT_MODULE_ID})
        self.metrics.aggregate([runner.get_metrics()], key=ENV_RUNNER_RESULTS)
        if updated:
            results = self.learner_group._learner.metrics.reduce()
            self.metrics.aggregate([_without_td_errors(results)], key=LEARNER_RESULTS)
        return None

    #: Whether a learner and an env runner in this process share weights by a tensor copy
    #: (False: always RLlib's `sync_weights`, as tests compare).
    local_weight_copy = True

    def _sync_env_runner_weights(self, policies: set[str]) -> None:
        """Give the env runners the learner's weights after a training step.

        RLlib's `sync_weights` turns the weights into numpy, puts them into Ray's object store
        (even with no remote env runner to read them) and loads them back as torch tensors:
        1.1-1.5 ms of a DQN training step of about 11 ms on CartPole (`benchmarks/throughput.py`,
        0.15 ms with the copy). With the learner and the only env runner in this process, each
        of the env runner's (inference-only) tensors is copied in place from the learner's
        tensor of the same name instead: the same values, bit for bit."""
        group = self.env_runner_group
        runner = group.local_env_runner
        pairs = None
        if (
            self.local_weight_copy
            and runner is not None
            and runner.module is not None
            and group.num_remote_workers() == 0
            and self.learner_group.is_local
            and policies == {DEFAULT_MODULE_ID}
        ):
            target = runner.module.state_dict()
            source = self.learner_group._learner.module[DEFAULT_MODULE_ID].state_dict()
            if target.keys() <= source.keys():
                pairs = [(tensor, source[name]) for name, tensor in target.items()]
        if pairs is None:
            group.sync_weights(
                from_worker_or_learner_group=self.learner_group,
                policies=policies,
                global_vars=None,
                inference_only=True,
            )
            return
        for tensor, value in pairs:
            tensor.copy_(value)


def _without_td_errors(results: Any) -> Any:
    """A learner's reduced results without the per-transition TD errors, which feed
    prioritised buffers only; they are never logged."""
    for module_results in results.values():
        if isinstance(module_results, dict):
            module_results.pop(TD_ERROR_KEY, None)
    return results


class LRTuneDQN(FlatReplayTraining, DQN):  # type: ignore[misc]
    """RLlib's DQN, trained from a `TransitionReplayBuffer` when its config names one."""


class LRTuneSACConfig(SACConfig):
    """RLlib's `SACConfig` that also accepts ``replay_buffer_config.type:
    lrtune.learners.TransitionReplayBuffer`` (RLlib's validation accepts only its own episode
    buffer names) and builds `LRTuneSAC`."""

    def __init__(self, algo_class: type | None = None) -> None:
        super().__init__(algo_class=algo_class or LRTuneSAC)

    def validate(self) -> None:
        """RLlib's checks, with the flat buffer standing in for RLlib's uniform episode buffer
        while its buffer-type check runs (the settings are checked by lrtune beforehand)."""
        settings = self.replay_buffer_config
        if settings.get("type") != TRANSITION_REPLAY_TYPE:
            return super().validate()
        self.replay_buffer_config = {"type": "EpisodeReplayBuffer"}
        try:
            super().validate()
        finally:
            self.replay_buffer_config = settings


class LRTuneSAC(FlatReplayTraining, SAC):  # type: ignore[misc]
    """RLlib's SAC, trained from a `TransitionReplayBuffer` when its config names one."""

    @classmethod
    def get_default_config(cls) -> LRTuneSACConfig:  # type: ignore[override]
        """lrtune's SAC config (RLlib's, accepting the flat buffer)."""
        return LRTuneSACConfig()
