"""Tune re-uses trial actors only for a trainable that resets itself; lrtune's own does not."""

from __future__ import annotations

from typing import Any

from ray import tune

from lrtune.running._run import _resets_itself
from lrtune.running._trainable import LRTuneTrainable


class _Resetting(tune.Trainable):
    def reset_config(self, new_config: dict[str, Any]) -> bool:
        return True


def test_lrtunes_trainable_starts_an_actor_per_trial_and_a_resetting_one_is_reused() -> None:
    assert _resets_itself(LRTuneTrainable) is False
    assert _resets_itself(tune.Trainable) is False
    assert _resets_itself(_Resetting) is True
