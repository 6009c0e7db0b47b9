"""Adding an agent is one entry plus its tests: a third-party agent written as one module (its
entry, its learner class and its presets), pip-installed as a real distribution with an
``lrtune.agents`` entry point, passes `lrtune.testing.AgentContract` in its author's own test
file, shows in `lrtune presets`, and trains through a real `lrtune run` with its LR policy read
back at every iteration, equal to the schedule's closed form. Nothing in lrtune is edited."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from lrtune.testing import start_lrtune

# RLlib's PPO run as a synchronous advantage actor-critic: one pass over each batch, one
# minibatch, the ratio clip out of reach, no KL term.
ONE_FILE_AGENT = '''
"""acme_a2c: an A2C-style agent for lrtune in one module."""
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner

from lrtune.agents import AgentPlugin, AgentPresets
from lrtune.learners import LRPolicyLearner
from lrtune.registry import NoParams, agents


class A2CLearner(LRPolicyLearner, PPOTorchLearner):
    """RLlib's PPO learner with lrtune's LR policy (the rate owned and read back)."""


PRESETS = AgentPresets(
    {
        "train_batch_size_per_learner": 512,
        "minibatch_size": 512,
        "num_epochs": 1,
        "clip_param": 1000.0,
        "use_kl_loss": False,
        "num_envs_per_env_runner": 8,
    }
)


@agents.register("acme_a2c", params=NoParams)
class A2C(AgentPlugin):
    """A2C as one PPO pass per batch (no clipping, no KL term)."""

    config_class_path = "ray.rllib.algorithms.ppo:PPOConfig"
    learner_class_path = "acme_a2c:A2CLearner"
    presets_path = "acme_a2c:PRESETS"
    baseline_lr = 7e-4  # SB3's A2C default
    hidden = (64, 64)
    activation = "tanh"
    iteration_batch_key = "train_batch_size_per_learner"
'''

LR, END_FACTOR, BUDGET = 7e-4, 0.1, 2048


@pytest.fixture(scope="module")
def agent_site(plugin_distribution: Any) -> Path:
    """``acme-a2c``, built and pip-installed into its own folder."""
    site: Path = plugin_distribution.install(
        "acme_a2c", ONE_FILE_AGENT, "lrtune.agents", "acme_a2c", "A2C"
    )
    return site


def test_the_agent_passes_the_contract_in_its_authors_test_file(
    agent_site: Path, tmp_path: Path, plugin_distribution: Any
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    test_file = tmp_path / "test_acme_a2c.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import pytest

            from lrtune.testing import AgentContract


            class TestA2C(AgentContract):
                @pytest.fixture
                def plugin(self):
                    return ("agents", "acme_a2c")
            """
        )
    )
    out = plugin_distribution.pytest(agent_site, test_file)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    contract = ("test_declaration_fits_rllib", "test_owned_and_preset_settings_are_rllib_settings")
    for test in contract:
        assert f"PASSED test_acme_a2c.py::TestA2C::{test}" in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
def test_the_agent_trains_through_lrtune_run_with_its_rate_read_back(
    agent_site: Path, tmp_path: Path
) -> None:
    site = {"PYTHONPATH": str(agent_site)}
    presets = start_lrtune("presets", "acme_a2c", "--env", "CartPole-v1", cwd=tmp_path, env=site)
    shown, _ = presets.communicate(timeout=300)
    assert presets.returncode == 0, shown
    assert any(line.split()[:3] == ["num_epochs", "1", "agent"] for line in shown.splitlines()), (
        shown
    )

    (tmp_path / "a2c.yaml").write_text(
        textwrap.dedent(
            f"""
            version: 1
            name: a2c
            agent: acme_a2c
            env: {{id: CartPole-v1}}
            budget: {{trial_env_steps: {BUDGET}}}
            trials: {{num: 1, max_concurrent: 1}}
            policy: {{lr: {LR}, schedule: {{name: linear, params: {{end_factor: {END_FACTOR}}}}}}}
            seeds: {{tuning: [0], test: [1000]}}
            """
        )
    )
    run = start_lrtune("run", "a2c.yaml", cwd=tmp_path, env=site, stderr_apart=True)
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stdout[-3000:] + stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("a2c")
    (trial,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("lrtune.role") == "trial"
    ]
    assert trial.info.status == "FINISHED"
    history = client.get_metric_history(trial.info.run_id, "lr")
    # About 512 env steps an iteration (RLlib rounds to whole vector steps) up to the budget.
    assert len(history) == 4 and history[-1].step >= BUDGET, history
    for point in history:  # linear decay to END_FACTOR over the budget, read back from torch
        expected = LR * max(END_FACTOR, 1 - (1 - END_FACTOR) * point.step / BUDGET)
        assert point.value == pytest.approx(expected, rel=1e-6), point
