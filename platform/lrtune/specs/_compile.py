"""Compile a job's search space for Optuna (define-by-run) and for grid searches.

`compile_space(job).define` is an Optuna define-by-run function (for Ray Tune's
``OptunaSearch(space=define)``): per slot it suggests a family (a categorical parameter named
after the slot, skipped when the slot has one family), then only that family's dimensions
(``schedule.cosine.min_factor``, ``optimizer.sgd.lr``; the base ``lr`` only when the chosen
optimizer has no ``lr`` of its own), then the agent's (``hyperparams.*``, ``model.*``,
``agent_settings.*``). Every point is a `TrialPoint` whose ``hyperparams`` already hold the
RLlib settings its ``agent_settings`` stand for (`agent_hyperparams`), so that its
``hyperparams`` and ``model`` (`trial_model`) are all a trial needs to run again (``best.yaml``).

Families and parameters are visited in sorted order, so the order of keys in a space file does
not change what a seeded sampler suggests (`JobSpec.resolved_hash` sorts keys too).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lrtune.policies import PLUGIN_SLOTS, LRPolicySpec
from lrtune.specs._job import JobSpec
from lrtune.specs._point import TrialPoint
from lrtune.specs._space import (
    AGENT_SECTIONS,
    AgentSettings,
    Dimension,
    SearchSpaceSpec,
    choice_label,
    constants_of,
    dims_of,
)
from lrtune.specs._yaml import SpecError

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

BASELINE_ATTR = "lrtune_baseline"


# ------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class _Param:
    """One suggestable parameter: its flat name and dimension."""

    name: str
    dim: Dimension

    @property
    def options(self) -> tuple[Any, ...] | None:
        """The discrete options Optuna picks from (choices, or values when alone), else None."""
        if self.dim.distribution == "categorical":
            return self.dim.choices
        return self.dim.values if self.dim.distribution is None else None

    def labels(self) -> list[Any]:
        return [choice_label(o) for o in self.options or ()]

    def from_label(self, label: Any) -> Any:
        """The choice a categorical label stands for."""
        for option in self.options or ():
            if choice_label(option) == label and type(choice_label(option)) is type(label):
                return option
        return label

    def distribution(self) -> BaseDistribution:
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        d = self.dim
        if self.options is not None:
            return CategoricalDistribution(self.labels())
        assert d.low is not None and d.high is not None
        if d.is_int:
            step = int(d.step) if d.step is not None else 1
            return IntDistribution(
                int(d.low), int(d.high), log=d.distribution == "log_int", step=step
            )
        return FloatDistribution(d.low, d.high, log=d.distribution == "log_uniform", step=d.step)

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this parameter, suggested over `distribution`."""
        if self.options is not None:
            return self.from_label(trial.suggest_categorical(self.name, self.labels()))
        dist: Any = self.distribution()
        suggest = trial.suggest_int if self.dim.is_int else trial.suggest_float
        return suggest(self.name, dist.low, dist.high, step=dist.step, log=dist.log)


@dataclass(frozen=True)
class _Family:
    """One family of a slot: plugin name, constants, dimensions (sorted by name)."""

    name: str
    constants: Mapping[str, Any]
    params: tuple[_Param, ...]
    lr: Any = None  # optimizer families: own lr (a constant or a _Param), else None


def _family(slot: str, name: str, raw: Mapping[str, Any]) -> _Family:
    raw = dict(raw)
    own = raw.pop("lr", None) if slot == "optimizer" else None
    lr = _Param(f"optimizer.{name}.lr", own) if isinstance(own, Dimension) else own
    params = tuple(_Param(f"{slot}.{name}.{key}", dim) for key, dim in sorted(dims_of(raw).items()))
    return _Family(name, constants_of(raw), params, lr)


# ---------------------------------------------------------------------------------- compiled


@dataclass
class CompiledSpace:
    """A job's search space, ready for Optuna or for a grid search.

    ``fixed`` is the job's policy as data (or `LRPolicySpec`'s default): it fills the slots,
    the feedback and the roles the space leaves out; ``base_lr`` is the space's ``lr`` (a
    `_Param` or a number) or the policy's; ``agent_params`` are the dimensions of
    ``hyperparams``, ``model`` and ``agent_settings``.
    """

    job: JobSpec
    fixed: dict[str, Any]
    families: dict[str, tuple[_Family, ...]] = field(default_factory=dict)
    feedback: dict[str, tuple[dict[str, Any], ...]] | None = None
    base_lr: Any = None
    agent_params: tuple[_Param, ...] = ()

    # ---- Optuna

    def define(self, trial: optuna.Trial) -> dict[str, Any]:
        """Optuna define-by-run: suggest one point; return the trial's constants."""
        job = self.job
        if job.search.baseline_first and not any(
            t.user_attrs.get(BASELINE_ATTR) for t in trial.study.get_trials(deepcopy=False)
        ):
            trial.set_user_attr(BASELINE_ATTR, True)
            return self.baseline_point().to_config()
        return self._point(
            lambda name, labels: str(trial.suggest_categorical(name, labels)),
            lambda param: param.suggest(trial),
        ).to_config()

    def baseline_point(self) -> TrialPoint:
        """The baseline trial: the job's policy, else a constant LR with Adam at the agent's
        `AgentPlugin.baseline_lr` (PPO 3e-4 and SAC 3e-4, SB3's defaults; DQN 1e-3), with the
        space's agent constants but none of its dimensions."""
        policy = self.job.policy or LRPolicySpec(lr=self.job.agent_plugin.baseline_lr)
        return self._trial_point(policy, {}, baseline=True)

    def _trial_point(
        self, policy: LRPolicySpec, searched: Mapping[str, Any], baseline: bool = False
    ) -> TrialPoint:
        """The point of ``policy``: the job's hyper-parameters and the constants of the space's
        ``model`` and ``agent_settings``, with ``searched`` (``section.key``: value) over them."""
        space = self.job.space
        sections: dict[str, dict[str, Any]] = {
            "hyperparams": self.job.fixed_hyperparams,
            "model": constants_of(space.model or {}) if space is not None else {},
            "agent_settings": constants_of(space.agent_settings or {}) if space is not None else {},
        }
        for name, value in searched.items():
            section, key = name.split(".", 1)
            sections[section][key] = value
        agent = sections["agent_settings"]
        return TrialPoint(
            policy=policy.model_dump(mode="json"),
            hyperparams=agent_hyperparams(self.job, agent, sections["hyperparams"]),
            model=sections["model"],
            agent_settings=agent,
            baseline=baseline,
        )

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter `define` can suggest, by name (for warm starts and add_trial)."""
        from optuna.distributions import CategoricalDistribution

        out: dict[str, BaseDistribution] = {}
        for slot, families in self.families.items():
            if len(families) > 1:
                out[slot] = CategoricalDistribution(sorted(f.name for f in families))
            for fam in families:
                for p in fam.params:
                    out[p.name] = p.distribution()
                if isinstance(fam.lr, _Param):
                    out[fam.lr.name] = fam.lr.distribution()
        if self.feedback is not None and len(self.feedback) > 1:
            out["feedback"] = CategoricalDistribution(sorted(self.feedback))
        space = self.job.space
        if isinstance(self.base_lr, _Param) and space is not None and space.needs_base_lr():
            out["lr"] = self.base_lr.distribution()
        for p in self.agent_params:
            out[p.name] = p.distribution()
        return out

    def point_of(self, params: Mapping[str, Any]) -> TrialPoint:
        """The trial point given as flat parameter values, named as in
        `distributions` (categorical ones by their labels): what a searcher other than
        Optuna's proposes. Values of families the point does not choose are ignored."""

        def value(param: _Param) -> Any:
            raw = params[param.name]
            if param.options is not None:
                return param.from_label(raw)
            return round(float(raw)) if param.dim.is_int else float(raw)

        return self._point(lambda name, _: str(params[name]), value)

    # ---- grid

    def grid_points(self) -> list[TrialPoint]:
        """Every point of the grid over the ``values`` of each dimension.

        Families of a slot are alternatives (their own grids added up); slots, feedback and
        hyper-parameters are crossed. Each point's ``searched`` holds the values it chose.
        """
        # Per grid axis, its alternatives with values of their dimensions: param name ->
        # (Optuna value, actual value); a point takes one of each axis.
        per_axis: list[list[dict[str, tuple[Any, Any]]]] = []
        for axis in self.job.space.grid_axes() if self.job.space is not None else []:
            options = []
            for picks, dims in axis:
                head = {k: (v, v) for k, v in picks.items()}
                names = [".".join(map(str, loc)) for loc, _ in dims]
                for values in itertools.product(*(dim.grid() for _, dim in dims)):
                    options.append({**head, **dict(zip(names, values, strict=True))})
            per_axis.append(options)
        points = [self.baseline_point()] if self.job.search.baseline_first else []
        for parts in itertools.product(*per_axis):
            chosen: dict[str, Any] = {}
            combo = {k: v for part in parts for k, v in part.items()}
            point = self._point(*_grid_pickers(combo, chosen))
            points.append(dataclasses.replace(point, searched=chosen))
        return points

    # ---- one point

    def _point(
        self, category: Callable[[str, list[str]], str], value: Callable[[_Param], Any]
    ) -> TrialPoint:
        """The point that picks a slot's family by ``category(slot, labels)`` and a parameter's
        value by ``value(param)``: from an Optuna trial, a grid combination or flat values."""
        policy: dict[str, Any] = {}
        lr: Any = None
        for slot in PLUGIN_SLOTS:
            families = self.families.get(slot)
            if families is None:
                policy[slot] = self.fixed[slot]
                continue
            names = [f.name for f in families]  # sorted (compile_space)
            fam = families[names.index(category(slot, names))] if len(names) > 1 else families[0]
            params = dict(fam.constants)
            for p in fam.params:
                params[p.name.rsplit(".", 1)[1]] = value(p)
            policy[slot] = {"name": fam.name, "params": params}
            if slot == "optimizer" and fam.lr is not None:
                lr = value(fam.lr) if isinstance(fam.lr, _Param) else fam.lr
        if lr is None:
            lr = value(self.base_lr) if isinstance(self.base_lr, _Param) else self.base_lr
        if self.feedback is None:
            feedback: Sequence[Any] = self.fixed["feedback"]
        else:
            labels = sorted(self.feedback)
            feedback = self.feedback[category("feedback", labels) if len(labels) > 1 else labels[0]]
        policy["feedback"] = list(feedback)
        policy["lr"] = lr
        if "roles" in self.fixed:
            # The job's fixed per-role settings (e.g. SAC's alpha rate) hold at every point.
            policy["roles"] = self.fixed["roles"]
        spec = LRPolicySpec.model_validate(policy)
        return self._trial_point(spec, {p.name: value(p) for p in self.agent_params})


def _grid_pickers(
    combo: Mapping[str, tuple[Any, Any]], chosen: dict[str, Any]
) -> tuple[Callable[[str, list[str]], str], Callable[[_Param], Any]]:
    """`CompiledSpace._point`'s pickers for ``combo``'s ``(Optuna-form, actual)`` values,
    recording the former in ``chosen``."""

    def value(name: str) -> Any:
        chosen[name] = combo[name][0]
        return combo[name][1]

    return (lambda name, _: str(value(name))), (lambda param: value(param.name))


# ------------------------------------------------------------------------------ entry points


def compile_space(job: JobSpec) -> CompiledSpace:
    """Compile ``job``'s space (with its fixed policy for the slots the space leaves out)."""
    space, policy = job.space, job.policy
    fixed = (policy or LRPolicySpec(lr=1.0)).model_dump(mode="json")
    compiled = CompiledSpace(job=job, fixed=fixed, base_lr=None if policy is None else policy.lr)
    if space is None:
        return compiled
    for slot in PLUGIN_SLOTS:
        raw = getattr(space, slot)
        if raw is not None:
            compiled.families[slot] = tuple(_family(slot, name, raw[name]) for name in sorted(raw))
    if space.feedback is not None:
        compiled.feedback = {
            label: tuple(r.model_dump(mode="json") for r in refs)
            for label, refs in space.feedback.items()
        }
    if space.lr is not None:
        compiled.base_lr = _Param("lr", space.lr) if isinstance(space.lr, Dimension) else space.lr
    compiled.agent_params = tuple(
        _Param(f"{section}.{key}", dim)
        for section in AGENT_SECTIONS
        for key, dim in sorted(dims_of(getattr(space, section) or {}).items())
    )
    _check_minibatches(job, space)
    return compiled


# --------------------------------------------------------------------------- agent settings


def _base_hyperparams(job: JobSpec, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """The agent's presets under ``hyperparams`` (imported here, only for spaces with
    ``agent_settings``: the presets live with the learners, which import RLlib)."""
    from lrtune.learners._presets import over_presets

    return over_presets(job.agent, job.env.id, job.env.config, hyperparams)


def agent_hyperparams(
    job: JobSpec, settings: Mapping[str, Any], hyperparams: Mapping[str, Any]
) -> dict[str, Any]:
    """``hyperparams`` with the RLlib settings that a trial's `AgentSettings` stand for (as
    documented there), derived from the trial's own (its hyper-parameters over the agent's
    presets): ``minibatch_size``, ``epsilon``, ``replay_buffer_config``,
    ``training_intensity``."""
    out = dict(hyperparams)
    if not settings:
        return out
    chosen = AgentSettings.model_validate(dict(settings))
    base = _base_hyperparams(job, out)
    if chosen.num_minibatches is not None:
        batch = int(base["train_batch_size_per_learner"])
        out["minibatch_size"] = max(1, batch // chosen.num_minibatches)
    if chosen.exploration_fraction is not None or chosen.exploration_final_eps is not None:
        # The end of the presets' ramp: ``[[step, ε], ...]``'s last point, or a flat ε.
        epsilon: Any = base.get("epsilon")
        last = (1, epsilon) if isinstance(epsilon, int | float) else list(epsilon)[-1]
        end_step, final_eps = int(last[0]), float(last[1])
        if chosen.exploration_fraction is not None:
            end_step = max(1, round(chosen.exploration_fraction * job.budget.trial_env_steps))
        if chosen.exploration_final_eps is not None:
            final_eps = float(chosen.exploration_final_eps)
        out["epsilon"] = [[0, 1.0], [end_step, final_eps]]
    if chosen.buffer_size is not None:
        buffer = dict(base.get("replay_buffer_config") or {})
        out["replay_buffer_config"] = {**buffer, "capacity": int(chosen.buffer_size)}
    if chosen.updates_per_env_step is not None:
        batch = int(base["train_batch_size_per_learner"])
        out["training_intensity"] = float(chosen.updates_per_env_step) * batch
    return out


def _check_minibatches(job: JobSpec, space: SearchSpaceSpec) -> None:
    """Refuse a ``num_minibatches`` larger than the smallest train batch it divides (a
    minibatch of 0 samples); the batch's own dimension, a constant or the presets."""
    dim_or_value = (space.agent_settings or {}).get("num_minibatches")
    if dim_or_value is None:
        return
    most = max(_points(dim_or_value))
    batch: Any = space.hyperparams.get("train_batch_size_per_learner")
    if batch is None:
        batch = _base_hyperparams(job, job.fixed_hyperparams)["train_batch_size_per_learner"]
    least = min(_points(batch))
    if most > least:
        raise SpecError(
            f"{job.name}: space.agent_settings.num_minibatches: up to {most:g} minibatches of a "
            f"train batch that may be as small as {least:g} (train_batch_size_per_learner) leave "
            "minibatches of 0 samples; lower num_minibatches or raise the batch."
        )


def _points(value: Any) -> list[float]:
    """The numbers a constant or a dimension can take, as far as the range goes."""
    if isinstance(value, Dimension):
        return [float(point) for _, point in value.check_points()]
    return [float(value)]


def trial_model(job: JobSpec, point: TrialPoint) -> Any:
    """The `ModelSpec` a trial runs with: the job's ``model:`` with the trial's model settings
    (``point.model``, from the space) applied over it."""
    overrides = point.model
    if not overrides:
        return job.model
    return type(job.model).model_validate({**job.model.model_dump(), **overrides})
