"""Analysis: compare experiments (robust statistics over seeds and tasks) and report on them.

Reads everything from MLflow (`load_experiment`), so any tracking store compares the same way:
`compare` (IQM, median, mean, optimality gap, probability of improvement, with stratified-
bootstrap intervals over normalised scores, plus Optuna parameter importance) and
`build_report` (a self-contained HTML page, or Markdown with PNG files).
"""

from lrtune.analysis._compare import (
    GROUPINGS,
    SOURCES,
    CompareError,
    Comparison,
    GroupStats,
    compare,
    format_csv,
    format_json,
    format_table,
    parse_by,
)
from lrtune.analysis._importance import METHODS, Importance, parameter_importance
from lrtune.analysis._records import (
    ExperimentData,
    ExperimentNotFoundError,
    RunRecord,
    load_experiment,
    metric_histories,
    resolve_tracking_uri,
)
from lrtune.analysis._reference import (
    BUILTIN,
    AnchorError,
    TaskAnchors,
    measure_random_score,
    parse_overrides,
    task_anchors,
)
from lrtune.analysis._report import FORMATS, Report, build_report, population_lineage
from lrtune.analysis._stats import (
    Estimate,
    aggregate,
    aggregate_many,
    curve_band,
    denormalise,
    improvement,
    iqm,
    normalise,
    optimality_gap,
    probability_of_improvement,
    stratified_bootstrap_ci,
)

__all__ = [
    "BUILTIN",
    "FORMATS",
    "GROUPINGS",
    "METHODS",
    "SOURCES",
    "AnchorError",
    "CompareError",
    "Comparison",
    "Estimate",
    "ExperimentData",
    "ExperimentNotFoundError",
    "GroupStats",
    "Importance",
    "Report",
    "RunRecord",
    "TaskAnchors",
    "aggregate",
    "aggregate_many",
    "build_report",
    "compare",
    "curve_band",
    "denormalise",
    "format_csv",
    "format_json",
    "format_table",
    "improvement",
    "iqm",
    "load_experiment",
    "measure_random_score",
    "metric_histories",
    "normalise",
    "optimality_gap",
    "parameter_importance",
    "parse_by",
    "parse_overrides",
    "population_lineage",
    "probability_of_improvement",
    "resolve_tracking_uri",
    "stratified_bootstrap_ci",
    "task_anchors",
]
