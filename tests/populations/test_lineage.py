"""Lineage from member records: exploits, ancestry, trajectories and the exported schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lrtune.cli import main
from lrtune.running._lineage import (
    LineageRecorder,
    ancestry_segments,
    ancestry_text,
    build_lineage,
    export_schedule,
    read_records,
    trajectory,
    write_lineage,
)
from lrtune.specs import load_policy, parse_policy


def _policy(lr: float, max_norm: float = 0.5) -> dict[str, Any]:
    return parse_policy(
        {
            "lr": lr,
            "schedule": "constant",
            "gradients": {"name": "clip_global_norm", "params": {"max_norm": max_norm}},
            "feedback": [{"name": "kl_adaptive"}],
        }
    ).model_dump(mode="json")


def _rec(
    trial: str, inc: str, it: int, steps: int, lr: float, mutable: dict[str, float], **extra: Any
) -> dict[str, Any]:
    return {
        "trial_id": trial,
        "incarnation": inc,
        "iteration": it,
        "env_steps": steps,
        "lr": lr,
        "mutable": mutable,
        **extra,
    }


def _records() -> list[dict[str, Any]]:
    """A (async) population of two: B exploits A's checkpoint at 256 when B is at 384."""
    ma, mb = {"lr": 1e-3, "gradients.max_norm": 0.5}, {"lr": 1e-2, "gradients.max_norm": 1.0}
    mb2 = {"lr": 8e-4, "gradients.max_norm": 0.6}
    anc_a = [{"trial_id": "A", "incarnation": "a1", "from_env_steps": 0}]
    anc_b = [{"trial_id": "B", "incarnation": "b1", "from_env_steps": 0}]
    anc_b2 = [*anc_a, {"trial_id": "B", "incarnation": "b2", "from_env_steps": 256}]
    restored = {
        "trial_id": "A",
        "incarnation": "a1",
        "env_steps": 256,
        "iteration": 2,
        "saved_hash": [{"weights": "w", "optimizer": "o"}],
        "restored_hash": [{"weights": "w", "optimizer": "o"}],
    }
    return [
        _rec("A", "a1", 1, 128, 1.0e-3, ma, ancestry=anc_a, policy=_policy(1e-3)),
        _rec("B", "b1", 1, 128, 1.0e-2, mb, ancestry=anc_b, policy=_policy(1e-2, 1.0)),
        _rec("A", "a1", 2, 256, 0.9e-3, ma),
        _rec("B", "b1", 2, 256, 0.8e-2, mb),
        _rec("B", "b1", 3, 384, 0.7e-2, mb),
        _rec("A", "a1", 3, 384, 0.8e-3, ma),
        _rec(
            "B",
            "b2",
            3,
            384,
            0.75e-3,
            mb2,
            ancestry=anc_b2,
            policy=_policy(8e-4, 0.6),
            restored_from=restored,
        ),
        _rec("B", "b2", 4, 512, 0.7e-3, mb2),
        _rec("A", "a1", 4, 512, 0.7e-3, ma),
    ]


def test_exploits_are_read_from_the_members_restores() -> None:
    lineage = build_lineage(_records(), plugin="pbt")
    (exploit,) = lineage["exploits"]
    assert exploit["trial"] == "B" and exploit["donor"] == "A"
    assert exploit["env_step"] == 256 and exploit["donor_iteration"] == 2
    assert exploit["iteration"] == 3 and exploit["at_env_steps"] == 384
    assert exploit["policy_before"]["lr"] == 1e-2 and exploit["policy_after"]["lr"] == 8e-4
    assert exploit["mutable_before"]["lr"] == 1e-2 and exploit["mutable_after"]["lr"] == 8e-4
    assert exploit["state_hash_equal"] is True
    assert set(lineage["members"]) == {"A", "B"} and lineage["members"]["B"]["policy"]["lr"] == 1e-2


def test_a_restore_from_its_own_checkpoint_is_not_an_exploit() -> None:
    records = [
        *_records()[:4],
        _rec(
            "A",
            "a2",
            3,
            384,
            0.8e-3,
            {"lr": 1e-3},
            ancestry=[
                {"trial_id": "A", "incarnation": "a1", "from_env_steps": 0},
                {"trial_id": "A", "incarnation": "a2", "from_env_steps": 256},
            ],
            policy=_policy(1e-3),
            restored_from={"trial_id": "A", "incarnation": "a1", "env_steps": 256},
        ),
    ]
    lineage = build_lineage(records)
    assert lineage["exploits"] == []
    assert ancestry_segments(lineage, "A") == [("A", 0, 384)]


def test_trajectory_takes_the_donor_up_to_its_checkpoint_then_the_member() -> None:
    lineage = build_lineage(_records())
    points = trajectory(lineage, "B")
    assert [(p["trial_id"], p["env_steps"], p["lr"]) for p in points] == [
        ("A", 128, 1.0e-3),
        ("A", 256, 0.9e-3),
        ("B", 384, 0.75e-3),  # B's own 384 before the exploit (0.7e-2) is not in its history
        ("B", 512, 0.7e-3),
    ]
    assert ancestry_segments(lineage, "B") == [("A", 0, 256), ("B", 256, 512)]
    assert ancestry_text(lineage, "B") == "A (0–256) → B (256–512)"
    assert [p["env_steps"] for p in trajectory(lineage, "A")] == [128, 256, 384, 512]


def test_export_is_a_piecewise_policy_of_the_rates_with_what_was_not_carried() -> None:
    lineage = build_lineage(_records(), plugin="pbt")
    policy, header = export_schedule(lineage, "B", source="results/x")
    spec = parse_policy(policy)
    assert spec.lr == 1.0 and spec.feedback == ()
    assert spec.schedule.name == "piecewise"
    assert [list(p) for p in spec.schedule.params["points"]] == [
        [128, 1.0e-3],
        [256, 0.9e-3],
        [384, 0.75e-3],
        [512, 0.7e-3],
    ]
    built = spec.build()
    for step, lr in [(128, 1.0e-3), (384, 0.75e-3), (512, 0.7e-3)]:
        assert built.lr(step) == lr  # bit for bit at the recorded steps
    assert spec.gradients.params["max_norm"] == 0.6  # the final value
    text = "\n".join(header)
    assert "ancestry: A (0–256) → B (256–512)" in text
    assert "carried by the rates: lr" in text
    assert "gradients.max_norm: [[128, 0.5], [384, 0.6]]" in text
    assert "feedback rules: off" in text


def test_unknown_trial_and_missing_rates_are_lrtune_errors() -> None:
    from lrtune.registry import LRTuneError

    lineage = build_lineage(_records())
    with pytest.raises(LRTuneError, match="not in this population"):
        export_schedule(lineage, "Z")
    records = _records()
    records[0]["lr"] = None
    with pytest.raises(LRTuneError, match="was not recorded"):
        export_schedule(build_lineage(records), "A")


def test_recorder_writes_one_line_per_member_result(tmp_path: Path) -> None:
    path = tmp_path / "population" / "records.jsonl"
    recorder = LineageRecorder(str(path))
    trial = type("T", (), {"trial_id": "A"})()
    announce = json.dumps({"trial_id": "A", "ancestry": [], "policy": {"lr": 1.0}})
    result = {
        "training_iteration": 1,
        "env_steps": 128,
        "score": 10.0,
        "lrtune": {"lr": 1e-3, "feedback_factor": 1.0},
        "mutable": {"lr": 1e-3},
        "lineage": {"incarnation": "a1", "announce": announce},
    }
    recorder.on_trial_result(1, [], trial, result)
    recorder.on_trial_result(1, [], trial, {**result, "lineage": {"incarnation": "a1"}})
    recorder.on_trial_result(1, [], trial, {"env_steps": 5})  # not a population result
    first, second = read_records(path)
    assert first["policy"] == {"lr": 1.0} and first["ancestry"] == []
    assert "policy" not in second and second["incarnation"] == "a1" and second["lr"] == 1e-3


def test_a_line_cut_off_by_a_kill_is_left_out_and_later_records_stay_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "population" / "records.jsonl"
    recorder = LineageRecorder(str(path))
    trial = type("T", (), {"trial_id": "A"})()
    result = {"training_iteration": 1, "env_steps": 128, "lineage": {"incarnation": "a1"}}
    recorder.on_trial_result(1, [], trial, result)
    whole = path.read_text()
    path.write_text(whole + whole[: len(whole) // 2])  # the driver died mid-append
    recorder.on_trial_result(1, [], trial, {**result, "env_steps": 256})  # after the rerun
    assert [r["env_steps"] for r in read_records(path)] == [128, 256]
    assert path.read_text().count("\n") == 3  # the cut-off line stays on its own


def test_schedule_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lineage = build_lineage(_records(), plugin="pbt")
    lineage["best"] = "B"
    write_lineage(tmp_path, lineage)
    out = tmp_path / "learned.yaml"
    assert main(["schedule", "export", str(tmp_path), "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# lrtune learned schedule") and "ancestry: A (0–256)" in text
    spec = load_policy(out)
    assert list(spec.schedule.params["points"][-1]) == [512, 0.7e-3]
    capsys.readouterr()
    assert main(["schedule", "export", str(tmp_path), "--trial", "A"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert [p[0] for p in printed["schedule"]["params"]["points"]] == [128, 256, 384, 512]
    assert main(["schedule", "export", str(tmp_path / "nothing")]) == 2
    assert "lineage.json" in capsys.readouterr().err
    assert main(["schedule", "export", str(tmp_path), "--trial", "Z"]) == 2


def test_the_end_of_run_mlflow_calls_are_journalled_and_delivered_once_by_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`finish_population` with MLflow unreachable at the end of the run: its tags, exploit
    events and artifacts stay in the journal; `lrtune sync` delivers them, twice over once."""
    import shutil
    import socket
    from types import SimpleNamespace

    from mlflow.tracking import MlflowClient

    from lrtune.running._lineage import RECORDS_FILE, finish_population
    from lrtune.tracking import journal_dir, open_journal

    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "1")
    with socket.socket() as sock:  # a port where nothing listens: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    results = tmp_path / "results" / "pop"
    records = results / "population" / RECORDS_FILE
    records.parent.mkdir(parents=True)
    records.write_text("".join(json.dumps(r) + "\n" for r in _records()))
    journal, _ = open_journal(journal_dir(results), dead, "pop")
    parent = journal.parent("pop", {"lrtune.experiment": "pop"}, {"agent": "ppo"}, resume=False)
    for trial in ("A", "B"):
        ref = journal.trial(trial, parent, trial, {}, {"p": trial})
        for step in (128, 256, 384, 512):
            journal.log_metrics(ref, {"score": step / 100}, step)
        journal.end_run(ref, "FINISHED")
    job = SimpleNamespace(population=SimpleNamespace(name="pbt"))
    outcome = SimpleNamespace(best=SimpleNamespace(trial_id="B"))
    lines = finish_population(job, results, outcome, journal, parent)
    assert any("best member B descends from" in line for line in lines)
    journal.end_run(parent, "FINISHED")
    assert journal.close() > 0  # nothing reached MLflow
    copy = tmp_path / "journal-copy"
    shutil.copytree(journal_dir(results), copy)

    store = f"sqlite:///{tmp_path / 'store.db'}"
    argv = ["sync", "pop", "--results-dir", str(results.parent), "--tracking-uri", store]
    for _ in range(2):  # the second time from a full copy of the journal: nothing twice
        assert main(argv) == 0
        client = MlflowClient(store)
        runs = client.search_runs([client.get_experiment_by_name("pop").experiment_id])
        by_trial = {r.data.tags.get("lrtune.trial_id"): r for r in runs}
        assert set(by_trial) == {"A", "B", None}
        run_b = by_trial["B"]
        assert run_b.data.tags["lrtune.exploits"] == "1"
        assert json.loads(run_b.data.tags["lrtune.exploit.0"])["donor"] == "A"
        events = client.get_metric_history(run_b.info.run_id, "exploit")
        assert [m.step for m in events] == [384]
        assert [m.step for m in client.get_metric_history(run_b.info.run_id, "score")] == [
            128,
            256,
            384,
            512,
        ]
        assert "lrtune.exploits" not in by_trial["A"].data.tags
        parent_run = by_trial[None]
        assert parent_run.data.tags["lrtune.best_ancestry"].startswith("A")
        artifacts = {a.path for a in client.list_artifacts(parent_run.info.run_id)}
        assert {"lineage.json", "best_schedule.yaml"} <= artifacts
        shutil.rmtree(journal_dir(results), ignore_errors=True)
        shutil.copytree(copy, journal_dir(results))
    capsys.readouterr()
