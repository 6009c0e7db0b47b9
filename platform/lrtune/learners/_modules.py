"""What lrtune adds to RLlib's networks: SB3/CleanRL's orthogonal initialisation for PPO, the
observation filter the model section and the presets switch on, and the flattening that lets
RLlib's default networks read observations that are not a Box.

RLlib's ``DefaultModelConfig`` can set an initializer for the encoder's layers
(``fcnet_kernel_initializer``) but not for the policy and value heads, which keep torch's
default. SB3's ``ActorCriticPolicy`` (``ortho_init=True``) and CleanRL's ``ppo.py``
(``layer_init``) initialise every linear layer orthogonally with zero biases: gain √2 for the
hidden layers, 0.01 for the policy's output (a near-uniform first policy, whatever the
observation) and 1 for the value output. This module applies that after RLlib builds the
network, so every other part of RLlib's default PPO module (encoders shared or separate,
continuous and discrete heads, checkpoints) is unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium.spaces import Box
from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import DefaultDQNTorchRLModule
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.connectors.env_to_module.observation_preprocessor import (
    SingleAgentObservationPreprocessor,
)
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import (
    TorchCategorical,
    TorchDiagGaussian,
)
from ray.rllib.core.models.base import ACTOR, CRITIC, ENCODER_OUT
from ray.rllib.core.rl_module.rl_module import RLModule

from lrtune.learners._vector import BatchedObservations

HIDDEN_GAIN = math.sqrt(2.0)  # SB3 ActorCriticPolicy / CleanRL layer_init std=np.sqrt(2)
POLICY_OUTPUT_GAIN = 0.01  # SB3 action_net gain / CleanRL actor's last layer std=0.01
VALUE_OUTPUT_GAIN = 1.0  # SB3 value_net gain / CleanRL critic's last layer std=1.0


def _orthogonal(layers: list[torch.nn.Linear], output_gain: float) -> None:
    """Orthogonal weights and zero biases: √2 for all but the last layer, ``output_gain`` for it."""
    for index, layer in enumerate(layers):
        gain = output_gain if index == len(layers) - 1 else HIDDEN_GAIN
        torch.nn.init.orthogonal_(layer.weight, gain=gain)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)


def _linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


class ObservationsAsFloat32:
    """Forward pre-hook of a network's layers: an input tensor of integers or 16-bit floats
    becomes float32, times ``scale`` (1/255 for uint8 images). Only the first layer ever sees
    such input.

    Installed on the modules of agents whose ``module_casts_observations`` is set, so that the
    episodes and the replay buffer keep the env's observations as they are (a quarter of
    float32's bytes for uint8 images) and the network still gets float32. A small class, so
    the hook survives the deep copy that makes a target network and pickles with the module.
    """

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def __call__(self, layer: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """``args`` with a first tensor of another dtype than float32 (or float64, which RLlib
        casts itself) cast; None (unchanged) otherwise."""
        first = args[0] if args else None
        if not isinstance(first, torch.Tensor) or first.dtype in (torch.float32, torch.float64):
            return None
        cast = first.to(torch.float32)
        return (cast * self.scale if self.scale != 1.0 else cast, *args[1:])

    def __repr__(self) -> str:
        return f"ObservationsAsFloat32(scale={self.scale!r})"


def cast_observations_to_float32(module: torch.nn.Module, observation_space: Any) -> None:
    """Make ``module``'s layers (linear and convolutional) take ``observation_space``'s
    observations as float32 (`ObservationsAsFloat32`) where they are not (`needs_float32`).
    Called by lrtune's modules at the end of ``setup``."""
    if not needs_float32(observation_space):
        return
    hook = ObservationsAsFloat32(observation_scale(observation_space))
    for layer in module.modules():
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            layer.register_forward_pre_hook(hook)


class ModeSetOnce:
    """Train/eval mode set when it changes, not on every forward pass.

    RLlib's ``TorchRLModule`` calls ``self.train()`` before every training forward pass and
    ``self.eval()``, then ``self.train()`` again, around every exploration or inference pass;
    each call walks every submodule (about 40 on a two-layer PPO or DQN network), a few tenths of
    a millisecond per minibatch update and per vector env step on one CPU. Here the learner's
    module is put in train mode once, and an inference-only module (an env runner's copy, which
    never trains) is left in eval mode after its first pass. The modes every layer sees are
    RLlib's; only the repeated walks are gone. A module that is not inference-only keeps
    RLlib's flip around exploration and inference, as it may train next.
    """

    training: bool

    def forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's training pass, in train mode (set only if the module is not in it)."""
        if not self.training:
            self.train()  # type: ignore[attr-defined]
        return RLModule.forward_train(self, batch, **kwargs)  # type: ignore[arg-type]

    def forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's exploration pass, in eval mode."""
        if not self.inference_only:  # type: ignore[attr-defined]
            return super().forward_exploration(batch, **kwargs)  # type: ignore[misc,no-any-return]
        if self.training:
            self.eval()  # type: ignore[attr-defined]
        return self._forward_exploration(batch, **kwargs)  # type: ignore[attr-defined,no-any-return]

    def forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's inference pass, in eval mode."""
        if not self.inference_only:  # type: ignore[attr-defined]
            return super().forward_inference(batch, **kwargs)  # type: ignore[misc,no-any-return]
        if self.training:
            self.eval()  # type: ignore[attr-defined]
        return self._forward_inference(batch, **kwargs)  # type: ignore[attr-defined,no-any-return]


#: The key of the module's ``model_config`` that holds ``model.exploration``'s settings
#: (`lrtune.learners.ModelSettings.exploration_settings`): ``kind``, ``log_std_init``,
#: ``sde_sample_freq``.
EXPLORATION_KEY = "lrtune_exploration"
#: Added to gSDE's variance before its square root (SB3's ``StateDependentNoiseDistribution``
#: ``epsilon``).
GSDE_EPSILON = 1e-6


def gsde_log_std(latent: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """The per-action-dimension log-std of gSDE's Gaussian at the ``latent`` features
    (batch x latent_dim) for a ``log_std`` matrix (latent_dim x action_dim): the log of
    ``sqrt((latent ** 2) @ exp(log_std) ** 2 + GSDE_EPSILON)``, SB3's ``proba_distribution``
    (``full_std=True``, ``use_expln=False``). The latent features are detached
    (``learn_features=False``): only the mean's layers and ``log_std`` learn from it."""
    variance = (latent.detach() ** 2) @ torch.exp(log_std) ** 2
    return 0.5 * torch.log(variance + GSDE_EPSILON)


class LRTunePPOTorchRLModule(ModeSetOnce, DefaultPPOTorchRLModule):
    """RLlib's default PPO torch module, reading integer (or 16-bit float) observations as float32
    (`cast_observations_to_float32`), with ``model.exploration`` for a 1-D Box of actions.

    The exploration kinds (``model_config[EXPLORATION_KEY]``; none: RLlib's head, a mean and a
    log-std per state):

    * ``gaussian``: RLlib's ``free_log_std`` head (a mean per state, one learned log-std per
      action dimension), its log-std starting at ``log_std_init``: SB3's PPO.
    * ``gsde``: generalized state-dependent exploration (Raffin et al. 2021, "Smooth Exploration
      for Robotic Reinforcement Learning"; SB3's ``StateDependentNoiseDistribution`` with its
      PPO defaults ``full_std=True``, ``use_expln=False``, ``learn_features=False``). The head
      outputs the mean; ``gsde_log_std`` (latent_dim x action_dim, learned, starting at
      ``log_std_init``) scales a noise matrix drawn from N(0, exp(gsde_log_std)²), one per
      env row, held fixed until it is drawn again. An exploring action is ``mean(s) +
      latent(s) @ noise``, where ``latent`` is the input of the policy head's output layer
      (the policy network's last hidden layer, detached). Its distribution, given the state,
      is the diagonal Gaussian of variance ``latent² @ exp(gsde_log_std)² + GSDE_EPSILON``:
      the action distribution inputs are its mean and log-std (`gsde_log_std`), so RLlib's
      ``TorchDiagGaussian`` gives the loss, the KL and the entropy the same log-probabilities
      as SB3's. The exploring pass outputs the actions and their log-probabilities itself
      (RLlib's ``GetActions`` then samples nothing). New noise is drawn at the first
      exploring pass after `reset_noise` (lrtune's callbacks call it at the end of every
      ``EnvRunner.sample()``: the next rollout starts with new noise, as SB3's does), when
      the number of rows changes, and every ``sde_sample_freq`` exploring passes (vector env
      steps) when that is positive. The noise is a plain attribute, not a buffer: it is no
      part of the module's state, so the weights the learner sends the env runner never
      overwrite it. It is drawn from torch's default generator (seeded by RLlib), so a
      seeded run repeats. Inference (greedy evaluation) returns the mean.
    """

    _lrtune_exploration: dict[str, Any] | None = None
    _gsde_noise: torch.Tensor | None = None
    _gsde_steps: int = 0

    def setup(self) -> None:
        """Build the network as RLlib does, set up ``model.exploration``, then cast
        observations to float32 in its layers."""
        super().setup()
        config: Any = self.model_config  # a dict here (RLlib's model config, merged)
        exploration = config.get(EXPLORATION_KEY) if isinstance(config, dict) else None
        self._lrtune_exploration = dict(exploration) if exploration else None
        if self._lrtune_exploration is not None:
            self._setup_exploration(self._lrtune_exploration)
        cast_observations_to_float32(self, self.observation_space)

    def _setup_exploration(self, settings: dict[str, Any]) -> None:
        """The exploration kind's parameters (the head is RLlib's ``free_log_std`` one)."""
        space = self.action_space
        if not (isinstance(space, Box) and len(space.shape) == 1):
            raise ValueError(
                f"model.exploration {settings['kind']!r} needs one 1-D Box of actions, not "
                f"{space}; leave model.exploration out"
            )
        head: Any = self.pi
        init = float(settings["log_std_init"])
        if settings["kind"] == "gaussian":
            with torch.no_grad():
                head.log_std.fill_(init)
            return
        # gsde: the head's free log-std vector gives way to the latent x action matrix.
        del head.log_std
        output: Any = self._gsde_layers()[-1]
        shape = (int(output.in_features), int(output.out_features))
        self.gsde_log_std = torch.nn.Parameter(torch.full(shape, init))
        self._gsde_noise = None
        self._gsde_steps = 0

    @property
    def gsde(self) -> bool:
        """Whether the module explores with gSDE."""
        return self._lrtune_exploration is not None and self._lrtune_exploration["kind"] == "gsde"

    def _gsde_layers(self) -> list[torch.nn.Module]:
        """The policy head's layers, its output layer (a Linear) last."""
        layers = list(self.pi.net.mlp)  # type: ignore[union-attr]
        while layers and not isinstance(layers[-1], torch.nn.Linear):
            layers.pop()  # a "linear" output activation adds no module; anything else is none
        return layers

    def gsde_parts(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """gSDE's forward pass: ``latent`` (the output layer's input), ``mean`` and the action
        distribution inputs (``inputs``: mean and `gsde_log_std`), with the encoder's critic
        embeddings (``embeddings``) where the module has them."""
        encoder_outs = self.encoder(batch)
        layers = self._gsde_layers()
        latent = encoder_outs[ENCODER_OUT][ACTOR]
        for layer in layers[:-1]:
            latent = layer(latent)
        mean = layers[-1](latent)
        log_std = gsde_log_std(latent, self.gsde_log_std)
        parts = {"latent": latent, "mean": mean, "inputs": torch.cat([mean, log_std], dim=-1)}
        critic = encoder_outs[ENCODER_OUT].get(CRITIC)
        if critic is not None:
            parts["embeddings"] = critic
        return parts

    def reset_noise(self) -> None:
        """Draw new gSDE noise at the next exploring pass (SB3's ``reset_noise``)."""
        self._gsde_noise = None

    @property
    def gsde_noise(self) -> torch.Tensor | None:
        """The current gSDE noise (rows x latent_dim x action_dim), None until drawn."""
        return self._gsde_noise

    def _noise_for(self, rows: int) -> torch.Tensor:
        """The noise for ``rows`` env rows: the current one, or a new draw (SB3's
        ``sample_weights``: N(0, std²) per entry) where `reset_noise` asked for it, the row
        count changed or ``sde_sample_freq`` exploring passes have used it."""
        assert self._lrtune_exploration is not None
        freq = int(self._lrtune_exploration["sde_sample_freq"])
        noise = self._gsde_noise
        if noise is None or noise.shape[0] != rows or (freq > 0 and self._gsde_steps >= freq):
            std = torch.exp(self.gsde_log_std.detach())
            noise = torch.randn((rows, *std.shape), dtype=std.dtype, device=std.device) * std
            self._gsde_noise = noise
            self._gsde_steps = 0
        self._gsde_steps += 1
        return noise

    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's exploring pass; with gSDE, the actions ``mean + latent @ noise`` and their
        log-probabilities under the state-dependent Gaussian."""
        if not self.gsde:
            return super()._forward_exploration(batch, **kwargs)  # type: ignore[no-any-return]
        with torch.no_grad():
            parts = self.gsde_parts(batch)
            latent = parts["latent"]
            noise = self._noise_for(latent.shape[0])
            actions = parts["mean"] + torch.bmm(latent.unsqueeze(1), noise).squeeze(1)
            logp = TorchDiagGaussian.from_logits(parts["inputs"]).logp(actions)
        return {
            Columns.ACTION_DIST_INPUTS: parts["inputs"],
            Columns.ACTIONS: actions,
            Columns.ACTION_LOGP: logp,
        }

    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's greedy pass; with gSDE, the distribution inputs whose deterministic
        action is the mean."""
        if not self.gsde:
            return super()._forward_inference(batch, **kwargs)  # type: ignore[no-any-return]
        with torch.no_grad():
            return {Columns.ACTION_DIST_INPUTS: self.gsde_parts(batch)["inputs"]}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """RLlib's training pass; with gSDE, the state-dependent distribution inputs."""
        if not self.gsde:
            return super()._forward_train(batch, **kwargs)  # type: ignore[no-any-return]
        parts = self.gsde_parts(batch)
        out = {Columns.ACTION_DIST_INPUTS: parts["inputs"]}
        if "embeddings" in parts:
            out[Columns.EMBEDDINGS] = parts["embeddings"]
        return out


class OrthogonalPPOTorchRLModule(LRTunePPOTorchRLModule):
    """RLlib's default PPO torch module, initialised as SB3 / CleanRL initialise theirs."""

    def setup(self) -> None:
        """Build the network as RLlib does, then re-initialise its linear layers."""
        super().setup()
        with torch.no_grad():
            for layer in _linears(self.encoder):
                torch.nn.init.orthogonal_(layer.weight, gain=HIDDEN_GAIN)
                if layer.bias is not None:
                    torch.nn.init.zeros_(layer.bias)
            _orthogonal(_linears(self.pi), POLICY_OUTPUT_GAIN)
            # An inference-only module (the env runner's copy) has no value head.
            vf: Any = getattr(self, "vf", None)
            if vf is not None:
                _orthogonal(_linears(vf), VALUE_OUTPUT_GAIN)


class LRTuneDQNTorchRLModule(ModeSetOnce, DefaultDQNTorchRLModule):
    """RLlib's default DQN torch module, reading integer (or 16-bit float) observations as float32
    (`cast_observations_to_float32`): the replay buffer keeps uint8 images as uint8."""

    def setup(self) -> None:
        """Build the network as RLlib does, then cast observations to float32 in its layers."""
        super().setup()
        cast_observations_to_float32(self, self.observation_space)

    def _forward_exploration(  # type: ignore[override]
        self, batch: dict[str, Any], t: int
    ) -> dict[str, Any]:
        """RLlib's ε-greedy pass, without the distribution object it builds for the greedy
        actions: with RLlib's `TorchCategorical` (Discrete actions), ``from_logits(q)
        .to_deterministic().sample()`` is ``argmax(q)`` (and its construction a ``logsumexp``
        and two objects per vector step, about a tenth of DQN's sampling on CartPole). The
        same operations otherwise, in RLlib's order, so the same random draws: the same
        actions, bit for bit (``tests/learners/test_batched_pipelines.py``). Any other
        distribution, or a stateful module, takes RLlib's pass."""
        if self.get_exploration_action_dist_cls() is not TorchCategorical or self.is_stateful():
            return super()._forward_exploration(batch, t)  # type: ignore[no-any-return]
        q_values: torch.Tensor = self.compute_q_values(batch)[QF_PREDS]  # type: ignore[assignment]
        greedy = torch.argmax(q_values, dim=-1)
        self.epsilon_schedule.update(t)
        epsilon = self.epsilon_schedule.get_current_value()
        # RLlib's draw of a random action: uniform over the actions whose Q is not 0 or -inf.
        allowed = torch.nan_to_num(q_values.reshape(-1, q_values.size(-1)), neginf=0.0) != 0.0
        random_actions = torch.squeeze(torch.multinomial(allowed.float(), num_samples=1), dim=1)
        draws = torch.rand((q_values.shape[0],), device=random_actions.device)
        explore: torch.Tensor = draws < epsilon  # type: ignore[assignment]
        return {Columns.ACTIONS: torch.where(explore, random_actions, greedy)}


def mean_std_filter(env: Any = None, spaces: Any = None, device: Any = None) -> Any:
    """``env_to_module_connector`` that normalises observations with running mean and std.

    RLlib 2.60 calls it as ``fn(env, spaces, device)`` and adds the returned connector piece to
    the env-to-module pipeline; the filter's statistics are part of the env runner's state, so
    they are checkpointed with the algorithm. A module-level function, so configs pickle.
    """
    from ray.rllib.connectors.env_to_module import MeanStdFilter

    return MeanStdFilter()


class FloatObservations(SingleAgentObservationPreprocessor):  # type: ignore[misc]
    """Integer (or 16-bit float) Box observations as float32, uint8 images divided by 255
    (`observation_scale`): RLlib's networks take float input only ("Input type (unsigned
    char) and bias type (float) should be the same"). Written back into the episodes, so for
    agents whose modules cannot cast (`cast_observations_to_float32`) only."""

    def recompute_output_observation_space(
        self, input_observation_space: Any, input_action_space: Any
    ) -> Any:
        """float32 bounds and dtype for such a Box (scaled for an image); else unchanged."""
        space = input_observation_space
        self.scale = 1.0
        if not needs_float32(space):
            return space
        self.scale = observation_scale(space)
        return Box(
            (space.low * self.scale).astype(np.float32),
            (space.high * self.scale).astype(np.float32),
            space.shape,
            np.float32,
        )

    def preprocess(self, observation: Any, episode: Any) -> Any:
        """The observation as float32, scaled."""
        return np.asarray(observation, np.float32) * np.float32(self.scale)


def channels_first(shape: tuple[int, ...]) -> bool:
    """Whether a 3-D observation ``shape`` is channels-first (C, H, W): its first dimension is
    strictly the smallest, as gymnasium's ``FrameStackObservation`` over grayscale frames
    gives (4, 84, 84). SB3's rule (``is_image_space_channels_first``: the smallest dimension
    first), without its tie-break: (4, 4, 4) stays channels-last."""
    return len(shape) == 3 and shape[0] < min(shape[1], shape[2])


def channels_last_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` as RLlib's CNN reads it (H, W, C): a channels-first one moved, any other as
    it is."""
    return (shape[1], shape[2], shape[0]) if channels_first(shape) else tuple(shape)


class ChannelsLastObservations(SingleAgentObservationPreprocessor):  # type: ignore[misc]
    """A channels-first (C, H, W) image Box as (H, W, C), the layout RLlib's CNN reads (it
    permutes its input from (B, H, W, C)). Without it a (4, 84, 84) frame stack trains a CNN
    whose 84 "channels" are image rows and whose kernels slide over the 4 frames. The dtype
    stays (uint8 images keep their bytes); written back into the episodes."""

    def recompute_output_observation_space(
        self, input_observation_space: Any, input_action_space: Any
    ) -> Any:
        """The Box with its axes moved; any other space unchanged."""
        space = input_observation_space
        if not (isinstance(space, Box) and channels_first(tuple(space.shape))):
            self.moved = False
            return space
        self.moved = True
        dtype: Any = space.dtype  # the env's (uint8 stays uint8)
        return Box(
            np.moveaxis(space.low, 0, -1),
            np.moveaxis(space.high, 0, -1),
            channels_last_shape(tuple(space.shape)),
            dtype,
        )

    def preprocess(self, observation: Any, episode: Any) -> Any:
        """The observation with its channel axis last."""
        if not self.moved:
            return observation
        return np.ascontiguousarray(np.moveaxis(np.asarray(observation), 0, -1))


def observation_scale(space: Box) -> float:
    """1/255 for a uint8 image (SB3's rule: 3-D, bounds 0 and 255; SB3 divides by 255), else 1."""
    image = (
        space.dtype == np.uint8
        and len(space.shape) == 3
        and bool(np.all(space.low == 0))
        and bool(np.all(space.high == 255))
    )
    return 1.0 / 255.0 if image else 1.0


def needs_float32(space: Any) -> bool:
    """Whether ``space`` is a Box RLlib's float32 networks cannot read as it is: integers
    (uint8 images above all) or 16-bit floats ("mat1 and mat2 must have the same dtype, but
    got Half and Float"). RLlib casts float64 to float32 itself."""
    return isinstance(space, Box) and space.dtype not in (np.float32, np.float64)


@dataclass(frozen=True)
class ObservationConnectors:
    """``env_to_module_connector`` of every trial: flattening, then (when ``normalize``) the
    observation filter.

    RLlib's default networks take a 1-D Box (an MLP) or a 3-D one (a CNN); for any other
    observation space (Discrete, MultiDiscrete, MultiBinary, Tuple, Dict: gymnasium's toy-text
    tasks, for one; a 2-D or scalar Box) RLlib 2.60 stops with "No default encoder config for
    obs space". RLlib's ``FlattenObservations`` one-hot encodes the discrete parts and
    concatenates the rest into one vector, written back into the episodes, so training, replay
    and evaluation all see the flat form. A 1-D or 3-D Box passes untouched, but for a
    channels-first image (`channels_first`), whose axes `ChannelsLastObservations` moves to
    the (H, W, C) RLlib's CNN reads. RLlib's networks
    take float input only: when ``module_casts`` (the agent's module casts integer input
    itself, `cast_observations_to_float32`), a Box of integers (uint8 images, above all) or
    16-bit floats stays as
    it is in the episodes and the replay buffer; otherwise, or when ``normalize``, it is cast
    to float32 here (`FloatObservations`; images scaled to [0, 1]), and the episodes hold four
    times the bytes of uint8 images. ``normalize`` adds `mean_std_filter`'s ``MeanStdFilter``
    last. ``batched`` ends the list with `lrtune.learners._vector.BatchedObservations`, which
    stands in for RLlib's default pieces (the config then leaves them out). A frozen
    dataclass, so configs pickle.
    """

    normalize: bool = False
    module_casts: bool = False
    batched: bool = False

    def __call__(self, env: Any = None, spaces: Any = None, device: Any = None) -> list[Any]:
        """The connector pieces for ``env``'s (or ``spaces``') single observation space."""
        from ray.rllib.connectors.env_to_module import FlattenObservations
        from ray.rllib.env import INPUT_ENV_SINGLE_SPACES

        if env is not None:
            space = getattr(env, "single_observation_space", env.observation_space)
        elif spaces is not None and INPUT_ENV_SINGLE_SPACES in spaces:
            space = spaces[INPUT_ENV_SINGLE_SPACES][0]
        else:
            space = None
        pieces: list[Any] = []
        # RLlib's default encoders: an MLP for a 1-D Box, a CNN for a 3-D (image) Box.
        if space is not None and not (isinstance(space, Box) and len(space.shape) in (1, 3)):
            pieces.append(FlattenObservations())
        if isinstance(space, Box) and channels_first(tuple(space.shape)):
            pieces.append(ChannelsLastObservations())
        if needs_float32(space) and (self.normalize or not self.module_casts):
            pieces.append(FloatObservations())
        if self.normalize:
            pieces.append(mean_std_filter())
        if self.batched:
            pieces.append(BatchedObservations(device=device))
        return pieces
