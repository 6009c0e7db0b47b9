"""RLlib builds the env from the module-qualified string id in a fresh process and trains once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig

    assert "lrtune" not in sys.modules  # only the string id tells RLlib where the env lives
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        config = (
            PPOConfig()
            .environment(
                "lrtune.envs:lrtune/RecSys-v0",
                env_config={"num_items": 100, "num_candidates": 4, "max_steps": 20},
            )
            .env_runners(num_env_runners=int(sys.argv[1]), num_envs_per_env_runner=2)
            .training(train_batch_size_per_learner=64, minibatch_size=32, num_epochs=1)
            .rl_module(model_config={"fcnet_hiddens": [16]})
        )
        algo = config.build_algo()
        result = algo.train()
        sampled = result["env_runners"]["num_env_steps_sampled_lifetime"]
        assert sampled >= 64, sampled
        algo.stop()
        print("TRAINED", sampled)
    finally:
        ray.shutdown()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("num_env_runners", [0, 1])
def test_rllib_ppo_trains_on_string_id(num_env_runners: int) -> None:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(num_env_runners)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "TRAINED" in done.stdout


@pytest.mark.slow
def test_real_env_context_is_accepted_as_config() -> None:
    from ray.rllib.env.env_context import EnvContext

    from lrtune.envs import RecSysEnv

    ctx = EnvContext({"num_items": 50, "num_candidates": 5}, worker_index=1, num_workers=2)
    env = RecSysEnv(ctx)
    assert env.action_space.n == 5 and env.model.num_items == 50
