"""A tuning seed trained in lockstep beside others is the run it is alone: the trainable gives
each seed its own process-wide random streams (`SeedStreams`), and every replay buffer is
seeded. Parametrised over ``agents.names()``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from job_helpers import tiny_trial
from lrtune.registry import agents
from lrtune.running._seed_streams import SeedStreams
from lrtune.running._trainable import state_hash

ITERATIONS = 4


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def _weights_after(agent: str, seeds: list[int], store: Path) -> list[str]:
    """The weights' hash of each seed after `ITERATIONS` iterations of one trial."""
    trial = tiny_trial(agent, store, seeds, name="streams")
    try:
        for _ in range(ITERATIONS):
            trial.train()
        return [state_hash(algo)["weights"] for algo in trial.algos]
    finally:
        trial.stop()


@pytest.mark.slow
@pytest.mark.parametrize("agent", agents.names())
def test_each_seed_in_lockstep_trains_as_it_does_alone(agent: str, tmp_path: Path) -> None:
    alone = [_weights_after(agent, [seed], tmp_path)[0] for seed in (1000, 1001)]
    assert alone[0] != alone[1]
    assert _weights_after(agent, [1000, 1001], tmp_path) == alone


def test_a_seeds_streams_are_swapped_in_and_saved_back() -> None:
    streams = SeedStreams()
    for seed in (1, 2):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        streams.built()
    expected = []
    for seed in (1, 2):  # what each seed draws alone, twice over
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        expected.append([(random.random(), np.random.rand(), torch.rand(1).item()) for _ in "ab"])
    drawn: list[list[tuple[float, float, float]]] = [[], []]
    for _ in "ab":  # interleaved, as the seeds of a trial train
        for index in (0, 1):
            with streams.active(index):
                drawn[index].append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert drawn == expected


def test_a_single_seed_draws_on_from_the_process_streams() -> None:
    """One seed swaps nothing: a trial of one seed draws what a plain single run draws."""
    torch.manual_seed(5)
    first, second = torch.rand(1).item(), torch.rand(1).item()
    torch.manual_seed(5)
    streams = SeedStreams()
    streams.built()
    assert torch.rand(1).item() == first  # drawn outside the block (RLlib's own set-up)
    with streams.active(0):
        assert torch.rand(1).item() == second
