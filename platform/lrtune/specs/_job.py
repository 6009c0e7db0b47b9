"""Job files (`JobSpec`, the files in ``jobs/``): one experiment, validated when it is loaded
(README's "Jobs and search spaces" shows every section)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, ValidationInfo, field_validator, model_validator

from lrtune._env_ids import check_env_id
from lrtune._stored_uri import redact_uri
from lrtune.policies import PLUGIN_SLOTS, LRPolicySpec
from lrtune.registry import SLOTS, LRTuneError
from lrtune.specs._cluster import ClusterSpec
from lrtune.specs._errors import (
    Loc,
    Problem,
    complete_params,
    problem_check,
    raise_problems,
    registered,
)
from lrtune.specs._population import PopulationSpec
from lrtune.specs._space import (
    AGENT_SETTING_REPLACES,
    SearchSpaceSpec,
    check_candidates,
    constants_of,
    merge_space_parts,
)
from lrtune.specs._yaml import FROZEN, Real, Settings, SpecError, Whole, is_file, load_yaml

if TYPE_CHECKING:
    from lrtune.agents import AgentPlugin

MAX_GRID_POINTS = 10_000

# Metrics RLlib's evaluation also reports (under ``evaluation/``, only env-runner metrics:
# episode returns and lengths): evaluation.score reads them.
EVALUATED_METRIC_PREFIX = "env_runners/"


# Fields that do not change a job's results, left out of `JobSpec.resolved_hash`.
HASH_EXCLUDED: tuple[tuple[str, ...], ...] = (
    ("description",),
    ("tracking",),
    ("storage_path",),
    ("results_dir",),
    ("trials", "max_concurrent"),
    ("space_path",),  # provenance: the space itself is inlined in the hash
    ("space_files",),
    ("space", "description"),
    ("cluster",),  # where trials run, not what they compute
)
#: Fields added after jobs were first hashed, left out of the hash while unset (None, empty or
#: False), so that a job written before them keeps its hash and its experiment resumes.
HASH_LATER_FIELDS: tuple[tuple[str, ...], ...] = (
    ("population",),
    ("search", "params"),
    ("search", "batch"),
    ("scheduler", "params"),
    ("trials", "checkpoint_seconds"),
    ("model", "conv_filters"),
    ("model", "exploration"),
    ("model", "log_std_init"),
    ("model", "sde_sample_freq"),
)


def _unset(value: Any) -> bool:
    """A later field at its "off" default (not 0: a number is a setting)."""
    return value is None or value is False or (isinstance(value, dict) and not value)


# ---------------------------------------------------------------------------------- sections


class EnvSpec(BaseModel):
    """The environment: a gymnasium id (``CartPole-v1``, ``pkg.mod:Name-v0``) and its kwargs."""

    model_config = FROZEN

    id: str = Field(min_length=1, max_length=300)
    config: Settings = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _exists(cls, value: str) -> str:
        if problem := check_env_id(value):
            raise ValueError(problem)
        return value


class ModelSpec(BaseModel):
    """The network: RLlib's default MLP, its value layers and initialisation, whether
    observations and rewards are normalised, image convolutions and PPO's exploration. Each
    field is `lrtune.learners.ModelSettings`' attribute of the same name, documented there (and
    in README's job example); None: the agent's default (`lrtune presets AGENT`)."""

    model_config = FROZEN

    hidden: tuple[Annotated[Whole, Field(ge=1, le=4096)], ...] | None = Field(
        default=None, min_length=1, max_length=8
    )
    activation: Literal["tanh", "relu", "swish", "elu", "linear"] | None = None
    vf_share_layers: StrictBool = False
    initializer: Literal["orthogonal", "torch"] | None = None
    normalize_observations: StrictBool | None = None
    normalize_rewards: StrictBool | None = None
    # [out_channels, kernel, stride] per convolution layer
    conv_filters: (
        tuple[
            tuple[
                Annotated[Whole, Field(ge=1, le=2048)],
                Annotated[Whole, Field(ge=1, le=32)],
                Annotated[Whole, Field(ge=1, le=16)],
            ],
            ...,
        ]
        | None
    ) = None
    exploration: Literal["gaussian", "gsde"] | None = None
    log_std_init: Real | None = Field(default=None, ge=-20.0, le=20.0)  # RLlib clamps to ±20
    sde_sample_freq: Whole | None = Field(default=None, ge=-1)  # -1: at each sample() only

    @field_validator("sde_sample_freq")
    @classmethod
    def _not_zero(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError(
                "0 is no frequency: give -1 (new noise at the start of each sample() only, "
                "SB3's default) or a positive number of env steps, or leave it out"
            )
        return value

    @field_validator("conv_filters")
    @classmethod
    def _some_layers(cls, value: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if value is not None and not 1 <= len(value) <= 12:
            raise ValueError(
                f"give 1 to 12 layers of [out_channels, kernel, stride] (got {len(value)}), "
                "or leave conv_filters out for the default"
            )
        return value


class BudgetSpec(BaseModel):
    """Env steps (and optionally seconds) per trial and for the whole experiment."""

    model_config = FROZEN

    trial_env_steps: Whole = Field(gt=0)
    trial_seconds: Real | None = Field(default=None, gt=0)
    experiment_env_steps: Whole | None = Field(default=None, gt=0)
    experiment_seconds: Real | None = Field(default=None, gt=0)

    @problem_check
    def _experiment_covers_a_trial(self) -> Iterator[Problem]:
        steps = self.experiment_env_steps
        if steps is not None and steps < self.trial_env_steps:
            yield (
                ("experiment_env_steps",),
                f"{steps} is less than one trial's trial_env_steps ({self.trial_env_steps}): "
                "raise it or leave it out",
            )


#: A trial's checkpoint cadence when the job gives none (``trials.checkpoint_seconds``).
DEFAULT_CHECKPOINT_SECONDS = 60.0


class TrialsSpec(BaseModel):
    """How many trials, how many at once, how many may fail before the search stops, and how
    often a trial saves a checkpoint (README's "Jobs and search spaces" weighs the cadence).

    Give at most one cadence; every trial also saves at its end, and population jobs (PBT, PB2)
    whenever their scheduler asks. ``checkpoint_seconds``: after the first iteration that ends
    this many seconds of the trial's training after its last checkpoint (or its start); 0:
    after every iteration; neither given: 60 (`DEFAULT_CHECKPOINT_SECONDS`).
    ``checkpoint_env_steps``: each time the trial's env steps pass a multiple of this.
    """

    model_config = FROZEN

    num: Whole = Field(default=8, ge=1)
    max_concurrent: Whole = Field(default=2, ge=1)
    max_failures: Whole = Field(default=1, ge=0)
    checkpoint_seconds: Real | None = Field(default=None, ge=0)
    checkpoint_env_steps: Whole | None = Field(default=None, ge=1)

    @problem_check
    def _one_cadence(self) -> Iterator[Problem]:
        if self.checkpoint_seconds is not None and self.checkpoint_env_steps is not None:
            yield (
                ("checkpoint_seconds",),
                "give one checkpoint cadence: checkpoint_seconds (time) or checkpoint_env_steps "
                "(env steps), not both; remove one of them",
            )

    @property
    def checkpoints_every_iteration(self) -> bool:
        """Whether a trial saves after every iteration (``checkpoint_seconds: 0``)."""
        return self.checkpoint_env_steps is None and self.checkpoint_seconds == 0

    def checkpoint_due(self, env_steps: int, prev_steps: int, seconds_since: float) -> bool:
        """Whether the iteration that took the trial from ``prev_steps`` to ``env_steps`` env
        steps, ``seconds_since`` seconds of training after its last checkpoint (or its start),
        ends with a checkpoint. A pure function of its arguments."""
        if self.checkpoint_env_steps is not None:
            every = self.checkpoint_env_steps
            return env_steps // every > prev_steps // every
        seconds = self.checkpoint_seconds
        return seconds_since >= (DEFAULT_CHECKPOINT_SECONDS if seconds is None else seconds)


class SeedsSpec(BaseModel):
    """Seeds: each trial trains *all* ``tuning`` seeds in lockstep and reports their mean; the
    best policies are re-evaluated on the disjoint ``test`` seeds."""

    model_config = FROZEN

    tuning: tuple[Whole, ...] = Field(default=(0,), min_length=1, max_length=64)
    test: tuple[Whole, ...] = Field(default=(1000, 1001, 1002), max_length=1000)

    @problem_check
    def _disjoint(self) -> Iterator[Problem]:
        for field in ("tuning", "test"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                yield (field,), "lists a seed twice: list each seed once"
        shared = sorted(set(self.tuning) & set(self.test))
        if shared:
            yield (
                ("test",),
                f"seeds {shared} are also tuning seeds: test seeds must differ from seeds.tuning "
                "(held-out seeds measure generalisation)",
            )


class MetricSpec(BaseModel):
    """The reported metric the search optimises."""

    model_config = FROZEN

    name: str = Field(default="env_runners/episode_return_mean", min_length=1)
    mode: Literal["max", "min"] = "max"
    worst: Real | None = None

    @property
    def worst_value(self) -> float:
        """The finite value reported for a diverged trial (``worst``, else ∓1e6)."""
        if self.worst is None:
            return -1e6 if self.mode == "max" else 1e6
        return self.worst


class EvaluationSpec(BaseModel):
    """Deterministic evaluation of a trial's policy, as rl-zoo3 scores its trials (README's
    "Scoring on a deterministic evaluation" says what each key does).

    The evaluation env runner is the trial's own (``evaluation_num_env_runners=0``), seeded
    1,000,000 above training. With ``score: true`` the score is ``metric.name`` under
    ``evaluation/``, and until its first evaluation a trial's score is its training value.
    """

    model_config = FROZEN

    interval: Whole = Field(default=0, ge=0)
    episodes: Whole = Field(default=10, ge=1, le=10_000)
    score: StrictBool = False

    @property
    def enabled(self) -> bool:
        """Whether trials evaluate at all (along the way, or at their end to score)."""
        return self.interval > 0 or self.score


class ResourcesSpec(BaseModel):
    """What one trial holds: CPUs and a GPU share (fractions allowed)."""

    model_config = FROZEN

    cpus: Real = Field(default=1.0, gt=0)
    gpus: Real = Field(default=0.0, ge=0, le=8)


def _plugins_where(slot: str, test: Callable[[Any], bool]) -> str:
    """``a, b or c``: the entries of ``slot`` whose class (searchers and schedulers register
    classes whose class attributes say what they do with the job's other settings) passes
    ``test``."""
    names = [name for name in SLOTS[slot].names() if test(SLOTS[slot].get(name).factory)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


class SearchSpec(BaseModel):
    """The search algorithm: an entry of the ``searchers`` slot (`lrtune plugins searchers`);
    README's "Jobs and search spaces" describes each key.

    ``startup_trials`` (HyperOpt's ``n_initial_points`` too) left out is
    `JobSpec.startup_trials`, so a small budget leaves most trials to the model (Optuna's own
    default, 10, made every search of ≤ 10 trials random); what counts as a finished trial is
    the sampler's: TPE counts complete and pruned trials, GP and CMA-ES complete ones (a
    diverged trial is complete, with the job's worst value).
    """

    model_config = FROZEN

    algorithm: str = Field(default="optuna", min_length=1)
    sampler: str = Field(default="tpe", min_length=1)
    seed: Whole | None = 0
    startup_trials: Whole | None = Field(default=None, ge=1)
    baseline_first: bool = False
    warm_start: str | None = Field(default=None, min_length=1)
    batch: bool = False
    params: Settings = Field(default_factory=dict)

    @problem_check
    def _searcher(self) -> Iterator[Problem]:
        optuna_driven = self.algorithm == "optuna"
        name, loc = (self.sampler, "sampler") if optuna_driven else (self.algorithm, "algorithm")
        try:
            kind = self.plugin_class().kind
        except LRTuneError as exc:
            yield (loc,), str(exc)
            return
        if optuna_driven and kind != "optuna":
            yield (
                ("sampler",),
                f"{name} is not an Optuna sampler: write `algorithm: {name}` and leave sampler out",
            )
        elif not optuna_driven and kind == "optuna":
            yield (
                ("algorithm",),
                f"{name} is an Optuna sampler: write `algorithm: optuna, sampler: {name}`",
            )
        elif kind == "tune" and self.sampler != SearchSpec.model_fields["sampler"].default:
            yield (
                ("sampler",),
                f"searcher {name} is not driven by Optuna, so a sampler would be ignored: leave "
                "sampler out, or use algorithm: optuna",
            )
        else:
            yield from complete_params(self, "searchers", name)

    @property
    def searcher(self) -> str:
        """The name of the ``searchers`` entry: the sampler under Optuna, else the algorithm."""
        return self.sampler if self.algorithm == "optuna" else self.algorithm

    @property
    def kind(self) -> str:
        """``optuna`` (a sampler lrtune's Optuna searcher drives), ``grid`` or ``tune``."""
        return self.plugin_class().kind

    @property
    def label(self) -> str:
        """The search as one word for records: ``optuna/tpe``, ``grid/tpe`` (as before
        searchers were a slot), ``hyperopt``."""
        if self.algorithm in ("optuna", "grid"):
            return f"{self.algorithm}/{self.sampler}"
        return self.algorithm

    def plugin_class(self) -> Any:
        """The searcher entry's class (its `SearcherPlugin` class attributes), without building
        it."""
        return SLOTS["searchers"].get(self.searcher).factory

    def plugin(self) -> Any:
        """The searcher entry built with ``params`` (a `lrtune.search.SearcherPlugin`)."""
        return SLOTS["searchers"].build(self.searcher, self.params)


class SchedulerSpec(BaseModel):
    """The trial scheduler (early stopping), on env steps: an entry of the ``schedulers`` slot
    (`lrtune plugins schedulers`), its own parameters in ``params``; ``reduction_factor`` is
    ASHA's and HyperBand's.

    The grace period left out is a quarter of a trial's budget (`JobSpec.grace_period_steps`):
    RL learning curves are often flat before they rise (Acrobot-v1 stays at -500 until the
    first swing-ups), so an early rung would stop trials on noise; with ASHA's default
    reduction factor 2 the rungs are then 1/4 and 1/2 of the budget.
    """

    model_config = FROZEN

    name: Annotated[str, Field(min_length=1), registered("schedulers")] = "asha"
    grace_period: Whole | None = Field(default=None, gt=0)
    grace_fraction: Real | None = Field(default=None, gt=0, le=1)
    reduction_factor: Real = Field(default=2.0, gt=1)
    params: Settings = Field(default_factory=dict)

    @problem_check
    def _one_grace(self) -> Iterator[Problem]:
        plugin: Any = SLOTS["schedulers"].get(self.name).factory
        if self.grace_period is not None and self.grace_fraction is not None:
            yield (
                ("grace_fraction",),
                "give the grace period once: grace_period (env steps) or grace_fraction (of "
                "budget.trial_env_steps), not both",
            )
        elif not plugin.uses_grace:
            why = plugin.no_grace_reason or f"scheduler {self.name} has no grace period"
            graced = _plugins_where("schedulers", lambda cls: cls.uses_grace)
            for key in ("grace_period", "grace_fraction"):
                if getattr(self, key) is not None:
                    yield (
                        (key,),
                        f"{why}, so a grace period would be ignored: leave it out, or use "
                        f"name: {graced}",
                    )
        yield from complete_params(self, "schedulers", self.name)

    def plugin(self) -> Any:
        """The scheduler entry built with ``params`` (a `lrtune.search.SchedulerPlugin`)."""
        return SLOTS["schedulers"].build(self.name, self.params)


class TrackingSpec(BaseModel):
    """Where MLflow records runs."""

    model_config = FROZEN

    uri: str | None = Field(default=None, min_length=1)
    experiment: str | None = Field(default=None, min_length=1)

    @property
    def resolved_uri(self) -> str:
        """``uri``, else the ``MLFLOW_TRACKING_URI`` environment variable (MLflow's own
        convention), else ``sqlite:///<cwd>/mlflow.db`` (absolute, so every process agrees).
        A command's ``--tracking-uri`` wins over all three."""
        return (
            self.uri  # never empty (min_length=1)
            or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
            or f"sqlite:///{(Path.cwd() / 'mlflow.db').as_posix()}"
        )


# ----------------------------------------------------------------------------------- the job


class JobSpec(BaseModel):
    """One experiment: agent, environment, budgets, seeds, metric and what to search.

    ``space`` (a path, a mapping or a list of parts) and ``policy`` (a path or a mapping) are
    loaded by `resolve_reference`, relative to validation context ``{"base_dir": ...}``, which
    records the space's files in ``space_path`` and ``space_files``.
    """

    model_config = FROZEN

    version: Literal[1] = 1
    name: str

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value):
            raise ValueError(
                f"{value!r} is not a usable name: use letters, digits, '_', '.' and '-' only, "
                "starting with a letter or digit, at most 100 characters (it names the results "
                "folder, the MLflow experiment and the Optuna study)"
            )
        return value

    description: str = ""
    agent: Annotated[str, registered("agents")]
    env: EnvSpec
    model: ModelSpec = ModelSpec.model_validate({})
    budget: BudgetSpec
    trials: TrialsSpec = TrialsSpec.model_validate({})
    seeds: SeedsSpec = SeedsSpec.model_validate({})
    metric: MetricSpec = MetricSpec.model_validate({})
    evaluation: EvaluationSpec = EvaluationSpec.model_validate({})
    resources: ResourcesSpec = ResourcesSpec.model_validate({})
    space: SearchSpaceSpec | None = None
    space_path: str | None = None
    space_files: tuple[str, ...] = ()
    policy: LRPolicySpec | None = None
    search: SearchSpec = SearchSpec.model_validate({})
    scheduler: SchedulerSpec = SchedulerSpec.model_validate({})
    tracking: TrackingSpec = TrackingSpec.model_validate({})
    storage_path: str = "ray_results"
    results_dir: str = "results"
    hyperparams: Settings = Field(default_factory=dict)
    cluster: ClusterSpec | None = None
    population: PopulationSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any, info: ValidationInfo) -> Any:
        """Files a job names loaded (`resolve_reference`); ``env: CartPole-v1`` short for ``env:
        {id: CartPole-v1}``; a population job's trial count defaults to the population's size."""
        if not isinstance(data, Mapping):
            return data
        base_dir = (info.context or {}).get("base_dir")
        out = dict(data)
        problems = [p for key in ("space", "policy") for p in resolve_reference(out, key, base_dir)]
        raise_problems("JobSpec", problems)
        if isinstance(out.get("env"), str):
            out["env"] = {"id": out["env"]}
        trials = {} if out.get("trials") is None else out["trials"]
        size = out["population"].get("size") if isinstance(out.get("population"), Mapping) else None
        if size is not None and isinstance(trials, Mapping) and "num" not in trials:
            out["trials"] = {**trials, "num": size}
        return out

    # ---- cross-field checks (each yields its problems)

    @problem_check
    def _cross_check(self) -> Iterator[Problem]:
        space, policy = self.space, self.policy
        if space is None and policy is None and self.population is None:
            yield (
                ("policy",),
                "give a policy or a space: `space: search_spaces/lr_policies.yaml` to search, "
                "or `policy: {lr: 3e-4}` to run one fixed LR policy",
            )
        if space is not None and policy is None and space.lr is None and space.needs_base_lr():
            yield (
                ("space", "lr"),
                "no base learning rate: set `lr` in the space (a number or a range), give every "
                "optimizer family its own `lr`, or give the job a `policy:` with an lr",
            )
        yield from self._agent_problems()
        yield from self._hyperparam_problems()
        yield from self._budget_problems()
        yield from self._search_problems()
        yield from self._population_problems()
        if self.evaluation.score and not self.metric.name.startswith(EVALUATED_METRIC_PREFIX):
            yield (
                ("evaluation", "score"),
                f"scoring on the evaluation needs an episode metric (metric.name under "
                f"`{EVALUATED_METRIC_PREFIX}`, e.g. env_runners/episode_return_mean), not "
                f"{self.metric.name!r}: change metric.name or set evaluation.score: false",
            )

    def _agent_problems(self) -> Iterator[Problem]:
        if self.policy is not None:
            for loc, message in self.policy.agent_problems(self.agent):
                yield ("policy", *loc), message
        refs: list[tuple[Loc, str, str]] = []
        if self.space is not None:
            for slot, reg in PLUGIN_SLOTS.items():
                families = getattr(self.space, slot) or {}
                refs += [(("space", slot, name), reg, name) for name in families]
            for label, rules in (self.space.feedback or {}).items():
                refs += [
                    (("space", "feedback", label, i), "feedback", r.name)
                    for i, r in enumerate(rules)
                ]
        for slot, choices in self.population.choices.items() if self.population else ():
            refs += [
                (("population", "choices", slot, i), PLUGIN_SLOTS[slot], r.name)
                for i, r in enumerate(choices)
            ]
        for loc, slot, name in refs:
            if (problem := SLOTS[slot].agent_problem(name, self.agent)) is not None:
                yield loc, problem
        for field, msg in self._model_fit(self.model):
            yield ("model", field), msg
        # The space's model settings over the job's model, at every check point of each (a
        # categorical at each choice): an unsupported one is bad input here, not a trial error.
        space_model = (self.space.model or {}) if self.space is not None else {}
        reported: set[str] = set()
        for moved, _, _, candidate in check_candidates(space_model):
            merged = ModelSpec.model_validate({**self.model.model_dump(), **candidate})
            for field, msg in self._model_fit(merged):
                if field in space_model and field not in reported and moved in (None, field):
                    reported.add(field)
                    yield ("space", "model", field), msg

    def _model_fit(self, model: ModelSpec) -> Iterator[tuple[str, str]]:
        """(field, message) for each model setting this job's agent cannot run."""
        plugin, agent = self.agent_plugin, self.agent
        if model.initializer is not None and model.initializer not in plugin.initializers:
            yield (
                "initializer",
                f"agent '{agent}' supports {', '.join(plugin.initializers)} initialisation "
                "(orthogonal is built for PPO's policy and value networks); leave it out for "
                "the agent's default",
            )
        if model.normalize_rewards and not plugin.scales_rewards:
            yield (
                "normalize_rewards",
                f"{agent} cannot scale rewards (only PPO, whose batches are whole return "
                f"streams, can); leave it out or set it to false for {agent}",
            )
        if model.exploration is not None and model.exploration not in plugin.explorations:
            yield (
                "exploration",
                f"{agent} has no exploration setting ({model.exploration} is PPO's, for "
                f"continuous actions: a 1-D Box); leave model.exploration out for {agent}",
            )
        for field in ("log_std_init", "sde_sample_freq"):
            needs = ("gaussian", "gsde") if field == "log_std_init" else ("gsde",)
            if getattr(model, field) is not None and model.exploration not in needs:
                yield (
                    field,
                    f"sets the {' or '.join(needs)} exploration, and model.exploration is "
                    f"{model.exploration or 'not set'}: set model.exploration: "
                    f"{needs[-1]} (PPO, continuous actions) or leave {field} out",
                )
        if model.vf_share_layers and not plugin.separate_value_network:
            yield (
                "vf_share_layers",
                f"{agent} has no value network to share layers with; leave it out for {agent}",
            )

    def _hyperparam_problems(self) -> Iterator[Problem]:
        """The space's ``agent_settings``: for this job's agent, and not beside the RLlib
        setting they replace; the job's ``hyperparams``: not lrtune's, not the space's."""
        settings = (self.space.agent_settings or {}) if self.space is not None else {}
        searched = self.space.hyperparams if self.space is not None else {}
        for key in settings:
            loc = ("space", "agent_settings", key)
            if key not in self.agent_plugin.agent_settings:
                owners = [
                    name.upper()
                    for name in SLOTS["agents"].names()
                    if key in SLOTS["agents"].build(name).agent_settings
                ]
                yield (
                    loc,
                    f"a {'/'.join(owners) or 'no agent'}'s setting, and this job's agent is "
                    f"{self.agent}: remove it or use an agent space for {self.agent}",
                )
            replaced = AGENT_SETTING_REPLACES[key]
            for where, hp in (("hyperparams", self.hyperparams), ("space.hyperparams", searched)):
                if replaced in hp:
                    yield loc, f"sets {replaced}, which {where}.{replaced} sets too: keep one"
        owned = self.agent_plugin.owned()
        for key in self.hyperparams:
            if key in owned:
                yield ("hyperparams", key), f"lrtune sets this itself ({owned[key]})"
            elif key in searched:
                yield (
                    ("hyperparams", key),
                    f"the space also sets it (space.hyperparams.{key}): keep one of the two",
                )

    def _budget_problems(self) -> Iterator[Problem]:
        budget = self.budget.trial_env_steps
        grace = self.scheduler.grace_period
        if grace is not None and grace > budget:
            yield (
                ("scheduler", "grace_period"),
                f"{grace} env steps is more than budget.trial_env_steps ({budget}): lower it "
                "or leave it out",
            )
        if self.policy is not None:
            try:
                self.policy.schedule.build(SLOTS["schedules"], budget=budget)
            except (ValueError, TypeError, LRTuneError) as exc:
                yield ("policy", "schedule"), f"{exc} (budget.trial_env_steps is {budget})"
        # A space's schedule families are built at every check point (the first failure each).
        for name, params in ((self.space.schedule or {}) if self.space is not None else {}).items():
            for key, _, point, candidate in check_candidates(params):
                try:
                    SLOTS["schedules"].get(name).build(candidate, budget=budget)
                except (ValueError, TypeError, LRTuneError) as exc:
                    at = f" at {key}={point!r}" if key else ""
                    loc = ("space", "schedule", name, *((key,) if key else ()))
                    yield loc, f"{exc}{at} (budget.trial_env_steps is {budget})"
                    break

    def _search_problems(self) -> Iterator[Problem]:
        """The searcher against the rest of the job: startup trials only for a model,
        modules it needs installed, a warm start only into an Optuna study, a grid only over
        ``values``."""
        search = self.search
        plugin = search.plugin_class()
        startup = search.startup_trials
        if startup is not None and not plugin.model_based:
            what = {"grid": "a grid search", "optuna": f"sampler {search.searcher}"}.get(
                plugin.kind, f"searcher {search.searcher}"
            )
            with_model = _plugins_where("searchers", lambda c: c.model_based and c.kind == "optuna")
            yield (
                ("search", "startup_trials"),
                f"{what} has no model to start after random trials: leave startup_trials out, "
                f"or use sampler {with_model}",
            )
        elif startup is not None and self.space is not None and startup > self.trials.num:
            yield (
                ("search", "startup_trials"),
                f"{startup} is more than trials.num ({self.trials.num}): the model would "
                "propose no trial; lower it or raise trials.num",
            )
        absent = [m for m in plugin.requires if importlib.util.find_spec(m) is None]
        if absent:
            install = plugin.install or f"pip install {' '.join(absent)}"
            yield (
                ("search", "algorithm" if plugin.kind != "optuna" else "sampler"),
                f"{search.searcher} needs the `{'`, `'.join(absent)}` package, which is not "
                f"installed ({install}), or choose another searcher (`lrtune plugins "
                "searchers`)",
            )
        if search.batch and (plugin.kind == "grid" or self.space is None):
            why = (
                "a grid's trials are fixed"
                if self.space
                else "a job without a space has no searcher"
            )
            yield (
                ("search", "batch"),
                "a batch waits for its results before the searcher proposes more trials, and "
                f"{why}: leave batch out",
            )
        if search.warm_start is not None and plugin.kind != "optuna":
            yield (
                ("search", "warm_start"),
                f"a warm start copies an earlier experiment's Optuna trials, and "
                f"{search.searcher} keeps no Optuna study: leave warm_start out or use "
                "algorithm: optuna",
            )
        space = self.space
        if space is None:
            return
        dims = space.dimensions()
        if plugin.kind == "tune" and not dims and not space.is_conditional:
            yield (
                ("search", "algorithm"),
                f"the space has nothing to search (no range, no choice), and searcher "
                f"{search.searcher} needs a dimension: add one, or give the job a `policy:` "
                "instead of a space",
            )
        if plugin.kind != "grid":
            return
        missing = [loc for loc, dim in dims.items() if dim.values is None]
        for loc in missing:
            yield (
                ("space", *loc),
                "search.algorithm is grid: give this dimension a `values` list (its grid "
                "points), or use search.algorithm: optuna",
            )
        size = space.grid_size() if not missing else 0
        if size > MAX_GRID_POINTS:
            yield (
                ("search", "algorithm"),
                f"the grid has {size} points, more than {MAX_GRID_POINTS}: list fewer values or "
                "use optuna",
            )

    def _population_problems(self) -> Iterator[Problem]:
        """A population replaces the search: no space, default search and trial count, no
        early-stopping scheduler; its mutable parameters must exist in the policy."""
        population = self.population
        if population is None:
            return
        why = "a population job learns its LR policy with `population:`, not a search algorithm"
        if self.space is not None:
            yield (
                ("space",),
                f"{why}: remove `space:` (use population.mutable and population.choices) or "
                "remove `population:`",
            )
        default_search = SearchSpec.model_validate({})
        for key in SearchSpec.model_fields:
            if getattr(self.search, key) != getattr(default_search, key):
                yield ("search", key), f"{why}: leave `search:` out (it is ignored otherwise)"
        if self.scheduler != SchedulerSpec.model_validate({}) and self.scheduler.name != "none":
            yield (
                ("scheduler", "name"),
                "the population is the trial scheduler: leave `scheduler:` out or set `name: none`",
            )
        if self.trials.num != population.size:
            yield (
                ("trials", "num"),
                f"a population job runs population.size ({population.size}) trials: leave "
                "trials.num out or make it equal",
            )
        for key in ("checkpoint_seconds", "checkpoint_env_steps"):
            if getattr(self.trials, key) is not None:
                yield (
                    ("trials", key),
                    "a population's members save checkpoints every population.checkpoint."
                    "interval env steps (and when the scheduler asks), which the population's "
                    "donors rely on: remove it and set population.checkpoint.interval instead",
                )
        yield from population.problems(self.policy, self.budget.trial_env_steps)

    # ---- views

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment: ``tracking.experiment``, else the job's name."""
        return self.tracking.experiment or self.name

    @property
    def grace_period_steps(self) -> int:
        """The scheduler's grace period in env steps: ``grace_period``, else ``grace_fraction``
        of a trial's budget (rounded, at least 1), else a quarter of a trial's budget."""
        if self.scheduler.grace_period is not None:
            return int(self.scheduler.grace_period)
        if self.scheduler.grace_fraction is not None:
            return max(1, round(self.scheduler.grace_fraction * self.budget.trial_env_steps))
        return max(1, self.budget.trial_env_steps // 4)

    @property
    def trial_count(self) -> int:
        """How many trials a run starts: the population's size, the grid's size (each point
        once, plus the baseline with ``search.baseline_first``), one for a fixed policy (no
        space) unless ``trials.num`` is given (its trials share the policy and the seeds, so
        they compute the same thing), else ``trials.num``."""
        if self.population is not None:
            return int(self.population.size)
        if self.space is None and "num" not in self.trials.model_fields_set:
            return 1
        if self.search.kind == "grid" and self.space is not None:
            return int(self.space.grid_size()) + (1 if self.search.baseline_first else 0)
        return int(self.trials.num)

    @property
    def concurrent_trials(self) -> int:
        """How many trials run at once: ``trials.max_concurrent``, at most `trial_count`; a
        population's every member (Tune's population schedulers time-share them, and no
        limiter stands in front: ``trials.max_concurrent`` does not apply)."""
        if self.population is not None:
            return self.trial_count
        return min(int(self.trials.max_concurrent), self.trial_count)

    @property
    def startup_trials(self) -> int:
        """Random trials before model-based sampling: ``search.startup_trials``, else
        ``max(2, min(10, trials.num // 4))``."""
        if self.search.startup_trials is not None:
            return int(self.search.startup_trials)
        return max(2, min(10, self.trials.num // 4))

    @property
    def fixed_hyperparams(self) -> dict[str, Any]:
        """Hyper-parameters every trial gets: the job's and the space's constants."""
        fixed = dict(constants_of(self.space.hyperparams)) if self.space is not None else {}
        fixed.update(self.hyperparams)
        return fixed

    @property
    def agent_plugin(self) -> AgentPlugin:
        """The ``agents`` entry of this job's agent."""
        return SLOTS["agents"].build(self.agent)

    def __getstate__(self) -> dict[Any, Any]:
        """The pickled job (Tune's tuner.pkl, Ray's object store) without the tracking URI's
        password: the driver passes the URI to its tracker itself, and a pickle may land on
        disk. Unpickled, ``tracking.uri`` shows ``***`` for the password."""
        state: dict[Any, Any] = super().__getstate__()
        uri = self.tracking.uri
        if uri and redact_uri(uri) != uri:
            tracking = self.tracking.model_copy(update={"uri": redact_uri(uri)})
            state["__dict__"] = {**state["__dict__"], "tracking": tracking}
        return state

    def to_yaml_dict(self) -> dict[str, Any]:
        """Plain data (YAML-ready, space inlined) that loads back to an equal `JobSpec`."""
        return self.model_dump(mode="json")

    def resolved_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the resolved job (space inlined, defaults
        filled), leaving out what does not change results (`HASH_EXCLUDED`), and
        `HASH_LATER_FIELDS` while unset."""
        data = self.to_yaml_dict()
        for path, always in [(p, True) for p in HASH_EXCLUDED] + [
            (p, False) for p in HASH_LATER_FIELDS
        ]:
            node: Any = data
            for key in path[:-1]:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, dict) and (always or _unset(node.get(path[-1]))):
                node.pop(path[-1], None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------ helpers


def resolve_reference(data: dict[str, Any], key: str, base_dir: str | Path | None) -> list[Problem]:
    """Replace a job's ``space`` or ``policy`` given as a path in ``data`` by the mapping it
    holds, recording the space's files; the problems, located under ``key``. Each file is read
    here, once.

    A ``space`` list (paths and inline mappings) is merged into one space (`merge_space_parts`).
    """
    value = data.get(key)
    if key == "space" and isinstance(value, list | tuple):
        parts: list[tuple[str, Mapping[str, Any]]] = []
        files: list[str] = []
        empty = "an empty list: give space files or inline spaces, or leave it out"
        problems: list[Problem] = [] if value else [((), empty)]
        for i, entry in enumerate(value):
            if isinstance(entry, str):
                try:
                    path, raw = load_referenced(entry, base_dir, key)
                    parts.append((str(path), raw))
                    files.append(str(path))
                except ValueError as exc:
                    problems.append(((i,), str(exc)))
            elif isinstance(entry, Mapping):
                parts.append((f"space[{i}] (inline)", entry))
            else:
                kind = type(entry).__name__
                problems.append(((i,), f"a space part is a file path or a mapping, got {kind}"))
        merged: dict[str, Any] = {}
        if not problems:
            merged, problems = merge_space_parts(parts)
        data.update(space=merged, space_path=None, space_files=tuple(files))
        return [((key, *loc), msg) for loc, msg in problems]
    if not isinstance(value, str):
        return []
    try:
        path, data[key] = load_referenced(value, base_dir, key)
    except ValueError as exc:
        return [((key,), str(exc))]
    if key == "space":
        data.update(space_path=str(path), space_files=(str(path),))
    return []


def load_referenced(value: str, base_dir: str | Path | None, what: str) -> tuple[Path, Any]:
    """Load the YAML file a job refers to (its ``space`` or ``policy``), a relative path tried
    against ``base_dir`` then the current directory; ValueError if not."""
    raw = Path(value).expanduser()
    bases = [Path(base_dir).absolute()] if base_dir is not None else []
    tried = list(dict.fromkeys(base / raw for base in (*bases, Path.cwd())))  # absolute: raw
    path = next((candidate.resolve() for candidate in tried if is_file(candidate)), None)
    if path is None:
        raise ValueError(
            f"no such file {value!r} (tried {', '.join(str(t) for t in tried)}); "
            f"give the {what} file's path relative to the job file or the current "
            f"directory, or write the {what} inline"
        )
    try:
        _, data = load_yaml(path)
    except SpecError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a {what} file holds a mapping, got {type(data).__name__}")
    return path, data
