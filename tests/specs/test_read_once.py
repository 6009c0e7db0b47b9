"""Loading a job reads each file it refers to once; every number is read one way (YAML 1.2)."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pytest

from lrtune.cli._args import positive_int
from lrtune.specs import SpecError, load_job, parse_job

ROOT = Path(__file__).resolve().parents[2]


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count `Path.read_bytes` calls per resolved path (the loader reads files with it)."""
    reads: Counter[str] = Counter()
    original = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        reads[str(self.resolve())] += 1
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    return reads


@pytest.mark.parametrize(
    "overrides", [(), ("space.schedule={cosine: {}}", "space.hyperparams.gamma=0.98")]
)
def test_a_job_reads_each_referenced_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: tuple[str, ...]
) -> None:
    (tmp_path / "lr.yaml").write_text("lr: {distribution: log_uniform, low: 1e-5, high: 1e-3}\n")
    (tmp_path / "agent.yaml").write_text(
        "hyperparams: {gamma: {distribution: uniform, low: 0.95, high: 0.999}}\n"
    )
    (tmp_path / "policy.yaml").write_text("lr: 3e-4\n")
    job_file = tmp_path / "job.yaml"
    job_file.write_text(
        "name: once\nagent: ppo\nenv: {id: CartPole-v1}\nbudget: {trial_env_steps: 2e4}\n"
        "space: [lr.yaml, agent.yaml]\npolicy: policy.yaml\n"
    )
    reads = _count_reads(monkeypatch)
    job = load_job(job_file, overrides=overrides)
    assert job.space is not None and job.policy is not None
    assert reads == Counter(
        {str(tmp_path / n): 1 for n in ("job.yaml", "lr.yaml", "agent.yaml", "policy.yaml")}
    )


@pytest.mark.parametrize("text", ["8", "8e4", "1e1", "2E3", "20000.0"])
def test_the_cli_and_job_files_accept_the_same_whole_numbers(text: str) -> None:
    job = parse_job(
        {
            "name": "n",
            "agent": "ppo",
            "env": {"id": "CartPole-v1"},
            "budget": {"trial_env_steps": text},
            "policy": {"lr": "1e-3"},
        }
    )
    assert job.budget.trial_env_steps == positive_int(text) == round(float(text))


@pytest.mark.parametrize("text", ["1.5", "1e-1", "nan", "inf", "ten", "0"])
def test_the_cli_and_job_files_refuse_the_same_texts(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="positive whole number"):
        positive_int(text)
    with pytest.raises(SpecError, match=r"budget\.trial_env_steps: "):
        parse_job(
            {
                "name": "n",
                "agent": "ppo",
                "env": {"id": "CartPole-v1"},
                "budget": {"trial_env_steps": text},
                "policy": {"lr": 1e-3},
            }
        )
