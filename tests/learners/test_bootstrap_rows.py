"""PPO trains on its sampled steps alone: the bootstrap rows RLlib appends for GAE leave the
batch after it (`DropBootstrapRows`), exactly those rows, and an update is then
``train_batch / minibatch × epochs`` minibatches of sampled steps."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED, NUM_MODULE_STEPS_TRAINED

from lrtune.learners import ModelSettings, build_algorithm_config
from lrtune.learners._bootstrap_rows import DropBootstrapRows

BATCH, MINIBATCH, EPOCHS = 256, 64, 2


@pytest.fixture(scope="module")
def algo() -> Iterator[Any]:
    """A small PPO on CartPole-v1 (episodes end inside every batch early on, so every batch
    has bootstrap rows beyond one per env)."""
    config = build_algorithm_config(
        "ppo",
        "CartPole-v1",
        policy={"lr": 3e-4},
        hyperparams={
            "train_batch_size_per_learner": BATCH,
            "minibatch_size": MINIBATCH,
            "num_epochs": EPOCHS,
            "num_envs_per_env_runner": 2,
        },
        model=ModelSettings(hidden=[16, 16]),
        seed=0,
    )
    built = config.build_algo()
    yield built
    built.stop()


def _learner_batch(learner: Any, episodes: list[Any]) -> dict[str, Any]:
    """What the learner's pipeline makes of ``episodes``, as `Learner.update` calls it."""
    return learner._learner_connector(  # type: ignore[no-any-return]
        rl_module=learner.module,
        batch={},
        episodes=copy.deepcopy(episodes),
        shared_data={},
        metrics=learner.metrics,
    )["default_policy"]


def test_the_piece_follows_gae_in_ppos_pipeline(algo: Any) -> None:
    names = [type(c).__name__ for c in algo.learner_group._learner._learner_connector.connectors]
    gae = names.index(GeneralAdvantageEstimation.__name__)
    assert names[gae + 1] == DropBootstrapRows.__name__


def test_exactly_the_masked_rows_leave_the_batch(algo: Any) -> None:
    learner = algo.learner_group._learner
    runner = algo.env_runner_group.local_env_runner
    episodes = runner.sample(num_timesteps=BATCH, random_actions=True)
    runner.get_metrics()  # this sample's counts, out of the next training result
    sampled = sum(len(e) for e in episodes)
    torch.manual_seed(0)
    ours = _learner_batch(learner, episodes)
    pipeline = learner._learner_connector
    index = pipeline.connectors.index(
        next(c for c in pipeline.connectors if isinstance(c, DropBootstrapRows))
    )
    piece = pipeline.connectors.pop(index)
    try:
        torch.manual_seed(0)
        theirs = _learner_batch(learner, episodes)
    finally:
        pipeline.connectors.insert(index, piece)

    mask = theirs[Columns.LOSS_MASK]
    assert int((~mask).sum()) >= len(episodes) > 2  # one bootstrap row per chunk at least
    assert Columns.LOSS_MASK not in ours
    assert set(ours) == set(theirs) - {Columns.LOSS_MASK}
    for key, value in ours.items():
        assert len(value) == sampled, key
        assert torch.equal(value, theirs[key][mask]), key


def test_an_update_cycles_minibatches_over_the_sampled_steps_alone(algo: Any) -> None:
    result = algo.train()
    sampled = result["env_runners"][NUM_ENV_STEPS_SAMPLED]
    trained = result["learners"]["default_policy"][NUM_MODULE_STEPS_TRAINED]
    # Minibatches of MINIBATCH rows cycle until every row is seen EPOCHS times; the vector
    # envs may sample a step past BATCH. With RLlib's batch the rows would also count a
    # bootstrap row per episode chunk.
    assert BATCH <= sampled < BATCH + 2
    assert trained == math.ceil(sampled * EPOCHS / MINIBATCH) * MINIBATCH


def test_a_batch_of_sequences_keeps_its_mask(algo: Any) -> None:
    """A stateful module's zero-padded (B, T) batch needs its mask: left as it is."""
    module = algo.learner_group._learner.module
    mask = torch.tensor([[True, True, False], [True, False, False]])
    batch = {"default_policy": {Columns.LOSS_MASK: mask, Columns.REWARDS: torch.ones(2, 3)}}
    out = DropBootstrapRows()(rl_module=module, batch=batch, episodes=[])
    assert out["default_policy"][Columns.LOSS_MASK] is mask
    assert out["default_policy"][Columns.REWARDS].shape == (2, 3)


def test_a_column_not_one_entry_per_row_keeps_the_mask(algo: Any) -> None:
    module = algo.learner_group._learner.module
    mask = torch.tensor([True, False, True])
    batch = {
        "default_policy": {
            Columns.LOSS_MASK: mask,
            Columns.REWARDS: torch.ones(3),
            "per_batch": torch.zeros(5),
        }
    }
    out = DropBootstrapRows()(rl_module=module, batch=batch, episodes=[])
    assert out["default_policy"][Columns.LOSS_MASK] is mask
    assert len(out["default_policy"][Columns.REWARDS]) == 3
