"""`lrtune.vocabulary` is the one place tag names, statuses and groupings live: what a real run
writes is named there, the commands accept exactly its groupings, and no tag literal is left
elsewhere in the package."""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import RunStatus

from lrtune import vocabulary as v

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "platform" / "lrtune"


# --- statuses and roles ---------------------------------------------------------------------


def test_statuses_round_trip_as_strings_and_map_to_mlflow_run_statuses() -> None:
    assert [s.value for s in v.TrialStatus] == [
        "completed",
        "pruned",
        "out_of_budget",
        "diverged",
        "failed",
        "stopped",
    ]
    for status in v.TrialStatus:
        assert v.TrialStatus(status.value) is status
        assert status == status.value and str(status) == status.value
        assert json.loads(json.dumps({"s": status})) == {"s": status.value}
        assert f"{status:<9}" == f"{status.value:<9}"
        # What a run ends with is a status MLflow knows.
        assert RunStatus.from_string(status.run_status) in RunStatus.all_status()
    assert set(v.RUN_STATUS) == set(v.TrialStatus)
    assert v.TrialStatus.DIVERGED.run_status == "FINISHED"
    assert v.TrialStatus.FAILED.run_status == "FAILED"
    assert v.TrialStatus.STOPPED.run_status == "KILLED"
    assert [s for s in v.TrialStatus if s.finished] == ["completed", "pruned", "out_of_budget"]
    with pytest.raises(ValueError):
        v.TrialStatus("running")
    assert [r.value for r in v.RunRole] == ["experiment", "trial", "finalist"]


def test_trial_status_of_results_is_a_vocabulary_status() -> None:
    from lrtune.running._results import trial_status

    seen = {
        trial_status(None, True, 100, True),
        trial_status(None, False, 100, False),
        trial_status({"diverged": True}, False, 100, True),
        trial_status({"env_steps": 100}, False, 100, True),
        trial_status({"env_steps": 10, "done": True}, False, 100, True),
        trial_status({"env_steps": 10, "done": False}, False, 100, True, True),
    }
    assert all(type(s) is v.TrialStatus for s in seen)
    assert seen == set(v.TrialStatus)


def test_old_public_names_are_aliases_of_the_vocabulary() -> None:
    import lrtune.tracking as tracking
    from lrtune.analysis import _records
    from lrtune.cluster import _submit
    from lrtune.running import _finalize

    for name in ("TAG_EXPERIMENT", "TAG_JOB_HASH", "TAG_TRIAL_ID", "TAG_STATUS", "TAG_ROLE"):
        assert getattr(tracking, name) is getattr(v, name)
    assert tracking.PARENT_TAG is v.PARENT_TAG and tracking.RUN_STATUS is v.RUN_STATUS
    for name in ("TAG_FINALIST", "TAG_SOURCE_TRIAL", "TAG_TEST_SEED", "TAG_ROUND"):
        assert getattr(_finalize, name) is getattr(v, name) is getattr(_records, name)
    assert _submit.METADATA_HASH == v.META_JOB_HASH == "lrtune.job_hash"
    # The values existing MLflow stores hold.
    assert (v.TAG_STATUS, v.TAG_ROLE, v.TAG_SCHEDULE_FAMILY) == (
        "lrtune.status",
        "lrtune.role",
        "schedule_family",
    )


# --- groupings ------------------------------------------------------------------------------


def test_compare_by_accepts_exactly_the_groupings_and_their_aliases() -> None:
    from lrtune.analysis import CompareError, parse_by
    from lrtune.analysis._compare import GROUPINGS

    assert list(GROUPINGS) == list(v.GROUPINGS)
    for name, grouping in v.GROUPINGS.items():
        assert parse_by(name) == (name,)
        assert GROUPINGS[name] == (grouping.tag or "")
    for alias, name in v.GROUPING_ALIASES.items():
        assert parse_by(alias) == (name,)
    assert v.GROUPING_ALIASES == {"schedule": "family", "gradients": "gating"}
    assert parse_by("schedule, gradients,optimizer") == ("family", "gating", "optimizer")
    for wrong in ("colour", "schedule_family", "Family", "family,colour", ","):
        with pytest.raises(CompareError, match="family, optimizer, gating"):
            parse_by(wrong)


def test_finalize_per_accepts_exactly_the_policy_groupings_and_their_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lrtune.running import _finalize

    monkeypatch.chdir(tmp_path)
    assert _finalize.PER_CHOICES == ("family", "optimizer", "gating", "feedback", "policy")
    accepted = [*_finalize.PER_CHOICES, *v.GROUPING_ALIASES]
    for name in accepted:  # accepted: it goes on to look for the experiment
        with pytest.raises(_finalize.FinalizeError, match="no finished experiment"):
            _finalize.finalize("nope", top=1, seeds=1, per=(name,))
    for name in ("model", "agent", "experiment", "colour"):
        with pytest.raises(_finalize.FinalizeError, match=r"--per .*family, optimizer"):
            _finalize.finalize("nope", top=1, seeds=1, per=(name,))
    # Every --per grouping has a label in a policy's groups, under its trial tag's name.
    from lrtune.running._results import policy_groups

    groups = policy_groups({"lr": 1e-3, "gradients": {"name": "clip_global_norm"}})
    assert set(groups) == set(_finalize.PER_CHOICES)
    assert groups["gating"] == "clip_global_norm"


def test_every_grouping_tag_is_a_vocabulary_tag() -> None:
    assert set(v.GROUPING_TAGS) == set(v.GROUPINGS) - {"experiment"}
    assert set(v.GROUPING_TAGS.values()) <= v.tag_names()
    assert set(v.POLICY_FIELD_GROUPINGS.values()) <= set(v.PER_GROUPINGS)
    assert set(v.GROUPING_ALIASES) <= set(v.POLICY_FIELD_GROUPINGS)


# --- no tag literal outside the vocabulary --------------------------------------------------

#: Vocabulary names without the ``lrtune.`` prefix that no other code needs as a string.
DISTINCT_PLAIN_NAMES = (
    v.TAG_SCHEDULE_FAMILY,
    v.TAG_FINALIST_RANK,
    v.STUDY_STATUS_ATTR,
    v.STUDY_RESUMED_ATTR,
)
LRTUNE_NAME = re.compile(r"(?<![\w.])lrtune\.([A-Za-z_][\w.]*)")


def _module_exists(dotted: str) -> bool:
    parts = dotted.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _names_a_module(dotted: str) -> bool:
    """Whether ``lrtune.x.y[.Attr]`` names one of lrtune's modules (or an attribute of one)."""
    parts = dotted.rstrip(".").split(".")
    for end in range(len(parts), 1, -1):
        module = ".".join(parts[:end])
        if _module_exists(module):
            rest = parts[end:]
            if not rest:
                return True
            return hasattr(importlib.import_module(module), rest[0])
    return False


def _docstrings(tree: ast.AST) -> set[int]:
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _entry_point_groups(tree: ast.AST) -> set[int]:
    """f-strings assigned to ``entry_point_group`` (the registry's ``lrtune.<slot>``)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.JoinedStr):
            if any(
                isinstance(t, ast.Attribute) and t.attr == "entry_point_group" for t in node.targets
            ):
                out.update(id(part) for part in node.value.values)
    return out


def tag_literals_outside_the_vocabulary() -> list[str]:
    """``path:line: text`` of every string literal in the package (docstrings and comments
    aside) naming ``lrtune.<x>`` where ``<x>`` is not one of lrtune's modules, or spelling a
    plain name of the vocabulary that no other code needs (`DISTINCT_PLAIN_NAMES`)."""
    offenders: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "vocabulary.py" and path.parent == PACKAGE:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _docstrings(tree) | _entry_point_groups(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            if id(node) in skip:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for match in LRTUNE_NAME.finditer(node.value):
                if not _names_a_module(match.group(0)):
                    offenders.append(f"{where}: {match.group(0)!r} in {node.value!r}")
            if node.value in DISTINCT_PLAIN_NAMES:
                offenders.append(f"{where}: {node.value!r}")
    return offenders


def test_no_tag_literal_outside_the_vocabulary() -> None:
    assert tag_literals_outside_the_vocabulary() == []


def test_the_literal_check_finds_tag_names_and_spares_module_names() -> None:
    # The check above would pass with an empty package: show it tells the two kinds apart.
    for tag in ("lrtune.status", "lrtune.finalist", "lrtune.job", "lrtune.agent", "lrtune.lost"):
        assert not _names_a_module(tag), tag
    for module in (
        "lrtune.envs",
        "lrtune.envs.recsys",
        "lrtune.tracking",
        "lrtune.registry.PluginParams",
        "lrtune.testing",
    ):
        assert _names_a_module(module), module
    assert not _names_a_module("lrtune.registry.NoSuchThing")
    source = (PACKAGE / "running" / "_reconcile.py").read_text()
    tree = ast.parse(source.replace("tags[TAG_LOST]", 'tags["lrtune.lost"]'))
    literals = [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    found = [m.group(0) for s in literals for m in LRTUNE_NAME.finditer(s)]
    assert [f for f in found if not _names_a_module(f)] == ["lrtune.lost"]


def test_the_vocabulary_imports_nothing_of_lrtune() -> None:
    tree = ast.parse((PACKAGE / "vocabulary.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)] + [
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    ]
    assert not [m for m in imported if m.split(".")[0] == "lrtune"]


# --- what a real run writes ------------------------------------------------------------------


def _lrtune_tags(tags: dict[str, str]) -> set[str]:
    """The tags of a run that are not MLflow's own (``mlflow.*``) nor the parent run's
    reproducibility context (``version.*``, ``git.*``, ``host.*``: `run_context`)."""
    return {
        k
        for k in tags
        if not k.startswith(("mlflow.", "version.", "git.", "host.")) or k == v.PARENT_TAG
    }


@pytest.mark.slow
def test_every_tag_a_real_run_and_its_finalists_write_is_in_the_vocabulary(
    ray_session: Any, workdir: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from job_helpers import tiny_job, write_yaml  # type: ignore[import-not-found]
    from lrtune.cli import main
    from lrtune.running import run_job
    from lrtune.running._finalize import finalize
    from lrtune.specs import load_job

    space = {
        "version": 1,
        "lr": {"distribution": "log_uniform", "low": 1e-4, "high": 1e-3},
        "schedule": {"constant": {}, "cosine": {}},
        "optimizer": {"adam": {}},
        "gradients": {"clip_global_norm": {"max_norm": 0.5}},
    }
    data = tiny_job("vocab", workdir, space=space, seeds={"tuning": [0], "test": [100]})
    data["search"] = {"seed": 3}
    job = load_job(write_yaml(workdir, "vocab", data))
    outcome = run_job(job, stream=io.StringIO())
    assert outcome.exit_code == 0
    assert all(type(t.status) is v.TrialStatus for t in outcome.trials)
    done = finalize(str(workdir / "results" / "vocab"), top=1, seeds=1, stream=io.StringIO())
    assert done.exit_code == 0

    client = MlflowClient(job.tracking.resolved_uri)
    experiment = client.get_experiment_by_name("vocab")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    by_role: dict[str, list[Any]] = {}
    for run in runs:
        by_role.setdefault(v.RunRole(run.data.tags[v.TAG_ROLE]), []).append(run)
    assert {role: len(found) for role, found in by_role.items()} == {
        v.RunRole.EXPERIMENT: 1,
        v.RunRole.TRIAL: 2,
        v.RunRole.FINALIST: 1,
    }
    written: set[str] = set()
    for run in runs:
        tags = _lrtune_tags(run.data.tags)
        unnamed = {t for t in tags if not v.is_tag_name(t)}
        assert not unnamed, (run.data.tags[v.TAG_ROLE], unnamed)
        written |= tags
        if run.data.tags[v.TAG_ROLE] != v.RunRole.EXPERIMENT:
            v.TrialStatus(run.data.tags[v.TAG_STATUS])  # a vocabulary status
            assert run.info.status == v.TrialStatus(run.data.tags[v.TAG_STATUS]).run_status
            # Every grouping but ``experiment`` has its tag on every trial and finalist run.
            assert set(v.GROUPING_TAGS.values()) <= set(run.data.tags)
    finalist = by_role[v.RunRole.FINALIST][0]
    assert finalist.data.tags[v.TAG_FINALIST] == v.TRUE
    assert finalist.data.tags[v.TAG_SOURCE_TRIAL] in {t.trial_id for t in outcome.trials}
    assert {v.TAG_TEST_SEED, v.TAG_ROUND, v.TAG_SEARCH_SCORE} <= set(finalist.data.tags)
    assert {v.TAG_BEST_TRIAL, v.TAG_JOB_HASH, v.TAG_EXPERIMENT} <= written

    # The aliases group as the names they stand for (compare reads these very tags).
    def compared(by: str) -> list[Any]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(
                [
                    *("compare", "vocab", "--by", by, "--format", "json", "--source", "trials"),
                    *("--importance", "none", "--random-score", "0", "--reference-score", "500"),
                ]
            )
        assert code == 0, out.getvalue()
        return [g["group"] for g in json.loads(out.getvalue())["groups"]]

    assert compared("schedule") == compared("family")
    assert sorted(compared("family")) == sorted(
        {t.data.tags[v.TAG_SCHEDULE_FAMILY] for t in by_role[v.RunRole.TRIAL]}
    )
    assert compared("gradients") == compared("gating") == ["clip_global_norm"]
