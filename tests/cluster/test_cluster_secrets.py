"""Secret ``cluster.env_vars`` become Kubernetes ``secretKeyRef``s and never travel as values;
the shipped MLflow server needs a login and admits only lrtune's Ray pods; the Ray token never
goes over plain http to another machine unless asked (``--insecure``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_helpers import ROOT  # type: ignore[import-not-found]
from test_k8s_manifests import validate  # type: ignore[import-not-found]

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]
from lrtune.cli import main
from lrtune.cluster import (
    AuthToken,
    ClusterError,
    ClusterSpec,
    build_runtime_env,
    check_transport,
    connect,
    parse_cluster,
    prepare_submission,
    render,
)
from lrtune.specs import load_job

K8S = ROOT / "k8s"
SECRET = "s3cret"
TOKEN = "tok-never-shown-4711"


# --- 2. secret cluster.env_vars ---------------------------------------------------------------


def test_a_plain_value_under_a_secret_name_is_refused_with_exit_2(
    tmp_path: Path, capsys: Any
) -> None:
    for name in ("AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "db_password", "MY_CREDENTIALS", "X_AUTH"):
        with pytest.raises(ClusterError, match=rf"{name}: \{{secret: <secret name>"):
            parse_cluster({"env_vars": {name: SECRET}})
    data = tiny_job(
        "j", tmp_path / "store", cluster={"env_vars": {"HF_TOKEN": SECRET}}, policy={"lr": 1e-3}
    )
    path = write_yaml(tmp_path, "j", data)
    assert main(["k8s", "render", str(path)]) == 2
    err = capsys.readouterr().err
    assert "cluster.env_vars" in err and "HF_TOKEN" in err and SECRET not in err
    assert main(["validate", str(path)]) == 2
    assert SECRET not in capsys.readouterr().err


def test_the_secret_forms() -> None:
    spec = parse_cluster(
        {
            "env_vars": {
                "OMP_NUM_THREADS": 1,
                "AWS_SECRET_ACCESS_KEY": {"secret": "s3-creds", "key": "secret-key"},
                "KEYBOARD_LAYOUT": {"value": "us", "secret": False},
            }
        }
    )
    assert spec.plain_env() == {"OMP_NUM_THREADS": "1", "KEYBOARD_LAYOUT": "us"}
    assert {n: (r.secret, r.key) for n, r in spec.secret_env().items()} == {
        "AWS_SECRET_ACCESS_KEY": ("s3-creds", "secret-key")
    }
    # The job file form loads back as the same section (job.yaml, the ConfigMap).
    assert ClusterSpec.model_validate(spec.model_dump(mode="json")) == spec
    for bad, words in (
        ({"secret": "Not_A_Name", "key": "k"}, "Kubernetes Secret name"),
        ({"value": SECRET, "secret": True}, "put it in a Kubernetes Secret"),
        ({"secret": "s"}, "{secret: <Kubernetes Secret>, key: <key>}"),
    ):
        with pytest.raises(ClusterError, match=words.replace("{", r"\{")) as caught:
            parse_cluster({"env_vars": {"X": bad}})
        assert SECRET not in str(caught.value)


def _env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _pods(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates of a RayJob or RayCluster."""
    spec = doc["spec"].get("rayClusterSpec", doc["spec"])
    return [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]


def test_secret_env_vars_render_as_secret_key_refs_and_validate(
    tmp_path: Path, capsys: Any
) -> None:
    cluster = {
        "env_vars": {
            "OMP_NUM_THREADS": "1",
            "WANDB_API_KEY": {"secret": "wandb", "key": "api-key"},
        }
    }
    data = tiny_job("sec", tmp_path / "store", cluster=cluster, policy={"lr": 3e-4})
    data["tracking"] = {"uri": "http://mlflow.internal:5000"}
    path = write_yaml(tmp_path, "sec", data)
    job = load_job(path)
    files = render(job, job.cluster or ClusterSpec(), with_raycluster=True)
    config_map, ray_job = files["rayjob-sec.yaml"]
    (ray_cluster,) = files["raycluster-sec.yaml"]
    for doc in (config_map, ray_job, ray_cluster):
        validate(yaml.safe_load(yaml.safe_dump(doc)))
    runtime_env = yaml.safe_load(ray_job["spec"]["runtimeEnvYAML"])["env_vars"]
    assert "WANDB_API_KEY" not in runtime_env and runtime_env["OMP_NUM_THREADS"] == "1"
    for doc in (ray_job, ray_cluster):
        for pod in _pods(doc):
            (container,) = pod["spec"]["containers"]
            ref = _env_of(container)["WANDB_API_KEY"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "wandb", "key": "api-key"}
            # Not the in-cluster server: no login of k8s/mlflow.yaml's added.
            assert "MLFLOW_TRACKING_PASSWORD" not in _env_of(container)
    # The CLI writes the same; the secret's value never existed on this side.
    assert main(["k8s", "render", str(path), "-o", str(tmp_path / "out")]) == 0
    assert "wandb" in (tmp_path / "out" / "rayjob-sec.yaml").read_text()


def test_a_tracking_uri_with_a_password_is_not_rendered_into_a_config_map(tmp_path: Path) -> None:
    data = tiny_job(
        "pw",
        tmp_path / "store",
        tracking={"uri": f"http://u:{SECRET}@mlflow:5000"},
        policy={"lr": 1e-3},
    )
    job = load_job(write_yaml(tmp_path, "pw", data))
    with pytest.raises(ClusterError, match="MLFLOW_TRACKING_PASSWORD") as caught:
        render(job, ClusterSpec())
    assert SECRET not in str(caught.value)


def test_submit_leaves_secret_env_vars_out_of_the_ray_job(tmp_path: Path) -> None:
    cluster = {
        "address": "http://127.0.0.1:8265",
        "env_vars": {"A": "1", "HF_TOKEN": {"secret": "hf", "key": "token"}},
        "install": "preinstalled",
    }
    data = tiny_job("sub", tmp_path / "store", cluster=cluster, policy={"lr": 3e-4})
    data["tracking"] = {"uri": "http://127.0.0.1:5000"}
    path = write_yaml(tmp_path / "proj", "sub", data)
    (tmp_path / "proj" / "pyproject.toml").write_text("[project]\nname='x'\n")
    sub = prepare_submission(path, env={})
    assert any("HF_TOKEN" in w and "Kubernetes Secret hf" in w for w in sub.warnings)
    runtime_env, packages = build_runtime_env(sub)
    assert packages == []  # install: preinstalled
    assert runtime_env["env_vars"] == {"A": "1", "RAY_JOB_STOP_WAIT_TIME_S": "60"}


# --- 3. the shipped MLflow server: login and network policy -----------------------------------


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def _rendered_pods(tmp_path: Path) -> list[dict[str, Any]]:
    data = tiny_job("netpol", tmp_path / "store", policy={"lr": 3e-4})
    data["tracking"] = {}  # unset: the job runs against k8s/mlflow.yaml's server
    job = load_job(write_yaml(tmp_path, "netpol", data))
    files = render(job, ClusterSpec(), with_raycluster=True)
    return [pod for docs in files.values() for doc in docs if "spec" in doc for pod in _pods(doc)]


def test_mlflow_needs_a_login_and_admits_only_lrtunes_ray_pods(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.server.auth.config as auth_config

    docs = {(d["kind"], d["metadata"]["name"]): d for d in _docs("mlflow.yaml")}
    deployment = docs["Deployment", "lrtune-mlflow"]
    pod = deployment["spec"]["template"]
    (server,) = pod["spec"]["containers"]
    assert "--app-name=basic-auth" in server["args"]
    env = _env_of(server)
    admin = {
        key: env[f"MLFLOW_AUTH_ADMIN_{key.upper()}"]["valueFrom"]["secretKeyRef"]
        for key in ("username", "password")
    }
    secret = admin["password"]["name"]
    assert admin == {k: {"name": secret, "key": k} for k in ("username", "password")}
    csrf = env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    assert csrf["name"] == secret  # the auth app refuses to start without it
    header = (K8S / "mlflow.yaml").read_text().split("\napiVersion", 1)[0]
    for key in ("username", "password", csrf["key"]):  # the Secret the header says to create
        assert f"--from-literal={key}=" in header
    # The auth app's ini: mounted where MLFLOW_AUTH_CONFIG_PATH points, and MLflow reads it.
    config_path = Path(env["MLFLOW_AUTH_CONFIG_PATH"]["value"])
    (mount,) = [m for m in server["volumeMounts"] if config_path.is_relative_to(m["mountPath"])]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    ini = docs["ConfigMap", volume["configMap"]["name"]]["data"][config_path.name]
    (tmp_path / "auth.ini").write_text(ini)
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(tmp_path / "auth.ini"))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_USERNAME", "lrtune")
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", SECRET)
    auth = auth_config.read_auth_config()
    assert (auth.admin_username, auth.admin_password) == ("lrtune", SECRET)
    assert auth.database_uri.startswith("sqlite:////mlartifacts/")  # on the kept volume
    mounts = [m["mountPath"] for m in server["volumeMounts"]]
    assert "/mlartifacts" in mounts
    # The policy: MLflow's pods, its port, only pods with the client label.
    policy = docs["NetworkPolicy", "lrtune-mlflow"]["spec"]
    selected = policy["podSelector"]["matchLabels"]
    assert selected.items() <= pod["metadata"]["labels"].items()
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    admitted = peer["podSelector"]["matchLabels"]
    port = server["ports"][0]["containerPort"]
    assert [p["port"] for p in rule["ports"]] == [port]
    assert docs["Service", "lrtune-mlflow"]["spec"]["ports"][0]["targetPort"] == port
    assert policy["policyTypes"] == ["Ingress"]
    postgres = docs["NetworkPolicy", "lrtune-postgres"]["spec"]["ingress"][0]["from"][0]
    assert postgres["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    # Every Ray pod lrtune renders or ships carries the label and logs in with that Secret.
    shipped = [d for name in ("raycluster.yaml", "rayjob.yaml") for d in _docs(name)]
    pods = _rendered_pods(tmp_path) + [p for d in shipped if "spec" in d for p in _pods(d)]
    assert len(pods) >= 7
    for ray_pod in pods:
        assert admitted.items() <= ray_pod["metadata"]["labels"].items()
        for container in ray_pod["spec"]["containers"]:
            login = _env_of(container)
            for var, key in (("USERNAME", "username"), ("PASSWORD", "password")):
                ref = login[f"MLFLOW_TRACKING_{var}"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": secret, "key": key}
    # And a pod without the label is not admitted (the selector is not empty).
    assert admitted and not admitted.items() <= deployment["metadata"]["labels"].items()


# --- 4. the Ray token over plain http ---------------------------------------------------------


def test_the_token_is_not_sent_over_plain_http_to_another_machine() -> None:
    token = AuthToken(TOKEN, "$RAY_AUTH_TOKEN", ())
    started = time.monotonic()
    with pytest.raises(ClusterError, match="--insecure") as caught:
        connect("http://10.255.255.1:8265", token, timeout_s=30)
    # 10.255.255.1 never answers: an attempted connection would have waited for the timeout.
    assert time.monotonic() - started < 2
    assert TOKEN not in str(caught.value) and "$RAY_AUTH_TOKEN" in str(caught.value)
    for fine in (
        "https://10.255.255.1:8265",
        "http://127.0.0.1:8265",
        "http://127.3.0.1:8265",
        "http://localhost:8265",
        "http://[::1]:8265",
    ):
        assert check_transport(fine, token) is None
    assert check_transport("http://10.255.255.1:8265", AuthToken(None, None, ())) is None
    warning = check_transport("http://10.255.255.1:8265", token, insecure=True)
    assert warning is not None and "plain http" in warning and TOKEN not in warning


def test_the_cli_refuses_plain_http_with_exit_2_before_connecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, fake_dashboard: Any
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    far = "http://10.255.255.1:8265"
    data = tiny_job("far", tmp_path / "store", tracking={"uri": "http://127.0.0.1:5000"})
    job = write_yaml(tmp_path, "far", {**data, "policy": {"lr": 3e-4}})
    started = time.monotonic()
    assert main(["submit", str(job), "--address", far]) == 2
    assert main(["jobs", "list", "--address", far]) == 2
    assert main(["jobs", "stop", "x", "--address", far]) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert err.count("--insecure") >= 3 and TOKEN not in err
    # Loopback needs no flag (the fake dashboard wants its own token).
    monkeypatch.setenv("RAY_AUTH_TOKEN", "good-token")
    assert main(["jobs", "list", "--address", fake_dashboard.url]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_password_in_a_set_override_never_reaches_the_entrypoint(tmp_path: Path) -> None:
    data = tiny_job("ov", tmp_path / "store", policy={"lr": 3e-4})
    data["tracking"] = {"uri": "http://127.0.0.1:5000"}
    path = write_yaml(tmp_path / "proj", "ov", data)
    with pytest.raises(ClusterError, match="entrypoint") as caught:
        prepare_submission(
            path, [f"tracking.uri=http://u:{SECRET}@10.0.0.5:5000"], cli_address="h:1", env={}
        )
    assert SECRET not in str(caught.value)
    sub = prepare_submission(path, ["tracking.uri=http://10.0.0.5:5000"], cli_address="h:1", env={})
    assert sub.entrypoint.endswith("--set tracking.uri=http://10.0.0.5:5000")
