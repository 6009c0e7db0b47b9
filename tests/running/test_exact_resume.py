"""A trial restored from its own checkpoint goes on exactly as the uninterrupted trial: the
checkpoint holds each seed's envs, episodes and random streams (`save_sampling_state`), its
replay buffer's generator, and SAC's temperature. Parametrised over ``agents.names()``."""

from __future__ import annotations

import json
import logging
import math
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from job_helpers import tiny_trial, train_trial
from lrtune.registry import agents
from lrtune.running._sampling_state import (
    SAMPLING_FILE,
    SamplingState,
    load_sampling_state,
    save_sampling_state,
)
from lrtune.running._seed_streams import GlobalRandomState
from lrtune.running._trainable import STATE_FILE


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


@pytest.mark.slow
@pytest.mark.parametrize("agent", agents.names())
def test_a_restored_trial_takes_the_steps_of_the_uninterrupted_one(
    agent: str, tmp_path: Path
) -> None:
    seeds = [1000, 1001]  # two: each seed's own streams must come back, not the process's
    trial = tiny_trial(agent, tmp_path, seeds)
    try:
        scores, hashes = train_trial(trial, 4)
    finally:
        trial.stop()
    trial = tiny_trial(agent, tmp_path, seeds)
    try:
        train_trial(trial, 2)
        checkpoint = trial.save(str(tmp_path / "checkpoint"))
    finally:
        trial.stop()
    resumed = tiny_trial(agent, tmp_path, seeds)
    try:
        resumed.restore(checkpoint)
        resumed_scores, resumed_hashes = train_trial(resumed, 2)
    finally:
        resumed.stop()
    assert resumed_scores == scores[2:]
    assert resumed_hashes == hashes  # weights and optimizer state, seed by seed


@pytest.mark.slow
def test_a_restored_trial_reports_each_seeds_saved_evaluation(tmp_path: Path) -> None:
    """The third iteration evaluates nothing (every 2nd does): its per-seed evaluations are
    the second's, which the restored trial has only from its checkpoint."""
    evaluation = {"interval": 2, "episodes": 1}
    trial = tiny_trial("ppo", tmp_path, [1000, 1001], evaluation=evaluation)
    try:
        uninterrupted = [trial.train()["by_seed"] for _ in range(3)]
    finally:
        trial.stop()
    trial = tiny_trial("ppo", tmp_path, [1000, 1001], evaluation=evaluation)
    try:
        trial.train()
        trial.train()
        checkpoint = trial.save(str(tmp_path / "checkpoint"))
    finally:
        trial.stop()
    resumed = tiny_trial("ppo", tmp_path, [1000, 1001], evaluation=evaluation)
    try:
        resumed.restore(checkpoint)
        third = resumed.train()["by_seed"]
    finally:
        resumed.stop()
    saved = [uninterrupted[1][seed]["evaluation_return"] for seed in ("1000", "1001")]
    assert all(math.isfinite(v) for v in saved)
    assert [third[seed]["evaluation_return"] for seed in ("1000", "1001")] == saved
    assert third == uninterrupted[2]


def test_another_trials_checkpoint_leaves_the_envs_and_streams_to_this_trial(
    tmp_path: Path,
) -> None:
    """A population member exploiting a donor's checkpoint takes its weights, not its envs."""
    trial = tiny_trial("ppo", tmp_path, [1000])
    try:
        trial.train()
        checkpoint = Path(trial.save(str(tmp_path / "checkpoint")).checkpoint.path)
    finally:
        trial.stop()
    state_path = next(checkpoint.rglob(STATE_FILE))
    state_path.write_text(json.dumps({**json.loads(state_path.read_text()), "trial_id": "donor"}))
    exploiter = tiny_trial("ppo", tmp_path, [1000])
    try:
        exploiter.restore(str(checkpoint))
        assert exploiter.algos[0].env_runner._needs_initial_reset  # its envs start afresh
        exploiter.train()
    finally:
        exploiter.stop()


def test_envs_that_cannot_be_pickled_are_reset_and_the_restore_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trial = tiny_trial("ppo", tmp_path, [1000])
    try:
        trial.train()
        trial.algos[0].env_runner.env.lock = threading.Lock()  # as an env holding a lock would
        checkpoint = Path(trial.save(str(tmp_path / "checkpoint")).checkpoint.path)
        assert trial.algos[0].env_runner.env.lock is not None
    finally:
        trial.stop()
    seed_dir = next(checkpoint.rglob(SAMPLING_FILE)).parent
    resumed = tiny_trial("ppo", tmp_path, [1000])
    try:
        with caplog.at_level(logging.WARNING, logger="lrtune.running._trainable"):
            resumed.restore(str(checkpoint))
        assert "its envs start new episodes after this restore" in caplog.text
        assert "the envs cannot be pickled (TypeError" in caplog.text
        assert resumed.algos[0].env_runner._needs_initial_reset
        assert resumed.train()["lrtune"]["lr_env_step"] > 0  # the LR policy continues
        state = load_sampling_state(resumed.algos[0], str(seed_dir))
        assert state is not None and state.runner is None
    finally:
        resumed.stop()


def test_a_vector_envs_spent_env_fns_are_kept_after_saving(tmp_path: Path) -> None:
    """gymnasium's SyncVectorEnv keeps the generator it was built from; saving empties it only
    while pickling."""
    trial = tiny_trial("ppo", tmp_path, [1000])
    try:
        algo = trial.algos[0]
        vector_env = algo.env_runner.env.env
        env_fns = vector_env.env_fns
        state = save_sampling_state(algo, GlobalRandomState.capture(), str(tmp_path))
        assert state.runner is not None and state.why_not is None
        assert vector_env.env_fns is env_fns
    finally:
        trial.stop()


def test_saved_envs_that_no_longer_load_are_reset_with_the_reason(tmp_path: Path) -> None:
    """Envs pickled by another version of their code may not unpickle: the restore goes on with
    fresh envs (the caller warns) instead of failing the trial."""
    streams = GlobalRandomState.capture()
    saved = SamplingState(streams=streams, runner=b"not a pickle", why_not=None)
    (tmp_path / SAMPLING_FILE).write_bytes(pickle.dumps(saved))
    state = load_sampling_state(None, str(tmp_path))  # the env runner is not touched
    assert state is not None and state.runner is None
    assert torch.equal(state.streams.torch_cpu, streams.torch_cpu)  # the streams still come back
    assert state.why_not is not None and state.why_not.startswith("the saved envs cannot be loaded")
