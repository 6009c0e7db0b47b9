"""A tracking URI's password never reaches a file lrtune writes (summary.json, job.yaml, the
experiment marker, trial artifacts, best.yaml; so never MLflow's artifacts either), and what
reads a stored URI back asks for the password instead of using the redacted one. The cluster
side (env vars, the MLflow server's login, the token's transport) is tests/cluster/
test_cluster_secrets.py."""

from __future__ import annotations

import configparser
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]
from lrtune._stored_uri import StoredURIError, recorded_tracking_uri
from lrtune.cli import main
from lrtune.running._results import (
    RunOutcome,
    TrialOutcome,
    stored_job_dict,
    write_summary,
)
from lrtune.specs import JobSpec, load_job, parse_job

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "k8s"
SECRET = "s3cret"
URI = f"http://user:{SECRET}@127.0.0.1:1/"
CREDENTIAL_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture()
def no_tracking_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No MLflow URI or credentials from the environment."""
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _files_holding(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


# --- 1. tracking URIs with a password ---------------------------------------------------------


def _secret_job(tmp_path: Path) -> JobSpec:
    data = tiny_job("leaky", tmp_path / "store", tracking={"uri": URI}, policy={"lr": 3e-4})
    data["cluster"] = {"address": f"http://ops:{SECRET}@127.0.0.1:8265"}
    return parse_job(data, "leaky.yaml")


def test_the_writers_never_store_the_password(tmp_path: Path) -> None:
    from lrtune.running._run import describe_trial

    job = _secret_job(tmp_path)
    results = Path(job.results_dir)
    point = {"policy": {"lr": 3e-4}, "hyperparams": job.fixed_hyperparams, "baseline": False}
    # A Tune trial as describe_trial reads it: an id and a config holding lrtune's point.
    trial = SimpleNamespace(trial_id="abc_00000", config={"lrtune": point})
    _, _, params, artifact = describe_trial(job, str(results), trial)
    assert artifact is not None and Path(artifact).is_file()
    assert all(SECRET not in str(v) for v in params.values())
    outcome = TrialOutcome(
        trial_id="abc_00000",
        status="completed",
        score=10.0,
        env_steps=256,
        policy=point["policy"],
        hyperparams=point["hyperparams"],
        policy_short="3e-04",
    )
    run = RunOutcome(
        name=job.name,
        results_dir=results,
        experiment_dir=tmp_path / "store" / "ray_results" / job.name,
        trials=[outcome],
        best=outcome,
        interrupted=False,
        resumed=False,
        tracking_uri=URI,
    )
    write_summary(run, job, job.resolved_hash())
    written = sorted(p.relative_to(results).as_posix() for p in results.rglob("*") if p.is_file())
    assert written == ["best.yaml", "summary.json", "trials/abc_00000.yaml"]
    assert _files_holding(tmp_path, SECRET) == []
    summary = json.loads((results / "summary.json").read_text())
    assert summary["tracking_uri"] == "http://user:***@127.0.0.1:1/"
    trial_job = yaml.safe_load(Path(artifact).read_text())
    assert trial_job["tracking"]["uri"] == "http://user:***@127.0.0.1:1/"
    assert trial_job["cluster"]["address"] == "http://ops:***@127.0.0.1:8265"


def test_finalize_asks_for_the_password_a_stored_uri_hides(
    tmp_path: Path, capsys: Any, no_tracking_env: None
) -> None:
    from lrtune.running._finalize import finalize
    from lrtune.running._results import write_yaml as write_job_yaml

    job = _secret_job(tmp_path)
    results = Path(job.results_dir)
    point = {"policy": {"lr": 3e-4}, "hyperparams": job.fixed_hyperparams}
    done = TrialOutcome("t1", "completed", 1.0, 256, point["policy"], point["hyperparams"], "c")
    run = RunOutcome(job.name, results, tmp_path, [done], done, False, False, tracking_uri=URI)
    write_summary(run, job, job.resolved_hash())
    write_job_yaml(results / "job.yaml", stored_job_dict(job.to_yaml_dict()))  # as run_job does
    assert _files_holding(tmp_path, SECRET) == []
    # Refused before Ray or MLflow is touched; the CLI says it with exit 2.
    with pytest.raises(StoredURIError, match="--tracking-uri"):
        finalize(str(results), top=1, seeds=1)
    assert main(["finalize", str(results), "--top", "1", "--seeds", "1"]) == 2
    assert "hides the password" in capsys.readouterr().err


def test_the_stored_job_keeps_the_hash_that_resume_compares(tmp_path: Path) -> None:
    job = _secret_job(tmp_path)
    stored = stored_job_dict(job.to_yaml_dict())
    assert SECRET not in json.dumps(stored)
    again = JobSpec.model_validate(stored)
    assert again.resolved_hash() == job.resolved_hash()
    assert job.tracking.uri == URI  # the job in memory keeps what the run needs


def test_a_redacted_stored_uri_is_never_used_and_the_error_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch, no_tracking_env: None
) -> None:
    hidden = "http://user:***@10.0.0.5:5000"
    whole = "http://10.0.0.5:5000"
    given = f"http://user:{SECRET}@10.0.0.5:5000"
    assert recorded_tracking_uri(given, [hidden], "sqlite:///x.db", "e") == given
    assert recorded_tracking_uri(None, [hidden, whole], "sqlite:///x.db", "e") == whole
    assert recorded_tracking_uri(None, [None], "sqlite:///x.db", "e") == "sqlite:///x.db"
    with pytest.raises(StoredURIError, match="--tracking-uri") as caught:
        recorded_tracking_uri(None, [hidden, hidden], "sqlite:///x.db", "experiment 'e'")
    assert "MLFLOW_TRACKING_PASSWORD" in str(caught.value)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "user")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", SECRET)
    assert recorded_tracking_uri(None, [hidden], "sqlite:///x.db", "e") == whole
    monkeypatch.setenv("MLFLOW_TRACKING_URI", given)
    assert recorded_tracking_uri(None, [hidden], "sqlite:///x.db", "e") == given


def test_analysis_refuses_a_redacted_summary_uri_with_exit_2(
    tmp_path: Path, capsys: Any, no_tracking_env: None
) -> None:
    from lrtune.analysis import resolve_tracking_uri

    folder = tmp_path / "results" / "hid"
    folder.mkdir(parents=True)
    summary = {"name": "hid", "tracking_uri": "http://u:***@127.0.0.1:1", "trials": []}
    (folder / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(Exception, match="--tracking-uri"):
        resolve_tracking_uri(str(folder), None)
    assert resolve_tracking_uri(str(folder), "sqlite:///y.db") == "sqlite:///y.db"
    assert main(["report", str(folder)]) == 2
    assert "hides the password" in capsys.readouterr().err


def test_analysis_without_a_summary_uri_takes_mlflow_tracking_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_tracking_env: None
) -> None:
    from lrtune.analysis import resolve_tracking_uri

    name = str(tmp_path / "results" / "elsewhere")  # no summary.json: run on a cluster
    assert resolve_tracking_uri(name, None) == "sqlite:///mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert resolve_tracking_uri(name, None) == "http://127.0.0.1:5999"
    assert resolve_tracking_uri(name, "sqlite:///y.db") == "sqlite:///y.db"


# --- end to end: a real run against a real MLflow server with basic auth ----------------------


@pytest.fixture()
def basic_auth_mlflow(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`mlflow server --app-name basic-auth` on 127.0.0.1 with k8s/mlflow.yaml's ini (its store
    moved to ``tmp_path``); yields (url without credentials, admin password, artifact folder)."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _docs("mlflow.yaml")}
    ini = configparser.ConfigParser()
    ini.read_string(docs["ConfigMap", "lrtune-mlflow-auth"]["data"]["basic_auth.ini"])
    ini["mlflow"]["database_uri"] = f"sqlite:///{tmp_path / 'auth.db'}"
    with (tmp_path / "auth.ini").open("w") as handle:
        ini.write(handle)
    password = f"{SECRET}-0123456789abcdef"
    artifacts = tmp_path / "mlartifacts"
    # The server's environment as the Deployment sets it, from a stand-in of its Secret (a key
    # the manifest needs and the Secret's documented keys lack fails here); PostgreSQL and the
    # config path are replaced by local ones.
    (server,) = docs["Deployment", "lrtune-mlflow"]["spec"]["template"]["spec"]["containers"]
    secret_data = {"username": "lrtune", "password": password, "flask-secret-key": "k" * 32}
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth.ini")}
    for entry in server["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None and ref["name"] == "lrtune-mlflow-auth":
            env[entry["name"]] = secret_data[ref["key"]]
    assert "--app-name=basic-auth" in server["args"]
    from lrtune.testing import local_mlflow_server

    with local_mlflow_server(
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifacts=artifacts,
        cwd=tmp_path,
        app_name="basic-auth",
        env=env,
    ) as url:
        yield url, password, artifacts


@pytest.mark.slow
def test_a_real_run_against_a_password_protected_mlflow_stores_no_password(
    tmp_path: Path,
    basic_auth_mlflow: tuple[str, str, Path],
    ray_session: Any,
    no_tracking_env: None,
    capfd: Any,
) -> None:
    from mlflow.tracking import MlflowClient

    from lrtune.running import run_job

    url, password, artifacts = basic_auth_mlflow
    # The server wants the login: without it, MLflow's client is turned away.
    with pytest.raises(Exception, match=r"401|[Uu]nauthori"):
        MlflowClient(tracking_uri=url).search_experiments()
    secret_uri = url.replace("http://", f"http://lrtune:{password}@")
    store = tmp_path / "store"
    data = tiny_job("authrun", store, tracking={"uri": secret_uri}, policy={"lr": 3e-4})
    data["trials"] = {"num": 1, "max_concurrent": 1, "max_failures": 0}
    data["budget"] = {"trial_env_steps": 128}
    out = io.StringIO()
    outcome = run_job(load_job(write_yaml(tmp_path, "authrun", data)), stream=out)
    assert outcome.exit_code == 0 and outcome.parent_run_id
    assert password not in out.getvalue()
    printed = capfd.readouterr()  # MLflow prints each ended run's URL unless told not to
    assert password not in printed.out + printed.err
    leaks = _files_holding(store, password) + _files_holding(artifacts, password)
    assert leaks == []
    results = store / "results" / "authrun"
    assert json.loads((results / "summary.json").read_text())["tracking_uri"].startswith(
        "http://lrtune:***@127.0.0.1:"
    )
    marker = store / "ray_results" / "authrun" / "lrtune_job.json"
    assert marker.is_file() and SECRET not in marker.read_text()
    # The records reached the server (the password went only where MLflow needs it).
    run = MlflowClient(tracking_uri=secret_uri).get_run(outcome.parent_run_id)
    assert run.info.status == "FINISHED"
    names = {a.path for a in MlflowClient(tracking_uri=secret_uri).list_artifacts(run.info.run_id)}
    assert {"job.yaml", "summary.json"} <= names
    # Resume reads the stored marker: same hash, no conflict, no password needed from disk.
    again = run_job(load_job(tmp_path / "authrun.yaml"), stream=io.StringIO())
    assert again.resumed


def test_a_dry_run_shows_the_uri_without_its_password(
    tmp_path: Path, capsys: Any, no_tracking_env: None
) -> None:
    data = tiny_job("dry", tmp_path / "store", tracking={"uri": URI}, policy={"lr": 3e-4})
    assert main(["run", str(write_yaml(tmp_path, "dry", data)), "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tracking_uri"] == "http://user:***@127.0.0.1:1/"
