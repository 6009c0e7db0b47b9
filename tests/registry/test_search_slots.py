"""The ``searchers`` and ``schedulers`` slots: listed by `lrtune plugins`, each entry builds the
real Optuna sampler, Tune searcher or Tune scheduler with its parameters, jobs name them and
are refused with one paragraph when they name them wrongly, and validation stays Ray-free.

The shared plugin contract runs over these entries in test_plugin_contract.py (every slot's
``names()``); the tests here are parametrised over the slots' entries too, so a new built-in
entry is tested by being registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]
from lrtune.cli import main
from lrtune.registry import schedulers, searchers
from lrtune.running._search import make_scheduler
from lrtune.running._searchers import tune_domains, tune_searcher
from lrtune.search import (
    GridPlugin,
    OptunaSamplerPlugin,
    SchedulerPlugin,
    SchedulerSetup,
    SearchSetup,
    TuneSearcherPlugin,
    make_sampler,
)
from lrtune.specs import compile_space, parse_job

ROOT = Path(__file__).resolve().parents[2]
SPACE = {"version": 1, "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2}}
GRID_SPACE = {
    "version": 1,
    "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2, "values": [1e-4, 1e-3]},
}
STEPPED_SPACE = {
    "version": 1,
    "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-2},
    "schedule": {
        "constant": {},
        "linear": {"end_factor": {"distribution": "uniform", "low": 0.0, "high": 0.5, "step": 0.1}},
    },
    "hyperparams": {
        "gamma": {"distribution": "categorical", "choices": [0.95, 0.99]},
        "num_epochs": {"distribution": "int", "low": 3, "high": 11, "step": 4},
    },
}


def _job(tmp_path: Path, space: dict[str, Any] = SPACE, **fields: Any) -> Any:
    return parse_job(tiny_job("slots", tmp_path, space=space, **fields))


def _search_section(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The job's ``search:`` that selects searcher ``name``."""
    if searchers.get(name).factory.kind == "optuna":
        return {"algorithm": "optuna", "sampler": name, "params": params}
    return {"algorithm": name, "params": params}


def _needs(entry_class: Any) -> None:
    for module in entry_class.requires:
        pytest.importorskip(module)


def test_lrtune_plugins_lists_searchers_and_schedulers_beside_the_lr_slots(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plugins", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_slot: dict[str, set[str]] = {}
    for row in rows:
        by_slot.setdefault(row["slot"], set()).add(row["name"])
    assert {"schedules", "optimizers", "gradients", "feedback", "populations"} <= set(by_slot)
    assert {"tpe", "cmaes", "gp", "qmc", "random", "grid", "hyperopt"} <= by_slot["searchers"]
    assert {"asha", "median", "hyperband", "none"} <= by_slot["schedulers"]
    assert main(["plugins", "schedulers"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("schedulers (") and "min_samples_required" in table


@pytest.mark.parametrize("name", searchers.names())
def test_each_searcher_builds_its_upstream_object_from_a_job(tmp_path: Path, name: str) -> None:
    entry = searchers.get(name)
    _needs(entry.factory)
    # A grid needs the points of each dimension; the other searchers take the range.
    space = GRID_SPACE if entry.factory.kind == "grid" else SPACE
    job = _job(tmp_path, space=space, search=_search_section(name, dict(entry.example)))
    assert job.search.searcher == name
    plugin = job.search.plugin()
    if isinstance(plugin, OptunaSamplerPlugin):
        assert isinstance(make_sampler(job), optuna.samplers.BaseSampler)
    elif isinstance(plugin, TuneSearcherPlugin):
        searcher = tune_searcher(job, compile_space(job))
        assert isinstance(searcher.searcher, Searcher)
        point = searcher.suggest("t0")
        assert point is not None and 1e-4 <= point["lrtune"]["policy"]["lr"] <= 1e-2
    else:
        assert isinstance(plugin, GridPlugin)
        assert len(compile_space(job).grid_points()) == 2


@pytest.mark.parametrize("name", schedulers.names())
def test_each_scheduler_builds_a_tune_scheduler_from_a_job(tmp_path: Path, name: str) -> None:
    entry = schedulers.get(name)
    job = _job(tmp_path, scheduler={"name": name, "params": dict(entry.example)})
    assert isinstance(job.scheduler.plugin(), SchedulerPlugin)
    assert isinstance(make_scheduler(job), TrialScheduler)


def test_sampler_params_reach_the_optuna_sampler(tmp_path: Path) -> None:
    tpe = make_sampler(
        _job(
            tmp_path,
            search={
                "sampler": "tpe",
                "startup_trials": 1,
                "params": {"n_ei_candidates": 7, "group": False, "constant_liar": False},
            },
        )
    )
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert (tpe._n_ei_candidates, tpe._group, tpe._constant_liar) == (7, False, False)
    assert tpe._n_startup_trials == 1
    # Left out, the parameters are what lrtune always used (multivariate, grouped, liar).
    default = make_sampler(_job(tmp_path))
    assert isinstance(default, optuna.samplers.TPESampler)
    assert (default._multivariate, default._group, default._constant_liar) == (True, True, True)
    qmc = make_sampler(_job(tmp_path, search={"sampler": "qmc", "params": {"qmc_type": "halton"}}))
    assert isinstance(qmc, optuna.samplers.QMCSampler) and qmc._qmc_type == "halton"


def test_scheduler_params_reach_the_tune_scheduler(tmp_path: Path) -> None:
    median = make_scheduler(
        _job(tmp_path, scheduler={"name": "median", "params": {"min_samples_required": 5}})
    )
    assert median._min_samples_required == 5
    asha = make_scheduler(
        _job(
            tmp_path,
            budget={"trial_env_steps": 40_000},
            scheduler={"name": "asha", "reduction_factor": 3, "params": {"brackets": 2}},
        )
    )
    assert len(asha._brackets) == 2 and asha._reduction_factor == 3


def test_a_stepped_space_reaches_hyperopt_as_grid_indices_and_comes_back_on_the_grid(
    tmp_path: Path,
) -> None:
    pytest.importorskip("hyperopt")
    job = _job(
        tmp_path,
        space=STEPPED_SPACE,
        hyperparams={},
        search={"algorithm": "hyperopt", "seed": 3, "baseline_first": True},
    )
    compiled = compile_space(job)
    space, stepped = tune_domains(compiled.distributions())
    assert set(space) == set(compiled.distributions())
    assert set(stepped) == {"schedule.linear.end_factor", "hyperparams.num_epochs"}
    searcher = tune_searcher(job, compiled)
    first = searcher.suggest("baseline")
    assert first is not None and first["lrtune"]["baseline"] is True
    epochs, factors, schedules = set(), set(), set()
    for i in range(24):
        point = searcher.suggest(f"t{i}")
        assert point is not None and point["lrtune"]["baseline"] is False
        lrtune = point["lrtune"]
        epochs.add(lrtune["hyperparams"]["num_epochs"])
        assert lrtune["hyperparams"]["gamma"] in (0.95, 0.99)
        schedule = lrtune["policy"]["schedule"]
        schedules.add(schedule["name"])
        if schedule["name"] == "linear":
            factors.add(schedule["params"]["end_factor"])
        searcher.on_trial_complete(f"t{i}", {"score": float(i)})
    assert epochs <= {3, 7, 11} and len(epochs) > 1
    assert factors <= {0.0, 0.1, 0.2, 0.3, 0.4, 0.5} and len(factors) > 1
    assert schedules == {"constant", "linear"}
    # The baseline was never shown to HyperOpt: it holds the 24 trials it proposed.
    assert len(searcher.searcher._hpopt_trials.trials) == 24
    # Saved and restored as Tune does on a resume (the wrapper's state, the wrapped searcher's
    # file), it goes on from where it was: no second baseline, HyperOpt's 24 trials.
    state = searcher.get_state()
    searcher.save(str(tmp_path / "searcher.pkl"))
    again = tune_searcher(job, compiled)
    again.set_state(state)
    again.restore(str(tmp_path / "searcher.pkl"))
    assert len(again.searcher._hpopt_trials.trials) == 24
    assert again.suggest("next")["lrtune"]["baseline"] is False  # type: ignore[index]


def test_a_trial_without_a_finite_score_is_told_to_hyperopt_as_an_error(tmp_path: Path) -> None:
    hyperopt = pytest.importorskip("hyperopt")
    job = _job(tmp_path, search={"algorithm": "hyperopt"})
    searcher = tune_searcher(job, compile_space(job))
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.on_trial_complete("a", {"score": float("nan")})
    searcher.on_trial_complete("b", {"score": 1.0})
    trials = searcher.searcher._hpopt_trials
    states = [t["state"] for t in trials._dynamic_trials]
    assert states == [hyperopt.JOB_STATE_ERROR, hyperopt.JOB_STATE_DONE]
    assert trials.losses() == [-1.0]  # what TPE fits: the finite score only (negated: max)


@pytest.mark.parametrize(
    ("search", "scheduler", "expected"),
    [
        (
            {"sampler": "tpe", "params": {"n_ei": 3}},
            None,
            ["search.params.n_ei:", "tpe", "n_ei_candidates"],
        ),
        (
            {"sampler": "tpee"},
            None,
            ["search.sampler:", "Did you mean 'tpe'", "lrtune plugins searchers"],
        ),
        ({"algorithm": "tpe"}, None, ["search.algorithm:", "algorithm: optuna, sampler: tpe"]),
        ({"sampler": "hyperopt"}, None, ["search.sampler:", "algorithm: hyperopt"]),
        (
            {"algorithm": "hyperopt", "sampler": "gp"},
            None,
            ["search.sampler:", "leave sampler out"],
        ),
        ({"algorithm": "hyperopt", "warm_start": "old"}, None, ["search.warm_start:", "Optuna"]),
        (
            {"sampler": "cmaes", "params": {"with_margin": True, "lr_adapt": True}},
            None,
            ["search.params:", "at most one"],
        ),
        (
            None,
            {"name": "median", "params": {"brackets": 2}},
            ["scheduler.params.brackets:", "min_samples_required"],
        ),
        (None, {"name": "asah"}, ["scheduler.name:", "Did you mean 'asha'"]),
        (
            None,
            {"name": "asha", "params": {"brackets": 0}},
            ["scheduler.params.brackets:", "greater than or equal to 1"],
        ),
    ],
)
def test_bad_searcher_or_scheduler_settings_exit_2_naming_the_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    search: dict[str, Any] | None,
    scheduler: dict[str, Any] | None,
    expected: list[str],
) -> None:
    fields: dict[str, Any] = {}
    if search is not None:
        fields["search"] = search
    if scheduler is not None:
        fields["scheduler"] = scheduler
    write_yaml(tmp_path, "job", tiny_job("bad", tmp_path, space=SPACE, **fields))
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "job.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lrtune: error: ") and "\n" not in err and "Traceback" not in err
    for part in expected:
        assert part in err, f"{part!r} not in: {err}"


def test_plugin_params_leave_the_hash_of_jobs_without_them_alone(tmp_path: Path) -> None:
    plain = tiny_job("h", tmp_path, space=SPACE)
    base = parse_job(plain).resolved_hash()
    empty = {**plain, "search": {"params": {}}, "scheduler": {"name": "none", "params": {}}}
    assert parse_job(empty).resolved_hash() == base
    tuned = {**plain, "search": {"params": {"n_ei_candidates": 7}}}
    assert parse_job(tuned).resolved_hash() != base


def test_a_job_naming_any_searcher_and_scheduler_validates_without_ray_or_optuna(
    tmp_path: Path,
) -> None:
    path = write_yaml(
        tmp_path,
        "job",
        tiny_job(
            "light",
            tmp_path,
            space=SPACE,
            search={"algorithm": "hyperopt", "params": {"gamma": 0.3}},
            scheduler={"name": "median", "params": {"min_samples_required": 2}},
        ),
    )
    code = (
        "import sys\n"
        "from lrtune.specs import load_job\n"
        f"job = load_job({str(path)!r})\n"
        "assert job.search.searcher == 'hyperopt' and job.scheduler.params\n"
        "heavy = {'ray', 'optuna', 'hyperopt'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_third_party_style_searcher_plugs_in_with_one_registration(tmp_path: Path) -> None:
    """A Tune searcher registered by a module (as an entry point would import it) is usable by
    name in a job: Tune's own random search (BasicVariantGenerator is not a Searcher; a tiny
    Searcher stands in) proposes points that reach the trial config."""
    from ray import tune

    from lrtune.registry import NoParams

    class FirstValue(Searcher):
        def __init__(self, space: dict[str, Any], metric: str, mode: str) -> None:
            super().__init__(metric=metric, mode=mode)
            self.space = space

        def suggest(self, trial_id: str) -> dict[str, Any]:
            return {k: v.sample() for k, v in self.space.items()}

    class FirstPlugin(TuneSearcherPlugin):
        """Draws every parameter from its Tune domain."""

        def searcher(self, setup: SearchSetup) -> Searcher:
            assert isinstance(setup.space["lr"], tune.search.sample.Float)
            return FirstValue(dict(setup.space), setup.metric, setup.mode)

    searchers.register("test_draw", params=NoParams)(FirstPlugin)
    try:
        job = _job(tmp_path, search={"algorithm": "test_draw"})
        point = tune_searcher(job, compile_space(job)).suggest("t")
        assert point is not None and 1e-4 <= point["lrtune"]["policy"]["lr"] <= 1e-2
    finally:  # the registry is the process's: leave it as the other tests expect it
        searchers._entries.pop("test_draw", None)


def test_a_scheduler_plugin_gets_the_jobs_budget_grace_and_reduction_factor(
    tmp_path: Path,
) -> None:
    job = _job(
        tmp_path,
        budget={"trial_env_steps": 40_000},
        scheduler={"name": "asha", "grace_fraction": 0.1, "reduction_factor": 4},
    )
    seen: list[SchedulerSetup] = []

    class Spy(SchedulerPlugin):
        """Records its setup, builds ASHA."""

        def scheduler(self, setup: SchedulerSetup) -> TrialScheduler:
            seen.append(setup)
            return schedulers.get("asha").build({}).scheduler(setup)

    schedulers.register("test_spy")(Spy)
    try:
        spied = job.model_copy(
            update={"scheduler": job.scheduler.model_copy(update={"name": "test_spy"})}
        )
        make_scheduler(spied)
    finally:
        schedulers._entries.pop("test_spy", None)
    assert seen == [SchedulerSetup("env_steps", 40_000, 4_000, 4.0)]
