"""The ``searchers`` slot: what proposes each trial's point of the search space.

Three kinds of entry, told apart by their base class:

* `OptunaSamplerPlugin` (``tpe``, ``cmaes``, ``gp``, ``qmc``, ``random``): builds an Optuna
  sampler; lrtune's own Optuna searcher drives it over the space compiled define-by-run (so
  conditional parameters are suggested only when their family is chosen), with the study kept
  in the experiment's results folder. A job selects one with ``algorithm: optuna, sampler:
  NAME``.
* `GridPlugin` (``grid``): every point of the space's ``values`` lists, in Tune's variant
  generator. ``algorithm: grid``.
* `TuneSearcherPlugin` (``hyperopt``): any Ray Tune `Searcher`, given the space as flat Tune
  domains (one per parameter, see `SearchSetup.space`); lrtune turns its flat suggestions into
  trial points. ``algorithm: NAME``.

Class attributes say what an entry does with the job's other search settings; a job is checked
against them when it is validated. This module imports neither Ray nor Optuna (validating a
job looks entries up by name); they are imported when a run builds the searcher.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from lrtune.registry import NoParams, PluginParams, SpecError, searchers

if TYPE_CHECKING:
    import optuna
    from ray.tune.search import Searcher

    from lrtune.specs import JobSpec


@dataclass(frozen=True)
class SearchSetup:
    """What a searcher plugin is built with when a run starts.

    Attributes:
        metric, mode: what the trials report and which way is better (``score``; ``max`` or
            ``min``).
        seed: the job's ``search.seed`` (None: unseeded).
        startup_trials: random trials before a model-based searcher's model proposes
            (`JobSpec.startup_trials`); ignored by searchers without a model.
        space: the search space as Ray Tune domains, one per flat parameter name
            (``lr``, ``schedule.cosine.min_factor``, ``hyperparams.gamma``; a slot's family
            choice under the slot's name); filled for `TuneSearcherPlugin` entries only.
            Categorical parameters hold their labels; stepped ones an index (lrtune maps it
            back), so every searcher sees only plain uniform, log-uniform and choice domains.
    """

    metric: str
    mode: str
    seed: int | None
    startup_trials: int
    space: Mapping[str, Any] = field(default_factory=dict)


class SearcherPlugin(ABC):
    """Base of every ``searchers`` entry. Subclass one of its three kinds, not this class.

    Class attributes (checked when a job is validated):
        algorithm: how a job names the entry: ``"optuna"`` (``algorithm: optuna, sampler:
            NAME``), else the entry's own name (``algorithm: NAME``).
        model_based: it samples ``search.startup_trials`` trials at random, then from a model
            (a job may set ``startup_trials`` only for these).
        models_conditional: it models a conditional space (a slot with several families);
            others sample such parameters independently, and a job is warned.
        requires: modules that must be importable (checked at validation), and ``install``
            the command that brings them.
    """

    kind: ClassVar[Literal["optuna", "grid", "tune"]]
    model_based: ClassVar[bool] = False
    models_conditional: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ()
    install: ClassVar[str] = ""

    def __init__(self, params: PluginParams) -> None:
        self.params = params

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({fields})"


class OptunaSamplerPlugin(SearcherPlugin):
    """A searcher that is an Optuna sampler, driven by lrtune's Optuna searcher."""

    kind: ClassVar[Literal["optuna", "grid", "tune"]] = "optuna"

    @abstractmethod
    def sampler(self, setup: SearchSetup) -> optuna.samplers.BaseSampler:
        """The Optuna sampler, seeded with ``setup.seed``."""


class GridPlugin(SearcherPlugin):
    """The exhaustive grid: every point of the ``values`` lists (Tune's variant generator)."""

    kind: ClassVar[Literal["optuna", "grid", "tune"]] = "grid"


class TuneSearcherPlugin(SearcherPlugin):
    """A searcher that is a Ray Tune `Searcher` over flat Tune domains (`SearchSetup.space`)."""

    kind: ClassVar[Literal["optuna", "grid", "tune"]] = "tune"
    models_conditional: ClassVar[bool] = False

    @abstractmethod
    def searcher(self, setup: SearchSetup) -> Searcher:
        """The Tune searcher over ``setup.space``, with ``setup.metric`` and ``setup.mode``."""


def _quiet(build: Any) -> Any:
    """``build()`` with Optuna's experimental-feature warnings silenced (multivariate TPE,
    GP, QMC warn on every construction)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return build()


# ------------------------------------------------------------------------- Optuna samplers


class TPEParams(PluginParams):
    """Parameters of `tpe` (Optuna's TPESampler)."""

    multivariate: bool = Field(
        True, description="model the parameters jointly rather than one at a time"
    )
    group: bool = Field(
        True,
        description="model each set of parameters that appear together on its own "
        "(conditional spaces; needs multivariate)",
    )
    constant_liar: bool = Field(
        True, description="count running trials as bad ones, so concurrent trials differ"
    )
    n_ei_candidates: int = Field(
        24, ge=1, description="candidates drawn per proposal to pick the most promising"
    )

    @model_validator(mode="after")
    def _group_needs_multivariate(self) -> TPEParams:
        if self.group and not self.multivariate:
            raise ValueError(
                "group: true needs multivariate: true (Optuna groups only joint models); "
                "set group: false or multivariate: true"
            )
        return self


@searchers.register("tpe", params=TPEParams, example={"multivariate": True})
class TPE(OptunaSamplerPlugin):
    """Tree-structured Parzen estimator (Optuna's TPESampler): models good and bad regions."""

    model_based: ClassVar[bool] = True
    params: TPEParams

    def sampler(self, setup: SearchSetup) -> optuna.samplers.BaseSampler:
        """TPE with ``n_startup_trials`` random trials first; with ``constant_liar`` it also
        records each model-based proposal (trial system attribute ``tpe:relative_params:0``)."""
        import optuna

        p = self.params
        return _quiet(
            lambda: optuna.samplers.TPESampler(
                multivariate=p.multivariate,
                group=p.group,
                constant_liar=p.constant_liar,
                n_ei_candidates=p.n_ei_candidates,
                n_startup_trials=setup.startup_trials,
                seed=setup.seed,
            )
        )


class CmaEsParams(PluginParams):
    """Parameters of `cmaes` (Optuna's CmaEsSampler; needs the `cmaes` package)."""

    popsize: int | None = Field(
        None, ge=2, description="population size per generation (None: CMA-ES's default)"
    )
    use_separable_cma: bool = Field(
        False, description="diagonal covariance (faster, ignores correlations)"
    )
    with_margin: bool = Field(
        False, description="CMA-ES with margin, for integer and stepped parameters"
    )
    lr_adapt: bool = Field(False, description="adapt CMA-ES's own learning rate (noisy scores)")

    @model_validator(mode="after")
    def _one_variant(self) -> CmaEsParams:
        chosen = [k for k in ("use_separable_cma", "with_margin", "lr_adapt") if getattr(self, k)]
        if len(chosen) > 1:
            raise ValueError(
                f"{' and '.join(chosen)} are variants of CMA-ES that Optuna cannot combine; "
                "set at most one of use_separable_cma, with_margin, lr_adapt"
            )
        return self


@searchers.register("cmaes", params=CmaEsParams, example={"popsize": 8})
class CmaEs(OptunaSamplerPlugin):
    """CMA-ES (Optuna's CmaEsSampler): an evolution strategy over the numeric parameters."""

    model_based: ClassVar[bool] = True
    models_conditional: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("cmaes",)
    install: ClassVar[str] = "pip install cmaes"
    params: CmaEsParams

    def sampler(self, setup: SearchSetup) -> optuna.samplers.BaseSampler:
        """CMA-ES after ``n_startup_trials`` random trials."""
        import optuna

        p = self.params
        return _quiet(
            lambda: optuna.samplers.CmaEsSampler(
                n_startup_trials=setup.startup_trials,
                seed=setup.seed,
                warn_independent_sampling=False,
                popsize=p.popsize,
                use_separable_cma=p.use_separable_cma,
                with_margin=p.with_margin,
                lr_adapt=p.lr_adapt,
            )
        )


class GPParams(PluginParams):
    """Parameters of `gp` (Optuna's GPSampler)."""

    deterministic_objective: bool = Field(
        False, description="the score has no noise (RL scores do: leave it false)"
    )


@searchers.register("gp", params=GPParams, example={"deterministic_objective": False})
class GP(OptunaSamplerPlugin):
    """Gaussian-process Bayesian optimisation (Optuna's GPSampler); fits the values themselves."""

    model_based: ClassVar[bool] = True
    models_conditional: ClassVar[bool] = False
    params: GPParams

    def sampler(self, setup: SearchSetup) -> optuna.samplers.BaseSampler:
        """GP after ``n_startup_trials`` random trials (records ``gp:relative_params:0``)."""
        import optuna

        return _quiet(
            lambda: optuna.samplers.GPSampler(
                n_startup_trials=setup.startup_trials,
                seed=setup.seed,
                deterministic_objective=self.params.deterministic_objective,
                warn_independent_sampling=False,
            )
        )


class QMCParams(PluginParams):
    """Parameters of `qmc` (Optuna's QMCSampler)."""

    qmc_type: Literal["sobol", "halton"] = Field(
        "sobol", description="the low-discrepancy sequence"
    )
    scramble: bool = Field(True, description="randomise the sequence (with search.seed)")


@searchers.register("qmc", params=QMCParams, example={"qmc_type": "halton"})
class QMC(OptunaSamplerPlugin):
    """Quasi-Monte Carlo (Optuna's QMCSampler): a low-discrepancy sequence, no model."""

    models_conditional: ClassVar[bool] = False
    params: QMCParams

    def sampler(self, setup: SearchSetup) -> optuna.samplers.BaseSampler:
        """The QMC sequence, scrambled with the seed unless ``scramble`` is false."""
        import optuna

        return _quiet(
            lambda: optuna.samplers.QMCSampler(
                qmc_type=self.params.qmc_type,
                scramble=self.params.scramble,
                seed=setup.seed,
                warn_independent_sampling=False,
            )
        )


@searchers.register("random", params=NoParams)
class Random(OptunaSamplerPlugin):
    """Independent uniform (or log-uniform) draws (Optuna's RandomSampler)."""

    def sampler(self, setup: SearchSetup) -> optuna.samplers.BaseSampler:
        """Optuna's RandomSampler, seeded."""
        import optuna

        return optuna.samplers.RandomSampler(seed=setup.seed)


# ----------------------------------------------------------------------------------- grid


@searchers.register("grid", params=NoParams)
class Grid(GridPlugin):
    """Every point of the space's `values` lists, each run once (Tune's variant generator)."""


# ---------------------------------------------------------------------- other Tune searchers


class HyperOptParams(PluginParams):
    """Parameters of `hyperopt` (Ray Tune's HyperOptSearch; needs the `hyperopt` package)."""

    gamma: float = Field(0.25, gt=0, lt=1, description="fraction of the trials TPE counts as good")


@searchers.register("hyperopt", params=HyperOptParams, example={"gamma": 0.25})
class HyperOpt(TuneSearcherPlugin):
    """HyperOpt's TPE through Ray Tune's HyperOptSearch (no study; its state is Tune's)."""

    model_based: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ("hyperopt",)
    install: ClassVar[str] = "pip install 'lrtune[hyperopt]'"
    params: HyperOptParams

    def searcher(self, setup: SearchSetup) -> Searcher:
        """`HyperOptSearch` over ``setup.space``, random for ``startup_trials`` trials."""
        from ray.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(
            # Converted here: given Tune domains, HyperOptSearch converts them itself but logs
            # a warning that the space is "unresolved" on every run.
            space=HyperOptSearch.convert_search_space(dict(setup.space)),
            metric=setup.metric,
            mode=setup.mode,
            n_initial_points=setup.startup_trials,
            random_state_seed=setup.seed,
            gamma=self.params.gamma,
        )


# ------------------------------------------------------------------------------ from a job


def make_sampler(job: JobSpec) -> optuna.samplers.BaseSampler:
    """The Optuna sampler of ``job.search`` (an `OptunaSamplerPlugin` entry of the ``searchers``
    slot), built with ``search.params``, seeded with ``search.seed`` and
    with `JobSpec.startup_trials` random trials before a model proposes."""
    plugin = job.search.plugin()
    if not isinstance(plugin, OptunaSamplerPlugin):
        raise SpecError(
            f"search.algorithm: {job.search.searcher} is not an Optuna sampler; only "
            "`algorithm: optuna` jobs have one."
        )
    setup = SearchSetup("score", job.metric.mode, job.search.seed, job.startup_trials)
    return plugin.sampler(setup)


def sampler_warning(job: JobSpec) -> str | None:
    """A warning for samplers that cannot model a conditional space, and for GP with the
    default worst value of diverged trials (None when fine)."""
    name = job.search.searcher
    if job.search.kind == "grid" or job.space is None:
        return None
    warnings_: list[str] = []
    if not job.search.plugin_class().models_conditional and job.space.is_conditional:
        how = (
            "(Optuna's RandomSampler)"
            if job.search.kind == "optuna"
            else "(every family's parameters are drawn; the chosen family's are used)"
        )
        what = "sampler" if job.search.kind == "optuna" else "searcher"
        warnings_.append(
            f"{what} {name} cannot model a conditional space; it samples the conditional "
            f"parameters independently {how}"
        )
    if name == "gp" and job.metric.worst is None:
        # GPSampler standardises values by their mean and spread: one diverged trial at -1e6
        # would squeeze every other trial's value together.
        warnings_.append(
            f"sampler gp fits the values: a diverged trial is told as metric.worst, by default "
            f"{job.metric.worst_value:g}, which flattens its model; set metric.worst near the "
            "task's worst plausible score (e.g. the random policy's)"
        )
    return "; ".join(warnings_) or None
