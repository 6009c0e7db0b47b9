"""The private upstream APIs lrtune uses (`lrtune._upstream.PRIVATE_APIS`) still exist in the
installed Ray / Optuna / torch / Python, each as listed; the list is complete (no other private
name of another library is used under platform/lrtune) and has no stale entry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lrtune._upstream import PRIVATE_APIS, SAMPLING_RUNNER_ATTRIBUTES, PrivateAPI, check

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "lrtune"
SOURCES = sorted(PACKAGE.rglob("*.py"))

#: Underscore names that are public by convention: namedtuple's API (documented, underscored
#: only to avoid clashing with field names).
PUBLIC_UNDERSCORE_NAMES = frozenset({"_replace", "_asdict", "_fields", "_field_defaults", "_make"})


@pytest.mark.parametrize("api", PRIVATE_APIS, ids=lambda api: api.qualified)
def test_each_private_api_still_resolves(api: PrivateAPI) -> None:
    problem = check(api)
    if problem is not None:
        pytest.fail(
            f"private upstream API {api.qualified} ({api.kind}) changed in the installed "
            f"version: {problem}. lrtune uses it in {', '.join(api.used_in)} for: {api.why} "
            "Adapt that code to the new version and update its entry in lrtune/_upstream.py.",
            pytrace=False,
        )


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        (PrivateAPI("no_such_module_xyz", "_x", "attribute", (), ""), "does not import"),
        (PrivateAPI("torch", "_foreach_no_such_op", "attribute", (), ""), "has no"),
        (PrivateAPI("optuna.study", "NoSuchClass._x", "attribute", (), ""), "has no 'NoSuchClass'"),
        (
            PrivateAPI("optuna.study", "Study._no_such_attribute", "instance_attribute", (), ""),
            "assigns self._no_such_attribute",
        ),
        (
            PrivateAPI("ray.tune.schedulers.pbt", "_explore", "attribute", (), "", ("config",)),
            "its parameters are",
        ),
    ],
    ids=["module", "name", "container", "instance-attribute", "parameters"],
)
def test_the_check_reports_what_moved(api: PrivateAPI, expected: str) -> None:
    problem = check(api)
    assert problem is not None and expected in problem, problem


def _uses(path: str, api: PrivateAPI) -> bool:
    """Whether ``path`` names ``api``: literally, or through `SAMPLING_RUNNER_ATTRIBUTES`
    (the env-runner attributes `_sampling_state` reads by a loop over that tuple)."""
    if not (PACKAGE / path).is_file():
        return False
    text = (PACKAGE / path).read_text()
    through_tuple = api.name in SAMPLING_RUNNER_ATTRIBUTES and "SAMPLING_RUNNER_ATTRIBUTES" in text
    return api.name in text or through_tuple


def test_each_entry_is_still_used_where_it_is_listed() -> None:
    stale = [
        f"{api.qualified} in {path}"
        for api in PRIVATE_APIS
        for path in api.used_in
        if not _uses(path, api)
    ]
    assert not stale, (
        f"lrtune/_upstream.py lists private APIs no longer used where it says: {stale}. "
        "Remove the entry, or correct its `used_in`."
    )


def _own_private_names() -> set[str]:
    """Underscore names lrtune defines itself: its functions, classes, and the attributes it
    assigns (``self._x = ...``, module-level ``_X = ...``). Not its private module names: an
    upstream attribute may share one (RLlib's ``LearnerGroup._learner`` and lrtune's
    ``learners/_learner.py``); a path into lrtune itself (``lrtune.x._y``) is skipped where it
    is read instead."""
    names: set[str] = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                for leaf in ast.walk(target):
                    if isinstance(leaf, ast.Attribute):
                        names.add(leaf.attr)
                    elif isinstance(leaf, ast.Name):
                        names.add(leaf.id)
    return {n for n in names if n.startswith("_")}


def _inside_lrtune(node: ast.Attribute) -> bool:
    """Whether ``node`` is a dotted path from the name ``lrtune`` (``lrtune.learners._x``)."""
    value: ast.expr = node.value
    while isinstance(value, ast.Attribute):
        value = value.value
    return isinstance(value, ast.Name) and value.id == "lrtune"


def _private_names_used() -> dict[str, set[str]]:
    """Underscore names (not dunders) that lrtune's code reads: attributes, imported names and
    private module segments of imports from other libraries, ``getattr(x, "_name")`` strings;
    name → the files using it."""

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    used: dict[str, set[str]] = {}
    for path in SOURCES:
        where = str(path.relative_to(PACKAGE))
        for node in ast.walk(ast.parse(path.read_text())):
            found: list[str] = []
            if isinstance(node, ast.Attribute) and not _inside_lrtune(node):
                found.append(node.attr)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if not node.module.startswith("lrtune"):
                    found += node.module.split(".") + [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if not alias.name.startswith("lrtune"):
                        found += alias.name.split(".")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr", "setattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
            ):
                found.append(node.args[1].value)
            for name in filter(private, found):
                used.setdefault(name, set()).add(where)
    return used


def test_no_private_upstream_name_is_used_without_an_entry() -> None:
    listed = {api.name for api in PRIVATE_APIS}
    listed |= {part for api in PRIVATE_APIS for part in api.module.split(".")}
    own = _own_private_names()
    unlisted = {
        name: sorted(files)
        for name, files in _private_names_used().items()
        if name not in listed and name not in own and name not in PUBLIC_UNDERSCORE_NAMES
    }
    assert not unlisted, (
        f"private names of other libraries used under platform/lrtune without an entry in "
        f"lrtune/_upstream.py: {unlisted}. Use a public API, or add a PrivateAPI entry saying why."
    )
