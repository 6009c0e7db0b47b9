"""The lines `lrtune run` ends with: how to open MLflow's UI and the Optuna study."""

from __future__ import annotations

from pathlib import Path

from lrtune.running._run import STUDY_FILE, browse_commands, redact_uri


def test_a_local_store_gets_the_mlflow_ui_command_and_the_study_its_dashboard(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert browse_commands(uri, tmp_path) == [
        f"trials in MLflow: mlflow ui --backend-store-uri {uri}"
    ]
    (tmp_path / STUDY_FILE).write_bytes(b"")
    lines = browse_commands(uri, tmp_path)
    assert lines[1].startswith(f"the Optuna study: optuna-dashboard sqlite:///{tmp_path}/")


def test_a_password_in_the_uri_is_never_printed(tmp_path: Path) -> None:
    lines = browse_commands("http://alice:s3cret@127.0.0.1:5000/", tmp_path)
    assert lines == ["trials in MLflow: open http://alice:***@127.0.0.1:5000/ in a browser"]
    assert redact_uri("postgresql://bob:pw@db:5432/mlflow") == "postgresql://bob:***@db:5432/mlflow"
    assert redact_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact_uri("sqlite:////tmp/x@y.db") == "sqlite:////tmp/x@y.db"
