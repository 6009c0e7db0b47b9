"""The built-in agents: RLlib's PPO, DQN and SAC, each with lrtune's learner.

Each entry's sources and measurements are in its presets (`lrtune.learners._presets`) and its
learner (`lrtune.learners._learner`); this module only declares them.
"""

from __future__ import annotations

from typing import Any

from lrtune.agents._base import ACTION_KINDS, MODEL_ROLE, AgentPlugin
from lrtune.registry import NoParams, agents


@agents.register("ppo", params=NoParams)
class PPO(AgentPlugin):
    """Proximal Policy Optimization (RLlib's PPO): discrete, continuous, multi-discrete and
    composite (Tuple or Dict) actions."""

    config_class_path = "ray.rllib.algorithms.ppo:PPOConfig"
    learner_class_path = "lrtune.learners._learner:LRTunePPOLearner"
    presets_path = "lrtune.learners._presets:PPO_PRESETS"
    baseline_lr = 3e-4  # SB3's PPO default
    roles = {MODEL_ROLE: ("*",)}
    # RLlib's catalog has a distribution for each (MultiBinary has none).
    action_spaces = frozenset(ACTION_KINDS)
    loss_metrics = ("total_loss",)
    # SB3's ActorCriticPolicy and CleanRL's classic-control PPO: 64x64 tanh, orthogonal.
    hidden = (64, 64)
    activation = "tanh"
    initializers = ("orthogonal", "torch")
    separate_value_network = True
    scales_rewards = True
    # model.exploration (lrtune.learners._modules): SB3's state-independent log-std, gSDE.
    explorations = ("gaussian", "gsde")
    reports_kl = True
    iteration_batch_key = "train_batch_size_per_learner"
    agent_settings = frozenset({"num_minibatches"})

    module_casts_observations = True

    def configure(self, config: Any, *, initializer: str) -> Any:
        """lrtune's PPO module (integer observations cast inside it), initialised as SB3/CleanRL
        do when asked (the default)."""
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec

        from lrtune.learners._modules import LRTunePPOTorchRLModule, OrthogonalPPOTorchRLModule

        module_class = (
            OrthogonalPPOTorchRLModule if initializer == "orthogonal" else LRTunePPOTorchRLModule
        )
        return config.rl_module(rl_module_spec=RLModuleSpec(module_class=module_class))


@agents.register("dqn", params=NoParams)
class DQN(AgentPlugin):
    """Deep Q-Network (RLlib's DQN, double and dueling by the presets): discrete actions."""

    config_class_path = "ray.rllib.algorithms.dqn:DQNConfig"
    learner_class_path = "lrtune.learners._learner:LRTuneDQNLearner"
    presets_path = "lrtune.learners._presets:DQN_PRESETS"
    # The presets alone at constant Adam 1e-4 / 3e-4 / 1e-3 / 3e-3, mean of 3 seeds each, greedy
    # evaluation (2026-12-05, benchmarks/suite.py docstring): CartPole-v1 317 / 215 / 487 / 500,
    # Acrobot-v1 -90 / -110 / -229 / -226 (50k env steps), MountainCar-v0 -200 / -145 / -135 /
    # -200 (120k); normalised to each task's target and averaged, 0.56 / 0.70 / 0.84 / 0.58.
    # 1e-4 (SB3's DQN default, written for Atari) never left -200 on MountainCar.
    baseline_lr = 1e-3
    roles = {MODEL_ROLE: ("*",)}
    action_spaces = frozenset({"discrete"})
    loss_metrics = ("total_loss",)
    # DQN on Acrobot-v1 (lr 1e-3, 50k env steps, presets alone, benchmarks/presets.py): -96
    # with 256x256 relu (rl-zoo3's tuned classic-control DQNs; SB3's QNetwork activation)
    # against -198 with 64x64 tanh.
    hidden = (256, 256)
    activation = "relu"
    initializers = ("torch",)
    agent_settings = frozenset(
        {"exploration_fraction", "exploration_final_eps", "buffer_size", "updates_per_env_step"}
    )
    module_casts_observations = True

    def configure(self, config: Any, *, initializer: str) -> Any:
        """lrtune's DQN module (integer observations cast inside it, so replay keeps uint8)
        and lrtune's DQN algorithm (flat-array replay when the buffer type asks for it)."""
        from ray.rllib.core.rl_module.rl_module import RLModuleSpec

        from lrtune.learners._modules import LRTuneDQNTorchRLModule
        from lrtune.learners._replay import LRTuneDQN

        config.algo_class = LRTuneDQN
        return config.rl_module(rl_module_spec=RLModuleSpec(module_class=LRTuneDQNTorchRLModule))


@agents.register("sac", params=NoParams)
class SAC(AgentPlugin):
    """Soft Actor-Critic (RLlib's SAC, twin Q): continuous actions; three optimizer roles."""

    config_class_path = "lrtune.learners._replay:LRTuneSACConfig"
    learner_class_path = "lrtune.learners._learner:LRTuneSACLearner"
    presets_path = "lrtune.learners._presets:SAC_PRESETS"
    baseline_lr = 3e-4  # SB3's SAC default (one rate for actor, critics and temperature)
    # RLlib's SACTorchLearner registers these optimizer names per module.
    roles = {"actor": ("policy",), "critic": ("qf", "qf_twin"), "alpha": ("alpha",)}
    action_spaces = frozenset({"continuous"})
    squashes_actions = True
    loss_metrics = ("qf_loss", "policy_loss", "alpha_loss")
    owned_hyperparams = {
        "actor_lr": "the actor's rate is the LR policy's (role `actor` in policy.roles)",
        "critic_lr": "the critics' rate is the LR policy's (role `critic` in policy.roles)",
        "alpha_lr": "the temperature's rate is the LR policy's (role `alpha` in policy.roles)",
    }
    # SB3's SAC and rl-zoo3's Pendulum-v1 SAC: 256x256 relu.
    hidden = (256, 256)
    activation = "relu"
    initializers = ("torch",)
    # The replay capacity (search_spaces/sac_agent.yaml; rl-zoo3's SAC sampler searches it) and
    # the updates per env step (rl-zoo3's train_freq with gradient_steps).
    agent_settings = frozenset({"buffer_size", "updates_per_env_step"})
