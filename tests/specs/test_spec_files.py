"""Every shipped search space and job validates, through the loaders and `lrtune validate`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrtune.cli import main
from lrtune.specs import JobSpec, SearchSpaceSpec, load_job, load_space

ROOT = Path(__file__).resolve().parents[2]
SPACES = sorted((ROOT / "search_spaces").glob("*.yaml"))
JOBS = sorted((ROOT / "jobs").glob("*.yaml"))


def test_spaces_are_shipped() -> None:
    names = {p.name for p in SPACES}
    assert {"lr_policies.yaml", "dqn_policies.yaml"} <= names


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_shipped_space_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = load_space(path)
    assert isinstance(space, SearchSpaceSpec)
    assert space.description, "describe each shipped space"
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"ok  {path} (space)"


@pytest.mark.parametrize("path", JOBS, ids=lambda p: p.name)
def test_shipped_job_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = load_job(path)
    assert isinstance(job, JobSpec)
    assert main(["validate", str(path)]) == 0
    assert f"ok  {path} (job)" in capsys.readouterr().out


def test_jobs_folder_checked_when_present() -> None:
    if not JOBS:
        pytest.skip("no jobs/*.yaml shipped yet")
    assert all(p.suffix == ".yaml" for p in JOBS)


def test_lr_policies_space_has_the_promised_families() -> None:
    space = load_space(ROOT / "search_spaces" / "lr_policies.yaml")
    assert set(space.schedule or {}) == {"constant", "linear", "cosine", "warmup", "one_cycle"}
    assert set(space.optimizer or {}) == {"adam", "adamw", "rmsprop", "sgd"}
    assert set(space.gradients or {}) == {"none", "clip_global_norm"}
    assert set(space.feedback or {}) == {"off", "guard"}  # `off:` is a label, not False
    assert "lr" in (space.optimizer or {})["sgd"]  # per-optimizer lr ranges


def test_dqn_space_has_no_ppo_only_rule() -> None:
    space = load_space(ROOT / "search_spaces" / "dqn_policies.yaml")
    names = {r.name for refs in (space.feedback or {}).values() for r in refs}
    assert "kl_adaptive" not in names


def test_shipped_spaces_load_into_jobs_of_their_agent(tmp_path: Path) -> None:
    for agent, name in (("ppo", "lr_policies.yaml"), ("dqn", "dqn_policies.yaml")):
        job_file = tmp_path / f"{agent}.yaml"
        job_file.write_text(
            f"name: {agent}-cartpole\nagent: {agent}\nenv: {{id: CartPole-v1}}\n"
            f"budget: {{trial_env_steps: 50000}}\nspace: {ROOT / 'search_spaces' / name}\n"
        )
        job = load_job(job_file)
        assert job.space_path == str((ROOT / "search_spaces" / name).resolve())
        assert job.space == load_space(ROOT / "search_spaces" / name)


def test_policy_files_are_recognised(capsys: pytest.CaptureFixture[str]) -> None:
    policies = sorted((ROOT / "jobs" / "policies").glob("*.yaml"))
    if not policies:
        pytest.skip("no policy files")
    assert main(["validate", *map(str, policies)]) == 0
    assert "(policy)" in capsys.readouterr().out
