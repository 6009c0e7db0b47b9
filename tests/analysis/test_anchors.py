"""The normalisation anchors `compare` uses equal what `lrtune baselines` computes."""

from __future__ import annotations

import json

import pytest

from lrtune.analysis import task_anchors
from lrtune.analysis._reference import (
    BUILTIN,
    BUILTIN_BASELINES,
    BUILTIN_CEILING,
    BUILTIN_OBSERVABLE,
    BUILTIN_RANDOM,
    BUILTIN_SEED,
    BUILTIN_SESSIONS,
)
from lrtune.cli import main
from lrtune.cli._baselines import DEFAULT_SEED, DEFAULT_SESSIONS

#: The built-in anchors are the command's means rounded to two decimals: they may differ from
#: them by half a hundredth, no more (far inside the 95 % sampling intervals, checked below).
ROUNDING = 0.005


def _baselines_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["baselines", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("env_id", sorted(BUILTIN))
def test_builtin_anchors_equal_the_baselines_command(
    env_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    picks = [arg for name in BUILTIN_BASELINES for arg in ("--baseline", name)]
    table = _baselines_json(
        capsys, env_id, "--sessions", str(BUILTIN_SESSIONS), "--seed", str(BUILTIN_SEED), *picks
    )
    assert (table["sessions"], table["seed"]) == (BUILTIN_SESSIONS, BUILTIN_SEED)
    rows = {row["name"]: row for row in table["rows"]}
    # The reference is the best of the baselines a real system could run, not the oracle.
    best = max(BUILTIN_OBSERVABLE, key=lambda name: rows[name]["clicks_mean"])
    anchors = task_anchors(env_id, measure=False)  # what `compare` normalises with
    assert BUILTIN[env_id].reference_baseline == best
    assert best in anchors.reference_source
    assert anchors.ceiling is not None
    for anchor, name in (
        (anchors.random, BUILTIN_RANDOM),
        (anchors.reference, best),
        (anchors.ceiling, BUILTIN_CEILING),
    ):
        row = rows[name]
        assert abs(anchor - row["clicks_mean"]) <= ROUNDING, (env_id, name, anchor, row)
        assert ROUNDING < (row["clicks_high"] - row["clicks_low"]) / 2
    assert f"{BUILTIN_SESSIONS} sessions, seed {BUILTIN_SEED}" in anchors.random_source
    # Closed form: the ceiling sits at (oracle - random) / (best observable - random).
    expected = (rows[BUILTIN_CEILING]["clicks_mean"] - rows[BUILTIN_RANDOM]["clicks_mean"]) / (
        rows[best]["clicks_mean"] - rows[BUILTIN_RANDOM]["clicks_mean"]
    )
    assert anchors.normalised_ceiling == pytest.approx(expected, rel=0.01)
    # The table's own normalised column: random 0, best observable 1, the ceiling as above.
    assert rows[BUILTIN_RANDOM]["normalised"] == 0.0 and rows[best]["normalised"] == 1.0
    assert rows[BUILTIN_CEILING]["normalised"] == pytest.approx(expected, rel=1e-9)


def test_command_defaults_are_the_anchor_protocol() -> None:
    assert (DEFAULT_SESSIONS, DEFAULT_SEED) == (BUILTIN_SESSIONS, BUILTIN_SEED)


def test_table_lists_every_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baselines", "lrtune/RecSys-v0", "--sessions", "50", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    for name in ("random", "observable_myopic", "bandit", "greedy", "oracle"):
        assert f"\n{name} " in text
    assert "50 sessions per baseline, seed 1" in text
    assert "normalised: random 0, best observable baseline 1" in text


def test_normalised_column_is_empty_without_its_anchors(capsys: pytest.CaptureFixture[str]) -> None:
    table = _baselines_json(capsys, "lrtune/RecSys-v0", "--sessions", "20", "--baseline", "greedy")
    assert [row["normalised"] for row in table["rows"]] == [None]


@pytest.mark.parametrize(
    ("env_id", "message"),
    [("CartPole-v1", "not an lrtune recommender"), ("lrtune/Nope-v0", "unknown env id")],
)
def test_other_env_ids_exit_2(
    env_id: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baselines", env_id]) == 2
    err = capsys.readouterr().err
    assert message in err and "lrtune/RecSys-v0" in err
