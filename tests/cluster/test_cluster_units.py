"""Fast tests: the cluster section, token lookup, address resolution, the checks before a
submission (against a fake dashboard), and the runtime environment a job gets."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lrtune.cli import main
from lrtune.cluster import (
    AuthToken,
    ClusterClient,
    ClusterError,
    build_runtime_env,
    check_cluster,
    connect,
    dashboard_url,
    find_token,
    parse_cluster,
    prepare_submission,
    redact,
    redact_uri,
    resolve_address,
    stage_user_package,
)
from lrtune.cluster._package import project_files
from lrtune.registry import LRTuneError
from lrtune.specs import SpecError

ROOT = Path(__file__).resolve().parents[2]
NO_ENV: dict[str, str] = {}


# --- the cluster: section ---------------------------------------------------------------------


def test_cluster_section_defaults_and_forms() -> None:
    spec = parse_cluster(None)
    assert spec.stop_wait_s == 60 and spec.install == "wheel" and spec.python == "python"
    spec = parse_cluster(
        {
            "address": "http://head:8265",
            "pip": "scikit-learn==1.6.1",  # one string is a list of one
            "env_vars": {"OMP_NUM_THREADS": 1, "FLAG": True},
            "entrypoint_resources": {"num_cpus": "1", "memory": "2e9", "resources": {"x": 1}},
            "stop_wait_s": "1.2e2",
        }
    )
    assert spec.pip == ("scikit-learn==1.6.1",)
    assert spec.env_vars == {"OMP_NUM_THREADS": "1", "FLAG": "true"}
    assert spec.stop_wait_s == 120
    assert spec.entrypoint_resources.submit_kwargs() == {
        "entrypoint_num_cpus": 1.0,
        "entrypoint_memory": 2_000_000_000,
        "entrypoint_resources": {"x": 1.0},
    }


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"adress": "x"}, ["cluster.adress", "unknown key"]),
        ({"env_vars": {"RAY_AUTH_TOKEN": "x"}}, ["cluster.env_vars", "request header"]),
        ({"env_vars": {"RAY_JOB_STOP_WAIT_TIME_S": "9"}}, ["stop_wait_s instead"]),
        ({"env_vars": {"1BAD": "x"}}, ["not an environment variable name"]),
        ({"stop_wait_s": 1}, ["cluster.stop_wait_s"]),
        ({"pip": [""]}, ["cluster.pip", "non-empty"]),
        ({"install": "maybe"}, ["cluster.install"]),
        ({"entrypoint_resources": {"num_cpus": -1}}, ["cluster.entrypoint_resources.num_cpus"]),
        ({"python": "python; rm -rf /"}, ["cluster.python"]),
    ],
)
def test_cluster_section_errors_name_the_field(raw: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ClusterError) as info:
        parse_cluster(raw, "jobs/x.yaml")
    text = str(info.value)
    assert text.startswith("jobs/x.yaml: invalid job: ")
    for word in words:
        assert word in text


# --- token lookup -----------------------------------------------------------------------------


def test_token_lookup_order_as_ray_does(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    path_file = tmp_path / "tok"
    path_file.write_text("from-path")
    env = {"RAY_AUTH_TOKEN": "from-env", "RAY_AUTH_TOKEN_PATH": str(path_file)}
    assert find_token(env, home).value == "from-env"
    assert find_token({"RAY_AUTH_TOKEN_PATH": str(path_file)}, home).value == "from-path"
    found = find_token({}, home)
    assert found.value == "from-home" and found.source == str(home / ".ray" / "auth_token")
    missing = find_token({"RAY_AUTH_TOKEN_PATH": str(tmp_path / "nope")}, tmp_path / "empty")
    assert missing.value is None
    assert "RAY_AUTH_TOKEN (unset)" in missing.where_looked()
    assert f"{tmp_path / 'nope'} (missing)" in missing.where_looked()
    assert "auth_token (missing)" in missing.where_looked()


def test_token_never_shows_in_repr_str_or_messages() -> None:
    token = AuthToken("s3cret-value", "$RAY_AUTH_TOKEN", ("$RAY_AUTH_TOKEN (set)",))
    assert "s3cret" not in repr(token) and "s3cret" not in str(token)
    assert token.headers() == {"Authorization": "Bearer s3cret-value"}
    assert redact("x s3cret-value y", token) == "x *** y"
    assert redact_uri("postgresql://u:pw@db:5432/m") == "postgresql://u:***@db:5432/m"
    assert redact_uri("http://mlflow:5000") == "http://mlflow:5000"


# --- addresses and connecting -------------------------------------------------------------------


def test_address_order_cli_then_env_then_job() -> None:
    env = {"RAY_ADDRESS": "http://env:8265"}
    assert resolve_address("cli:1", env, "http://job:8265") == ("http://cli:1", "--address")
    assert resolve_address(None, env, "http://job:8265")[0] == "http://env:8265"
    assert resolve_address(None, {}, "job:8265") == ("http://job:8265", "the job's cluster.address")
    with pytest.raises(ClusterError, match="no cluster address"):
        resolve_address(None, {}, None)
    with pytest.raises(ClusterError, match="dashboard"):
        dashboard_url("ray://head:10001")


def test_an_address_that_does_not_answer_fails_fast() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connection refused
        with pytest.raises(ClusterError, match=r"nothing answers at http://127\.0\.0\.1"):
            connect(f"127.0.0.1:{port}", AuthToken(None, None, ()), timeout_s=3)


def test_missing_token_says_where_lrtune_looked(fake_dashboard: Any, tmp_path: Path) -> None:
    token = find_token({}, tmp_path)
    with pytest.raises(ClusterError) as info:
        connect(fake_dashboard.url, token)
    text = str(info.value)
    assert "requires a token" in text and "$RAY_AUTH_TOKEN (unset)" in text
    assert str(tmp_path / ".ray" / "auth_token") in text


def test_rejected_token_names_its_source_and_never_the_token(fake_dashboard: Any) -> None:
    token = find_token({"RAY_AUTH_TOKEN": "wrong-token-value"})
    with pytest.raises(ClusterError) as info:
        connect(fake_dashboard.url, token)
    text = str(info.value)
    assert "rejected the token" in text and "$RAY_AUTH_TOKEN" in text
    assert "wrong-token-value" not in text


def test_good_token_is_sent_as_a_bearer_header(fake_dashboard: Any) -> None:
    client = connect(fake_dashboard.url, find_token({"RAY_AUTH_TOKEN": "good-token"}))
    assert client.ray_version == "2.60.0"
    assert len(client.nodes()) == 1
    assert all(h.get("Authorization") == "Bearer good-token" for _, h in fake_dashboard.requests)


def test_not_a_ray_dashboard(make_dashboard: Any) -> None:
    with make_dashboard(token=None, ray=False) as dash, pytest.raises(ClusterError, match="not a"):
        connect(dash.url, AuthToken(None, None, ()))


def test_the_cli_turns_cluster_problems_into_exit_2(
    fake_dashboard: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    assert main(["jobs", "list", "--address", fake_dashboard.url]) == 2
    assert "found none" in capsys.readouterr().err
    monkeypatch.setenv("RAY_AUTH_TOKEN", "nope-nope")
    assert main(["jobs", "status", "x", "--address", fake_dashboard.url]) == 2
    err = capsys.readouterr().err
    assert "rejected the token" in err and "nope-nope" not in err
    assert main(["jobs", "list"]) == 2
    assert "no cluster address" in capsys.readouterr().err


# --- the checks before submitting ---------------------------------------------------------------


def test_prepare_submission_builds_the_entrypoint(tmp_path: Path, job_file: Any) -> None:
    path = job_file(tmp_path / "proj" / "jobs", "tiny", cluster={"address": "head:8265"})
    (tmp_path / "proj" / "pyproject.toml").write_text("[project]\nname='x'\n")
    sub = prepare_submission(path, ["budget.trial_env_steps=384"], env=NO_ENV)
    assert sub.address == "http://head:8265"
    assert sub.working_dir == (tmp_path / "proj").resolve()  # the project, not the jobs folder
    assert sub.entrypoint == (
        "trap : TERM; python -m lrtune run jobs/tiny.yaml --set budget.trial_env_steps=384"
    )
    assert sub.job.budget.trial_env_steps == 384 and sub.experiment == "tiny"


def test_a_job_that_does_not_validate_is_refused(tmp_path: Path, job_file: Any) -> None:
    path = job_file(tmp_path, "bad", budget={"trial_env_steps": -1})
    with pytest.raises(SpecError, match=r"budget\.trial_env_steps"):
        prepare_submission(path, env={"RAY_ADDRESS": "http://h:1"})


def test_an_agent_that_cannot_act_in_the_env_is_refused_before_submitting(
    tmp_path: Path, job_file: Any
) -> None:
    """SAC on CartPole-v1 fails at the start of the run; `submit` says so here, not in the job's
    logs on the cluster."""
    path = job_file(tmp_path, "sac-cartpole", agent="sac", env={"id": "CartPole-v1"})
    with pytest.raises(SpecError, match=r"env\.id: 'CartPole-v1' has discrete actions"):
        prepare_submission(path, cli_address="h:1", env=NO_ENV)
    ok = job_file(tmp_path, "sac-pendulum", agent="sac", env={"id": "Pendulum-v1"})
    assert prepare_submission(ok, cli_address="h:1", env=NO_ENV).job.agent == "sac"


def test_local_tracking_needs_a_flag(tmp_path: Path, job_file: Any) -> None:
    path = job_file(tmp_path, "t", tracking={"uri": f"sqlite:///{tmp_path}/m.db"})
    with pytest.raises(ClusterError, match="--allow-local-tracking"):
        prepare_submission(path, cli_address="h:1", env=NO_ENV)
    assert prepare_submission(path, cli_address="h:1", allow_local_tracking=True, env=NO_ENV)
    unset = job_file(tmp_path, "u", tracking={})
    sub = prepare_submission(unset, cli_address="h:1", allow_local_tracking=True, env=NO_ENV)
    assert any("tracking.uri is unset" in w for w in sub.warnings)
    for uri in ("http://mlflow:5000", "postgresql+psycopg://u:p@db/m", "databricks"):
        ok = job_file(tmp_path, "r", tracking={"uri": uri})
        assert prepare_submission(ok, cli_address="h:1", env=NO_ENV).tracking_uri == uri


def test_relative_storage_is_refused(tmp_path: Path, job_file: Any) -> None:
    path = job_file(tmp_path, "rel", storage_path="ray_results")
    with pytest.raises(ClusterError, match="storage_path 'ray_results' is relative"):
        prepare_submission(path, cli_address="h:1", env=NO_ENV)


def test_files_the_job_names_must_travel_with_it(tmp_path: Path, job_file: Any) -> None:
    outside = tmp_path / "elsewhere" / "p.yaml"
    outside.parent.mkdir()
    outside.write_text("lr: 1e-3\n")
    path = job_file(tmp_path / "proj", "ref", policy=str(outside))
    with pytest.raises(ClusterError, match="would not be found on the cluster"):
        prepare_submission(path, cli_address="h:1", env=NO_ENV)
    inside = tmp_path / "proj" / "p.yaml"
    inside.write_text("lr: 1e-3\n")
    ok = job_file(tmp_path / "proj", "ref2", policy="p.yaml")
    assert prepare_submission(ok, cli_address="h:1", env=NO_ENV).job.policy is not None


def _client(nodes: int, jobs: list[Any]) -> ClusterClient:
    client = ClusterClient(
        address="http://h:1",
        token=AuthToken(None, None, ()),
        ray_version="2.60.0",
        client=SimpleNamespace(list_jobs=lambda: jobs),
    )
    client.nodes = lambda: [
        {"node_id": str(i), "resources_total": {"CPU": 2}} for i in range(nodes)
    ]  # type: ignore[method-assign]
    return client


def test_local_storage_on_a_multi_node_cluster_needs_a_flag(tmp_path: Path, job_file: Any) -> None:
    sub = prepare_submission(job_file(tmp_path, "s"), cli_address="h:1", env=NO_ENV)
    assert len(check_cluster(sub, _client(1, []))) == 1  # one node: local is shared
    with pytest.raises(ClusterError, match="--allow-local-storage"):
        check_cluster(sub, _client(2, []))
    assert len(check_cluster(sub, _client(2, []), allow_local_storage=True)) == 2


def test_the_same_experiment_running_twice_is_refused(tmp_path: Path, job_file: Any) -> None:
    sub = prepare_submission(job_file(tmp_path, "twice"), cli_address="h:1", env=NO_ENV)
    meta = {"lrtune.job_hash": sub.job_hash, "lrtune.storage_path": sub.storage_path}

    def job(status: str) -> Any:
        return SimpleNamespace(
            metadata=meta,
            status=SimpleNamespace(value=status),
            submission_id="lrtune-twice-1",
            start_time=1,
        )

    check_cluster(sub, _client(1, [job("SUCCEEDED"), job("STOPPED")]))
    with pytest.raises(ClusterError, match="already running on the cluster as job lrtune-twice-1"):
        check_cluster(sub, _client(1, [job("RUNNING")]))


def test_gpu_trials_on_a_cluster_without_gpus_warn(tmp_path: Path, job_file: Any) -> None:
    path = job_file(tmp_path, "g", resources={"cpus": 1, "gpus": 0.25})
    sub = prepare_submission(path, cli_address="h:1", env=NO_ENV)
    check_cluster(sub, _client(1, []))
    assert any("no node has a GPU" in w for w in sub.warnings)


# --- the runtime environment --------------------------------------------------------------------


def test_runtime_env_excludes_outputs_and_sets_the_stop_wait(tmp_path: Path, job_file: Any) -> None:
    proj = tmp_path / "proj"
    (proj / "pkg_a").mkdir(parents=True)
    (proj / "pkg_a" / "__init__.py").write_text("")
    (proj / "single.py").write_text("X = 1\n")
    path = job_file(
        proj,
        "env",
        store=proj / "out",
        cluster={
            "install": "preinstalled",
            "py_modules": ["pkg_a", "single.py"],
            "pip": ["six"],
            "env_vars": {"A": "1"},
            "working_dir_excludes": ["data/"],
            "stop_wait_s": 90,
        },
    )
    sub = prepare_submission(path, cli_address="h:1", env=NO_ENV)
    env, packages = build_runtime_env(sub)
    assert env["working_dir"] == str(proj.resolve())
    assert {"/out/ray_results/", "/out/results/", "data/", ".venv/", "mlruns/"} <= set(
        env["excludes"]
    )
    assert env["env_vars"] == {"A": "1", "RAY_JOB_STOP_WAIT_TIME_S": "90"}
    assert env["pip"] == {"packages": ["six"], "pip_check": False}
    assert env["py_modules"] == [str(proj / "pkg_a"), str(proj / "single.py")]
    assert [p.label for p in packages] == ["pkg_a (package folder)", "single.py (module)"]
    assert "RAY_AUTH_TOKEN" not in str(env)


def test_a_user_wheel_is_unpacked_with_its_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRTUNE_CACHE_DIR", str(tmp_path / "cache"))
    wheel = tmp_path / "acme_lr-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("acme_lr/__init__.py", "VALUE = 7\n")
        zf.writestr("acme_lr-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: acme-lr\n")
        zf.writestr(
            "acme_lr-1.0.dist-info/entry_points.txt",
            "[lrtune.schedules]\nacme = acme_lr:Halving\n",
        )
        zf.writestr("acme_lr-1.0.data/scripts/tool", "#!/bin/sh\n")
    staged = stage_user_package(wheel)
    names = [Path(m).name for m in staged.modules]
    assert names == ["acme_lr", "acme_lr-1.0.dist-info"]  # .data left out
    assert staged.label == "acme_lr 1.0 (wheel)"
    assert stage_user_package(wheel).modules == staged.modules  # cached
    # What a node does with these: put their folder on the path; the entry point is found.
    folder = Path(staged.modules[0]).parent
    code = (
        "import importlib.metadata as m, acme_lr;"
        "print(acme_lr.VALUE, [e.name for e in m.entry_points(group='lrtune.schedules')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "7 ['acme']"
    bad = tmp_path / "nothing"
    bad.mkdir()
    with pytest.raises(ClusterError, match="neither a project"):
        stage_user_package(bad)


def test_project_files_skip_caches_venvs_and_results(tmp_path: Path) -> None:
    for rel in (
        "pkg/__init__.py",
        "pkg/__pycache__/x.pyc",
        ".venv/bin/python",
        "results/r.json",
        "mlflow.db",
        "pyproject.toml",
        "a.egg-info/PKG-INFO",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert sorted(rel for rel, _ in project_files(tmp_path)) == [
        "pkg/__init__.py",
        "pyproject.toml",
    ]


def test_cli_help_lists_the_cluster_commands(capsys: Any) -> None:
    for argv in (["submit", "--help"], ["jobs", "--help"], ["k8s", "render", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--allow-local-storage" in text and "--gpus-per-trial" in text
    with pytest.raises(SystemExit):
        main(["submit", "x.yaml", "--follow", "--no-wait"])  # one or the other


def test_lrtune_error_is_the_base(tmp_path: Path) -> None:
    assert issubclass(ClusterError, LRTuneError)


@pytest.mark.slow
def test_lrtune_ships_as_a_wheel_with_its_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reaches the nodes: lrtune's package and dist-info, built from this checkout now,
    importable from the folder Ray puts on PYTHONPATH ahead of any installed lrtune."""
    from lrtune.cluster import stage_lrtune

    monkeypatch.setenv("LRTUNE_CACHE_DIR", str(tmp_path / "cache"))
    staged = stage_lrtune()
    names = sorted(Path(m).name for m in staged.modules)
    assert (
        names[0] == "lrtune" and names[1].startswith("lrtune-") and names[1].endswith(".dist-info")
    )
    assert "(wheel, built now)" in staged.label
    assert stage_lrtune().label.endswith("(wheel, cached)")
    folder = Path(staged.modules[0]).parent
    assert not (folder / "lrtune" / "cli" / "__pycache__").exists()
    code = (
        "import importlib.metadata as m, lrtune;"
        "print(lrtune.__file__); print(m.distribution('lrtune').locate_file(''))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(folder)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    module_file, dist_root = out.stdout.split()
    assert Path(module_file).is_relative_to(folder) and Path(dist_root) == folder


def test_submit_fails_fast_with_exit_2(
    tmp_path: Path, job_file: Any, fake_dashboard: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import socket

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_TOKEN", "good-token")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    good = job_file(tmp_path, "ok")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
        assert main(["submit", str(good), "--address", dead]) == 2
    assert "nothing answers" in capsys.readouterr().err
    bad = job_file(tmp_path, "bad", agent="td3")
    assert main(["submit", str(bad), "--address", fake_dashboard.url]) == 2
    assert "agent" in capsys.readouterr().err
    fake_dashboard.nodes = [{"node_id": "a"}, {"node_id": "b"}]
    assert main(["submit", str(good), "--address", fake_dashboard.url]) == 2
    assert "--allow-local-storage" in capsys.readouterr().err
    monkeypatch.setenv("RAY_AUTH_TOKEN", "bad-token")
    assert main(["submit", str(good), "--address", fake_dashboard.url]) == 2
    err = capsys.readouterr().err
    assert "rejected the token" in err and "bad-token" not in err


def test_a_job_file_in_an_excluded_folder_is_refused(tmp_path: Path, job_file: Any) -> None:
    proj = tmp_path / "proj"
    (proj / ".git").mkdir(parents=True)
    path = job_file(proj / "results" / "old", "best", cluster={"install": "preinstalled"})
    sub = prepare_submission(path, cli_address="h:1", env=NO_ENV)
    with pytest.raises(ClusterError, match="not uploaded"):
        build_runtime_env(sub)


@pytest.mark.parametrize(
    ("rel", "pattern", "hit"),
    [
        ("results/a/job.yaml", "results/", True),
        ("jobs/results.yaml", "results/", False),
        ("out/ray_results/x.yaml", "/out/ray_results/", True),
        ("jobs/x.yaml", "/out/ray_results/", False),
        ("a/mlflow.db", "mlflow.db", True),
        ("x.egg-info/PKG", "*.egg-info/", True),
        ("jobs/x.yaml", "*.pyc", False),
    ],
)
def test_exclude_patterns(rel: str, pattern: str, hit: bool) -> None:
    from lrtune.cluster._submit import _excluded

    assert _excluded(rel, pattern) is hit
