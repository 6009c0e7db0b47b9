"""Population jobs on a real Ray: exact exploits, lineage in MLflow, divergence, PB2, replay."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from lrtune.cli import main
from lrtune.policies import LRPolicySpec
from lrtune.running import run_job
from lrtune.running._finalize import finalize
from lrtune.running._lineage import export_schedule, read_records, trajectory
from lrtune.specs import JobSpec, load_job, load_policy

pytestmark = pytest.mark.slow
BUDGET = 640


@pytest.fixture(scope="module", autouse=True)
def _ray(ray_session: Any) -> None:
    return None


def _runs(client: MlflowClient, experiment: str) -> tuple[Any, list[Any]]:
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("lrtune.role") == "experiment"]
    kids = [r for r in runs if r.data.tags.get("lrtune.role") == "trial"]
    assert len(parents) == 1
    return parents[0], kids


def _pbt_log(job: JobSpec, trial_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Tune's own record of each exploit (pbt_global.txt): the new config per target trial."""
    path = Path(job.storage_path) / job.name / "pbt_global.txt"
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in trial_ids}
    for line in path.read_text().splitlines():
        target_tag, _clone_tag, _ti, _ci, _old, new = json.loads(line)
        index = int(target_tag.split("_", 1)[0])
        (trial,) = [t for t in trial_ids if t.endswith(f"_{index:05d}")]
        out[trial].append(new)
    return out


def _lr_at(client: MlflowClient, run_id: str, step: int) -> float:
    values = [m for m in client.get_metric_history(run_id, "lr") if m.step == step]
    return sorted(values, key=lambda m: m.timestamp)[-1].value


def _check_exploits_exact(job: JobSpec, client: MlflowClient, run_of: dict[str, str]) -> int:
    """Every exploit: the first iteration after it ran at the perturbed policy's closed form
    at the env steps continued from the donor's checkpoint, on the donor's exact state."""
    assert job.population is not None
    results = Path(job.results_dir) / job.name
    lineage = json.loads((results / "lineage.json").read_text())
    records = read_records(results / "population" / "records.jsonl")
    tune_log = _pbt_log(job, sorted(lineage["trials"]))
    seen: dict[str, int] = {}
    for exploit in lineage["exploits"]:
        trial = exploit["trial"]
        k = seen.get(trial, 0)
        seen[trial] = k + 1
        new_config = tune_log[trial][k]  # Tune's config for this exploit, read independently
        coords = new_config["point"]["mutable"]
        for path, (low, high) in job.population.coord_bounds().items():
            assert low - 1e-12 <= coords[path] <= high + 1e-12
        policy = job.population.member_policy(new_config["point"]["lrtune"]["policy"], coords)
        expected = LRPolicySpec.model_validate(policy).build(budget=BUDGET)
        steps = exploit["at_env_steps"]
        assert steps == exploit["env_step"] + 128  # continues from the donor's checkpoint
        assert _lr_at(client, run_of[trial], steps) == expected.lr(steps)
        assert exploit["state_hash_equal"], exploit  # weights and optimizer moments: the donor's
        (first,) = [
            r
            for r in records
            if r["trial_id"] == trial
            and (r.get("restored_from") or {}).get("trial_id") == exploit["donor"]
            and r["iteration"] == exploit["iteration"]
        ]
        source = first["restored_from"]
        saved, restored = source["saved_hash"], source["restored_hash"]
        assert saved == restored and saved[0]["optimizer"] and saved[0]["weights"]
        if "optimizer.beta1" in coords:  # torch's load_state_dict brought the donor's betas back
            betas = source["optimizer_settings"]["betas"]
            assert betas[0] == policy["optimizer"]["params"]["beta1"]
    return len(lineage["exploits"])


def test_pbt_exploits_are_exact_recorded_and_the_learned_schedule_replays(
    workdir: Path, make_job: Any, write_job: Any
) -> None:
    data = make_job(workdir, "pbt")
    data["budget"] = {"trial_env_steps": BUDGET}
    data["population"]["synch"] = True  # both members perturb together: an exploit each time
    data["population"]["mutable"]["optimizer.beta1"] = {"low": 0.5, "high": 0.95}
    job = load_job(write_job(workdir, "pbt", data))
    out = io.StringIO()
    outcome = run_job(job, stream=out)
    assert outcome.exit_code == 0, out.getvalue()
    assert [t.status for t in outcome.trials] == ["completed", "completed"]
    assert all(t.env_steps == BUDGET for t in outcome.trials)
    assert "descends from" in out.getvalue()

    client = MlflowClient(job.tracking.resolved_uri)
    parent, kids = _runs(client, "pbt")
    assert len(kids) == 2 and all(r.info.status == "FINISHED" for r in kids)
    run_of = {r.data.tags["lrtune.trial_id"]: r.info.run_id for r in kids}
    assert _check_exploits_exact(job, client, run_of) >= 1

    lineage = json.loads((workdir / "results" / "pbt" / "lineage.json").read_text())
    exploited = {e["trial"] for e in lineage["exploits"]}
    for run in kids:
        trial = run.data.tags["lrtune.trial_id"]
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "lr")]
        assert steps[0] == 128 and steps[-1] == BUDGET  # one run for the trial's whole life
        mutable = client.get_metric_history(run.info.run_id, "mutable.lr")
        assert len(mutable) == len(steps)
        if trial in exploited:
            assert int(run.data.tags["lrtune.exploits"]) >= 1
            assert json.loads(run.data.tags["lrtune.exploit.0"])["donor"] != trial
            events = client.get_metric_history(run.info.run_id, "exploit")
            mine = [e for e in lineage["exploits"] if e["trial"] == trial]
            # Each event once (journalled at the end, at steps below the run's last point).
            assert sorted(m.step for m in events) == sorted({e["at_env_steps"] for e in mine})
            for exploit in mine:
                at = [m.value for m in mutable if m.step == exploit["at_env_steps"]]
                assert at[-1] == exploit["mutable_after"]["lr"]  # the values change at exploits
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"lineage.json", "best_schedule.yaml"} <= artifacts
    assert parent.data.tags["lrtune.best_ancestry"].startswith(lineage["best_ancestry"][0][0])

    # Export the best member's learned schedule, replay it on a fresh seed: the same rates.
    exported = workdir / "learned.yaml"
    assert main(["schedule", "export", str(workdir / "results" / "pbt"), "-o", str(exported)]) == 0
    spec = load_policy(exported)
    points = {int(s): float(v) for s, v in spec.schedule.params["points"]}
    assert sorted(points) == list(range(128, BUDGET + 1, 128))
    best = lineage["best"]
    assert points == {p["env_steps"]: p["lr"] for p in trajectory(lineage, best)}
    replay = make_job(workdir, "replay")
    replay.pop("population")
    replay.update(
        policy=str(exported),
        budget={"trial_env_steps": BUDGET},
        trials={"num": 1},
        seeds={"tuning": [7]},
    )
    replay_job = load_job(write_job(workdir, "replay", replay))
    assert run_job(replay_job, stream=io.StringIO()).exit_code == 0
    _, (replay_run,) = _runs(client, "replay")
    logged = {m.step: m.value for m in client.get_metric_history(replay_run.info.run_id, "lr")}
    assert logged == points


def test_a_diverged_member_ranks_last_and_is_replaced_by_a_healthy_donor(
    workdir: Path, make_job: Any, write_job: Any
) -> None:
    data = make_job(workdir, "diverge")
    guard = {"name": "divergence_guard", "params": {"max_events": 2}}
    data["policy"] = {"lr": 3e-4, "optimizer": "sgd", "feedback": [guard]}
    data["budget"] = {"trial_env_steps": BUDGET}
    data["hyperparams"] = {**data["hyperparams"], "num_epochs": 4, "minibatch_size": 32}
    data["population"].update(
        synch=True,
        members=[{"lr": 1e3}, {"lr": 3e-4}],
        mutable={"lr": {"low": 1e-5, "high": 1e3}},
    )
    job = load_job(write_job(workdir, "diverge", data))
    outcome = run_job(job, stream=io.StringIO())
    assert outcome.exit_code == 0
    records = read_records(workdir / "results" / "diverge" / "population" / "records.jsonl")
    (bad,) = {r["trial_id"] for r in records if r.get("policy", {}).get("lr") == 1e3}
    diverged = [r for r in records if r["trial_id"] == bad and r["diverged"]]
    assert diverged and all(r["score"] == -1e6 for r in diverged)  # finite, ranked last
    lineage = json.loads((workdir / "results" / "diverge" / "lineage.json").read_text())
    replaced = [e for e in lineage["exploits"] if e["trial"] == bad]
    assert replaced and replaced[0]["donor"] != bad and replaced[0]["state_hash_equal"]
    assert replaced[0]["env_step"] <= 512
    assert replaced[0]["mutable_after"]["lr"] < 1e-2  # the healthy donor's lr, perturbed
    later = replaced[0]["iteration"]
    after = [r for r in records if r["trial_id"] == bad and r["iteration"] > later]
    assert after and not any(r["diverged"] for r in after)
    member = next(t for t in outcome.trials if t.trial_id == bad)
    assert member.status == "completed" and member.env_steps == BUDGET  # never stopped


def test_pb2_population_runs_exactly_exports_finalizes_and_reports(
    workdir: Path, make_job: Any, write_job: Any
) -> None:
    pytest.importorskip("sklearn")
    data = make_job(workdir, "pb2")
    data["budget"] = {"trial_env_steps": BUDGET}
    data["seeds"] = {"tuning": [0], "test": [100, 101]}
    data["population"] = {
        "name": "pb2",
        "size": 2,
        "interval": 256,
        "synch": True,
        "mutable": data["population"]["mutable"],
    }
    job = load_job(write_job(workdir, "pb2", data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = run_job(job, stream=io.StringIO())
    assert outcome.exit_code == 0
    # PB2's GP fits on a few points made sklearn warn at exploits (QuietPB2 silences them).
    fits = [w for w in caught if w.category.__name__ == "ConvergenceWarning"]
    assert fits == [], [str(w.message) for w in fits]
    client = MlflowClient(job.tracking.resolved_uri)
    _, kids = _runs(client, "pb2")
    run_of = {r.data.tags["lrtune.trial_id"]: r.info.run_id for r in kids}
    assert _check_exploits_exact(job, client, run_of) >= 1
    lineage = json.loads((workdir / "results" / "pb2" / "lineage.json").read_text())
    assert lineage["plugin"] == "pb2"
    for trial in lineage["trials"]:
        policy, _ = export_schedule(lineage, trial)
        assert LRPolicySpec.model_validate(policy).schedule.name == "piecewise"
        for point in trajectory(lineage, trial):
            assert 1e-5 <= point["mutable"]["lr"] <= 1e-2 * (1 + 1e-9)
            assert math.isfinite(point["lr"])

    # finalize replays the best member's learned schedule on a held-out test seed.
    out = io.StringIO()
    final = finalize("pb2", top=1, seeds=1, stream=out)
    assert final.exit_code == 0, out.getvalue()
    (finalist,) = final.finalists
    assert finalist.source_trial == lineage["best"]
    assert "learned schedule of" in out.getvalue()
    learned, _ = export_schedule(lineage, lineage["best"])
    expected = {int(s): float(v) for s, v in learned["schedule"]["params"]["points"]}
    finalist_runs = [
        r
        for r in client.search_runs([client.get_experiment_by_name("pb2").experiment_id])
        if r.data.tags.get("lrtune.role") == "finalist"
    ]
    (run,) = finalist_runs
    assert run.data.tags["lrtune.test_seed"] == "100"
    logged = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "lr")}
    assert logged == expected  # the learned rates, bit for bit, at the same env steps

    # The report shows the best member's lineage.
    report = workdir / "report.html"
    assert main(["report", "pb2", "-o", str(report), "--no-log", "--resamples", "100"]) == 0
    html = report.read_text()
    assert "Population lineage" in html and f"best member {lineage['best']} descends from" in html
    assert "the best member&#x27;s lineage" in html or "the best member's lineage" in html
