"""Every whole-number option of every command reads numbers the same way."""

from __future__ import annotations

import argparse

import pytest

from lrtune.cli import build_parser
from lrtune.cli._args import positive_int


@pytest.mark.parametrize(("text", "value"), [("8", 8), ("8e4", 80_000), ("1e1", 10), ("1E2", 100)])
def test_whole_numbers_in_the_forms_users_write(text: str, value: int) -> None:
    assert positive_int(text) == value


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "1e-1", "nan", "inf", "ten", ""])
def test_anything_else_is_refused_with_what_was_given(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="positive whole number"):
        positive_int(text)


def test_finalize_top_and_train_steps_agree() -> None:
    parser = build_parser()
    finalize = parser.parse_args(["finalize", "exp", "--top", "1e1", "--seeds", "2"])
    train = parser.parse_args(["train", "lr: 1e-3", "--steps", "1e1"])
    assert finalize.top == train.steps == 10


def test_train_reports_the_best_return_among_iterations_where_an_episode_ended() -> None:
    """An iteration before the first episode's end reports NaN; ``max`` over the returns
    gave NaN when it came first (Taxi-v3, PPO: "best mean return nan" after −766.1)."""
    from lrtune.cli._main import train_summary
    from lrtune.running import IterationRecord

    nan = float("nan")
    records = [
        IterationRecord(1, 2048, 1e-3, nan, 0.7),
        IterationRecord(2, 4096, 1e-3, -766.1, 0.7),
    ]
    assert train_summary(records) == "lrtune: done, best mean return -766.1"
    assert train_summary(records[:1]) == (
        "lrtune: done, no episode ended in 2048 env steps (no return to report); give the env "
        "a time limit (--env-config '{max_episode_steps: N}') or raise --steps"
    )
