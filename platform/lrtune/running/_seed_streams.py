"""`SeedStreams`: each tuning seed of a trial draws from its own process-wide random streams.

Why: RLlib seeds the process-wide generators (python's ``random``, numpy's, torch's) when it
builds an algorithm, and draws from them while it trains (DQN's epsilon-greedy coin is a
``torch.rand``, PPO samples its actions with torch). K seeds trained in lockstep in one process
would share those generators: seed 1001's build re-seeds them under seed 1000, and each seed's
draws move the others' streams, so a seed run beside others would not be the run it is alone.
`SeedStreams` saves each seed's generator state right after its build and swaps it in around
each of that seed's calls, so seed s in lockstep draws exactly what it draws alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class GlobalRandomState:
    """The state of the process-wide generators: python's, numpy's, torch's CPU generator and,
    once CUDA is initialised in this process, torch's CUDA generators."""

    python: Any
    numpy: Any
    torch_cpu: torch.Tensor
    torch_cuda: list[torch.Tensor] | None

    @classmethod
    def capture(cls) -> GlobalRandomState:
        """The generators' state now."""
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return cls(random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda)

    def restore(self) -> None:
        """Set the generators back to this state."""
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        torch.set_rng_state(self.torch_cpu)
        if self.torch_cuda is not None:
            torch.cuda.set_rng_state_all(self.torch_cuda)


class SeedStreams:
    """One saved `GlobalRandomState` per seed of a trial.

    Call `built` right after building each seed's algorithm, in seed order, then wrap every
    call that trains or evaluates seed ``i`` in ``with streams.active(i):``. A trial of one
    seed never swaps anything: its draws are those of a plain single run.
    """

    def __init__(self) -> None:
        self._states: list[GlobalRandomState] = []

    def built(self) -> None:
        """Called once after each seed's algorithm is built (which seeded the generators)."""
        self._states.append(GlobalRandomState.capture())

    @contextmanager
    def active(self, index: int) -> Iterator[None]:
        """Seed ``index``'s streams for the duration of the block, saved again after it (also
        when it raises)."""
        if len(self._states) < 2:
            yield
            return
        self._states[index].restore()
        try:
            yield
        finally:
            self._states[index] = GlobalRandomState.capture()

    def state_of(self, index: int) -> GlobalRandomState:
        """Seed ``index``'s streams as its next call will find them (for a checkpoint)."""
        if len(self._states) < 2:
            return GlobalRandomState.capture()
        return self._states[index]

    def resume(self, index: int, state: GlobalRandomState) -> None:
        """Seed ``index`` continues from ``state`` (a checkpoint's `state_of`)."""
        if len(self._states) < 2:
            state.restore()
        else:
            self._states[index] = state
