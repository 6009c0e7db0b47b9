"""``lrtune baselines ENV_ID``: the recommender's baselines with 95 % intervals."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from lrtune.cli._args import positive_int
from lrtune.registry import LRTuneError

EXIT_OK = 0
#: The protocol of the normalisation anchors (``lrtune.analysis._reference.BUILTIN``).
DEFAULT_SESSIONS = 4000
DEFAULT_SEED = 0


class BaselineEnvError(LRTuneError):
    """The env id names no lrtune recommender (unknown, or another kind of environment)."""


def add_baselines_parser(subparsers: Any) -> None:
    """Register the ``baselines`` sub-command on an argparse sub-parsers object."""
    from lrtune.envs.baselines import BASELINES

    p = subparsers.add_parser(
        "baselines",
        help="clicks per session of the recommender's baselines, with 95%% intervals",
        description="Run every baseline of an lrtune recommender (random, observable myopic, "
        "LinUCB bandit, greedy on the hidden click probability, oracle) for N seeded sessions "
        "of the env's default configuration and print mean clicks per session, click-through "
        "rate and session length with 95 % intervals (Student-t over independent groups of "
        "sessions). The defaults are the protocol of the normalisation anchors `lrtune "
        "compare` uses.",
    )
    p.add_argument("env", metavar="ENV_ID", help="lrtune/RecSys-v0 or lrtune/RecSysHard-v0")
    p.add_argument(
        "--sessions",
        type=_at_least_two,
        default=DEFAULT_SESSIONS,
        help=f"sessions per baseline (default {DEFAULT_SESSIONS})",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="session seed (default 0)")
    p.add_argument(
        "--baseline",
        dest="baselines",
        action="append",
        choices=BASELINES,
        metavar="NAME",
        help=f"run only this baseline (repeatable; default all: {', '.join(BASELINES)})",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run_baselines)


def _at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"expected at least 2 sessions (an interval needs two), got {text!r}"
        )
    return value


def recsys_preset(env_id: str) -> str:
    """The preset of an lrtune recommender id; `BaselineEnvError` for any other id."""
    import gymnasium

    from lrtune.envs import ENV_IDS

    bare = env_id.split(":", 1)[1] if ":" in env_id else env_id
    if bare in ENV_IDS:
        return ENV_IDS[bare]
    known = sorted(ENV_IDS)
    if bare in gymnasium.registry:
        raise BaselineEnvError(
            f"{env_id} is not an lrtune recommender: baselines exist only for {known} (they "
            "read the recommender's click model)."
        )
    raise BaselineEnvError(f"unknown env id {env_id!r}: give one of {known}.")


def baseline_table(env_id: str, sessions: int, seed: int, names: list[str]) -> dict[str, Any]:
    """Evaluate ``names`` on ``env_id``'s default configuration: plain data (JSON-ready)."""
    from lrtune.envs.baselines import BASELINE_SEES, EVAL_GROUPS, evaluate_baseline

    preset = recsys_preset(env_id)
    rows = []
    for name in names:
        start = time.perf_counter()
        result = evaluate_baseline(name, num_sessions=sessions, seed=seed, preset=preset)
        wall = time.perf_counter() - start
        clicks, ctr = result.clicks_ci(), result.ctr_ci()
        rows.append(
            {
                "name": name,
                "sees": BASELINE_SEES[name],
                "clicks_mean": clicks[0],
                "clicks_low": clicks[1],
                "clicks_high": clicks[2],
                "ctr_mean": ctr[0],
                "ctr_low": ctr[1],
                "ctr_high": ctr[2],
                "steps_mean": float(result.steps.mean()),
                "wall_s": wall,
            }
        )
    _normalise(rows)
    return {
        "env": env_id,
        "preset": preset,
        "sessions": sessions,
        "seed": seed,
        "groups": min(sessions, EVAL_GROUPS),
        "interval": "95 % Student-t interval over the group means (independent batched envs)",
        "rows": rows,
    }


def _normalise(rows: list[dict[str, Any]]) -> None:
    """Add each row's ``normalised`` clicks: random 0, the best observable baseline 1 (the
    anchors ``lrtune compare`` uses), from this table's own rows; None when the table lacks
    the random or every observable baseline."""
    from lrtune.analysis._reference import BUILTIN_OBSERVABLE, BUILTIN_RANDOM

    means = {row["name"]: row["clicks_mean"] for row in rows}
    observable = [means[name] for name in BUILTIN_OBSERVABLE if name in means]
    random = means.get(BUILTIN_RANDOM)
    span = max(observable) - random if observable and random is not None else 0.0
    for row in rows:
        row["normalised"] = (row["clicks_mean"] - random) / span if span > 0 else None


def format_baseline_table(table: dict[str, Any]) -> str:
    """The table as aligned text, with its protocol in the last line."""
    lines = [
        f"{'baseline':<18} {'sees':<36} {'clicks/session [95% CI]':<25} "
        f"{'ctr [95% CI]':<22} {'steps':>6} {'normalised':>10}"
    ]
    for row in table["rows"]:
        clicks = f"{row['clicks_mean']:.2f} [{row['clicks_low']:.2f}, {row['clicks_high']:.2f}]"
        ctr = f"{row['ctr_mean']:.3f} [{row['ctr_low']:.3f}, {row['ctr_high']:.3f}]"
        normalised = row.get("normalised")
        shown = "-" if normalised is None else f"{normalised:.2f}"
        lines.append(
            f"{row['name']:<18} {row['sees']:<36} {clicks:<25} {ctr:<22} "
            f"{row['steps_mean']:>6.1f} {shown:>10}"
        )
    wall = sum(row["wall_s"] for row in table["rows"])
    lines.append(
        f"{table['env']} (preset {table['preset']}): {table['sessions']} sessions per baseline, "
        f"seed {table['seed']}, in {table['groups']} independent groups; intervals: 95 % "
        f"Student-t over the group means; normalised: random 0, best observable baseline 1 "
        f"(the anchors of `lrtune compare`); {wall:.1f} s"
    )
    return "\n".join(lines)


def run_baselines(args: argparse.Namespace) -> int:
    """Print the baseline table of ``args.env`` (exit 2 via `BaselineEnvError` for a bad id)."""
    from lrtune.envs.baselines import BASELINES

    names = list(dict.fromkeys(args.baselines)) if args.baselines else list(BASELINES)
    table = baseline_table(args.env, args.sessions, args.seed, names)
    if args.format == "json":
        print(json.dumps(table, indent=2))
    else:
        print(format_baseline_table(table))
    return EXIT_OK
