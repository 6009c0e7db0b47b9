"""A learner that holds a GPU share trains on CUDA (skipped where CUDA is absent)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from lrtune.learners import RESULT_KEY, TrialResources, build_algorithm_config

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


def test_a_learner_with_a_fractional_gpu_trains_on_cuda(ray_session: Any) -> None:
    config = build_algorithm_config(
        "ppo",
        "CartPole-v1",
        policy={"lr": 1e-3, "optimizer": "lamb"},
        hyperparams={"train_batch_size_per_learner": 128, "minibatch_size": 64, "num_epochs": 1},
        resources=TrialResources(cpus=1, gpus=0.5),
        budget=1000,
    )
    algo = config.build_algo()
    try:
        result = algo.train()
        learner = algo.learner_group._learner
        params = list(learner.module["default_policy"].parameters())
        assert all(p.device.type == "cuda" for p in params)
        assert result[RESULT_KEY]["lr"] == 1e-3
        assert all(torch.isfinite(p).all() for p in params)
    finally:
        algo.stop()
