"""Agent presets: hyper-parameters around the LR policy that make the agent train well.

A search over learning-rate policies is only as good as the agent around it: with RLlib's own
PPO defaults (30 epochs, λ 1.0, a value loss clipped at 10 on a value head that shares the
policy's layers), LR-only searches on classic control can fail outright. The presets are
applied under every job's ``hyperparams`` (a job, or a space's ``hyperparams``, overrides any
of them) and come in three layers, later ones winning:

1. the agent's defaults (``PPO_DEFAULTS``, ``DQN_DEFAULTS``), for every environment;
2. the action-space family: environments with a continuous (``gymnasium.spaces.Box``) action
   space get ``PPO_CONTINUOUS`` (observation normalisation, as rl-zoo3 normalises its
   continuous-control tasks). The family is read from ``gymnasium.make(env).action_space``
   (cached); an id gymnasium cannot build (say, a Tune-registered name) gets layer 1 only;
3. per-environment entries (``PPO_BY_ENV``, ``DQN_BY_ENV``), looked up by the gymnasium id
   without its module prefix (``lrtune.envs:lrtune/RecSys-v0`` -> ``lrtune/RecSys-v0``).

Sources, cited next to each value: rl-zoo3's ``hyperparams/ppo.yml`` and ``dqn.yml`` (tuned
for CartPole-v1, Acrobot-v1, Pendulum-v1), CleanRL's ``ppo.py`` / ``dqn.py`` defaults,
RLlib's tuned examples (``rllib/tuned_examples/ppo/cartpole_ppo.py``, ``.../dqn/cartpole_dqn.py``)
and measurements on this project's 2-CPU machine (RLlib 2.60 new API stack, torch CPU, one CPU
per trial, sampling in the trial's process): ``benchmarks/presets.py`` reruns them on any task
and its docstring lists what was measured.

Two RLlib facts shape the PPO values:

* lrtune's model config is RLlib's ``DefaultModelConfig``, whose ``vf_share_layers`` is True:
  the value head shares the policy's hidden layers (RLlib's PPO default, with a plain dict
  model config, is separate layers). A large value loss then swamps the policy's gradient, so
  the value loss is down-weighted (``vf_loss_coeff`` 0.01, as RLlib's tuned CartPole PPO does
  with shared layers) instead of clipped: RLlib's ``vf_clip_param`` clamps the *squared* value
  error per sample, so the default 10 stops the value head learning returns above ~3
  (measured: CartPole-v1 stayed ≤ 270 at 100k steps with it, reached 500 without it).
* RLlib's PPO adds an adaptive KL penalty (``kl_coeff`` 0.2). rl-zoo3 and CleanRL use none,
  and lrtune's ``kl_adaptive`` feedback rule already steers on the KL, so ``kl_coeff`` is 0.0
  while ``use_kl_loss`` stays on: the learner still measures and reports the KL.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

# ------------------------------------------------------------------------------------- PPO

PPO_DEFAULTS: dict[str, Any] = {
    # 16 envs vectorised in the trial's process: rl-zoo3 Acrobot-v1 (n_envs 16); measured here
    # ~4-6k env steps/s with one CPU on CartPole-v1.
    "num_envs_per_env_runner": 16,
    # 16 envs x 128 steps. rl-zoo3 CartPole-v1 uses 8 x 32 = 256 and 20 epochs; larger batches
    # cost fewer RLlib iterations (each one a Tune result and checkpoint).
    "train_batch_size_per_learner": 2048,
    "minibatch_size": 256,  # rl-zoo3 CartPole-v1 batch_size 256
    "num_epochs": 10,  # SB3/rl-zoo3 default n_epochs 10 (RLlib's default 30 overfits a batch)
    "lambda_": 0.95,  # SB3 default gae_lambda, CleanRL gae_lambda (RLlib's default is 1.0)
    "gamma": 0.99,
    "entropy_coeff": 0.0,  # rl-zoo3 classic control ent_coef 0.0
    "clip_param": 0.2,  # SB3 clip_range / CleanRL clip_coef (RLlib's default 0.3)
    "vf_loss_coeff": 0.01,  # shared value layers: RLlib tuned cartpole_ppo.py (see above)
    "vf_clip_param": 1.0e4,  # effectively off, as SB3's clip_range_vf=None (see above)
    "use_kl_loss": True,  # keep measuring the KL (lrtune reports it; kl_adaptive reads it)...
    "kl_coeff": 0.0,  # ...without RLlib's KL penalty (rl-zoo3, CleanRL)
}


def mean_std_filter(env: Any = None, spaces: Any = None, device: Any = None) -> Any:
    """``env_to_module_connector`` that normalises observations with running mean and std.

    RLlib 2.60 calls it as ``fn(env, spaces, device)`` and adds the returned connector piece to
    the env-to-module pipeline; the filter's statistics are part of the env runner's state, so
    they are checkpointed with the algorithm. A module-level function, so configs pickle.
    """
    from ray.rllib.connectors.env_to_module import MeanStdFilter

    return MeanStdFilter()


PPO_CONTINUOUS: dict[str, Any] = {
    # rl-zoo3 runs its continuous-control tasks with `normalize: true` (VecNormalize); RLlib's
    # tuned Pendulum PPO uses the same MeanStdFilter connector.
    "env_to_module_connector": mean_std_filter,
}

PPO_BY_ENV: dict[str, dict[str, Any]] = {
    # rl-zoo3 "Tuned" CartPole-v1: gamma 0.98, gae_lambda 0.8. Measured here: 500 from ~40-65k
    # env steps (lr 1e-3 linear decay), against ≤ 270 with gamma 0.99 / lambda 0.94.
    "CartPole-v1": {"gamma": 0.98, "lambda_": 0.8},
    # rl-zoo3 Acrobot-v1: normalize true, n_envs 16, n_steps 256, gae_lambda 0.94, n_epochs 4.
    "Acrobot-v1": {
        "env_to_module_connector": mean_std_filter,
        "train_batch_size_per_learner": 4096,
        "lambda_": 0.94,
        "num_epochs": 4,
    },
    # rl-zoo3 "Tuned" Pendulum-v1: n_envs 4 x n_steps 1024 = 4096, batch_size 64 (SB3 default),
    # gamma 0.9, gae_lambda 0.95, n_epochs 10, vf_coef 0.5 (SB3 default), lr 1e-3 (and gSDE,
    # which RLlib lacks); observations normalised (layer 2). Measured here at lr 1e-3: -292
    # after 61k env steps, against -630 with minibatch 64 / vf 0.01 and -569 (80k) with
    # minibatch 256 / vf 0.01: the critic needs the weight on this task.
    "Pendulum-v1": {
        "train_batch_size_per_learner": 4096,
        "minibatch_size": 64,
        "gamma": 0.9,
        "num_epochs": 10,
        "vf_loss_coeff": 0.5,
    },
}

# ------------------------------------------------------------------------------------- DQN

DQN_DEFAULTS: dict[str, Any] = {
    # Sampling: 4 envs x 4 steps = 16 env steps per training step. RLlib's default (1 env,
    # fragment 1, one update per env step) measured ~20 env steps/s on a loaded CPU here.
    "num_envs_per_env_runner": 4,
    "rollout_fragment_length": 4,  # >= n_step (RLlib requires it)
    "train_batch_size_per_learner": 128,  # CleanRL dqn.py batch_size 128
    # Replayed / sampled steps: 16 -> 2 updates of 128 per 16 env steps. CleanRL: 128 per 10
    # steps (12.8); rl-zoo3 CartPole-v1: 4 x 512 per 16 (128). Replay sampling dominates the
    # cost on CPU (per-item episode slicing in RLlib), so the cost grows with this ratio.
    "training_intensity": 16,
    "double_q": True,  # Double DQN (van Hasselt et al.; RLlib's tuned cartpole_dqn.py)
    "dueling": True,  # dueling heads (Wang et al.; RLlib's tuned cartpole_dqn.py)
    "n_step": 3,  # n-step returns (Rainbow's 3; RLlib's tuned cartpole_dqn.py samples 2..5)
    # Hard target update every 2000 env steps (= 250 updates here). CleanRL: every 500 env
    # steps (50 updates); rl-zoo3 CartPole-v1: 5000 env steps (1250 updates).
    "target_network_update_freq": 2000,
    # Uniform replay as rl-zoo3 and CleanRL (RLlib's prioritized episode buffer costs more per
    # sample); capacity between CleanRL's 10k and rl-zoo3's 100k.
    "replay_buffer_config": {"type": "EpisodeReplayBuffer", "capacity": 50_000},
    # Epsilon 1.0 -> 0.05 over the first 10k env steps (RLlib default; rl-zoo3 CartPole-v1:
    # 0.06 x 2e5 = 12k steps down to 0.11; CleanRL: half the run down to 0.05).
    "epsilon": [(0, 1.0), (10_000, 0.05)],
    # Must not exceed one iteration's samples (DQN's min_sample_timesteps_per_iteration,
    # 1000): later starts leave the first iterations without an update.
    "num_steps_sampled_before_learning_starts": 1_000,
    "gamma": 0.99,
}

DQN_BY_ENV: dict[str, dict[str, Any]] = {}

# --------------------------------------------------------------------------------- lookup

_AGENT_PRESETS = {
    "ppo": (PPO_DEFAULTS, PPO_CONTINUOUS, PPO_BY_ENV),
    "dqn": (DQN_DEFAULTS, {}, DQN_BY_ENV),
}


def env_name(env: str) -> str:
    """The gymnasium id without a module prefix (``pkg.mod:Name-v0`` -> ``Name-v0``)."""
    return env.partition(":")[2] if ":" in env else env


@functools.lru_cache(maxsize=64)
def has_continuous_actions(env: str) -> bool | None:
    """Whether ``env``'s action space is a ``gymnasium.spaces.Box`` (None: cannot tell).

    Builds the environment once (cached) with ``gymnasium.make``; ``lrtune/...`` ids import
    `lrtune.envs`, which registers them."""
    import gymnasium
    from gymnasium import spaces

    if env_name(env).startswith("lrtune/"):
        import lrtune.envs  # noqa: F401  (registers the ids)
    try:
        made = gymnasium.make(env)
    except Exception:  # an id only RLlib/Tune knows, or one that fails to build here
        return None
    try:
        return isinstance(made.action_space, spaces.Box)
    finally:
        made.close()


def preset_hyperparams(agent: str, env: str | None = None) -> dict[str, Any]:
    """The preset hyper-parameters of ``agent`` on ``env`` (a fresh copy; jobs override any).

    Layers, later ones winning: the agent's defaults, the continuous-action family (when
    ``env``'s action space is a Box), the entry of ``env``'s id."""
    defaults, continuous, by_env = _AGENT_PRESETS[agent]
    out = dict(defaults)
    if env is not None:
        if continuous and has_continuous_actions(env):
            out.update(continuous)
        out.update(by_env.get(env_name(env), {}))
    # Deep copy the plain data (the connector function is shared, as functions are).
    return {k: v if callable(v) else copy.deepcopy(v) for k, v in out.items()}
