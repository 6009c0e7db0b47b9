"""`compare` over MLflow records (synthetic stores shaped like lrtune's), its formats and CLI."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lrtune.analysis import (
    BUILTIN,
    AnchorError,
    CompareError,
    _records,
    compare,
    format_csv,
    format_json,
    format_table,
    load_experiment,
    metric_histories,
    parse_by,
    parse_overrides,
    task_anchors,
)
from lrtune.analysis._report import anchor_levels
from lrtune.cli import main
from lrtune.running import _finalize

RANDOM, REFERENCE, CEILING = BUILTIN["lrtune/RecSys-v0"][:3]


def cells(adam: float, sgd: float, n: int = 6) -> dict[tuple[str, str], list[float]]:
    rng = np.random.default_rng(0)
    out = {}
    for family in ("constant", "cosine"):
        out[(family, "adam")] = list(adam + rng.normal(0, 0.5, n))
        out[(family, "sgd")] = list(sgd + rng.normal(0, 0.5, n))
    return out


def test_tags_agree_between_running_tracking_and_analysis() -> None:
    import lrtune.tracking as tracking

    for name in ("TAG_FINALIST", "TAG_SOURCE_TRIAL", "TAG_TEST_SEED", "TAG_ROUND"):
        assert getattr(_finalize, name) == getattr(_records, name)
    for name in ("TAG_EXPERIMENT", "TAG_TRIAL_ID", "TAG_STATUS", "TAG_ROLE", "PARENT_TAG"):
        assert getattr(tracking, name) == getattr(_records, name)


def test_compare_trials_by_optimizer(in_tmp: Path, store: Any) -> None:
    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0))
    exp = load_experiment("exp")
    assert exp.env_id == "lrtune/RecSys-v0" and len(exp.trials()) == 24
    result = compare([exp], by=("optimizer",), reference="sgd", resamples=500)
    groups = {g.group: g for g in result.groups}
    assert set(groups) == {"adam", "sgd"}
    assert result.sources == {"exp": "trials"}
    assert any("winner's curse" in n for n in result.notes)
    adam, sgd = groups["adam"], groups["sgd"]
    assert adam.runs == 12 and adam.source == "trials"
    # Closed form: random -> 0, best observable baseline -> 1; the IQM commutes with that
    # affine map, so the normalised IQM is the raw IQM mapped.
    assert adam.raw_iqm == pytest.approx(40.0, abs=0.5)
    assert adam.raw_iqm is not None
    expected = (adam.raw_iqm - RANDOM) / (REFERENCE - RANDOM)
    assert adam.iqm.value == pytest.approx(expected, rel=1e-9)
    assert adam.iqm.low <= adam.iqm.value <= adam.iqm.high
    assert adam.improvement.value == pytest.approx(1.0)
    assert sgd.improvement.value == pytest.approx(0.5)
    assert adam.optimality_gap.value == pytest.approx(0.0)  # every adam run is above 1
    text = format_table(result)
    assert "adam" in text and "P(>sgd)" in text and "built-in table" in text
    ceiling = (CEILING - RANDOM) / (REFERENCE - RANDOM)  # the oracle, shown, not the reference
    assert f"ceiling {CEILING:g} = {ceiling:.2f} normalised (oracle" in text
    assert "best observable baseline: observable_myopic" in text
    tasks = json.loads(format_json(result))["tasks"]["lrtune/RecSys-v0"]
    assert tasks["normalised_ceiling"] == pytest.approx(ceiling)
    # The report's figures draw the same three levels, raw for one task, else normalised.
    raw = {"random": RANDOM, "reference": REFERENCE, "ceiling": CEILING}
    assert anchor_levels(result, normalised=False) == raw
    normalised = anchor_levels(result, normalised=True)
    assert normalised == {
        "random": 0.0, "reference": 1.0, "ceiling lrtune/RecSys-v0": pytest.approx(ceiling)
    }  # fmt: skip
    (importance,) = result.importances  # no Optuna study here: rebuilt from MLflow records
    assert importance.source == "MLflow trial records" and importance.method == "fanova"
    assert {"optimizer", "lr"} <= set(importance.values)
    assert sum(importance.values.values()) == pytest.approx(1.0)
    assert importance.values["optimizer"] == max(importance.values.values())


def test_finalists_are_preferred_and_grouped_by_two_keys(in_tmp: Path, store: Any) -> None:
    store(
        in_tmp,
        "exp",
        scores=cells(adam=40.0, sgd=15.0),
        finalists={("cosine", "adam"): [30.0, 31.0], ("constant", "sgd"): [20.0, 21.0]},
    )
    exp = load_experiment(str(in_tmp / "results" / "exp"))
    assert len(exp.finalists()) == 4
    result = compare([exp], by=parse_by("family,optimizer"), resamples=200)
    assert result.sources == {"exp": "finalists"}
    assert {g.group for g in result.groups} == {"cosine/adam", "constant/sgd"}
    assert all(g.source == "finalists" and g.configs == 1 for g in result.groups)
    assert result.reference == "cosine/adam"  # the highest IQM by default
    only_trials = compare([exp], by=("optimizer",), source="trials", resamples=100)
    assert only_trials.sources == {"exp": "trials"}


def test_statuses_diverged_counts_as_random_and_pruned_is_left_out(
    in_tmp: Path, store: Any
) -> None:
    store(
        in_tmp,
        "exp",
        scores={("constant", "adam"): [40.0] * 4},
        statuses={0: "diverged", 1: "pruned"},
    )
    result = compare([load_experiment("exp")], by=("optimizer",), resamples=100)
    (group,) = result.groups
    assert group.runs == 3 and group.diverged == 1 and group.excluded == {"pruned": 1}
    assert min(s.normalised for s in result.samples) == pytest.approx(0.0)


def test_two_tasks_are_normalised_before_aggregation(in_tmp: Path, store: Any) -> None:
    store(in_tmp, "recsys", scores={("constant", "adam"): [REFERENCE] * 3})
    store(in_tmp, "cartpole", scores={("constant", "adam"): [500.0] * 3}, env="CartPole-v1")
    exps = [load_experiment("recsys"), load_experiment("cartpole")]
    result = compare(exps, by=("optimizer",), random_override={"CartPole-v1": 20.0}, resamples=100)
    assert set(result.anchors) == {"lrtune/RecSys-v0", "CartPole-v1"}
    assert result.anchors["CartPole-v1"].reference == 475.0  # gymnasium's reward_threshold
    (group,) = result.groups
    assert group.tasks == 2 and group.raw_iqm is None
    cart = (500.0 - 20.0) / (475.0 - 20.0)
    assert sorted({round(s.normalised, 6) for s in result.samples}) == sorted({1.0, round(cart, 6)})


def test_formats_json_and_csv(in_tmp: Path, store: Any) -> None:
    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0, n=3))
    result = compare([load_experiment("exp")], by=("family",), resamples=100)
    data = json.loads(format_json(result))
    assert {g["group"] for g in data["groups"]} == {"constant", "cosine"}
    assert set(data["groups"][0]["iqm"]) == {"value", "low", "high"}
    assert data["tasks"]["lrtune/RecSys-v0"]["reference"] == REFERENCE
    rows = list(csv.DictReader(io.StringIO(format_csv(result))))
    assert len(rows) == 2 and float(rows[0]["iqm_low"]) <= float(rows[0]["iqm"])


def test_cli_compare_reads_the_store_named_by_summary(
    in_tmp: Path, store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0, n=3))
    assert (
        main(["compare", "exp", "--by", "optimizer", "--format", "json", "--resamples", "200"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["sources"] == {"exp": "trials"}
    # By name only, with the store given explicitly (as for a cluster's experiment).
    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    (in_tmp / "results" / "exp" / "summary.json").unlink()
    assert main(["compare", "exp", "--tracking-uri", uri, "--format", "csv"]) == 0
    assert "constant" in capsys.readouterr().out
    assert main(["compare", "nope", "--tracking-uri", uri]) == 2
    assert "no lrtune experiment 'nope'" in capsys.readouterr().err
    assert main(["compare", "exp", "--tracking-uri", uri, "--by", "colour"]) == 2
    assert main(["compare", "exp", "--tracking-uri", uri, "--reference", "zzz"]) == 2
    assert main(["compare", "exp", "--tracking-uri", uri, "--source", "finalists"]) == 2


def test_metric_histories_bulk_matches_the_public_per_run_reads(in_tmp: Path, store: Any) -> None:
    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0, n=2), points=30)
    exp = load_experiment("exp")
    ids = [r.run_id for r in exp.trials()]
    bulk = metric_histories(exp.tracking_uri, ids, "lr", max_points=1000)
    assert set(bulk) == set(ids)
    per_run: dict[str, list[tuple[int, float]]] = {}
    for run_id, step, value in _records._per_run(exp.tracking_uri, ids, "lr", 1000):
        per_run.setdefault(run_id, []).append((step, value))
    for run_id, (steps, values) in bulk.items():
        assert list(zip(steps.tolist(), values.tolist(), strict=True)) == per_run[run_id]
    sampled = metric_histories(exp.tracking_uri, ids, "lr", max_points=10)
    for steps, _ in sampled.values():
        assert len(steps) <= 10 and steps[0] == 33 and steps[-1] == 1000  # first, last kept


def test_reference_scores_and_overrides(in_tmp: Path) -> None:
    recsys = task_anchors("lrtune/RecSys-v0")
    assert (recsys.random, recsys.reference, recsys.ceiling) == (RANDOM, REFERENCE, CEILING)
    assert recsys.normalise(REFERENCE) == 1.0 and recsys.normalise(RANDOM) == 0.0
    assert recsys.normalised_ceiling == pytest.approx((CEILING - RANDOM) / (REFERENCE - RANDOM))
    assert task_anchors("lrtune.envs:lrtune/RecSys-v0").reference == REFERENCE
    cart = task_anchors("CartPole-v1")
    assert cart.reference == 475.0 and 5.0 < cart.random < 60.0
    assert cart.ceiling is None and cart.normalised_ceiling is None  # no oracle known
    assert "measured" in cart.random_source
    assert (in_tmp / "cache" / "random_scores.json").exists()  # cached for next time
    forced = task_anchors(
        "CartPole-v1", random_override={"*": 1.0}, reference_override={"CartPole-v1": 2.0}
    )
    assert (forced.random, forced.reference) == (1.0, 2.0)
    with pytest.raises(AnchorError, match="--reference-score"):
        task_anchors("Pendulum-v1", random_override={"*": -1200.0})
    with pytest.raises(AnchorError):
        task_anchors("lrtune/RecSys-v0", {"num_items": 50}, random_override={"*": 1.0})
    assert parse_overrides(["3", "a/B-v0=4.5"]) == {"*": 3.0, "a/B-v0": 4.5}
    with pytest.raises(AnchorError):
        parse_overrides(["x=y"])


def test_a_task_without_anchors_compares_in_its_own_units_and_alone(
    in_tmp: Path, store: Any
) -> None:
    """Pendulum-v1's spec has no reward_threshold, so there is no reference score: one such
    task compares on its raw scores (and says so); with another task, whose scores are
    normalised, the two share no scale and compare refuses, naming the fix."""
    store(in_tmp, "pend", scores=cells(adam=-300.0, sgd=-900.0), env="Pendulum-v1")
    pend = load_experiment("pend")
    result = compare([pend], by=("optimizer",), reference="sgd", resamples=300)
    groups = {g.group: g for g in result.groups}
    assert groups["adam"].iqm.value == pytest.approx(groups["adam"].raw_iqm, rel=1e-12)
    assert groups["adam"].improvement.value == pytest.approx(1.0)
    (anchors,) = result.anchors.values()
    assert not anchors.normalised
    text = format_table(result)
    assert "in the task's own units (not normalised" in text
    assert "pend: scores are not normalised: no reference score for Pendulum-v1" in text
    assert "random 0 (none)" not in text
    assert anchor_levels(result, normalised=False) == {}

    store(in_tmp, "recsys", scores=cells(adam=40.0, sgd=15.0))
    with pytest.raises(CompareError, match=r"2 tasks, and Pendulum-v1 has no normalisation"):
        compare([pend, load_experiment("recsys")], by=("optimizer",), resamples=300)
    given = compare(
        [pend, load_experiment("recsys")],
        by=("optimizer",),
        random_override={"Pendulum-v1": -1200.0},
        reference_override={"Pendulum-v1": -200.0},
        resamples=300,
    )
    assert all(a.normalised for a in given.anchors.values())


def test_a_random_score_that_cannot_be_measured_here_names_the_override() -> None:
    with pytest.raises(AnchorError, match=r"cannot be measured here, .* --random-score Thing-v0="):
        task_anchors("nosuchpkg.envs:Thing-v0", reference_override={"*": 1.0})


def test_parse_by_refuses_unknown_names() -> None:
    assert parse_by("family, optimizer") == ("family", "optimizer")
    with pytest.raises(CompareError):
        parse_by("family,colour")


def test_select_finalists_top_k_per_group() -> None:
    trials = [
        {"trial_id": "a", "status": "completed", "score": 5.0, "policy": {"lr": 1e-3}},
        {"trial_id": "b", "status": "completed", "score": 9.0, "policy": {"lr": 2e-3}},
        {
            "trial_id": "c",
            "status": "completed",
            "score": 1.0,
            "policy": {"lr": 1e-2, "optimizer": {"name": "sgd"}},
        },
        {"trial_id": "d", "status": "pruned", "score": 99.0, "policy": {"lr": 1e-3}},
        {"trial_id": "e", "status": "diverged", "score": -1e6, "policy": {"lr": 1.0}},
    ]
    assert [t["trial_id"] for _, t in _finalize.select_finalists(trials, 2, "max")] == ["b", "a"]
    per = _finalize.select_finalists(trials, 1, "max", ("optimizer",))
    assert [(g, t["trial_id"]) for g, t in per] == [("adam", "b"), ("sgd", "c")]
    assert [t["trial_id"] for _, t in _finalize.select_finalists(trials, 1, "min")] == ["c"]


def test_finalize_refuses_bad_requests(in_tmp: Path, store: Any) -> None:
    assert main(["finalize", "nope", "--top", "1", "--seeds", "1"]) == 2
    store(in_tmp, "exp", scores={("constant", "adam"): [1.0]})
    # A population run whose lineage.json is missing: refused, naming what it reads.
    with pytest.raises(_finalize.FinalizeError, match=r"lineage\.json.*population run"):
        _finalize.population_finalists(in_tmp / "results" / "exp", {"name": "exp"}, 1, "max")


def test_importance_method_auto_switches_to_ped_anova_for_many_trials() -> None:
    from lrtune.analysis._importance import resolve_method

    assert resolve_method("auto", 20) == "fanova"
    assert resolve_method("auto", 500) == "ped-anova"
    assert resolve_method("fanova", 500) == "fanova"


@pytest.mark.slow
def test_compare_and_histories_through_an_mlflow_server(
    in_tmp: Path, store: Any, monkeypatch: pytest.MonkeyPatch, mlflow_server_on: Any
) -> None:
    """The same records read through an `mlflow server` on 127.0.0.1 compare the same way, and
    bulk histories (including an answer cut at the cap, asked again in halves) match."""
    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0, n=3), points=30)
    with mlflow_server_on(f"sqlite:///{in_tmp / 'mlflow.db'}", cwd=in_tmp) as url:
        local = compare([load_experiment("exp")], by=("optimizer",), resamples=300)
        remote_exp = load_experiment("exp", url)
        remote = compare([remote_exp], by=("optimizer",), resamples=300)
        assert format_json(local) == format_json(remote)
        ids = [r.run_id for r in remote_exp.trials()]
        expected = metric_histories(f"sqlite:///{in_tmp / 'mlflow.db'}", ids, "lr", 1000)
        monkeypatch.setattr(_records, "BULK_MAX_RESULTS", 70)  # 30 points × 3 runs > 70
        got = metric_histories(url, ids, "lr", 1000)
        assert set(got) == set(expected)
        for run_id, (steps, values) in expected.items():
            assert got[run_id][0].tolist() == steps.tolist()
            assert got[run_id][1].tolist() == values.tolist()


def test_compare_says_what_it_is_doing_on_stderr_unless_quiet(
    in_tmp: Path, store: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0, n=3))
    args = ["compare", "exp", "--by", "optimizer", "--format", "json", "--resamples", "200"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["sources"] == {"exp": "trials"}  # stdout stays machine-readable
    progress = err.splitlines()
    assert progress[0] == "lrtune: reading exp from MLflow"
    assert any(line.startswith("lrtune: read experiment exp: ") for line in progress)
    assert any("200-resample bootstrap intervals" in line for line in progress)
    # -q after the command or before it: warnings only.
    for quiet in ([*args, "-q"], ["-q", *args]):
        assert main(quiet) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["sources"] == {"exp": "trials"} and err == ""
    assert main(["-v", *args]) == 0  # -v: at least as much as the default
    assert "200-resample bootstrap intervals" in capsys.readouterr().err


class _Terminal(io.StringIO):
    """Text written to stderr, which says it is a terminal (tqdm draws only on one)."""

    def isatty(self) -> bool:
        return True


def test_reading_histories_shows_progress_on_a_terminal_and_not_with_q(
    in_tmp: Path, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    store(in_tmp, "exp", scores=cells(adam=40.0, sgd=15.0, n=2), points=30)
    exp = load_experiment("exp")
    ids = [r.run_id for r in exp.trials()]
    logger = logging.getLogger("lrtune.analysis")
    before = logger.level
    try:
        for level, shown in ((logging.INFO, True), (logging.WARNING, False)):  # default, -q
            terminal = _Terminal()
            monkeypatch.setattr(sys, "stderr", terminal)
            logger.setLevel(level)
            metric_histories(exp.tracking_uri, ids, "lr")
            text = terminal.getvalue()
            done = "reading lr:" in text and f"/{len(ids)} [" in text
            assert done is shown, text
    finally:
        logger.setLevel(before)
