"""A trial that Tune restarts from its checkpoint keeps every result row it reported.

Tune's loggers copy a restarted trial's ``result.json`` and ``progress.csv`` back from the
storage path, which lags the driver's files by up to ``num_to_keep`` checkpoints; lrtune's
`TrialLogsUpload` uploads them first (`result_loggers`). A real Tune run on the session's Ray:
a trainable checkpoints every iteration and fails once, after Tune's last upload, at an
iteration whose row only the driver's staging file holds.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest

from lrtune.running._run import TrialLogsUpload, result_loggers

LAST = 8
FAIL_AT = 6  # rows 1-5 reported; Tune uploads after every 2nd checkpoint (num_to_keep 2): 2, 4


def _fails_once() -> type:
    """A trainable class defined here (Ray pickles it by value) that raises at iteration
    FAIL_AT the first time only (a marker file remembers), checkpointing its counter."""
    from ray import tune

    class FailsOnce(tune.Trainable):
        def setup(self, config: dict[str, Any]) -> None:
            self.count = 0
            self.marker = Path(config["marker"])

        def step(self) -> dict[str, Any]:
            # Slow enough for Tune's upload after the 4th checkpoint to end before row 5.
            time.sleep(0.3)
            self.count += 1
            if self.count == FAIL_AT and not self.marker.exists():
                self.marker.write_text("failed once")
                raise RuntimeError("the planned failure")
            return {"count": self.count, "done": self.count >= LAST}

        def save_checkpoint(self, checkpoint_dir: str) -> None:
            Path(checkpoint_dir, "count").write_text(str(self.count))

        def load_checkpoint(self, checkpoint_dir: str) -> None:
            self.count = int(Path(checkpoint_dir, "count").read_text())

    return FailsOnce


@pytest.mark.usefixtures("ray_session")
def test_a_restarted_trial_keeps_the_rows_reported_since_tunes_last_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray import tune

    # No upload by time during the run: only the ones every num_to_keep checkpoints.
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "3600")
    loggers = result_loggers()
    assert isinstance(loggers[0], TrialLogsUpload)
    tuner = tune.Tuner(
        _fails_once(),
        param_space={"marker": str(tmp_path / "failed")},
        run_config=tune.RunConfig(
            name="restart-rows",
            storage_path=str(tmp_path / "storage"),
            callbacks=loggers,
            failure_config=tune.FailureConfig(max_failures=1),
            checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1, num_to_keep=2),
            verbose=0,
        ),
    )
    results = tuner.fit()
    assert not results.errors
    assert (tmp_path / "failed").exists()  # it did fail once, and was restarted

    (trial_dir,) = (tmp_path / "storage" / "restart-rows").glob("FailsOnce_*")
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
    assert [r["count"] for r in rows] == list(range(1, LAST + 1))
    with (trial_dir / "progress.csv").open() as f:
        assert [int(r["count"]) for r in csv.DictReader(f)] == list(range(1, LAST + 1))
