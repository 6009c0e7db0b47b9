"""Synthetic MLflow records shaped like lrtune's (parent run, nested trial and finalist runs)."""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

FAMILIES = ("constant", "cosine")
OPTIMIZERS = ("adam", "sgd")


_TEMPLATE: list[Path] = []


def _empty_store() -> Path:
    """An initialised, empty MLflow sqlite store (made once per session: migrations are slow)."""
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="lrtune-mlflow-template-"))
        atexit.register(shutil.rmtree, folder, True)
        MlflowClient(f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
        _TEMPLATE.append(folder / "mlflow.db")
    return _TEMPLATE[0]


def make_experiment(
    folder: Path,
    name: str,
    *,
    scores: dict[tuple[str, str], Sequence[float]],
    finalists: dict[tuple[str, str], Sequence[float]] | None = None,
    env: str = "lrtune/RecSys-v0",
    points: int = 5,
    budget: int = 1000,
    statuses: dict[int, str] | None = None,
) -> Path:
    """A results folder and an MLflow store with one parent run and its children.

    ``scores[(family, optimizer)]`` lists the final scores of that cell's trials; each trial
    gets ``points`` metric points of score, episode_return_mean and lr up to ``budget``.
    """
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    if not (folder / "mlflow.db").exists():
        shutil.copyfile(_empty_store(), folder / "mlflow.db")
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(name)
    exp_id = found.experiment_id if found else client.create_experiment(name)
    parent = client.create_run(
        exp_id,
        run_name=name,
        tags={"lrtune.role": "experiment", "lrtune.experiment": name},
    ).info.run_id
    job = {
        "version": 1,
        "name": name,
        "agent": "dqn",
        "env": {"id": env, "config": {}},
        "budget": {"trial_env_steps": budget},
        "metric": {"name": "env_runners/episode_return_mean", "mode": "max"},
        "seeds": {"tuning": [0], "test": [1000, 1001, 1002]},
    }
    results = folder / "results" / name
    results.mkdir(parents=True, exist_ok=True)
    (results / "job.yaml").write_text(yaml.safe_dump(job))
    client.log_artifact(parent, str(results / "job.yaml"))
    best = dict(job, name=f"{name}-best", policy={"lr": 1e-3})
    (results / "best.yaml").write_text(yaml.safe_dump(best))
    client.log_artifact(parent, str(results / "best.yaml"))
    index = 0
    trials = []
    for role, table in (("trial", scores), ("finalist", finalists or {})):
        for (family, optimizer), values in table.items():
            for k, value in enumerate(values):
                status = (
                    (statuses or {}).get(index, "completed") if role == "trial" else "completed"
                )
                lr = 1e-3 * (1 + index % 5)
                tags = {
                    "mlflow.parentRunId": parent,
                    "lrtune.role": role,
                    "lrtune.trial_id": f"t{index:05d}",
                    "lrtune.status": status,
                    "schedule_family": family,
                    "optimizer": optimizer,
                    "gating": "none",
                    "feedback": "none",
                    "baseline": "false",
                    "lrtune.policy": f"{optimizer} {lr:.0e} {family}",
                }
                if role == "finalist":
                    tags.update(
                        {
                            "lrtune.finalist": "true",
                            "lrtune.source_trial": f"src-{family}-{optimizer}",
                            "lrtune.test_seed": str(1000 + k),
                            "lrtune.finalize_round": "20260101T000000",
                        }
                    )
                run = client.create_run(exp_id, run_name=f"{role}_{index}", tags=tags)
                params = {
                    "policy.lr": lr,
                    "policy.schedule.name": family,
                    "policy.optimizer.name": optimizer,
                    "seeds": "0",
                }
                now = int(time.time() * 1000)
                metrics = []
                for i in range(1, points + 1):
                    step = int(budget * i / points)
                    frac = i / points
                    metrics += [
                        Metric("score", value * frac, now, step),
                        Metric("episode_return_mean", value * frac, now, step),
                        Metric("lr", lr * (1 - 0.5 * frac), now, step),
                    ]
                for start in range(0, len(metrics), 900):
                    client.log_batch(
                        run.info.run_id,
                        metrics=metrics[start : start + 900],
                        params=[Param(k, str(v)) for k, v in params.items()] if start == 0 else [],
                        tags=[RunTag("x", "y")] if start == 0 else [],
                    )
                client.set_terminated(run.info.run_id)
                trials.append(
                    {
                        "trial_id": f"t{index:05d}",
                        "status": status,
                        "score": value,
                        "policy": {"lr": lr},
                    }
                )
                index += 1
    client.set_terminated(parent)
    summary = {
        "name": name,
        "tracking_uri": uri,
        "parent_run_id": parent,
        "metric": {"name": "env_runners/episode_return_mean", "mode": "max"},
        "trials": trials,
    }
    (results / "summary.json").write_text(json.dumps(summary))
    return results


@pytest.fixture()
def store() -> Any:
    """`make_experiment`, as a fixture."""
    return make_experiment


@pytest.fixture()
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run in a temporary folder (``./results`` and caches land there)."""
    old = Path.cwd()
    os.chdir(tmp_path)
    old_cache = os.environ.get("LRTUNE_CACHE_DIR")
    os.environ["LRTUNE_CACHE_DIR"] = str(tmp_path / "cache")
    try:
        yield tmp_path
    finally:
        os.chdir(old)
        if old_cache is None:
            os.environ.pop("LRTUNE_CACHE_DIR", None)
        else:
            os.environ["LRTUNE_CACHE_DIR"] = old_cache


def spread(centre: float, n: int, width: float = 1.0, seed: int = 0) -> list[float]:
    """``n`` scores around ``centre``."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in centre + width * rng.standard_normal(n)]


# --- headless Chromium over the DevTools protocol (--remote-debugging-pipe) ---------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The browser's own background traffic (it still asks google.com for the time) must not
    # leave the machine; the page's requests are watched through the DevTools protocol.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1200,1600",
]


def chromium_binary() -> str | None:
    """Debian's chromium, if installed."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


class PageVisit:
    """What a page did when opened: requests, console errors, images, a screenshot."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.images: list[dict[str, Any]] = []
        self.screenshot: bytes = b""


def visit(url: str, user_data_dir: Path, timeout: float = 60.0) -> PageVisit:
    """Open ``url`` in headless Chromium (DevTools protocol over a pipe) and record what the page
    requested (every ``Network.requestWillBeSent`` of its target), its console errors and
    exceptions, each image's ``complete``/``naturalWidth``, and a PNG screenshot."""
    import base64
    import subprocess

    binary = chromium_binary()
    assert binary is not None, "chromium is not installed (bash .ci/setup.sh installs it)"
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    os.set_inheritable(to_browser_r, True)
    os.set_inheritable(from_browser_w, True)

    def child_fds() -> None:
        os.dup2(to_browser_r, 3)
        os.dup2(from_browser_w, 4)

    proc = subprocess.Popen(
        [
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={user_data_dir}",
            "--remote-debugging-pipe",
            "about:blank",
        ],
        preexec_fn=child_fds,
        pass_fds=(3, 4),  # kept open after preexec_fn put the pipes there
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_browser_r)
    os.close(from_browser_w)
    writer = os.fdopen(to_browser_w, "wb", buffering=0)
    reader = os.fdopen(from_browser_r, "rb", buffering=0)
    buffer = b""
    events: list[dict[str, Any]] = []
    counter = [0]
    deadline = time.monotonic() + timeout

    def read_message() -> dict[str, Any]:
        nonlocal buffer
        while b"\0" not in buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = reader.read(65536)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            buffer += chunk
        raw, _, buffer = buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        counter[0] += 1
        message: dict[str, Any] = {"id": counter[0], "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        writer.write(json.dumps(message).encode() + b"\0")
        while True:
            reply = read_message()
            if reply.get("id") == counter[0]:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            events.append(reply)

    page = PageVisit()
    try:
        target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            send(f"{domain}.enable", session=session)
        send("Page.navigate", {"url": url}, session=session)
        loaded = False
        while not loaded:
            loaded = any(e.get("method") == "Page.loadEventFired" for e in events)
            if not loaded:
                events.append(read_message())
        time.sleep(0.5)  # late console messages
        page.images = send(
            "Runtime.evaluate",
            {
                "expression": "Array.from(document.images).map(i => ({complete: i.complete, "
                "width: i.naturalWidth, height: i.naturalHeight}))",
                "returnByValue": True,
            },
            session=session,
        )["result"]["value"]
        shot = send("Page.captureScreenshot", {"format": "png"}, session=session)
        page.screenshot = base64.b64decode(shot["data"])
        for e in events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Network.requestWillBeSent":
                page.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "assert",
            ):
                page.console_errors.append(str(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                page.console_errors.append(str(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                page.console_errors.append(str(params["entry"].get("text")))
        try:
            send("Browser.close")
        except RuntimeError:
            pass
    finally:
        writer.close()
        reader.close()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
            proc.wait()
    return page


def blank(png: bytes) -> bool:
    """Whether a PNG is a single colour."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(io.BytesIO(png), format="png")
    return bool(np.ptp(pixels[..., :3]) == 0)


@pytest.fixture()
def browser() -> Any:
    """`visit`, as a fixture."""
    return visit


@pytest.fixture()
def is_blank() -> Any:
    """`blank`, as a fixture."""
    return blank


@pytest.fixture()
def spread_scores() -> Any:
    """`spread`, as a fixture."""
    return spread
