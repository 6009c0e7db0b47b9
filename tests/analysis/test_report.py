"""`report`: a self-contained HTML page (checked in headless Chromium) and Markdown with PNGs;
`finalize` on a real small experiment (slow)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient

from job_helpers import TINY_PPO  # type: ignore[import-not-found]
from lrtune.analysis import build_report, compare, load_experiment
from lrtune.cli import main

needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Debian chromium is not installed (.ci/setup.sh as root)",
)
EXTERNAL = re.compile(
    r"""(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*(?!data:)[a-z]+:""", re.IGNORECASE
)


def demo_store(folder: Path, store: Any, spread: Any) -> None:
    scores = {
        (family, optimizer): spread(30.0 if optimizer == "adam" else 20.0, 4, 3.0, i)
        for i, (family, optimizer) in enumerate(
            [(f, o) for f in ("constant", "cosine") for o in ("adam", "sgd")]
        )
    }
    store(folder, "demo", scores=scores, points=12)


def test_report_html_is_self_contained_and_logged(
    in_tmp: Path, store: Any, spread_scores: Any
) -> None:
    demo_store(in_tmp, store, spread_scores)
    exp = load_experiment("demo")
    result = compare([exp], by=("optimizer",), resamples=200)
    report = build_report([exp], result, in_tmp / "out" / "report.html")
    text = report.path.read_text()
    assert text.count('src="data:image/png;base64,') == 5  # curves, lr, scores, importance, search
    assert not EXTERNAL.search(text)
    assert "<script" not in text and "<link" not in text and "@import" not in text
    assert "best.yaml" in text and "policy:" in text  # the best configuration, runnable
    client = MlflowClient(exp.tracking_uri)
    logged = [a.path for a in client.list_artifacts(exp.parent_run_id, "report")]
    assert logged == ["report/report.html"]


def test_report_markdown_writes_pngs_beside_it(
    in_tmp: Path, store: Any, spread_scores: Any
) -> None:
    demo_store(in_tmp, store, spread_scores)
    out = in_tmp / "md" / "report.md"
    assert main(["report", "demo", "--by", "family", "-o", str(out), "--no-log"]) == 0
    text = out.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 5
    for image in images:
        assert (out.parent / image).read_bytes().startswith(b"\x89PNG")
    assert "| group |" in text


@needs_chromium
def test_browser_harness_detects_requests_console_errors_and_broken_images(
    tmp_path: Path, browser: Any
) -> None:
    """The checks below would catch a report that fetched something (positive control)."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="http://example.invalid/x.png"><script>console.error("boom")'
        "</script></body></html>"
    )
    seen = browser(page.as_uri(), tmp_path / "profile")
    assert any(u.startswith("http://example.invalid") for u in seen.requests)
    assert any("boom" in e for e in seen.console_errors)
    assert seen.images == [{"complete": True, "width": 0, "height": 0}]


def _check_in_browser(path: Path, profile: Path, browser: Any, is_blank: Any) -> None:
    seen = browser(path.as_uri(), profile)
    assert seen.requests[0] == path.as_uri()
    outside = [u for u in seen.requests if not u.startswith(("data:", "file:"))]
    assert outside == [], f"the report made requests: {outside}"
    assert seen.console_errors == []
    assert seen.images and all(i["complete"] and i["width"] > 0 for i in seen.images)
    assert not is_blank(seen.screenshot)


# --- a real small experiment -----------------------------------------------------------------

SPACE = {
    "version": 1,
    # Rates large enough to move the orthogonally initialised policy (output gain 0.01) within
    # two tiny iterations, so the trials' scores differ and the study has an importance.
    "lr": {"distribution": "log_uniform", "low": 3e-3, "high": 1e-1},
    "schedule": {"constant": {}, "cosine": {"min_factor": 0.1}},
    "optimizer": {"adam": {}},
}


@pytest.mark.slow
@needs_chromium
def test_finalize_compare_report_on_a_real_experiment(
    in_tmp: Path,
    ray_session: Any,
    capsys: pytest.CaptureFixture[str],
    browser: Any,
    is_blank: Any,
) -> None:
    from lrtune.running import run_job
    from lrtune.running._finalize import finalize
    from lrtune.specs import load_job

    job = {
        "version": 1,
        "name": "real",
        "agent": "ppo",
        "env": {"id": "CartPole-v1"},
        "budget": {"trial_env_steps": 256},
        "trials": {"num": 3, "max_concurrent": 2, "max_failures": 0},
        "seeds": {"tuning": [0], "test": [100, 101]},
        "scheduler": {"name": "none"},
        "search": {"seed": 3},
        "space": SPACE,
        "hyperparams": TINY_PPO,
        "storage_path": str(in_tmp / "ray_results"),
        "results_dir": str(in_tmp / "results"),
        "tracking": {"uri": f"sqlite:///{in_tmp / 'mlflow.db'}"},
    }
    (in_tmp / "real.yaml").write_text(yaml.safe_dump(job))
    outcome = run_job(load_job(in_tmp / "real.yaml"), stream=io.StringIO())
    assert outcome.exit_code == 0

    out = io.StringIO()
    final = finalize("real", top=2, seeds=2, stream=out)
    assert final.exit_code == 0, out.getvalue()
    table = out.getvalue()
    assert "search" in table and "test mean" in table and "winner's curse" in table
    assert len(final.finalists) == 2
    assert all(len(f.test_scores) == 2 for f in final.finalists)

    exp = load_experiment("real")
    finalists = exp.finalists()
    assert len(finalists) == 4 and len(exp.trials()) == 3
    sources = {t.trial_id for t in exp.trials()}
    for run in finalists:
        assert run.tags["mlflow.parentRunId"] == exp.parent_run_id
        assert run.tags["lrtune.role"] == "finalist" and run.tags["finalist"] == "true"
        assert run.tags["lrtune.source_trial"] in sources
        assert run.tags["lrtune.test_seed"] in {"100", "101"}
        assert run.params["seeds"] in {"100", "101"}
        assert run.status == "completed" and run.score is not None
    saved = json.loads((in_tmp / "results" / "real" / "finalists.json").read_text())
    assert saved["seeds"] == [100, 101]

    assert (
        main(["compare", "real", "--by", "family", "--format", "json", "--resamples", "200"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["sources"] == {"real": "finalists"}
    assert sum(g["runs"] for g in data["groups"]) == 4
    assert data["tasks"]["CartPole-v1"]["reference"] == 475.0
    (importance,) = data["importance"]  # from the search's own Optuna study
    assert importance["source"] == "optuna study" and importance["trials"] == 3

    report = in_tmp / "report.html"
    assert main(["report", "real", "--by", "family", "-o", str(report), "--resamples", "200"]) == 0
    html = report.read_text()
    assert not EXTERNAL.search(html)
    assert html.count('src="data:image/png;base64,') >= 4
    _check_in_browser(report, in_tmp / "chromium-profile", browser, is_blank)
    client = MlflowClient(exp.tracking_uri)
    assert [a.path for a in client.list_artifacts(exp.parent_run_id, "report")] == [
        "report/report.html"
    ]
    shutil.rmtree(in_tmp / "chromium-profile", ignore_errors=True)
