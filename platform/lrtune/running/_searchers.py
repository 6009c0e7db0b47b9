"""Searchers other than Optuna's: a job's space as flat Tune domains, and `PointSearcher`, which
turns a Tune searcher's flat suggestions into lrtune trial points.

Optuna samplers run define-by-run (`LRTuneOptunaSearch`, in ``_search``); a `TuneSearcherPlugin`
(``hyperopt``) gets every parameter of the compiled space at once, as a Tune domain
(`tune_domains`): uniform and log-uniform floats and integers, and categorical labels. A
stepped parameter becomes the index of its grid point, mapped back here, because Tune's
quantised domains round to multiples of the step from zero rather than from the range's low
end (HyperOpt's ``quniform(3, 11, 4)`` gives 4, 8, 12 where the space means 3, 7, 11).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ray.tune.search import Searcher

#: ``(low, step, is_int)`` of a stepped parameter, whose domain is its grid index.
Stepped = tuple[float, float, bool]


def tune_domains(distributions: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Stepped]]:
    """``(Tune domain per parameter, stepped parameters)`` for Optuna ``distributions`` (a
    `CompiledSpace.distributions`)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
    from ray import tune

    space: dict[str, Any] = {}
    stepped: dict[str, Stepped] = {}
    for name, dist in distributions.items():
        if isinstance(dist, CategoricalDistribution):
            space[name] = tune.choice(list(dist.choices))
            continue
        is_int = isinstance(dist, IntDistribution)
        if not is_int and not isinstance(dist, FloatDistribution):
            raise TypeError(f"{name}: no Tune domain for {type(dist).__name__}")
        step = dist.step if dist.step is not None and (not is_int or dist.step != 1) else None
        if step is not None:
            points = round((dist.high - dist.low) / step)
            space[name] = tune.randint(0, points + 1)
            stepped[name] = (float(dist.low), float(step), is_int)
        elif is_int:
            build = tune.lograndint if dist.log else tune.randint
            space[name] = build(int(dist.low), int(dist.high) + 1)
        else:
            space[name] = (tune.loguniform if dist.log else tune.uniform)(dist.low, dist.high)
    return space, stepped


@dataclass(frozen=True)
class PointOf:
    """A flat suggestion → the trial's config (``{"lrtune": ...}``, as Optuna's trials get).

    Pickled with the searcher (Tune saves it), so it holds data and the compiled space only.
    """

    compiled: Any
    stepped: Mapping[str, Stepped]

    def __call__(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """The trial config of one suggestion."""
        values = dict(flat)
        for name, (low, step, is_int) in self.stepped.items():
            if name in values:
                value = low + int(values[name]) * step
                # 12 significant digits: 3 * 0.1 is 0.30000000000000004, and the space means 0.3
                values[name] = round(value) if is_int else float(f"{value:.12g}")
        return self.compiled.point_of(values).to_config()


class PointSearcher(Searcher):
    """A Tune searcher over flat parameters, seen by Tune as one that proposes trial points.

    ``baseline``, when given, is the first trial's config (the job's baseline policy): it is
    handed out once and never shown to the wrapped searcher, which has no point for it. A trial
    that ends without a finite score is told as an error, not as a value a model would fit.
    """

    def __init__(
        self, searcher: Searcher, to_point: PointOf, baseline: dict[str, Any] | None = None
    ) -> None:
        self.searcher = searcher
        self.to_point = to_point
        self.baseline = baseline
        #: Trials this wrapper proposed itself (the baseline): the wrapped searcher never saw them.
        self.own: set[str] = set()
        super().__init__(metric=searcher.metric, mode=searcher.mode)

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any
    ) -> bool:
        """Passed on (the wrapped searcher was built with its space and metric)."""
        done: bool = self.searcher.set_search_properties(metric, mode, config, **spec)
        return done

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Passed on."""
        handled: bool = self.searcher.set_max_concurrency(max_concurrent)
        return handled

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The baseline first (if asked for), then the wrapped searcher's points."""
        if self.baseline is not None:
            point, self.baseline = self.baseline, None
            self.own.add(trial_id)
            return point
        flat = self.searcher.suggest(trial_id)
        if flat is None or flat == Searcher.FINISHED:
            return flat  # type: ignore[no-any-return]
        return self.to_point(flat)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        """Passed on, except for the baseline's."""
        if trial_id not in self.own:
            self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        """Passed on (no finite score: as an error), except for the baseline's."""
        if trial_id in self.own:
            return
        value = None if result is None else result.get(self.metric)
        finite = value is not None and math.isfinite(float(value))
        self.searcher.on_trial_complete(trial_id, result=result, error=error or not finite)

    # Tune treats a searcher with a ``searcher`` attribute as a wrapper (as its own
    # ConcurrencyLimiter): it saves the wrapper's `get_state` and the wrapped searcher's own
    # file (`save`) side by side, and restores both.

    def get_state(self) -> dict[str, Any]:
        """This wrapper's own state: whether the baseline is still to come, and its trial."""
        return {"baseline": copy.deepcopy(self.baseline), "own": set(self.own)}

    def set_state(self, state: dict[str, Any]) -> None:
        """What `get_state` returned."""
        self.baseline = state["baseline"]
        self.own = set(state["own"])

    def save(self, checkpoint_path: str) -> None:
        """The wrapped searcher's state (its own format)."""
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        """The wrapped searcher's state, as `save` wrote it."""
        self.searcher.restore(checkpoint_path)


def tune_searcher(job: Any, compiled: Any) -> PointSearcher:
    """The job's `TuneSearcherPlugin` over its compiled space, wrapped in a `PointSearcher`."""
    from lrtune.search import SearchSetup, TuneSearcherPlugin

    plugin = job.search.plugin()
    if not isinstance(plugin, TuneSearcherPlugin):
        raise TypeError(f"searcher {job.search.searcher} is not a Tune searcher plugin")
    space, stepped = tune_domains(compiled.distributions())
    setup = SearchSetup(
        metric="score",
        mode=job.metric.mode,
        seed=job.search.seed,
        startup_trials=job.startup_trials,
        space=space,
    )
    baseline = compiled.baseline_point().to_config() if job.search.baseline_first else None
    return PointSearcher(plugin.searcher(setup), PointOf(compiled, stepped), baseline)
