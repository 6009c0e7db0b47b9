"""Random documents fed to `lrtune validate` never give a traceback: exit 0 or 2 only."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from lrtune.cli import main

ROOT = Path(__file__).resolve().parents[2]
# Keep Hypothesis's caches out of the work tree (.hypothesis is not git-ignored).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "lrtune-hypothesis")
SPACE_FILE = str(ROOT / "search_spaces" / "lr_policies.yaml")

# Keys lrtune knows, so that random documents reach deep into the models.
KEYS = [
    "version",
    "name",
    "agent",
    "env",
    "id",
    "config",
    "budget",
    "trial_env_steps",
    "trials",
    "num",
    "seeds",
    "tuning",
    "test",
    "metric",
    "mode",
    "worst",
    "space",
    "policy",
    "search",
    "algorithm",
    "sampler",
    "scheduler",
    "grace_period",
    "hyperparams",
    "lr",
    "schedule",
    "optimizer",
    "gradients",
    "feedback",
    "cosine",
    "warmup",
    "steps",
    "then",
    "adam",
    "sgd",
    "none",
    "clip_global_norm",
    "max_norm",
    "min_factor",
    "distribution",
    "low",
    "high",
    "step",
    "choices",
    "values",
    "uniform",
    "log_uniform",
    "int",
    "categorical",
    "kl_adaptive",
    "divergence_guard",
    "params",
    "gamma",
    "description",
    "model",
    "hidden",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**7),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(KEYS),
    st.text(max_size=12),
    st.sampled_from(
        [
            "1e-4",
            "2e4",
            "-1",
            "ppo",
            "dqn",
            "CartPole-v1",
            "log_uniform",
            SPACE_FILE,
            "grid",
            "x:y",
            "",
        ]
    ),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=5),
    ),
    max_leaves=30,
)
VALID_JOB: dict[str, Any] = {
    "name": "fuzz",
    "agent": "ppo",
    "env": {"id": "CartPole-v1"},
    "budget": {"trial_env_steps": 20000},
    "space": SPACE_FILE,
    "search": {"sampler": "tpe"},
    "hyperparams": {"gamma": 0.99},
}


def _validate(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> None:
    code = main(["validate", str(path), *extra])
    out = capsys.readouterr()
    assert code in (0, 2)
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err
    if code == 2:
        assert out.err.startswith("lrtune: error: ")
    else:
        assert out.out.startswith("ok  ")


def _mutate(job: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = dict(job)
    node = out
    for key in path[:-1]:
        child = node.get(key)
        node[key] = dict(child) if isinstance(child, dict) else {}
        node = node[key]
    node[path[-1]] = value
    return out


SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(doc=documents)
def test_random_yaml_documents(doc: Any, capsys: pytest.CaptureFixture[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.yaml"
        path.write_text(yaml.safe_dump(doc))
        _validate(path, capsys)


@SETTINGS
@given(path=st.lists(st.sampled_from(KEYS), min_size=1, max_size=4), value=documents)
def test_random_changes_to_a_valid_job(
    path: list[str], value: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "job.yaml"
        file.write_text(yaml.safe_dump(_mutate(VALID_JOB, path, value)))
        _validate(file, capsys)


@SETTINGS
@given(data=st.binary(max_size=300), override=st.text(max_size=40))
def test_random_bytes_and_overrides(
    data: bytes, override: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "junk.yaml"
        file.write_bytes(data)
        _validate(file, capsys)
        file.write_text(yaml.safe_dump(VALID_JOB))
        _validate(file, capsys, f"--set={override}")
