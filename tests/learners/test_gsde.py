"""PPO's ``model.exploration`` (`LRTunePPOTorchRLModule`): gSDE's log-probabilities against the
closed form of its Gaussian, its noise held between draws and drawn again on schedule, greedy
actions at the mean, the noise kept through weight syncs, a real seeded PPO run that repeats,
its log-std matrix through a checkpoint, and the settings refused where they cannot run."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchDiagGaussian
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from lrtune.cli import main
from lrtune.learners import ModelSettings, build_algorithm_config
from lrtune.learners._modules import GSDE_EPSILON, LRTunePPOTorchRLModule
from lrtune.policies import PolicyError

ENV = "Pendulum-v1"  # a 1-D Box of one action in [-2, 2], 3 observations


def make_module(
    kind: str = "gsde",
    *,
    freq: int | None = None,
    log_std_init: float = -1.0,
    inference_only: bool = False,
    initializer: str = "orthogonal",
) -> Any:
    """lrtune's PPO module for Pendulum-v1 with ``kind`` exploration, as a trial builds it."""
    model = ModelSettings(
        hidden=(8, 8),
        initializer=initializer,
        exploration=kind,
        log_std_init=log_std_init,
        sde_sample_freq=freq,
    )
    config = build_algorithm_config("ppo", ENV, policy={"lr": 1e-3}, model=model, seed=0)
    env = gym.make(ENV)
    spec = RLModuleSpec(
        module_class=config.rl_module_spec.module_class,
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config=config.model_config,
        inference_only=inference_only,
    )
    module = spec.build()
    assert isinstance(module, LRTunePPOTorchRLModule)
    return module


def observations(rows: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {Columns.OBS: torch.randn(rows, 3, generator=g)}


def test_gsde_logp_entropy_and_actions_are_the_closed_form() -> None:
    torch.manual_seed(0)
    module = make_module()
    with torch.no_grad():  # a log-std matrix that is not constant, so every entry counts
        module.gsde_log_std.copy_(torch.randn_like(module.gsde_log_std) * 0.5 - 1.0)
    batch = observations()
    out = module.forward_exploration(batch)
    parts = module.gsde_parts(batch)
    latent, mean = parts["latent"].detach(), parts["mean"].detach()
    assert latent.shape == (5, 8) and mean.shape == (5, 1)
    assert module.gsde_log_std.shape == (8, 1)

    # By hand: variance latent² @ std² (+ SB3's epsilon), a diagonal Gaussian around the mean.
    std_matrix = torch.exp(module.gsde_log_std.detach())
    variance = (latent**2) @ (std_matrix**2) + GSDE_EPSILON
    std = torch.sqrt(variance)
    noise = module.gsde_noise
    assert noise is not None and noise.shape == (5, 8, 1)
    actions = mean + torch.stack([latent[i] @ noise[i] for i in range(5)])
    torch.testing.assert_close(out[Columns.ACTIONS], actions)
    a = out[Columns.ACTIONS]
    logp = (-((a - mean) ** 2) / (2 * variance) - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(
        -1
    )
    torch.testing.assert_close(out[Columns.ACTION_LOGP], logp)
    # What the learner sees: the training pass's inputs through RLlib's TorchDiagGaussian.
    train = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
    dist = TorchDiagGaussian.from_logits(train)
    torch.testing.assert_close(dist.logp(a).detach(), logp)
    entropy = (0.5 + 0.5 * math.log(2 * math.pi) + torch.log(std)).sum(-1)
    torch.testing.assert_close(dist.entropy().detach(), entropy)
    torch.testing.assert_close(out[Columns.ACTION_DIST_INPUTS], train.detach())


def test_gsde_std_trains_its_matrix_and_not_the_features() -> None:
    """SB3's ``learn_features=False``: the state-dependent std reaches the log-std matrix and
    not the layers that make the latent features; the mean reaches them."""
    module = make_module()
    inputs = module.forward_train(observations())[Columns.ACTION_DIST_INPUTS]
    inputs[:, 1].sum().backward()  # the log-std half
    assert module.gsde_log_std.grad is not None and module.gsde_log_std.grad.abs().sum() > 0
    encoder = [p for n, p in module.named_parameters() if n.startswith("encoder.actor")]
    assert encoder and all(p.grad is None or not p.grad.any() for p in encoder)
    module.zero_grad()
    module.forward_train(observations())[Columns.ACTION_DIST_INPUTS][:, 0].sum().backward()
    assert any(p.grad is not None and p.grad.any() for p in encoder)


def test_gsde_noise_is_held_until_reset_then_drawn_again() -> None:
    torch.manual_seed(1)
    module = make_module(inference_only=True)
    batch = observations()
    first = [module.forward_exploration(batch)[Columns.ACTIONS] for _ in range(4)]
    noise = module.gsde_noise
    for actions in first[1:]:
        assert torch.equal(actions, first[0])
    assert module.gsde_noise is noise
    module.reset_noise()
    after = [module.forward_exploration(batch)[Columns.ACTIONS] for _ in range(3)]
    assert not torch.equal(after[0], first[0])
    assert torch.equal(after[1], after[0]) and torch.equal(after[2], after[0])
    # Rows are env rows: each gets its own matrix (SB3's exploration_matrices).
    noise = module.gsde_noise
    assert noise is not None and not torch.equal(noise[0], noise[1])


@pytest.mark.parametrize("k", [1, 3])
def test_gsde_sample_freq_draws_every_k_exploring_passes(k: int) -> None:
    torch.manual_seed(2)
    module = make_module(freq=k, inference_only=True)
    batch = observations()
    actions = [module.forward_exploration(batch)[Columns.ACTIONS] for _ in range(3 * k + 1)]
    for step in range(1, len(actions)):
        same = torch.equal(actions[step], actions[step - 1])
        assert same == (step % k != 0), f"step {step} with sde_sample_freq {k}"


def test_gsde_inference_is_the_mean_and_deterministic() -> None:
    torch.manual_seed(3)
    module = make_module(inference_only=True)
    batch = observations()
    out = [module.forward_inference(batch) for _ in range(2)]
    assert set(out[0]) == {Columns.ACTION_DIST_INPUTS}
    assert torch.equal(out[0][Columns.ACTION_DIST_INPUTS], out[1][Columns.ACTION_DIST_INPUTS])
    greedy = TorchDiagGaussian.from_logits(out[0][Columns.ACTION_DIST_INPUTS]).to_deterministic()
    mean = module.gsde_parts(batch)["mean"].detach()
    torch.testing.assert_close(greedy.sample(), mean)
    explored = module.forward_exploration(batch)[Columns.ACTIONS]
    assert not torch.allclose(explored, mean)


def test_gsde_noise_survives_a_weight_sync_and_is_no_state() -> None:
    torch.manual_seed(4)
    learner = make_module()
    runner = make_module(inference_only=True)
    batch = observations()
    before = runner.forward_exploration(batch)[Columns.ACTIONS]
    noise = runner.gsde_noise
    assert noise is not None
    with torch.no_grad():
        learner.gsde_log_std.fill_(-0.25)
    state = learner.get_state(inference_only=True)
    assert "gsde_log_std" in state and not any("noise" in key for key in state)
    runner.set_state(state)
    assert runner.gsde_noise is noise  # the sync left the rollout's noise alone
    assert torch.equal(runner.gsde_log_std, learner.gsde_log_std)
    after = runner.forward_exploration(batch)[Columns.ACTIONS]
    # The same noise through the learner's weights: the actions moved with the weights only.
    parts = learner.gsde_parts(batch)
    expected = parts["mean"] + torch.bmm(parts["latent"].unsqueeze(1), noise).squeeze(1)
    torch.testing.assert_close(after, expected.detach())
    assert not torch.equal(after, before)


@pytest.mark.parametrize("initializer", ["orthogonal", "torch"])
def test_gaussian_exploration_starts_at_its_log_std(initializer: str) -> None:
    module = make_module("gaussian", log_std_init=-3.29, initializer=initializer)
    assert not hasattr(module, "gsde_log_std")
    inputs = module.forward_inference(observations())[Columns.ACTION_DIST_INPUTS]
    torch.testing.assert_close(inputs[:, 1], torch.full((5,), -3.29))


def test_exploration_refused_where_it_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gsde = ModelSettings(exploration="gsde")
    with pytest.raises(PolicyError, match=r"model\.exploration: gsde needs continuous actions"):
        build_algorithm_config("ppo", "CartPole-v1", policy={"lr": 1e-3}, model=gsde)
    with pytest.raises(PolicyError, match=r"model\.exploration: dqn has no exploration"):
        build_algorithm_config("dqn", "CartPole-v1", policy={"lr": 1e-3}, model=gsde)
    with pytest.raises(ValueError, match=r"model\.log_std_init: needs model\.exploration"):
        ModelSettings(log_std_init=-2.0)
    with pytest.raises(ValueError, match=r"model\.sde_sample_freq: needs model\.exploration"):
        ModelSettings(exploration="gaussian", sde_sample_freq=4)
    # A PPO job on a Discrete env passes validation and exits 2 where the run starts, before
    # Ray or any record.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.yaml").write_text(
        "name: gsde-cartpole\nagent: ppo\nenv: {id: CartPole-v1}\n"
        "budget: {trial_env_steps: 2000}\npolicy: {lr: 1e-3}\n"
        "model: {exploration: gsde, log_std_init: -2}\n"
    )
    assert main(["validate", "job.yaml"]) == 0
    capsys.readouterr()
    assert main(["run", "job.yaml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lrtune: error: model.exploration: gsde needs continuous actions")
    assert "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]


@pytest.fixture(scope="module")
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def train_tiny(seed: int, iterations: int = 2) -> tuple[dict[str, Any], Any]:
    """Two PPO iterations of 64 env steps (2 envs) on Pendulum-v1 with gSDE; the learner's
    weights and one more sample's episodes."""
    tiny = {
        "train_batch_size_per_learner": 64,
        "minibatch_size": 32,
        "num_epochs": 2,
        "num_envs_per_env_runner": 2,
    }
    model = ModelSettings(exploration="gsde", log_std_init=-2.0, sde_sample_freq=4)
    config = build_algorithm_config(
        "ppo", ENV, policy={"lr": 1e-3}, hyperparams=tiny, model=model, budget=1000, seed=seed
    )
    algo = config.build_algo()
    try:
        for _ in range(iterations):
            result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 64 * iterations
        assert math.isfinite(result["learners"]["default_policy"]["entropy"])
        runner = algo.env_runner
        assert runner.module.gsde
        assert runner.module.gsde_noise is None  # reset at the end of every sample()
        episodes = runner.sample(num_timesteps=8, explore=True)
        assert runner.module.gsde_noise is None
        weights = {
            k: v.detach().clone()
            for k, v in algo.learner_group._learner.module["default_policy"].state_dict().items()
        }
        return weights, episodes
    finally:
        algo.stop()


@pytest.mark.usefixtures("_ray")
def test_tiny_gsde_ppo_trains_and_a_seed_repeats() -> None:
    first, episodes = train_tiny(seed=0)
    again, _ = train_tiny(seed=0)
    other, _ = train_tiny(seed=1)
    assert first.keys() == again.keys() and "gsde_log_std" in first
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert not all(torch.equal(first[key], other[key]) for key in first)
    assert not torch.equal(first["gsde_log_std"], torch.full_like(first["gsde_log_std"], -2.0))
    # The log-probabilities the episodes keep are the state-dependent Gaussian's at the
    # actions the module chose (RLlib's GetActions sampled nothing itself).
    checked = 0
    for episode in episodes:
        if len(episode) == 0:
            continue
        inputs = torch.as_tensor(
            np.asarray(episode.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS))
        )
        logp = np.asarray(episode.get_extra_model_outputs(Columns.ACTION_LOGP))
        actions = torch.as_tensor(np.asarray(episode.get_actions()))
        expected = TorchDiagGaussian.from_logits(inputs).logp(actions).numpy()
        np.testing.assert_allclose(logp, expected, rtol=1e-5, atol=1e-5)
        checked += len(logp)
    assert checked >= 8


@pytest.mark.usefixtures("_ray")
def test_gsde_checkpoint_restores_the_log_std_matrix(tmp_path: Path) -> None:
    model = ModelSettings(exploration="gsde", log_std_init=-2.0)
    tiny = {"train_batch_size_per_learner": 32, "minibatch_size": 32, "num_epochs": 1}

    def build(seed: int) -> Any:
        config = build_algorithm_config(
            "ppo", ENV, policy={"lr": 1e-2}, hyperparams=tiny, model=model, budget=100, seed=seed
        )
        return config.build_algo()

    algo = build(0)
    try:
        algo.train()
        saved = algo.learner_group._learner.module["default_policy"].gsde_log_std.detach().clone()
        assert not torch.equal(saved, torch.full_like(saved, -2.0))
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    again = build(1)
    try:
        again.restore_from_path(tmp_path / "ckpt")
        learner = again.learner_group._learner.module["default_policy"]
        assert torch.equal(learner.gsde_log_std, saved)
        assert torch.equal(again.env_runner.module.gsde_log_std, saved)
        again.train()  # and it trains on from there
    finally:
        again.stop()
