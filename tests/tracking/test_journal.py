"""The tracking journal without a server: torn lines, idempotent replays, `lrtune sync`, secrets,
pickling and the driver's cost per result. Stores are real (sqlite); "down" is a refused port."""

from __future__ import annotations

import json
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.tracking import MlflowClient
from tracking_helpers import TrialStandIn, dead_url  # type: ignore[import-not-found]

from lrtune.cli._main import main
from lrtune.cli._sync import sync_uri
from lrtune.tracking import (
    TAG_EXPERIMENT,
    TAG_ROLE,
    TrialRecorder,
    journal_dir,
    open_journal,
)
from lrtune.tracking._journal import DELIVERED_FILE, JOURNAL_FILE, JournalFile

STEPS = list(range(100, 1100, 100))


def _describe(trial: Any) -> tuple[str, dict[str, str], dict[str, Any], str | None]:
    return f"trial_{trial.trial_id}", {}, {"p": trial.trial_id}, None


def _metrics(result: Any) -> dict[str, float]:
    return {"score": result["score"], "lr": result["lr"]}


def _status(trial: Any, result: Any, errored: bool) -> str:
    # As lrtune's `recorder_status`: completed at the budget, pruned when it ended before.
    return "completed" if result and result.get("budget_reached") else "pruned"


def _recorder(uri: str, folder: Path, parent_ref: str | None, name: str) -> TrialRecorder:
    return TrialRecorder(
        (uri, name),
        None,
        describe=_describe,
        metrics_of=_metrics,
        status_of=_status,
        journal_dir=str(folder),
        parent_ref=parent_ref,
    )


def _result(step: int, budget_reached: bool = False) -> dict[str, Any]:
    return {
        "env_steps": step,
        "score": step / 100,
        "lr": 1e-3 / step,
        "budget_reached": int(budget_reached),
    }


def _record_while_down(results: Path, name: str, stream: Any) -> tuple[int, float]:
    """A whole experiment recorded while MLflow is unreachable: (calls left, slowest result s)."""
    folder = journal_dir(results)
    journal, _ = open_journal(folder, dead_url(), name, stream=stream)
    parent = journal.parent(
        name, {TAG_EXPERIMENT: name, TAG_ROLE: "experiment"}, {"agent": "ppo"}, resume=False
    )
    recorder = _recorder(journal.tracking_uri, folder, parent, name)
    trials = [TrialStandIn("a"), TrialStandIn("b")]
    slowest = 0.0
    for step in STEPS:
        for trial in trials:
            began = time.perf_counter()
            done = trial.trial_id == "a" and step == STEPS[-1]
            recorder.on_trial_result(0, [], trial, _result(step, budget_reached=done))
            slowest = max(slowest, time.perf_counter() - began)
    recorder.on_trial_complete(0, [], trials[0])
    recorder.on_experiment_end(trials)  # b, short of its budget, ends as stopped
    journal.end_run(parent, "FINISHED")
    return journal.close(), slowest


def store_view(uri: str, experiment: str) -> dict[str, Any]:
    """Everything the store holds of an experiment, comparable across replays."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    view: dict[str, Any] = {"parents": [], "trials": {}}
    for run in runs:
        tags = run.data.tags
        if tags.get(TAG_ROLE) == "experiment":
            view["parents"].append((run.info.run_id, run.info.status, dict(run.data.params)))
            continue
        trial = tags["lrtune.trial_id"]
        assert trial not in view["trials"], f"two runs for trial {trial}"
        view["trials"][trial] = {
            "status": run.info.status,
            "lrtune.status": tags.get("lrtune.status"),
            "parent": tags.get("mlflow.parentRunId"),
            "params": dict(run.data.params),
            "metrics": {
                key: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, key)]
                for key in ("score", "lr")
            },
        }
    return view


def _assert_complete(view: dict[str, Any]) -> None:
    assert len(view["parents"]) == 1
    parent_id, parent_status, params = view["parents"][0]
    assert parent_status == "FINISHED" and params == {"agent": "ppo"}
    assert set(view["trials"]) == {"a", "b"}
    for trial, record in view["trials"].items():
        assert record["parent"] == parent_id
        assert record["params"] == {"p": trial}
        assert [s for s, _ in record["metrics"]["score"]] == STEPS  # every point, once
        assert [s for s, _ in record["metrics"]["lr"]] == STEPS
    assert view["trials"]["a"]["status"] == "FINISHED"
    assert view["trials"]["b"]["status"] == "KILLED"
    assert view["trials"]["b"]["lrtune.status"] == "stopped"


def test_a_torn_last_line_is_cut_off_and_appends_go_on(tmp_path: Path) -> None:
    journal = JournalFile(tmp_path)
    journal.append([{"seq": 1, "op": "tags"}, {"seq": 2, "op": "tags"}])
    journal.close()
    with open(tmp_path / JOURNAL_FILE, "a") as handle:  # a kill -9 in the middle of an append
        handle.write('{"seq":3,"op":"ta')
    entries, next_seq = JournalFile(tmp_path).load()
    assert [e["seq"] for e in entries] == [1, 2] and next_seq == 3
    again = JournalFile(tmp_path)
    again.append([{"seq": 3, "op": "end"}])
    again.mark(1)
    again.close()
    entries, next_seq = JournalFile(tmp_path).load()
    assert [e["seq"] for e in entries] == [2, 3] and next_seq == 4


def test_an_experiment_recorded_while_down_is_replayed_by_sync_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "1")
    results = tmp_path / "results" / "offline"
    lines: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    left, slowest = _record_while_down(results, "offline", Lines())
    assert left > 0 and slowest < 1.0
    said = "".join(lines).splitlines()
    assert len([line for line in said if "unreachable" in line]) == 1
    assert "journalling to" in said[0]
    assert any(f"lrtune sync offline --results-dir {results.parent}" in line for line in said)
    folder = journal_dir(results)
    copy = tmp_path / "journal-copy"
    shutil.copytree(folder, copy)

    store = f"sqlite:///{tmp_path / 'store.db'}"
    argv = ["sync", "offline", "--results-dir", str(results.parent), "--tracking-uri", store]
    assert main(argv) == 0
    assert f"replayed {left} journalled calls" in capsys.readouterr().out
    first = store_view(store, "offline")
    _assert_complete(first)
    assert not (folder / JOURNAL_FILE).exists()  # emptied once delivered
    assert main(argv) == 0 and "nothing to replay" in capsys.readouterr().out

    # The same journal replayed again in full, then from its middle: nothing is duplicated.
    shutil.rmtree(folder)
    shutil.copytree(copy, folder)
    assert main(argv) == 0
    assert store_view(store, "offline") == first
    shutil.rmtree(folder)
    shutil.copytree(copy, folder)
    (folder / DELIVERED_FILE).write_text(json.dumps({"seq": left // 2}))
    assert main(argv) == 0
    assert store_view(store, "offline") == first


def test_sync_exits_1_with_one_paragraph_while_mlflow_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "0.5")
    results = tmp_path / "results" / "still-down"
    left, _ = _record_while_down(results, "still-down", None)
    capsys.readouterr()
    argv = ["sync", "still-down", "--results-dir", str(results.parent)]
    began = time.monotonic()
    code = main([*argv, "--tracking-uri", dead_url(), "--wait", "1"])
    assert code == 1 and time.monotonic() - began < 30
    err = capsys.readouterr().err
    assert "still unreachable (Connection refused)" in err and f"{left} of {left}" in err
    assert len(err.strip().splitlines()) == 1
    entries, _ = JournalFile(journal_dir(results)).load()
    assert len(entries) == left  # nothing lost
    assert main(["sync", "nosuch", "--results-dir", str(results.parent)]) == 2


def test_no_password_reaches_the_output_or_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "0.5")
    uri = dead_url().replace("http://", "http://bob:s3cr3t-pw@")
    results = tmp_path / "results" / "secret"
    lines: list[str] = []

    class Lines:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    journal, _ = open_journal(journal_dir(results), uri, "secret", stream=Lines())
    ref = journal.parent("secret", {TAG_EXPERIMENT: "secret"}, {}, resume=False)
    journal.set_tags(ref, {"x": "1"})
    assert journal.close() == 2
    said = "".join(lines)
    assert "bob:***@" in said and "unreachable" in said and "s3cr3t" not in said
    for path in journal_dir(results).iterdir():
        assert "s3cr3t" not in path.read_text(errors="replace"), path


def test_sync_takes_the_uri_from_the_environment_then_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results" / "x"
    results.mkdir(parents=True)
    (results / "job.yaml").write_text(yaml.safe_dump({"tracking": {"uri": "http://h:5000"}}))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:1")
    assert sync_uri(None, results) == "http://env:1"
    assert sync_uri("http://flag:2", results) == "http://flag:2"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert sync_uri(None, results) == "http://h:5000"
    (results / "job.yaml").write_text(yaml.safe_dump({"tracking": {"uri": "http://u:pw@h:1"}}))
    monkeypatch.chdir(tmp_path)
    assert sync_uri(None, results) == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_the_pickled_recorder_holds_no_thread_lock_or_client(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    folder = tmp_path / "results" / "pickled" / "tracking-journal"
    recorder = _recorder(store, folder, None, "pickled")
    recorder.on_trial_result(0, [], TrialStandIn("t"), _result(100))
    assert recorder.flush(60)
    copy = pickle.loads(pickle.dumps(recorder))  # as Tune writes tuner.pkl
    assert copy._journal is None and copy.announced == set()
    recorder.on_experiment_end([TrialStandIn("t")])
    assert MlflowClient(store).get_run(recorder.run_ids["t"]).info.status == "KILLED"


def test_a_trial_open_at_the_end_that_reached_its_budget_ends_completed(tmp_path: Path) -> None:
    # The experiment's env-step budget can run out on the very result with which a trial
    # reaches its own budget: Tune ends the experiment before telling that trial complete.
    store = f"sqlite:///{tmp_path / 'store.db'}"
    folder = tmp_path / "results" / "spent" / "tracking-journal"
    recorder = _recorder(store, folder, None, "spent")
    done, cut = TrialStandIn("done"), TrialStandIn("cut")
    recorder.on_trial_result(0, [], done, _result(1000, budget_reached=True))
    recorder.on_trial_result(0, [], cut, _result(500))
    recorder.on_experiment_end([done, cut])
    client = MlflowClient(store)
    finished = client.get_run(recorder.run_ids["done"])
    stopped = client.get_run(recorder.run_ids["cut"])
    assert (finished.info.status, finished.data.tags["lrtune.status"]) == ("FINISHED", "completed")
    assert (stopped.info.status, stopped.data.tags["lrtune.status"]) == ("KILLED", "stopped")


def test_the_driver_spends_well_under_5_ms_per_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "0.5")
    folder = journal_dir(tmp_path / "results" / "cost")
    recorder = _recorder(dead_url(), folder, None, "cost")
    trials = [TrialStandIn(f"t{k}") for k in range(4)]
    for trial in trials:
        recorder.on_trial_start(0, [], trial)
    times = []
    for step in range(1, 501):
        for trial in trials:
            began = time.perf_counter()
            recorder.on_trial_result(0, [], trial, _result(step * 128))
            times.append(time.perf_counter() - began)
    recorder.on_experiment_end(trials)
    times.sort()
    median, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    print(f"on_trial_result: median {median * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms")
    assert median < 0.002 and p99 < 0.05


def test_a_delivered_journal_is_emptied_during_a_long_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lrtune.tracking import _journal

    monkeypatch.setattr(_journal, "_COMPACT_BYTES", 500)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    folder = journal_dir(tmp_path / "results" / "long")
    recorder = _recorder(store, folder, None, "long")
    trial = TrialStandIn("t")
    for step in STEPS:
        recorder.on_trial_result(0, [], trial, _result(step))
    assert recorder.flush(60)
    deadline = time.monotonic() + 10
    while (folder / JOURNAL_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (folder / JOURNAL_FILE).exists()  # emptied: everything in it was delivered
    recorder.on_trial_result(0, [], trial, _result(1100))  # appends go on in a new file
    entries, _ = JournalFile(folder).load()
    assert [e["step"] for e in entries if e["op"] == "metrics"] in ([1100], [])
    recorder.on_experiment_end([trial])
    history = MlflowClient(store).get_metric_history(recorder.run_ids["t"], "score")
    assert [m.step for m in history] == [*STEPS, 1100]


def test_a_journal_killed_mid_append_reads_back_whole_lines(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from lrtune.tracking._journal import JournalFile\n"
        "j = JournalFile(Path(sys.argv[1]))\n"
        "seq = 0\n"
        "while True:\n"
        "    batch = [{'seq': seq + k, 'op': 'metrics', 'pad': 'x' * 500} for k in range(1, 9)]\n"
        "    j.append(batch)\n"
        "    seq += 8\n"
        "    if seq == 80:\n"
        "        print('going', flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "going\n"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    entries, next_seq = JournalFile(tmp_path).load()
    assert len(entries) >= 80
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert next_seq == len(entries) + 1
    assert (tmp_path / JOURNAL_FILE).read_bytes().endswith(b"\n")  # ready for the next append


def test_the_next_run_of_the_experiment_delivers_a_leftover_journal_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "1")
    results = tmp_path / "results" / "again"
    left, _ = _record_while_down(results, "again", None)
    assert left > 0
    store = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("LRTUNE_TRACKING_DRAIN_S", "60")
    # What `lrtune run` does first: open the experiment's journal (its leftovers are queued
    # ahead of anything new), then journal the parent of a resumed run.
    journal, _ = open_journal(journal_dir(results), store, "again")
    assert journal.leftover == left
    parent = journal.parent(
        "again", {TAG_EXPERIMENT: "again", TAG_ROLE: "experiment"}, {"agent": "ppo"}, resume=True
    )
    journal.end_run(parent, "FINISHED")
    assert journal.close() == 0
    _assert_complete(store_view(store, "again"))  # the resumed parent is the same run


def test_an_event_backfilled_at_an_earlier_step_is_logged_once_and_moves_nothing(
    tmp_path: Path,
) -> None:
    """A population's exploit events are journalled at the end of the run, at steps below the
    member's last point: each (metric, step) once, however often a resumed run journals it, and
    an iteration re-run after a restore is still skipped afterwards."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    tags = {TAG_EXPERIMENT: "events", TAG_ROLE: "experiment"}

    def session(*ops: tuple[str, int]) -> None:
        journal, _ = open_journal(None, store, "events")
        parent = journal.parent("events", tags, {"agent": "ppo"}, resume=True)
        ref = journal.trial("a", parent, "a", {}, {"p": "a"})
        for kind, step in ops:
            if kind == "event":
                journal.log_metrics(ref, {"exploit": 1.0}, step, backfill=True)
            else:
                journal.log_metrics(ref, {"score": float(step)}, step)
        journal.set_tags(ref, {"lrtune.exploits": "2"})
        assert journal.close() == 0

    session(*[("score", s) for s in STEPS], ("event", 300), ("event", 300), ("event", 700))
    # A second driver (a fresh writer reading the history back): the same events again, then
    # an iteration Tune re-ran from a checkpoint at step 800, which must not be logged twice
    # (the events, newer in time than the last score, do not make 700 the history's end).
    session(("event", 700), ("event", 300), ("score", 800))
    client = MlflowClient(store)
    (run,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name("events").experiment_id])
        if r.data.tags.get("lrtune.trial_id") == "a"
    ]
    exploit = client.get_metric_history(run.info.run_id, "exploit")
    assert sorted(m.step for m in exploit) == [300, 700]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "score")] == STEPS
    assert run.data.tags["lrtune.exploits"] == "2"
