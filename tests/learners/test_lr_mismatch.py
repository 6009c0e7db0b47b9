"""The learner fails loudly when something other than lrtune changes the learning rate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from lrtune.learners import LRMismatchError, build_algorithm_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def test_a_torch_lr_scheduler_stepping_after_each_update_raises_lr_mismatch() -> None:
    config = build_algorithm_config(
        "ppo",
        "CartPole-v1",
        policy={"lr": 1e-3},
        hyperparams={
            "train_batch_size_per_learner": 128,
            "minibatch_size": 64,
            "num_epochs": 1,
            "num_envs_per_env_runner": 1,
        },
        budget=1024,
        seed=0,
    )
    algo = config.build_algo()
    try:
        learner = algo.learner_group._learner
        optimizer = next(iter(learner._named_optimizers.values()))
        # A user's torch scheduler, stepped after every optimizer step (a common pattern).
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        optimizer.register_step_post_hook(lambda *_: scheduler.step())
        with pytest.raises(Exception) as caught:
            algo.train()
        mismatch = [e for e in _chain(caught.value) if isinstance(e, LRMismatchError)]
        text = "".join(str(e) for e in _chain(caught.value))
        assert mismatch or "lrtune owns it" in text, text[:2000]
        assert "5e-04" in text or "0.0005" in text
    finally:
        algo.stop()
