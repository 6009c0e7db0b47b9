"""`TransitionReplayBuffer`: every sampled transition against its closed-form n-step return,
fed by real RLlib episode chunks cut as RLlib's env runner cuts them; eviction, uniformity,
checkpoint state, and lrtune's DQN training from it."""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import pytest
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer
from ray.rllib.utils.replay_buffers.prioritized_episode_buffer import (
    PrioritizedEpisodeReplayBuffer,
)

from lrtune.learners import TransitionReplayBuffer, build_algorithm_config
from lrtune.learners._presets import preset_hyperparams
from lrtune.policies import PolicyError
from lrtune.running._trainable import nested_get

OBS_SPACE = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
ACTION_SPACE = gymnasium.spaces.Discrete(3)


@dataclass
class TrueEpisode:
    """Ground truth of one simulated episode: its rewards and actions so far, how it ended."""

    uid: int
    rewards: list[float] = field(default_factory=list)
    actions: list[int] = field(default_factory=list)
    terminated: bool = False
    truncated: bool = False


class ChunkedEnvs:
    """``envs`` simulated environments stepped ``fragment`` steps at a time, returning RLlib
    `SingleAgentEpisode` chunks the way RLlib's env runner does (``cut`` a running episode,
    ``to_numpy`` each chunk). Observation ``[uid, t]`` names its episode and step."""

    def __init__(self, envs: int, fragment: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.fragment = fragment
        self.truth: dict[int, TrueEpisode] = {}
        self.running: list[SingleAgentEpisode] = [self._reset() for _ in range(envs)]

    def _reset(self) -> SingleAgentEpisode:
        uid = len(self.truth)
        self.truth[uid] = TrueEpisode(uid)
        episode = SingleAgentEpisode(observation_space=OBS_SPACE, action_space=ACTION_SPACE)
        episode.add_env_reset(observation=np.array([uid, 0], np.float32))
        return episode

    def sample(self) -> list[SingleAgentEpisode]:
        done: list[SingleAgentEpisode] = []
        for index in range(len(self.running)):
            for _ in range(self.fragment):
                episode = self.running[index]
                true = self.truth[int(episode.get_observations(-1)[0])]
                t = len(true.rewards) + 1
                reward, action = float(self.rng.normal()), int(self.rng.integers(3))
                terminated = bool(self.rng.random() < 0.08)
                truncated = not terminated and t >= 15
                true.rewards.append(reward)
                true.actions.append(action)
                true.terminated, true.truncated = terminated, truncated
                episode.add_env_step(
                    observation=np.array([true.uid, t], np.float32),
                    action=action,
                    reward=reward,
                    terminated=terminated,
                    truncated=truncated,
                )
                if episode.is_done:
                    done.append(episode)
                    self.running[index] = self._reset()
        chunks = done + [e for e in self.running if len(e) > 0]
        self.running = [e.cut() if len(e) > 0 else e for e in self.running]
        for chunk in chunks:
            chunk.to_numpy()
        return chunks


def expected(truth: dict[int, TrueEpisode], uid: int, t: int, n: int, gamma: float) -> Any:
    """The n-step transition from step ``t`` of episode ``uid``: return, steps, last obs step,
    terminated."""
    true = truth[uid]
    steps = min(n, len(true.rewards) - t)
    ret = sum(gamma**j * true.rewards[t + j] for j in range(steps))
    ends = t + steps == len(true.rewards)
    return ret, steps, t + steps, ends and true.terminated


def check_batch(batch: dict[str, Any], truth: dict[int, TrueEpisode], n: Any, gamma: float) -> None:
    low, high = (n, n + 1) if isinstance(n, int) else n
    for i in range(len(batch["actions"])):
        uid, t = (int(x) for x in batch["obs"][i])
        spanned = int(batch["n_step"][i])
        ret, steps, last, terminated = expected(truth, uid, t, spanned, gamma)
        # The steps spanned: the drawn n, or fewer where the data stops.
        assert 1 <= spanned < high and steps == spanned
        if spanned < low:
            assert last == len(truth[uid].rewards)  # cut short only by the stored data's end
        assert batch["actions"][i] == truth[uid].actions[t]
        assert batch["rewards"][i] == pytest.approx(ret, rel=1e-5, abs=1e-5)
        assert tuple(int(x) for x in batch["new_obs"][i]) == (uid, last)
        assert bool(batch["terminateds"][i]) == terminated
        assert batch["weights"][i] == 1.0


@pytest.mark.parametrize("n_step", [1, 3, (2, 5)])
def test_every_sampled_transition_is_its_closed_form_n_step_return(n_step: Any) -> None:
    envs = ChunkedEnvs(envs=3, fragment=4)
    buffer = TransitionReplayBuffer(capacity=100_000, seed=0)
    for _ in range(40):
        buffer.add(envs.sample())
        check_batch(buffer.sample(64, n_step=n_step, gamma=0.9), envs.truth, n_step, 0.9)
    # Every step added once, chunk boundaries included; a running episode's newest
    # observation begins no transition yet.
    assert buffer.added_env_steps == sum(len(e.rewards) for e in envs.truth.values()) == 480
    assert len(buffer) == 480


def test_a_running_episode_bootstraps_from_its_newest_step_until_the_next_chunk_arrives() -> None:
    envs = ChunkedEnvs(envs=1, fragment=2, seed=3)
    buffer = TransitionReplayBuffer(capacity=1000, seed=0)
    buffer.add(envs.sample())
    batch = buffer.sample(200, n_step=5, gamma=0.5)
    check_batch(batch, envs.truth, 5, 0.5)
    assert set(batch["n_step"].tolist()) <= {1, 2}  # only two steps stored so far


def test_eviction_keeps_every_sampled_transition_whole_and_sampling_uniform() -> None:
    envs = ChunkedEnvs(envs=2, fragment=4, seed=1)
    buffer = TransitionReplayBuffer(capacity=50, seed=0)
    for _ in range(30):
        buffer.add(envs.sample())
    batch = buffer.sample(20_000, n_step=3, gamma=0.99)
    check_batch(batch, envs.truth, 3, 0.99)
    starts = [tuple(int(x) for x in o) for o in batch["obs"]]
    # Only the newest 50 observations are kept, each live transition drawn about equally.
    counts = np.array(list({s: starts.count(s) for s in set(starts)}.values()))
    assert len(counts) == len(buffer) <= 49
    assert counts.min() > 0.7 * counts.mean() and counts.max() < 1.3 * counts.mean()
    newest = max(uid for uid, _ in starts)
    assert newest >= len(envs.truth) - 3


def test_state_round_trip_replays_the_same_transitions(tmp_path: Path) -> None:
    envs = ChunkedEnvs(envs=2, fragment=4, seed=2)
    buffer = TransitionReplayBuffer(capacity=64, seed=7)
    for _ in range(12):
        buffer.add(envs.sample())
    path = tmp_path / "buffer.pkl"
    path.write_bytes(pickle.dumps(buffer.get_state()))
    restored = TransitionReplayBuffer(capacity=64)
    restored.set_state(pickle.loads(path.read_bytes()))
    # The running episodes continue across the restore, linked to their stored steps.
    more = envs.sample()
    buffer.add(more)
    restored.add(more)
    one, two = buffer.sample(256, n_step=3), restored.sample(256, n_step=3)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key])
    check_batch(two, envs.truth, 3, 0.99)
    with pytest.raises(ValueError, match="capacity"):
        TransitionReplayBuffer(capacity=65).set_state(buffer.get_state())


@pytest.mark.parametrize("kind", [EpisodeReplayBuffer, PrioritizedEpisodeReplayBuffer])
def test_an_episode_replay_buffer_state_from_an_older_checkpoint_is_read(kind: type) -> None:
    """DQN checkpoints before 2026-12-05 hold RLlib's uniform buffer, SAC's its prioritized
    one (the SAC presets' until that day)."""
    envs = ChunkedEnvs(envs=2, fragment=4, seed=4)
    rllib = kind(capacity=10_000)
    for _ in range(10):
        rllib.add(envs.sample())
    buffer = TransitionReplayBuffer(capacity=10_000, seed=0)
    buffer.set_state(rllib.get_state())
    assert buffer.added_env_steps == rllib.get_num_timesteps() == 80
    check_batch(buffer.sample(500, n_step=2, gamma=0.99), envs.truth, 2, 0.99)


def test_images_stay_in_their_dtype_and_nested_observations_keep_their_structure() -> None:
    space = gymnasium.spaces.Dict(
        {"frame": gymnasium.spaces.Box(0, 255, (6, 6, 2), np.uint8), "t": OBS_SPACE}
    )
    episode = SingleAgentEpisode(observation_space=space, action_space=ACTION_SPACE)
    episode.add_env_reset(observation=space.sample())
    for step in range(5):
        episode.add_env_step(observation=space.sample(), action=1, reward=1.0, terminated=step == 4)
    episode.to_numpy()
    buffer = TransitionReplayBuffer(capacity=100, seed=0)
    buffer.add([episode])
    batch = buffer.sample(8, n_step=2, gamma=1.0)
    assert batch["obs"]["frame"].dtype == np.uint8 and batch["obs"]["frame"].shape == (8, 6, 6, 2)
    assert batch["new_obs"]["t"].dtype == np.float32
    assert buffer.bytes_per_slot > 6 * 6 * 2 + 2 * 4
    np.testing.assert_array_equal(batch["rewards"], np.minimum(batch["n_step"], 2))


def test_settings_it_cannot_honour_are_refused() -> None:
    with pytest.raises(ValueError, match="remove alpha"):
        TransitionReplayBuffer(capacity=100, alpha=0.6)
    for capacity in (1, 2.5, "big", True, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="capacity: a whole number"):
            TransitionReplayBuffer(capacity=capacity)
    envs = ChunkedEnvs(envs=1, fragment=8)
    with pytest.raises(ValueError, match="raise the capacity"):
        TransitionReplayBuffer(capacity=5).add(envs.sample())
    with pytest.raises(ValueError, match="no complete transition"):
        TransitionReplayBuffer(capacity=5).sample(4)
    # A module with memory: refused where the run's settings are checked (exit 2).
    lstm = {
        **preset_hyperparams("dqn", "CartPole-v1"),
        "model_config": {"use_lstm": True},
    }
    with pytest.raises(PolicyError, match=r"replay_buffer_config\.type: .* memoryless"):
        build_algorithm_config("dqn", "CartPole-v1", policy={"lr": 1e-3}, hyperparams=lstm)


@contextlib.contextmanager
def _two_algos(agent: str, env: str, hyperparams: dict[str, Any]) -> Iterator[tuple[Any, Any]]:
    """Two algorithms built alike (lr 1e-3, seed 0): one to train, one to restore into."""

    def build() -> Any:
        return build_algorithm_config(
            agent, env, policy={"lr": 1e-3}, hyperparams=hyperparams, seed=0
        ).build_algo()

    trained, fresh = build(), build()
    try:
        yield trained, fresh
    finally:
        trained.stop()
        fresh.stop()


def _restore_and_train_on(trained: Any, fresh: Any, folder: Path) -> None:
    """Checkpoint ``trained`` with its replay buffer, restore both into ``fresh`` (the same
    number of transitions) and train it on."""
    from lrtune.running._trainable import load_replay_buffer, save_replay_buffer

    trained.save_to_path(str(folder))
    save_replay_buffer(trained, str(folder))
    fresh.restore_from_path(str(folder))
    assert load_replay_buffer(fresh, str(folder))
    assert len(fresh.local_replay_buffer) == len(trained.local_replay_buffer)
    fresh.train()  # learns on from the restored buffer


@pytest.mark.slow
def test_lrtune_dqn_trains_and_checkpoints_from_the_flat_buffer(
    ray_session: Any, tmp_path: Path
) -> None:
    hyperparams = {
        **preset_hyperparams("dqn", "CartPole-v1"),
        "min_sample_timesteps_per_iteration": 256,
        "num_steps_sampled_before_learning_starts": 64,
    }
    with _two_algos("dqn", "CartPole-v1", hyperparams) as (trained, fresh):
        assert isinstance(trained.local_replay_buffer, TransitionReplayBuffer)
        first = trained.train()
        second = trained.train()
        learner = second["learners"]["default_policy"]
        # 8 envs x 4 steps per training step, 64 x 16 replayed (training_intensity 32):
        # sixteen minibatch updates per training step, through lrtune's learner.
        steps = second["env_runners"]["num_env_steps_sampled_lifetime"]
        assert steps >= 512 and trained.local_replay_buffer.added_env_steps == steps
        assert np.isfinite(learner["total_loss"])
        updates = learner["num_module_steps_trained_lifetime"]
        assert updates > first["learners"]["default_policy"]["num_module_steps_trained_lifetime"]
        # Real CartPole chunks, 8 envs cut every 4 steps: each stored transition follows the
        # env's Euler step (x' = x + 0.02 x_dot, theta' = theta + 0.02 theta_dot), chunk
        # boundaries and episode ends included.
        replayed = trained.local_replay_buffer.sample(4000, n_step=1)
        x, x_dot, theta, theta_dot = replayed["obs"].T
        x_next, _, theta_next, _ = replayed["new_obs"].T
        np.testing.assert_allclose(x_next, x + 0.02 * x_dot, atol=1e-5)
        np.testing.assert_allclose(theta_next, theta + 0.02 * theta_dot, atol=1e-5)
        assert replayed["terminateds"].any() and (replayed["n_step"] == 1).all()
        _restore_and_train_on(trained, fresh, tmp_path)


@pytest.mark.slow
def test_lrtune_sac_trains_and_checkpoints_from_the_flat_buffer(
    ray_session: Any, tmp_path: Path
) -> None:
    """SAC's presets replay from the flat buffer through `LRTuneSAC` (RLlib's SAC config
    validation would refuse the type): continuous actions stored as the module emitted them,
    n-step draws within the presets' 2..4, and a checkpoint that carries the buffer."""
    from lrtune.learners._replay import LRTuneSAC

    hyperparams = {
        **preset_hyperparams("sac", "Pendulum-v1"),
        "train_batch_size_per_learner": 32,
        "min_sample_timesteps_per_iteration": 200,
        "num_steps_sampled_before_learning_starts": 64,
    }
    with _two_algos("sac", "Pendulum-v1", hyperparams) as (trained, fresh):
        assert isinstance(trained, LRTuneSAC)
        assert isinstance(trained.local_replay_buffer, TransitionReplayBuffer)
        trained.train()
        second = trained.train()
        learner = second["learners"]["default_policy"]
        assert all(np.isfinite(learner[key]) for key in ("qf_loss", "policy_loss", "alpha_loss"))
        steps = second["env_runners"]["num_env_steps_sampled_lifetime"]
        assert steps >= 400 and trained.local_replay_buffer.added_env_steps == steps
        replayed = trained.local_replay_buffer.sample(2000, n_step=(2, 5), gamma=0.99)
        assert replayed["actions"].shape == (2000, 1) and replayed["actions"].dtype == np.float32
        # 2..4 steps; fewer only where an episode's stored steps run out (truncated, or
        # still running).
        assert {2, 3, 4} <= set(np.unique(replayed["n_step"]).tolist()) <= {1, 2, 3, 4}
        assert not replayed["terminateds"].any()  # Pendulum-v1 only truncates
        _restore_and_train_on(trained, fresh, tmp_path)


def test_rllib_episode_buffer_still_bootstraps_from_terminal_observations() -> None:
    """The first correction in the module docstring: RLlib 2.60's n-step sampling marks a
    transition cut short by a terminated episode's end as not terminated. When this fails,
    RLlib fixed it: drop the correction's paragraph."""
    envs = ChunkedEnvs(envs=2, fragment=4, seed=5)
    rllib = EpisodeReplayBuffer(capacity=10_000)
    for _ in range(20):
        rllib.add(envs.sample())
    sampled = rllib.sample(
        num_items=2000, n_step=3, gamma=0.9, batch_length_T=0, sample_episodes=True
    )
    wrong = 0
    for item in sampled:
        uid, t = (int(x) for x in item.get_observations(0))
        true = envs.truth[uid]
        if true.terminated and len(true.rewards) - t < 3:  # cut short by a terminal end
            assert tuple(int(x) for x in item.get_observations(-1)) == (uid, len(true.rewards))
            wrong += not item.is_terminated
    assert wrong > 0


def test_running_episodes_that_never_continue_are_forgotten() -> None:
    """An env runner restart (or a restore) abandons running episodes; the buffer's memory of
    them stays bounded and their transitions stay sampleable."""
    buffer = TransitionReplayBuffer(capacity=20_000, seed=0)
    chunk = ChunkedEnvs(envs=2_000, fragment=1, seed=0).sample()
    buffer.add(chunk)
    assert buffer.running_episodes == sum(not e.is_done for e in chunk) > 1_000
    for _ in range(2):
        buffer.add(ChunkedEnvs(envs=2_000, fragment=1, seed=0).sample())
    assert buffer.running_episodes == 4_096
    assert len(buffer) == buffer.added_env_steps == 6_000


@pytest.mark.slow
@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_target_updates_per_training_step_are_rllibs(ray_session: Any, tau: float) -> None:
    """RLlib's DQN checks its target network once per learner call, one call per update: a
    hard copy (tau 1) happens at most once per training step, Polyak averaging once per
    update. lrtune's single call of 16 minibatches must keep both counts."""
    hyperparams = {
        **preset_hyperparams("dqn", "CartPole-v1"),
        "min_sample_timesteps_per_iteration": 256,
        "num_steps_sampled_before_learning_starts": 64,
        "tau": tau,
        "target_network_update_freq": 0,  # check passes at every call
    }
    algo = build_algorithm_config(
        "dqn", "CartPole-v1", policy={"lr": 1e-3}, hyperparams=hyperparams, seed=0
    ).build_algo()
    try:
        result = algo.train()
    finally:
        algo.stop()
    learner = result["learners"]["default_policy"]
    updates = learner["num_module_steps_trained_lifetime"] / 64
    training_steps = updates / 16  # 32 replayed per env step, 32 env steps per training step
    assert updates >= 16 and updates == int(updates)
    expected = training_steps if tau == 1.0 else updates
    assert learner["num_target_updates"] == expected


def _module_weights(module: Any) -> dict[str, np.ndarray]:
    return {name: t.detach().cpu().numpy().copy() for name, t in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize(("agent", "env"), [("dqn", "CartPole-v1"), ("sac", "Pendulum-v1")])
def test_the_local_weight_copy_is_rllibs_sync_bit_for_bit(
    ray_session: Any, agent: str, env: str
) -> None:
    """After every training step the env runner acts with the learner's weights: copied tensor
    by tensor in this process, the same weights (and so the same run) as RLlib's
    `sync_weights` gives."""
    hyperparams = {
        **preset_hyperparams(agent, env),
        "train_batch_size_per_learner": 32,
        "min_sample_timesteps_per_iteration": 128,
        "num_steps_sampled_before_learning_starts": 64,
    }
    weights = []
    for local_copy in (True, False):
        algo = build_algorithm_config(
            agent, env, policy={"lr": 1e-3}, hyperparams=hyperparams, seed=0
        ).build_algo()
        algo.local_weight_copy = local_copy
        try:
            for _ in range(3):
                algo.train()
                learner = _module_weights(algo.learner_group._learner.module[DEFAULT_MODULE_ID])
                acting = _module_weights(algo.env_runner_group.local_env_runner.module)
                assert acting.keys() < learner.keys()  # inference-only: no target networks
                for name, value in acting.items():
                    np.testing.assert_array_equal(value, learner[name])
            # RLlib's sync numbers the weights it sends; the local copy never called it.
            assert (algo.env_runner_group.local_env_runner._weights_seq_no == 0) == local_copy
            weights.append(acting)
        finally:
            algo.stop()
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        np.testing.assert_array_equal(value, weights[1][name])


@pytest.mark.slow
@pytest.mark.parametrize(("agent", "env"), [("dqn", "CartPole-v1"), ("sac", "Pendulum-v1")])
def test_a_whole_iteration_in_one_training_step_trains_as_rllibs_rounds(
    ray_session: Any, agent: str, env: str
) -> None:
    """One training step that runs every round of the iteration itself (metrics reduced once)
    samples, replays and learns exactly as RLlib's loop of one round per training step: the
    same iterations, counts, target updates, rates and weights, bit for bit. Its
    ``episode_return_mean`` is the mean return of the episodes the iteration completed."""
    hyperparams = {
        **preset_hyperparams(agent, env),
        "train_batch_size_per_learner": 32,
        "min_sample_timesteps_per_iteration": 256,
        "num_steps_sampled_before_learning_starts": 300,  # learning starts inside iteration 2
        "target_network_update_freq": 500,
    }
    counted = [
        "env_runners/num_env_steps_sampled_lifetime",
        "env_runners/num_episodes_lifetime",
        "learners/default_policy/num_module_steps_trained_lifetime",
        "learners/default_policy/num_target_updates",
        "learners/default_policy/last_target_update_ts",
        "learners/__all_modules__/lrtune_lr",
        "learners/__all_modules__/lrtune_lr_env_step",
        "learners/__all_modules__/lrtune_grad_norm_pre_gating",
    ]
    runs = []
    for fused in (True, False):
        algo = build_algorithm_config(
            agent, env, policy={"lr": 1e-3}, hyperparams=hyperparams, seed=0
        ).build_algo()
        algo.fused_iterations = fused
        runner = algo.env_runner_group.local_env_runner
        returns: list[float] = []
        log_episode = runner._log_episode_metrics

        def record(
            length: int, ret: float, duration: float, log: Any = log_episode, into: Any = returns
        ) -> None:
            into.append(ret)
            log(length, ret, duration)

        runner._log_episode_metrics = record
        try:
            rows, calls = [], []
            for _ in range(4):
                before = len(returns)
                result = algo.train()
                rows.append([nested_get(result, key) for key in counted])
                calls.append(result["num_training_step_calls_per_iteration"])
                if fused and len(returns) > before:
                    iteration_mean = float(np.mean(returns[before:]))
                    reported = result["env_runners"]["episode_return_mean"]
                    assert reported == pytest.approx(iteration_mean, rel=1e-9)
            weights = _module_weights(algo.learner_group._learner.module[DEFAULT_MODULE_ID])
        finally:
            algo.stop()
        runs.append((rows, calls, weights, returns))
    (fused_rows, fused_calls, fused_weights, fused_returns), (rows, calls, weights, returns) = runs
    assert fused_calls == [1, 1, 1, 1] and min(calls) > 1
    assert fused_rows[-1][3] is not None  # the target network was updated
    for fused_row, row in zip(fused_rows, rows, strict=True):
        assert [None if v is None else float(v) for v in fused_row] == [
            None if v is None else float(v) for v in row
        ]
    assert fused_returns == returns and fused_weights.keys() == weights.keys()
    for name, value in fused_weights.items():
        np.testing.assert_array_equal(value, weights[name])
