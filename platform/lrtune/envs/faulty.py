"""A CartPole that fails on purpose: fault injection for testing how runs survive errors.

``lrtune/FaultyCartPole-v0`` behaves as CartPole-v1 until the process has stepped
``fail_at_step`` times in total, then raises `InjectedFault` from ``step``. Without a
``fault_log`` it fails in every process that gets there. With ``fault_log`` (a file path) and
``max_faults``, each fault appends a line to the log and no process faults once the log holds
``max_faults`` lines: ``max_faults: 1`` fails only the first attempt (the trial restored from
its checkpoint carries on); with trials run one at a time and ``max_failures: 1``,
``max_faults: 2`` fails the first trial for good and lets the next ones finish.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class InjectedFault(RuntimeError):
    """The error `FaultyCartPole` raises by design."""


_STEPS_IN_PROCESS = 0


class FaultyCartPole(CartPoleEnv):
    """CartPole-v1 that raises after ``fail_at_step`` env steps in this process."""

    def __init__(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        options = {**dict(config or {}), **kwargs}
        render_mode = options.pop("render_mode", None)
        self.fail_at_step = int(options.pop("fail_at_step", 1000))
        self.fault_log = options.pop("fault_log", None)
        max_faults = options.pop("max_faults", None)
        self.max_faults = None if max_faults is None else int(max_faults)
        if options:
            raise ValueError(
                f"FaultyCartPole: unknown options {sorted(options)}; it takes fail_at_step, "
                "fault_log and max_faults"
            )
        if self.fail_at_step < 0:
            raise ValueError("FaultyCartPole: fail_at_step must be >= 0")
        if (self.max_faults is None) != (self.fault_log is None):
            raise ValueError("FaultyCartPole: fault_log and max_faults go together")
        super().__init__(render_mode=render_mode)

    def step(self, action: Any) -> Any:
        """CartPole's step, until the fault is due."""
        global _STEPS_IN_PROCESS
        _STEPS_IN_PROCESS += 1
        if _STEPS_IN_PROCESS > self.fail_at_step and self._fault_due():
            raise InjectedFault(f"injected fault after {self.fail_at_step} env steps")
        return super().step(action)

    def _fault_due(self) -> bool:
        if self.fault_log is None or self.max_faults is None:
            return True
        faults = 0
        if os.path.exists(self.fault_log):
            with open(self.fault_log) as handle:
                faults = sum(1 for _ in handle)
        if faults >= self.max_faults:
            return False
        with open(self.fault_log, "a") as handle:
            handle.write(f"fault in process {os.getpid()}\n")
        return True


FAULTY_CARTPOLE_ID = "lrtune/FaultyCartPole-v0"


def register_faulty() -> None:
    """Register ``lrtune/FaultyCartPole-v0`` (idempotent)."""
    if FAULTY_CARTPOLE_ID not in gym.registry:
        gym.register(
            id=FAULTY_CARTPOLE_ID,
            entry_point="lrtune.envs.faulty:FaultyCartPole",
            max_episode_steps=500,
        )
