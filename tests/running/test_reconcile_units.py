"""`reconcile_mlflow` on a real MLflow store: which parent runs it closes."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from lrtune.running._reconcile import reconcile_mlflow
from lrtune.tracking._journal import parent_key
from lrtune.vocabulary import TAG_EXPERIMENT, TAG_PARENT_KEY, TAG_ROLE, RunRole


def test_a_parent_created_after_the_driver_stopped_waiting_is_kept(tmp_path: Path) -> None:
    """The journal creates the parent run on its writer thread; the driver waits up to 10 s for
    its id. Under load (CI beside a benchmark, load 8) the id came later, the driver
    reconciled with no id for its own parent, and killed it 0.16 s after its creation (the
    killed-driver test then found no open parent). The journal's key for it keeps it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("job")
    parent_tags = {TAG_EXPERIMENT: "job", TAG_ROLE: RunRole.EXPERIMENT}
    stale = client.create_run(experiment, tags={**parent_tags, TAG_PARENT_KEY: "old"})
    mine = client.create_run(experiment, tags={**parent_tags, TAG_PARENT_KEY: "k1"})
    said: list[str] = []

    closed = reconcile_mlflow(
        uri,
        "job",
        "job",
        live=set(),
        ended={},
        keep_parent=None,  # the id was not known yet
        keep_parent_key=parent_key("parent:k1"),
        parent_status=None,
        say=said.append,
    )

    assert closed == 1 and said == []
    assert client.get_run(stale.info.run_id).info.status == "KILLED"  # a dead driver's
    assert client.get_run(mine.info.run_id).info.status == "RUNNING"
    # Known by id or by key, its own parent ends as told at the end of a run.
    reconcile_mlflow(
        uri,
        "job",
        "job",
        live=set(),
        ended={},
        keep_parent=None,
        keep_parent_key="k1",
        parent_status="FAILED",
        say=said.append,
    )
    assert client.get_run(mine.info.run_id).info.status == "FAILED"
    assert parent_key("trial:abc") is None
