"""A concise live view of the trials (Ray 2.60 ignores custom reporters without
RAY_AIR_NEW_OUTPUT=0; a printing callback works everywhere)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ray.tune.callback import Callback

from lrtune.vocabulary import TrialStatus


class ProgressPrinter(Callback):
    """Prints one line per trial result: trial, policy, iteration, env steps, score, lr, status."""

    def __init__(self, describe: Callable[[Any], str], stream: TextIO | None = None) -> None:
        self._describe = describe
        self._stream = stream
        self._start = time.monotonic()
        self._header = False
        # trial id → (its config object, its description): describing a trial validates its
        # policy, too dear for every result; a population's exploit gives the trial a new config.
        self._described: dict[str, tuple[Any, str]] = {}

    def _description(self, trial: Any) -> str:
        config = trial.config
        described = self.__dict__.setdefault("_described", {})  # also when unpickled from before
        cached = described.get(trial.trial_id)
        if cached is None or cached[0] is not config:
            cached = (config, self._describe(trial))
            described[trial.trial_id] = cached
        return cached[1]

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment; a restored copy prints to stdout.
        return {**self.__dict__, "_stream": None, "_described": {}}

    def _print(self, text: str) -> None:
        print(text, file=self._stream or sys.stdout, flush=True)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        """Called by Tune after each iteration of a trial."""
        if not self._header:
            self._print(
                f"{'time':>6} {'trial':<10} {'policy':<40} {'iter':>4} {'env steps':>9} "
                f"{'score':>8} {'lr':>9} status"
            )
            self._header = True
        lr = result.get("lrtune", {}).get("lr", float("nan"))
        status = TrialStatus.DIVERGED if result.get("diverged") else "running"
        score = result.get("score", float("nan")) if result.get("scored", 1) else float("nan")
        self._print(
            f"{time.monotonic() - self._start:>6.0f} {str(trial.trial_id)[-10:]:<10} "
            f"{self._description(trial)[:40]:<40} {result.get('training_iteration', 0):>4} "
            f"{result.get('env_steps', 0):>9} {score:>8.1f} "
            f"{lr:>9.2e} {status}"
        )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Called by Tune when a trial ends."""
        self.__dict__.get("_described", {}).pop(trial.trial_id, None)
        self._print(f"{'':>6} {str(trial.trial_id)[-10:]:<10} finished")

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        """Called by Tune when a trial fails for good."""
        self._print(f"{'':>6} {str(trial.trial_id)[-10:]:<10} FAILED")
