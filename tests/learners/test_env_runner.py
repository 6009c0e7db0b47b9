"""lrtune's env runner (`LRTuneEnvRunner`) samples what RLlib's ``SingleAgentEnvRunner`` loop
samples: seeded runners return the same episodes bit for bit, log the same counts and episode
metrics, and leave out only the per-step timers its docstring names; callbacks that act on
every step still get every call, and seeded training ends with the same weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from ray.rllib.core import DEFAULT_MODULE_ID

from episode_helpers import assert_same_samples, sampling_config  # type: ignore[import-not-found]
from lrtune.learners._callbacks import LRTuneCallbacks
from lrtune.learners._env_runner import LRTuneEnvRunner

# The metrics RLlib's loop logs on every vector step and `LRTuneEnvRunner` leaves out.
LEFT_OUT = {
    "env_step_timer",
    "rlmodule_inference_timer",
    "module_to_env_connector/connector_pipeline_timer",
}
# Same values on both sides (the runners are seeded alike).
SAME = [
    "num_env_steps_sampled",
    "num_env_steps_sampled_lifetime",
    "num_episodes",
    "num_episodes_lifetime",
    "episode_return_mean",
    "episode_return_min",
    "episode_return_max",
    "episode_len_mean",
    "weights_seq_no",
]


def _runner(config: Any, lean: bool) -> LRTuneEnvRunner:
    torch.manual_seed(0)  # the same initial weights on both sides
    runner = LRTuneEnvRunner(config=config)
    runner.lean_sampling = lean  # type: ignore[misc]
    return runner


def _sample(runner: LRTuneEnvRunner, calls: int) -> list[list[Any]]:
    torch.manual_seed(1)  # the same action draws on both sides
    return [runner.sample(explore=True) for _ in range(calls)]


def _value(stats: Any) -> Any:
    """A metric's value as the env runner's ``get_metrics()`` returns it (a stats object)."""
    return stats.peek() if hasattr(stats, "peek") else stats


def _flat_keys(metrics: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in metrics.items():
        if isinstance(value, dict):
            keys |= _flat_keys(value, f"{prefix}{key}/")
        else:
            keys.add(prefix + key)
    return keys


def test_lrtunes_configs_use_the_lean_runner_unless_the_job_brings_one() -> None:
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    assert sampling_config("ppo", "CartPole-v1").env_runner_cls is LRTuneEnvRunner
    assert sampling_config("dqn", "CartPole-v1").env_runner_cls is LRTuneEnvRunner
    own = sampling_config("ppo", "CartPole-v1", extra={"env_runner_cls": SingleAgentEnvRunner})
    assert own.env_runner_cls is SingleAgentEnvRunner


CASES = [
    ("ppo", "CartPole-v1", False, 6),
    ("ppo", "CartPole-v1", True, 6),  # RLlib's MeanStdFilter before lrtune's batched piece
    ("dqn", "CartPole-v1", False, 60),
    ("ppo", "Pendulum-v1", True, 14),  # Box actions: RLlib's module-to-env pipeline
    ("ppo", "lrtune/RecSys-v0", False, 3),  # a native vector env
]


@pytest.mark.parametrize(("agent", "env", "normalize", "calls"), CASES)
def test_seeded_sampling_returns_rllibs_episodes_and_metrics(
    agent: str, env: str, normalize: bool, calls: int
) -> None:
    """Several ``sample()`` calls that cut running episodes and finish others: the same chunks
    bit for bit, the same counts and episode metrics, the observation filter's statistics
    alike, and only the per-step timers missing from the lean runner's metrics."""
    config = sampling_config(agent, env, normalize=normalize)
    lean, rllibs = (_runner(config, flag) for flag in (True, False))
    try:
        ours, theirs = _sample(lean, calls), _sample(rllibs, calls)
        assert assert_same_samples(ours, theirs, 1) >= 2  # episodes ended inside and across calls
        states = [runner._env_to_module.get_state() for runner in (lean, rllibs)]
        np.testing.assert_equal(states[0], states[1])
        metrics = [runner.get_metrics() for runner in (lean, rllibs)]
        for key in SAME:
            assert _value(metrics[0][key]) == _value(metrics[1][key]), key
        lean_keys, rllibs_keys = (_flat_keys(m) for m in metrics)
        missing = rllibs_keys - lean_keys
        assert lean_keys <= rllibs_keys
        assert LEFT_OUT <= missing
        assert all(
            k in LEFT_OUT or k.startswith("module_to_env_connector/timers/") for k in missing
        )
    finally:
        lean.stop()
        rllibs.stop()


class _StepCounter(LRTuneCallbacks):
    """Counts ``on_episode_step`` calls per env index."""

    calls: dict[int, int] = {}

    def on_episode_step(self, *, env_index: int, **kwargs: Any) -> None:
        """Called by the env runner after every env step of every env."""
        _StepCounter.calls[env_index] = _StepCounter.calls.get(env_index, 0) + 1


_function_calls: list[int] = []


def _count_step(*, env_index: int, **kwargs: Any) -> None:
    _function_calls.append(env_index)


@pytest.mark.parametrize("style", ["class", "function"])
def test_callbacks_that_act_on_every_step_get_every_call(style: str) -> None:
    config = sampling_config("ppo", "CartPole-v1").copy(copy_frozen=False)
    if style == "class":
        config.callbacks(_StepCounter)
    else:
        config.callbacks(on_episode_step=_count_step)
    counts = []
    for lean in (True, False):
        _StepCounter.calls = {}
        _function_calls.clear()
        runner = _runner(config, lean)
        try:
            _sample(runner, 3)
        finally:
            runner.stop()
        counts.append(
            dict(_StepCounter.calls)
            if style == "class"
            else {i: _function_calls.count(i) for i in set(_function_calls)}
        )
    assert counts[0] == counts[1]
    assert sorted(counts[0]) == [0, 1, 2, 3] and sum(counts[0].values()) > 300


@pytest.mark.slow
@pytest.mark.usefixtures("ray_session")
@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_seeded_training_ends_with_the_same_weights(agent: str) -> None:
    weights = []
    for lean in (True, False):
        LRTuneEnvRunner.lean_sampling = lean
        try:
            torch.manual_seed(0)
            algo = sampling_config(agent, "CartPole-v1").build_algo()
            assert type(algo.env_runner) is LRTuneEnvRunner
            torch.manual_seed(1)
            for _ in range(3):
                algo.train()
            module = algo.learner_group._learner.module[DEFAULT_MODULE_ID]
            weights.append({k: v.detach().clone() for k, v in module.state_dict().items()})
            algo.stop()
        finally:
            LRTuneEnvRunner.lean_sampling = True
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
