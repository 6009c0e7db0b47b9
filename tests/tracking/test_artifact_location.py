"""A new experiment in a sqlite store keeps its artifacts beside the database, whichever folder
the run starts from (MLflow's default is ``./mlruns`` of that folder); other stores keep
MLflow's own choice. Real sqlite stores, a real upload."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from lrtune.tracking import open_journal
from lrtune.tracking._mlflow import Tracker
from lrtune.tracking._stores import artifact_location


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:5000",
        "postgresql://u@db/mlflow",
        "file:///tmp/store",
        "/tmp/store",
        "sqlite:///:memory:",
        "sqlite://",
    ],
)
def test_stores_other_than_a_sqlite_file_keep_mlflows_choice(uri: str) -> None:
    assert artifact_location(uri, "job") is None


def test_a_relative_sqlite_path_is_read_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    expected = (tmp_path / "sub" / "mlruns" / "my_job_v2").as_uri()
    assert artifact_location("sqlite:///sub/mlflow.db?timeout=20", "my job/v2") == expected


def test_the_tracker_and_the_journal_put_artifacts_beside_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    client = MlflowClient(uri)

    tracked = Tracker(uri, "by-tracker").experiment_id
    assert tracked is not None
    location = client.get_experiment(tracked).artifact_location
    assert location == (store / "mlruns" / "by-tracker").as_uri()

    journal, _ = open_journal(None, uri, "by-journal")
    parent = journal.parent("by-journal", {"k": "v"}, {}, resume=False)
    artifact = tmp_path / "note.txt"
    artifact.write_text("kept beside the store")
    journal.log_artifact(parent, str(artifact))
    assert journal.drain(timeout=60)
    run_id = journal.run_id(parent)
    assert run_id is not None
    run = client.get_run(run_id)
    artifacts = store / "mlruns" / "by-journal" / run_id / "artifacts"
    assert run.info.artifact_uri == artifacts.as_uri()
    assert (artifacts / "note.txt").is_file()
    assert not (elsewhere / "mlruns").exists()
