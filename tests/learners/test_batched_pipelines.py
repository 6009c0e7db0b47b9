"""lrtune's batched env-to-module piece (`BatchedObservations`) in place of RLlib's default
pieces, and its one-piece module-to-env pipeline (`BatchedActions`) in place of RLlib's
``GetActions`` and ``TensorToNumpy``, change nothing that is sampled or trained: seeded env
runners return the same episodes with either pipeline, and seeded training ends with the same
weights bit for bit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from ray.rllib.connectors.env_to_module import (
    AddObservationsFromEpisodesToBatch,
    BatchIndividualItems,
    MeanStdFilter,
    NumpyToTensor,
)
from ray.rllib.connectors.module_to_env import (
    GetActions,
    TensorToNumpy,
    UnBatchToIndividualItems,
)
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from episode_helpers import assert_same_samples, sampling_config  # type: ignore[import-not-found]
from lrtune.learners._modules import mean_std_filter
from lrtune.learners._vector import BatchedActions, BatchedObservations

ENV = "CartPole-v1"
DEFAULT = {"add_default_connectors_to_env_to_module_pipeline": True}
# The piece that starts the batch: lrtune's, or the first of RLlib's defaults.
BATCHING = (BatchedObservations, AddObservationsFromEpisodesToBatch)


def rllib_pieces_module_to_env(env: Any = None, spaces: Any = None) -> list[Any]:
    """lrtune's batched module-to-env pipeline as it was built from RLlib's pieces (with a
    check for stateful modules last, a no-op here)."""
    return [GetActions(), TensorToNumpy()]


# The module-to-env side as before `BatchedActions` (RLlib's env-to-module pieces too).
PIECES = {
    **DEFAULT,
    "module_to_env_connector": rllib_pieces_module_to_env,
    "add_default_connectors_to_module_to_env_pipeline": False,
}


def _config(
    agent: str, normalize: bool, extra: dict[str, Any] | None = None, env: str = ENV
) -> Any:
    return sampling_config(agent, env, normalize=normalize, extra=extra)


def _pieces(config: Any) -> list[type]:
    runner = SingleAgentEnvRunner(config=config)
    try:
        return [type(piece) for piece in runner._env_to_module.connectors]
    finally:
        runner.stop()


@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_lrtune_pipelines_end_with_the_batched_piece(agent: str) -> None:
    assert _pieces(_config(agent, False)) == [BatchedObservations]
    assert _pieces(_config(agent, True)) == [MeanStdFilter, BatchedObservations]
    defaults = _pieces(_config(agent, True, DEFAULT))
    assert defaults[0] is MeanStdFilter and BatchedObservations not in defaults
    assert {AddObservationsFromEpisodesToBatch, BatchIndividualItems, NumpyToTensor} <= set(
        defaults
    )


def test_own_connectors_and_stateful_modules_keep_rllibs_pieces() -> None:
    own = _config("ppo", False, {"env_to_module_connector": mean_std_filter})
    assert BatchedObservations in _pieces(own)  # lrtune's filter: still lrtune's pipeline
    other = _config("ppo", False, {"env_to_module_connector": _own_filter})
    assert BatchedObservations not in _pieces(other)
    assert other.add_default_connectors_to_env_to_module_pipeline
    lstm = _config("ppo", False, {"model_config": {"use_lstm": True, "max_seq_len": 4}})
    assert lstm.model_config["use_lstm"]
    assert lstm.add_default_connectors_to_env_to_module_pipeline


def _own_filter(env: Any = None, spaces: Any = None, device: Any = None) -> Any:
    return MeanStdFilter()


def test_the_piece_refuses_what_it_cannot_batch() -> None:
    episode = SingleAgentEpisode(observations=[np.zeros(4, np.float32)], len_lookback_buffer=0)
    piece = BatchedObservations()
    out = piece(rl_module=None, batch={}, episodes=[episode], shared_data={})
    assert out[Columns.OBS].shape == (1, 4)
    with pytest.raises(ValueError, match="batch columns"):
        piece(rl_module=None, batch={"prev_actions": [0]}, episodes=[episode], shared_data={})


class _Module:
    """Just what ``GetActions`` asks of an RL module: its distribution classes."""

    def __init__(self, exploration: type) -> None:
        self.exploration = exploration

    def get_exploration_action_dist_cls(self) -> type:
        return self.exploration

    def get_inference_action_dist_cls(self) -> type:
        return TorchCategorical


class _OwnCategorical(TorchCategorical):
    """Not RLlib's class itself: `BatchedActions` leaves it to ``GetActions``."""


@pytest.mark.parametrize(
    ("exploration", "explore"),
    [(TorchCategorical, True), (TorchCategorical, False), (_OwnCategorical, True)],
)
def test_the_module_to_env_piece_gives_rllibs_columns(exploration: type, explore: bool) -> None:
    """Fast path (exploring with RLlib's categorical) and RLlib's own path (inference, another
    distribution class): the same columns, dtypes and values as ``GetActions`` then
    ``TensorToNumpy``, drawing the same numbers from torch's stream."""
    logits = torch.randn(64, 3, generator=torch.Generator().manual_seed(0)) * 3
    episodes = [SingleAgentEpisode()]
    outputs = []
    for pieces in ([BatchedActions()], rllib_pieces_module_to_env()):
        batch: dict[str, Any] = {Columns.ACTION_DIST_INPUTS: logits.clone()}
        torch.manual_seed(3)
        for piece in pieces:
            batch = piece(
                rl_module=_Module(exploration), batch=batch, episodes=episodes, explore=explore
            )
        batch["next_draw"] = torch.rand(1).item()  # where both left torch's stream
        outputs.append(batch)
    ours, theirs = outputs
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert type(ours[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert ours[key].dtype == value.dtype, key
        np.testing.assert_array_equal(ours[key], value, err_msg=key)


def test_the_module_to_env_piece_refuses_state_outputs() -> None:
    batch = {Columns.ACTION_DIST_INPUTS: torch.zeros(2, 2), Columns.STATE_OUT: {}}
    with pytest.raises(ValueError, match="stateful"):
        BatchedActions()(
            rl_module=_Module(TorchCategorical),
            batch=batch,
            episodes=[SingleAgentEpisode()],
            explore=True,
        )


def _runner(
    agent: str, normalize: bool, extra: dict[str, Any] | None, env: str = ENV
) -> SingleAgentEnvRunner:
    torch.manual_seed(0)  # the same initial weights on both sides
    return SingleAgentEnvRunner(config=_config(agent, normalize, extra, env))


def _record_inputs(runner: SingleAgentEnvRunner) -> list[dict[str, Any]]:
    """What the runner's module is called with, one batch per vector step, from now on."""
    seen: list[dict[str, Any]] = []
    forward = runner.module.forward_exploration

    def recording(batch: dict[str, Any], **kwargs: Any) -> Any:
        seen.append({key: value.clone() for key, value in batch.items()})
        return forward(batch, **kwargs)

    runner.module.forward_exploration = recording  # type: ignore[method-assign]
    return seen


def _sample(runner: SingleAgentEnvRunner, calls: int) -> list[list[SingleAgentEpisode]]:
    torch.manual_seed(1)  # the same action draws on both sides
    return [runner.sample(explore=True) for _ in range(calls)]


@pytest.mark.parametrize("theirs", [DEFAULT, PIECES], ids=["env_to_module", "both"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("agent", ["ppo", "dqn"])
def test_seeded_sampling_returns_rllibs_episodes(
    agent: str, normalize: bool, theirs: dict[str, Any]
) -> None:
    """Several sample() calls that cut running episodes and finish others: the module gets the
    same input tensors at every vector step, the chunks hold the same values bit for bit, and
    the observation filter ends with the same statistics."""
    calls = 6 if agent == "ppo" else 60
    runners = [_runner(agent, normalize, extra) for extra in (None, theirs)]
    try:
        pieces = [[type(p) for p in runner._module_to_env.connectors] for runner in runners]
        assert pieces[0] == [BatchedActions]
        assert pieces[1] == ([GetActions, TensorToNumpy] if theirs is PIECES else [BatchedActions])
        inputs = [_record_inputs(runner) for runner in runners]
        ours, theirs = (_sample(runner, calls) for runner in runners)
        assert len(inputs[0]) == len(inputs[1]) > calls
        for mine_in, rllibs_in in zip(*inputs, strict=True):
            assert mine_in.keys() == rllibs_in.keys() == {Columns.OBS}
            assert mine_in[Columns.OBS].dtype == rllibs_in[Columns.OBS].dtype == torch.float32
            assert torch.equal(mine_in[Columns.OBS], rllibs_in[Columns.OBS])
        assert assert_same_samples(ours, theirs, 4) >= 4  # episodes ended inside and across calls
        states = [runner._env_to_module.get_state() for runner in runners]
        assert states[0].keys() == states[1].keys() == ({"MeanStdFilter"} if normalize else set())
        if normalize:
            np.testing.assert_equal(states[0], states[1])
    finally:
        for runner in runners:
            runner.stop()


@pytest.mark.parametrize("normalize", [False, True])
def test_box_actions_after_the_batched_observations_sample_rllibs_episodes(
    normalize: bool,
) -> None:
    """Box actions keep RLlib's module-to-env pipeline, whose ``UnBatchToIndividualItems`` reads
    the rows' episode ids that `BatchedObservations` notes in ``shared_data``: PPO on
    Pendulum-v1 (200-step episodes, so 14 calls of 4 x 32 steps end 8 of them) samples the same
    episodes after lrtune's piece as after RLlib's."""
    runners = [_runner("ppo", normalize, extra, "Pendulum-v1") for extra in (None, DEFAULT)]
    try:
        batching = [
            [type(p) for p in runner._env_to_module.connectors if type(p) in BATCHING]
            for runner in runners
        ]
        assert batching == [[BatchedObservations], [AddObservationsFromEpisodesToBatch]]
        pieces = [[type(p) for p in runner._module_to_env.connectors] for runner in runners]
        assert pieces[0] == pieces[1] and UnBatchToIndividualItems in pieces[0]
        inputs = [_record_inputs(runner) for runner in runners]
        ours, theirs = (_sample(runner, 14) for runner in runners)
        assert len(inputs[0]) == len(inputs[1]) > 14
        for mine_in, rllibs_in in zip(*inputs, strict=True):
            assert torch.equal(mine_in[Columns.OBS], rllibs_in[Columns.OBS])
        assert assert_same_samples(ours, theirs, 1) >= 4
    finally:
        for runner in runners:
            runner.stop()


@pytest.fixture()
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def _weights(algo: Any) -> dict[str, np.ndarray]:
    module = algo.learner_group._learner.module[DEFAULT_MODULE_ID]
    return {name: t.detach().cpu().numpy().copy() for name, t in module.state_dict().items()}


@pytest.mark.slow
@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize(("agent", "normalize"), [("ppo", True), ("dqn", False)])
def test_seeded_training_ends_with_the_same_weights(agent: str, normalize: bool) -> None:
    weights = []
    for extra in (None, PIECES):
        torch.manual_seed(0)
        algo = _config(agent, normalize, extra).build_algo()
        try:
            pieces = [type(p) for p in algo.env_runner._env_to_module.connectors]
            pieces += [type(p) for p in algo.env_runner._module_to_env.connectors]
            assert (BatchedObservations in pieces) is (BatchedActions in pieces) is (extra is None)
            torch.manual_seed(1)
            for _ in range(3):
                algo.train()
            weights.append(_weights(algo))
        finally:
            algo.stop()
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        np.testing.assert_array_equal(value, weights[1][name], err_msg=name)


def test_dqn_exploration_pass_draws_rllibs_actions() -> None:
    """lrtune's DQN module takes the greedy action as the argmax of its Q values instead of
    RLlib's distribution object: the same actions as RLlib's ε-greedy pass, draw for draw,
    from fully random (ε 1) through mixed to greedy (ε 0.05)."""
    from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import (
        DefaultDQNTorchRLModule,
    )

    runner = SingleAgentEnvRunner(config=_config("dqn", False))
    try:
        module = runner.module
        assert type(module)._forward_exploration is not DefaultDQNTorchRLModule._forward_exploration
        batch = {Columns.OBS: torch.randn(256, 4, generator=torch.Generator().manual_seed(1))}
        greedy = module._forward_inference(batch)[Columns.ACTIONS]
        mixed = []
        for t in (0, 100, 200, 300, 400, 4000):
            torch.manual_seed(t)
            ours = module._forward_exploration(batch, t=t)
            torch.manual_seed(t)
            theirs = DefaultDQNTorchRLModule._forward_exploration(module, batch, t=t)
            assert ours.keys() == theirs.keys() == {Columns.ACTIONS}
            assert ours[Columns.ACTIONS].dtype == theirs[Columns.ACTIONS].dtype
            assert torch.equal(ours[Columns.ACTIONS], theirs[Columns.ACTIONS])
            mixed.append(float((ours[Columns.ACTIONS] != greedy).float().mean()))
        assert mixed[0] > 0.3 and mixed[-1] < 0.1  # random at first, greedy at the end
    finally:
        runner.stop()
