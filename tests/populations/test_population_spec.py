"""The ``population:`` section: validation (exit 2, field named), members, paths, schedulers."""

from __future__ import annotations

import math
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from lrtune.cli import main
from lrtune.policies import LRPolicySpec
from lrtune.registry import populations
from lrtune.specs import JobSpec, parse_job
from lrtune.specs._population import locate


def _job(make_job: Any, tmp_path: Path, **population: Any) -> JobSpec:
    data = make_job(tmp_path, "p")
    data["population"].update(population)
    return parse_job(data)


def test_builtin_entries_and_their_parameters() -> None:
    assert {"pbt", "pb2"} <= set(populations.names())
    pbt = populations.get("pbt")
    assert set(pbt.params_model.model_fields) == {
        "quantile_fraction",
        "resample_probability",
        "synch",
        "burn_in",
    }
    assert pbt.factory.perturbs_by_factors is True
    pb2 = populations.get("pb2")
    assert "resample_probability" not in pb2.params_model.model_fields
    assert pb2.factory.perturbs_by_factors is False


def test_plugin_keys_sit_beside_the_fields_and_round_trip(make_job: Any, tmp_path: Path) -> None:
    job = _job(make_job, tmp_path, quantile_fraction=0.5)
    assert job.population is not None
    assert job.population.params == {
        "quantile_fraction": 0.5,
        "resample_probability": 0.0,
        "synch": False,
        "burn_in": 0,
    }
    again = parse_job(job.to_yaml_dict())
    assert again == job and again.resolved_hash() == job.resolved_hash()
    other = _job(make_job, tmp_path, quantile_fraction=0.25)
    assert other.resolved_hash() != job.resolved_hash()


def test_members_start_apart_seeded_in_bounds_and_log_space(make_job: Any, tmp_path: Path) -> None:
    job = _job(make_job, tmp_path, size=40, seed=3)
    assert job.population is not None
    base = job.policy.model_dump(mode="json")  # type: ignore[union-attr]
    members = job.population.initial_members(base)
    assert members == job.population.initial_members(base)  # seeded
    coords = [m["mutable"]["lr"] for m in members]
    assert len(set(coords)) == 40
    assert all(math.log10(1e-5) <= c <= math.log10(1e-2) for c in coords)
    # log space: a quarter of the log range holds about a quarter of the members
    low_quarter = sum(c < -4.25 for c in coords)
    assert 4 <= low_quarter <= 18
    floors = [m["mutable"]["schedule.min_factor"] for m in members]
    assert all(0.0 <= f <= 0.5 for f in floors) and len(set(floors)) == 40
    policy = job.population.member_policy(members[0]["policy"], members[0]["mutable"])
    assert policy["lr"] == pytest.approx(10 ** coords[0])
    assert policy["schedule"]["params"]["min_factor"] == floors[0]
    # Tune's mutation config holds coordinates; the policy gets values
    assert job.population.values(members[0]["mutable"])["lr"] == pytest.approx(10 ** coords[0])
    assert _job(make_job, tmp_path, size=40, seed=4).population.initial_members(base) != members  # type: ignore[union-attr]


def test_explicit_members_and_choices_dealt_evenly(make_job: Any, tmp_path: Path) -> None:
    job = _job(
        make_job,
        tmp_path,
        size=4,
        members=[{"lr": 1e-3}],
        choices={"optimizer": ["adam", {"name": "sgd", "params": {"momentum": 0.9}}]},
    )
    assert job.population is not None
    members = job.population.initial_members(job.policy.model_dump(mode="json"))  # type: ignore[union-attr]
    assert members[0]["mutable"]["lr"] == pytest.approx(-3.0)
    names = sorted(m["policy"]["optimizer"]["name"] for m in members)
    assert names == ["adam", "adam", "sgd", "sgd"]
    sgd = next(m for m in members if m["policy"]["optimizer"]["name"] == "sgd")
    assert sgd["policy"]["optimizer"]["params"]["momentum"] == 0.9


def test_paths_reach_every_numeric_part_of_a_policy() -> None:
    policy = LRPolicySpec.model_validate(
        {
            "lr": 1e-3,
            "schedule": {"name": "warmup", "params": {"steps": 100, "then": "cosine"}},
            "optimizer": {"name": "sgd", "params": {"momentum": 0.9}},
            "gradients": {"name": "clip_global_norm", "params": {"max_norm": 0.5}},
            "feedback": [{"name": "kl_adaptive"}],
        }
    ).model_dump(mode="json")
    assert locate(policy, "lr") == (("lr",), float)
    assert locate(policy, "schedule.steps") == (("schedule", "params", "steps"), int)
    assert locate(policy, "schedule.then.min_factor") == (
        ("schedule", "params", "then", "params", "min_factor"),
        float,
    )
    assert locate(policy, "optimizer.momentum")[0] == ("optimizer", "params", "momentum")
    assert locate(policy, "gradients.max_norm")[0] == ("gradients", "params", "max_norm")
    assert locate(policy, "feedback.kl_adaptive.target")[0] == (
        "feedback",
        0,
        "params",
        "target",
    )
    for bad, words in [
        ("optimizer.nesterov", "not a single number"),
        ("optimizer.beta1", "has no parameter 'beta1'"),
        ("feedback.plateau.factor", "no feedback rule 'plateau'"),
        ("momentum", "not a policy parameter"),
    ]:
        with pytest.raises(ValueError, match=words):
            locate(policy, bad)


def test_whole_number_parameters_are_rounded(make_job: Any, tmp_path: Path) -> None:
    data = make_job(tmp_path, "p")
    data["policy"] = {"lr": 1e-3, "schedule": {"name": "step", "params": {"step_size": 200}}}
    data["population"]["mutable"] = {"schedule.step_size": {"low": 100, "high": 400}}
    job = parse_job(data)
    assert job.population is not None
    policy = job.population.member_policy(data["policy"], {"schedule.step_size": 250.6})
    assert policy["schedule"]["params"]["step_size"] == 251


BAD = [
    (
        {"mutable": {"schedule.gamma": {"low": 0.1, "high": 0.5}}},
        "population.mutable.schedule.gamma",
    ),
    (
        {"mutable": {"schedule.min_factor": {"low": 0.0, "high": 1.5}}},
        "population.mutable.schedule.min_factor.high",
    ),
    ({"mutable": {"lr": {"low": 1e-5, "high": 1e7}}}, "population.mutable.lr.high"),
    ({"mutable": {"optimizer.amsgrad": {"low": 0, "high": 1}}}, "not a single number"),
    ({"mutable": {"lr": {"low": 1e-2, "high": 1e-5}}}, "population.mutable.lr.high"),
    ({"size": 1}, "population.size"),
    ({"name": "pbtt"}, "population.name"),
    ({"interval": 768}, "population.interval"),
    ({"burn_in": 768}, "population.burn_in"),
    (
        {"checkpoint": {"interval": 64, "num_to_keep": 3}},
        "population.checkpoint.num_to_keep",
    ),
    ({"name": "pb2"}, "population.resample_probability"),
    (
        {
            "name": "pb2",
            "resample_probability": None,
            "mutable": {"lr": {"low": 1e-5, "high": 1e-2, "factors": [2]}},
        },
        "population.mutable.lr.factors",
    ),
    ({"members": [{"lr": 1.0}]}, "population.members.0.lr"),
    ({"quantile_fraction": 0.9}, "population.quantile_fraction"),
]


def _dry_run_error(
    data: dict[str, Any], section: dict[str, Any], change: dict[str, Any], path: Path, capsys: Any
) -> str:
    """Apply ``change`` to ``section`` of the job ``data`` (None removes a key), write it to
    ``path``, and return the error of ``lrtune run --dry-run`` (which must exit 2)."""
    for key, value in change.items():
        if value is None:
            section.pop(key, None)
        else:
            section[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["run", str(path), "--dry-run"]) == 2
    err: str = capsys.readouterr().err
    return err


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_populations_exit_2_naming_the_field(
    change: dict[str, Any],
    field: str,
    make_job: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = make_job(tmp_path, "bad")
    err = _dry_run_error(data, data["population"], change, tmp_path / "bad.yaml", capsys)
    assert field in err, err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"space": {"version": 1, "lr": 1e-3}}, "space:"),
        ({"search": {"sampler": "random"}}, "search.sampler"),
        ({"search": {"algorithm": "grid"}}, "search.algorithm"),
        ({"scheduler": {"name": "median"}}, "scheduler.name"),
        ({"trials": {"num": 5}}, "trials.num"),
        ({"trials": {"checkpoint_seconds": 30}}, "trials.checkpoint_seconds: a population's"),
        ({"trials": {"checkpoint_env_steps": 256}}, "trials.checkpoint_env_steps: a population"),
        ({"policy": None}, "population starts every member from the job's `policy:`"),
    ],
)
def test_a_population_with_a_search_is_refused(
    change: dict[str, Any],
    field: str,
    make_job: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = make_job(tmp_path, "both")
    assert field in _dry_run_error(data, data, change, tmp_path / "both.yaml", capsys)


def test_what_a_population_may_keep(make_job: Any, tmp_path: Path) -> None:
    data = make_job(tmp_path, "ok")
    data["search"] = {"seed": 0}  # the defaults, written out
    data["trials"] = {"num": 2, "max_failures": 2}
    data["scheduler"] = {"name": "none"}
    assert parse_job(data).population is not None
    data.pop("scheduler")  # the default (asha) is ignored by a population
    assert parse_job(data).population is not None


def test_a_choice_without_the_mutable_parameter_is_refused(
    make_job: Any, write_job: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_job(tmp_path, "choice")
    data["population"]["choices"] = {"optimizer": ["adam", "sgd"]}
    data["population"]["mutable"]["optimizer.beta1"] = {"low": 0.5, "high": 0.99}
    path = write_job(tmp_path, "choice", data)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "population.mutable.optimizer.beta1" in err and "sgd" in err


def test_dry_run_shows_the_population(
    make_job: Any, write_job: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    path = write_job(tmp_path, "plan", make_job(tmp_path, "plan"))
    assert main(["run", str(path), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["search"] == "population" and plan["trials"] == 2
    assert plan["population"]["name"] == "pbt" and plan["population"]["interval"] == 256
    assert plan["max_concurrent"] == 2  # every member: the size


def test_every_member_counts_as_running_at_once(make_job: Any, tmp_path: Path) -> None:
    """A population has no concurrency limiter (its scheduler time-shares the members), so the
    dry run and the KubeRay worker sizing count every member, whatever trials.max_concurrent
    says (they counted 2 of 6 before)."""
    from lrtune.cluster._k8s import plan_workers

    data = make_job(tmp_path, "six")
    data["population"]["size"] = 6
    data["trials"] = {"max_concurrent": 2}
    data["resources"] = {"cpus": 1}
    job = parse_job(data)
    assert job.trial_count == 6 and job.concurrent_trials == 6
    workers = plan_workers(job.resources.cpus, 0.0, job.concurrent_trials)
    assert workers.replicas * workers.trials_per_pod >= 6


# ------------------------------------------------------------------------------ schedulers


def _setup(job: JobSpec) -> Any:
    from lrtune.running import PopulationSetup

    assert job.population is not None
    return PopulationSetup(
        metric="score", mode="max", interval=job.population.interval, mutable=job.population.mutable
    )


def test_pbt_perturbs_each_parameter_by_its_factors_in_value_space_within_bounds(
    make_job: Any, tmp_path: Path
) -> None:
    job = _job(
        make_job,
        tmp_path,
        mutable={
            "lr": {"low": 1e-5, "high": 1e-2, "factors": [0.5, 2.0]},
            "schedule.min_factor": {"low": 0.0, "high": 0.5, "factors": [0.9, 1.1]},
        },
    )
    scheduler = populations.build("pbt", {"resample_probability": 0.0}).scheduler(_setup(job))
    donor = SimpleNamespace(
        config={"point": {"lrtune": {"x": 1}, "mutable": {"lr": -3.0, "schedule.min_factor": 0.48}}}
    )
    random.seed(0)
    seen_lr, seen_floor = set(), set()
    for _ in range(40):
        new, ops = scheduler._get_new_config(SimpleNamespace(config={}), donor)
        coords = new["point"]["mutable"]
        seen_lr.add(round(10 ** coords["lr"], 12))
        seen_floor.add(round(coords["schedule.min_factor"], 12))
        assert new["point"]["lrtune"] == {"x": 1}  # the rest is the donor's
        assert set(ops["point"]["mutable"]) == {"lr", "schedule.min_factor"}
    assert donor.config["point"]["mutable"]["lr"] == -3.0  # not changed in place
    assert seen_lr == {round(5e-4, 12), round(2e-3, 12)}
    assert seen_floor == {round(0.48 * 0.9, 12), 0.5}  # 0.48 × 1.1 clamped to the bound


def test_pbt_burn_in_holds_perturbations_back_in_env_steps(make_job: Any, tmp_path: Path) -> None:
    job = _job(make_job, tmp_path)
    scheduler = populations.build("pbt", {"burn_in": 512}).scheduler(_setup(job))
    assert scheduler._time_attr == "env_steps"
    assert scheduler._burn_in_period == 512
    assert scheduler._perturbation_interval == job.population.interval  # type: ignore[union-attr]


def test_pbt_resamples_log_parameters_log_uniformly(make_job: Any, tmp_path: Path) -> None:
    job = _job(make_job, tmp_path)
    scheduler = populations.build("pbt", {"resample_probability": 1.0}).scheduler(_setup(job))
    donor = SimpleNamespace(config={"point": {"mutable": {"lr": -3.0, "schedule.min_factor": 0.2}}})
    random.seed(1)
    coords = [
        scheduler._get_new_config(SimpleNamespace(), donor)[0]["point"]["mutable"]["lr"]
        for _ in range(200)
    ]
    assert all(-5.0 <= c <= -2.0 for c in coords)
    assert 20 <= sum(c < -4.25 for c in coords) <= 80  # a quarter of the log range


def test_pb2_gets_linear_bounds_in_coordinates_and_clamps(make_job: Any, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    data = make_job(tmp_path, "pb2")
    data["population"] = {
        "name": "pb2",
        "size": 2,
        "interval": 256,
        "mutable": data["population"]["mutable"],
    }
    job = parse_job(data)
    scheduler = populations.build("pb2", {}).scheduler(_setup(job))
    bounds = scheduler._hyperparam_bounds["point"]["mutable"]
    assert bounds["lr"] == [pytest.approx(-5.0), pytest.approx(-2.0)]
    assert bounds["schedule.min_factor"] == [0.0, 0.5]
    clamped = scheduler._custom_explore_fn(
        {"point": {"mutable": {"lr": -1.0, "schedule.min_factor": 0.50000001}}}
    )
    assert clamped["point"]["mutable"] == {"lr": pytest.approx(-2.0), "schedule.min_factor": 0.5}


def test_pyproject_declares_scikit_learn_for_pb2() -> None:
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"scikit-learn' in text


def test_the_unscored_warning_names_the_population_for_its_pruned_members(
    make_job: Any, tmp_path: Path
) -> None:
    """A synchronous population's member left waiting ends short of its budget, marked as
    pruned; the closing warning names the population, not a scheduler the job has none of."""
    from lrtune.running._results import TrialOutcome
    from lrtune.running._run import unscored_warning

    job = _job(make_job, tmp_path, synch=True)
    waiting = TrialOutcome("m", "pruned", None, 256, {}, {}, "", iterations=2)
    warning = unscored_warning([waiting], job)
    assert warning is not None and "ended by population pbt before any episode" in warning
    assert "scheduler none" not in warning
