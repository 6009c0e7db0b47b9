"""Which learning-rate-policy parameters mattered: Optuna's fANOVA (or PED-ANOVA) importance.

Read from the experiment's Optuna study (``results/<name>/optuna.db``, study name = experiment
name) when it is there; otherwise (a grid search, or a cluster's experiment read from a remote
MLflow) from a study rebuilt out of the trial runs' MLflow records: the resolved base LR
(``policy.lr``, log scale), the families (schedule, optimizer, gating, feedback) and every
numeric ``policy.*`` parameter that every trial has and that varies.

Diverged trials are left out: the study holds them as complete with the job's worst value
(so that samplers learn from them), a sentinel that would make the importance a measure of
what diverges rather than of what scores.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any

from lrtune.analysis._records import ExperimentData, RunRecord
from lrtune.vocabulary import (
    GROUPING_TAGS,
    POLICY_FIELD_GROUPINGS,
    STUDY_STATUS_ATTR,
    TrialStatus,
)

METHODS = ("auto", "fanova", "ped-anova", "none")
#: ``auto``: fANOVA (a random forest, seconds on hundreds of trials) below this many trials,
#: PED-ANOVA (milliseconds) from here on.
AUTO_FANOVA_MAX_TRIALS = 100
#: Parameter name → the trial tag holding it, for importances from MLflow records: named as
#: the search space's choice parameters in the Optuna study (the policy's fields: schedule,
#: optimizer, gradients, feedback), so both sources name a parameter alike.
FAMILY_TAGS = {field: GROUPING_TAGS[g] for field, g in POLICY_FIELD_GROUPINGS.items()}


@dataclass(frozen=True)
class Importance:
    """Parameter importances of one experiment (they sum to 1)."""

    experiment: str
    method: str
    source: str
    trials: int
    values: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return {
            "experiment": self.experiment,
            "method": self.method,
            "source": self.source,
            "trials": self.trials,
            "importance": self.values,
        }


def _evaluator(method: str, seed: int) -> Any:
    import optuna

    if method == "ped-anova":
        return optuna.importance.PedAnovaImportanceEvaluator()
    return optuna.importance.FanovaImportanceEvaluator(seed=seed)


def parameter_importance(
    experiment: ExperimentData, method: str = "auto", seed: int = 0
) -> Importance | None:
    """Importances of an experiment's searched parameters, or None (too few trials, nothing
    varied, or ``method == "none"``)."""
    if method == "none":
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    found = _from_study(experiment, method, seed)
    if found is not None:
        return found
    return _from_mlflow(experiment, method, seed)


def resolve_method(method: str, trials: int) -> str:
    """The evaluator ``method`` stands for with ``trials`` complete trials (``auto`` picks)."""
    if method != "auto":
        return method
    return "fanova" if trials < AUTO_FANOVA_MAX_TRIALS else "ped-anova"


def _scored_trials(study: Any) -> list[Any]:
    """The study's complete trials that did not diverge."""
    import optuna

    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    return [t for t in complete if t.user_attrs.get(STUDY_STATUS_ATTR) != TrialStatus.DIVERGED]


def _compute(study: Any, method: str, seed: int) -> tuple[str, dict[str, float]] | None:
    import optuna

    complete = _scored_trials(study)
    if len(complete) < len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))):
        scored = optuna.create_study(directions=study.directions)
        scored.add_trials(complete)
        study = scored
    values = {t.value for t in complete}
    if len(complete) < 2 or len(values) < 2:
        return None
    method = resolve_method(method, len(complete))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = optuna.importance.get_param_importances(
                study, evaluator=_evaluator(method, seed), normalize=True
            )
    except (ValueError, RuntimeError):  # no parameter common to all trials
        return None
    clean = {k: float(v) for k, v in result.items() if math.isfinite(float(v))}
    return (method, clean) if clean else None


def _from_study(experiment: ExperimentData, method: str, seed: int) -> Importance | None:
    folder = experiment.results_dir
    if folder is None or not (folder / "optuna.db").exists():
        return None
    import optuna

    try:
        study = optuna.load_study(
            study_name=experiment.name, storage=f"sqlite:///{folder / 'optuna.db'}"
        )
    except (KeyError, ValueError):
        return None
    found = _compute(study, method, seed)
    if found is None:
        return None
    complete = _scored_trials(study)
    return Importance(experiment.name, found[0], "optuna study", len(complete), found[1])


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _from_mlflow(experiment: ExperimentData, method: str, seed: int) -> Importance | None:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    runs: list[RunRecord] = [
        r for r in experiment.trials() if r.status == TrialStatus.COMPLETED and r.score is not None
    ]
    if len(runs) < 2:
        return None
    columns: dict[str, list[Any]] = {}
    distributions: dict[str, Any] = {}
    for name, tag in FAMILY_TAGS.items():
        labels = [r.tags.get(tag, "?") for r in runs]
        if len(set(labels)) > 1:
            columns[name] = labels
            distributions[name] = CategoricalDistribution(sorted(set(labels)))
    keys = set.intersection(*(set(r.params) for r in runs))
    for key in sorted(k for k in keys if k.startswith("policy.")):
        numbers = [_number(r.params.get(key)) for r in runs]
        if any(v is None for v in numbers):
            continue
        values = [float(v) for v in numbers if v is not None]
        if len(set(values)) < 2:
            continue
        low, high = min(values), max(values)
        log = key == "policy.lr" and low > 0
        name = "lr" if key == "policy.lr" else key.removeprefix("policy.")
        columns[name] = values
        distributions[name] = FloatDistribution(low, high, log=log)
    if not columns:
        return None
    study = optuna.create_study(
        direction="maximize" if experiment.metric_mode == "max" else "minimize"
    )
    for i, run in enumerate(runs):
        params = {name: column[i] for name, column in columns.items()}
        study.add_trial(
            optuna.trial.create_trial(
                params=params, distributions=distributions, value=float(run.score or 0.0)
            )
        )
    found = _compute(study, method, seed)
    if found is None:
        return None
    return Importance(experiment.name, found[0], "MLflow trial records", len(runs), found[1])
