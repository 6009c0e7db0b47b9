"""``lrtune finalize``, ``lrtune compare`` and ``lrtune report`` (argument parsing only)."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from lrtune.cli._args import positive_int
from lrtune.vocabulary import (
    DEFAULT_GROUPING,
    GROUPING_ALIASES,
    GROUPINGS,
    PER_GROUPINGS,
    groupings_help,
)

EXIT_OK = 0
BY_HELP = (
    "group runs by "
    + ", ".join(f"{name} ({g.doc})" for name, g in GROUPINGS.items())
    + "; join several with commas (family,optimizer); aliases: "
    + ", ".join(f"{alias} = {name}" for alias, name in GROUPING_ALIASES.items())
    + f". Default: {DEFAULT_GROUPING}"
)


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_analysis_parsers(subparsers: Any) -> None:
    """Register ``finalize``, ``compare`` and ``report`` on an argparse sub-parsers object."""
    f = subparsers.add_parser(
        "finalize",
        help="re-train the top-K configurations of an experiment on held-out test seeds",
        description="Re-train the top-K configurations of a finished experiment once per test "
        "seed (seeds.test of the job, never used by the search), as MLflow runs nested under "
        "the experiment's parent run, tagged finalist; print search score next to test score.",
    )
    f.add_argument("experiment", help="results folder (results/<name>) or experiment name")
    f.add_argument("--top", type=positive_int, default=3, help="how many configurations (K)")
    f.add_argument("--seeds", type=positive_int, default=3, help="how many test seeds (M)")
    f.add_argument(
        "--per",
        default="",
        help=f"take the top K of every group instead ({groupings_help(PER_GROUPINGS)}; "
        "joined by commas, e.g. family,optimizer)",
    )
    f.add_argument(
        "--eval-episodes",
        type=positive_int,
        default=None,
        help="score each finalist on a deterministic evaluation of this many greedy episodes "
        "of its final policy (default: as the job scored its trials, evaluation.score)",
    )
    f.add_argument(
        "--fresh",
        action="store_true",
        help="train every test run again (default: re-use those an earlier round of this "
        "experiment finished with the same configuration, seed, budget and scoring)",
    )
    f.add_argument("--tracking-uri", help="MLflow tracking URI (default: the experiment's)")
    f.add_argument("--storage-path", help="Tune storage folder (default: the job's)")
    f.set_defaults(func=_cmd_finalize)

    for name, helptext in (
        ("compare", "robust statistics of groups of runs across experiments"),
        ("report", "an HTML (or Markdown) report of experiments"),
    ):
        p = subparsers.add_parser(name, help=helptext, description=helptext + ".")
        p.add_argument(
            "experiments",
            nargs="+",
            metavar="EXPERIMENT",
            help="results folder (results/<name>), or experiment name (under ./results or in "
            "the MLflow store)",
        )
        p.add_argument("--by", default=DEFAULT_GROUPING, help=BY_HELP)
        p.add_argument("--reference", help="the group the others are compared to (P(X > ref))")
        p.add_argument(
            "--tracking-uri",
            help="MLflow tracking URI (default: the experiment's summary.json, else "
            "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
        )
        p.add_argument(
            "--source",
            choices=("auto", "finalists", "trials"),
            default="auto",
            help="which runs to score: finalists on test seeds where they exist (auto)",
        )
        p.add_argument(
            "--random-score",
            action="append",
            metavar="[ENV=]SCORE",
            help="the random policy's score (normalised to 0); repeatable per env",
        )
        p.add_argument(
            "--reference-score",
            action="append",
            metavar="[ENV=]SCORE",
            help="the env's reference score (normalised to 1); repeatable per env",
        )
        p.add_argument(
            "--importance",
            choices=("auto", "fanova", "ped-anova", "none"),
            default="auto",
            help="parameter-importance method (Optuna); auto: fANOVA below 100 trials, "
            "PED-ANOVA from 100 on (fANOVA's forest takes seconds there)",
        )
        p.add_argument("--confidence", type=_confidence, default=0.95)
        p.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples")
        p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        if name == "compare":
            p.add_argument("--format", choices=("table", "json", "csv"), default="table")
            p.set_defaults(func=_cmd_compare)
        else:
            p.add_argument("-o", "--output", default="report.html", help="where to write it")
            p.add_argument(
                "--format",
                choices=("html", "md"),
                default=None,
                help="html: one self-contained file; md: Markdown with PNG files beside it "
                "(default: from the output's suffix)",
            )
            p.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
            p.set_defaults(func=_cmd_report)


def _cmd_finalize(args: argparse.Namespace) -> int:
    from lrtune.running._finalize import finalize

    per = tuple(p.strip() for p in args.per.split(",") if p.strip())
    outcome = finalize(
        args.experiment,
        top=args.top,
        seeds=args.seeds,
        per=per,
        tracking_uri=args.tracking_uri,
        storage_path=args.storage_path,
        evaluation_episodes=args.eval_episodes,
        fresh=args.fresh,
    )
    return outcome.exit_code


def _comparison(args: argparse.Namespace) -> tuple[list[Any], Any]:
    from lrtune.analysis import compare, load_experiment, parse_by, parse_overrides

    by = parse_by(args.by)
    random_override = parse_overrides(args.random_score)
    reference_override = parse_overrides(args.reference_score)
    logging.getLogger("lrtune.analysis").info("reading %s from MLflow", ", ".join(args.experiments))
    experiments = [load_experiment(e, args.tracking_uri) for e in args.experiments]
    result = compare(
        experiments,
        by=by,
        reference=args.reference,
        source=args.source,
        random_override=random_override,
        reference_override=reference_override,
        importance=args.importance,
        confidence=args.confidence,
        resamples=args.resamples,
        seed=args.seed,
    )
    return experiments, result


def _cmd_compare(args: argparse.Namespace) -> int:
    from lrtune.analysis import format_csv, format_json, format_table

    _, result = _comparison(args)
    formatter = {"table": format_table, "json": format_json, "csv": format_csv}[args.format]
    sys.stdout.write(formatter(result).rstrip("\n") + "\n")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from lrtune.analysis import build_report

    fmt = args.format or ("md" if str(args.output).lower().endswith(".md") else "html")
    experiments, result = _comparison(args)
    report = build_report(
        experiments,
        result,
        args.output,
        fmt=fmt,
        seed=args.seed,
        log_to_mlflow=not args.no_log,
    )
    for path in report.files:
        print(path)
    return EXIT_OK
