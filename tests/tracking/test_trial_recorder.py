"""The MLflow trial recorder against a real sqlite store (Tune's trial object is stood in by
the three attributes the recorder reads)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from lrtune.tracking import TrialRecorder


@dataclass
class TrialStandIn:
    trial_id: str
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None


def _recorder(uri: str) -> TrialRecorder:
    return TrialRecorder(
        (uri, "recorder"),
        None,
        describe=lambda trial: (trial.trial_id, {}, {"p": 1}, None),
        metrics_of=lambda result: {"score": float(result["score"])},
        status_of=lambda trial, result, errored: "completed",
    )


def _steps(uri: str, run_id: str) -> list[int]:
    return [m.step for m in MlflowClient(uri).get_metric_history(run_id, "score")]


def _result(step: int, **extra: Any) -> dict[str, Any]:
    return {"env_steps": step, "score": step / 100, **extra}


def test_a_resumed_trial_does_not_log_replayed_iterations_twice(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trial = TrialStandIn("t1")
    first = _recorder(uri)
    for step in (128, 256, 384):
        first.on_trial_result(0, [], trial, _result(step))
    first.on_experiment_end([trial])
    run_id = first.run_ids["t1"]

    # A new driver (resume): the checkpoint was at 256, so 384 is run again, then 512.
    again = _recorder(uri)
    again.on_trial_start(0, [], trial)
    for step in (384, 512):
        again.on_trial_result(0, [], trial, _result(step))
    assert again.flush(30)  # the recorder journals; its writer thread delivers
    assert again.run_ids["t1"] == run_id
    assert _steps(uri, run_id) == [128, 256, 384, 512]

    # A retry in the same driver, restored from its checkpoint at 384.
    again.on_trial_result(0, [], trial, _result(512))
    again.on_trial_result(0, [], trial, _result(640))
    assert again.flush(30)
    assert _steps(uri, run_id) == [128, 256, 384, 512, 640]


def test_an_exploited_member_logs_the_donors_history_from_the_restore_on(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    member = TrialStandIn("m1")
    recorder = _recorder(uri)
    for step in (100, 200, 300):
        recorder.on_trial_result(0, [], member, _result(step))
    announce = json.dumps({"trial_id": "m1", "restored_from": {"trial_id": "m2"}})
    recorder.on_trial_result(0, [], member, _result(250, lineage={"announce": announce}))
    # Its own checkpoint (a retry) is still a replay.
    own = json.dumps({"trial_id": "m1", "restored_from": {"trial_id": "m1"}})
    recorder.on_trial_result(0, [], member, _result(250, lineage={"announce": own}))
    recorder.on_trial_result(0, [], member, _result(350))
    assert recorder.flush(30)
    assert _steps(uri, recorder.run_ids["m1"]) == [100, 200, 300, 250, 350]
