"""`lrtune presets AGENT [--env ID]` through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lrtune.learners._presets import preset_hyperparams, resolve_presets

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lrtune", "presets", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_json_rows_match_the_lookup_with_sources() -> None:
    out = run_cli("ppo", "--env", "Pendulum-v1", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = {row["key"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {row.key for row in resolve_presets("ppo", "Pendulum-v1")}
    assert rows["env_to_module_connector"]["value"] == "mean_std_filter"
    assert rows["env_to_module_connector"]["source"] == "continuous-action family"
    assert rows["model.vf_share_layers"] == {
        "key": "model.vf_share_layers",
        "value": False,
        "source": "model default",
    }
    assert rows["gamma"]["value"] == preset_hyperparams("ppo", "Pendulum-v1")["gamma"]


def test_table_names_each_source_and_an_unbuildable_env() -> None:
    out = run_cli("dqn")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "agent defaults only" in lines[0]
    gamma = next(line for line in lines if line.startswith("gamma "))
    assert gamma.split()[1:] == ["0.99", "agent", "default"]
    init = next(line for line in lines if line.startswith("model.initializer "))
    assert init.split()[1:] == ['"torch"', "model", "default"]
    unknown = run_cli("ppo", "--env", "NoSuchEnv-v0")
    assert unknown.returncode == 0 and "cannot build 'NoSuchEnv-v0'" in unknown.stdout
    # An env a run would refuse for this agent says so (the run-start check's message).
    refused = run_cli("sac", "--env", "CartPole-v1")
    assert refused.returncode == 0, refused.stderr
    assert (
        "lrtune: warning: a run of sac on this env is refused: 'CartPole-v1' has discrete "
        "actions (Discrete(2)) and agent 'sac' handles continuous ones only"
    ) in refused.stdout
    assert "refused" not in run_cli("ppo", "--env", "CartPole-v1").stdout


def test_unknown_agent_exits_2() -> None:
    out = run_cli("td3")
    assert out.returncode == 2 and "invalid choice: 'td3'" in out.stderr


def test_env_config_chooses_the_family_where_it_chooses_the_actions(tmp_path: Path) -> None:
    """An env whose keyword chooses its kind of actions (as LunarLander's ``continuous``
    does): ``--env-config`` builds it as a job's ``env.config`` would, so the continuous-action
    family shows; without it the env's defaults (discrete) count. A value that is not a
    mapping exits 2."""
    (tmp_path / "switchenv.py").write_text(
        "import numpy as np, gymnasium as gym\n"
        "class Switch(gym.Env):\n"
        "    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)\n"
        "    def __init__(self, continuous=False):\n"
        "        self.action_space = (gym.spaces.Box(-1.0, 1.0, (1,), np.float32)\n"
        "                             if continuous else gym.spaces.Discrete(2))\n"
        "gym.register('Switch-v0', entry_point=Switch)\n"
    )

    def families(*extra: str) -> set[str]:
        command = [sys.executable, "-m", "lrtune", "presets", "ppo"]
        out = subprocess.run(
            [*command, "--env", "switchenv:Switch-v0", *extra, "--format", "json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return {row["source"] for row in json.loads(out.stdout)}

    assert "continuous-action family" in families("--env-config", "{continuous: true}")
    assert "continuous-action family" not in families()
    bad = run_cli("ppo", "--env", "CartPole-v1", "--env-config", "[1, 2]")
    assert bad.returncode == 2
    assert "--env-config: '[1, 2]' is not a mapping of keyword arguments" in bad.stderr
