"""The fast sampling path for environments that are vectorised natively (a ``VectorEnv``).

RLlib 2.60's env runner builds its envs with ``gymnasium.make_vec(id, num_envs,
vectorization_mode=config.gym_env_vectorize_mode)``; its default ``"sync"`` wraps ``num_envs``
separate env objects in a Python loop even when the id registers a ``vector_entry_point`` that
steps all of them in one call (``lrtune/RecSys-v0``: 182k env steps/s single, 6.9M batched).
`vector_entry_point` tells whether an id has one; `build_algorithm_config` then selects
``"vector_entry_point"``.

`batched_module_to_env` replaces RLlib's default module-to-env connector pipeline for
``Discrete``-action envs, natively vectorised or not (``build_algorithm_config``; since
2026-12-05 for every such env: PPO on CartPole-v1 with 16 "sync" envs samples in 0.141 s
instead of 0.176 s per 2,048 env steps, and a seeded run reaches the same returns). The
default splits every batched model output into one item per
episode (``UnBatchToIndividualItems``), deep-copies the actions and passes each one through
``NormalizeAndClipActions`` (a no-op for ``Discrete`` spaces), then re-stacks them by env index
(``ListifyDataForVectorEnv``). On ``lrtune/RecSys-v0`` with 256 envs that was about a third of
the env runner's time (sampling alone: 8,325 against 12,933 env steps/s under load) and PPO
trained at 6,371 against 8,095 env steps/s without it (``benchmarks/recsys_train.py``,
2026-12-02). The batch that
reaches the module-to-env pipeline already has one row per env, in env order (the env-to-module
pipeline adds one observation per ongoing episode, and the single-agent env runner keeps one
episode per env index), so keeping the outputs batched hands the env runner the same values:
it indexes each column by env index either way. Since 2026-12-07 the pipeline is one piece,
`BatchedActions`, which also draws PPO's categorical actions without building torch
distribution objects on every vector step.

`BatchedObservations` does the same on the env-to-module side: in place of RLlib's five
default pieces (``AddObservationsFromEpisodesToBatch``, ``AddTimeDimToBatchAndZeroPad``,
``AddStatesFromEpisodesToBatch``, ``BatchIndividualItems``, ``NumpyToTensor``), each timed by
the pipeline on every vector step, one piece stacks the episodes' last observations and makes
them a tensor. `build_algorithm_config` gives it to single-agent, memoryless modules whose
env-to-module pipeline is lrtune's own (`ObservationConnectors`). The two together, CartPole-v1
with ``benchmarks/throughput.py``'s settings (CPU time, one process, both paths alternating,
2026-12-07): PPO 121 -> 99 ms per 2,048-step ``sample()``, DQN 3.4 -> 2.9 ms per 16-step one.

`ActionsIntoBounds` is the module-to-env piece for action spaces with a Box that has an
infinite bound (see its docstring).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.module_to_env import GetActions
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.utils.numpy import convert_to_numpy
from ray.rllib.utils.spaces import space_utils
from ray.rllib.utils.spaces.space_utils import (
    BatchedNdArray,
    clip_action,
    get_base_struct_from_space,
    unsquash_action,
)
from ray.rllib.utils.torch_utils import convert_to_torch_tensor

from lrtune._env_ids import register_lrtune_envs

VECTOR_ENTRY_POINT = "vector_entry_point"

__all__ = [
    "VECTOR_ENTRY_POINT",
    "ActionsIntoBounds",
    "BatchedActions",
    "BatchedObservations",
    "batched_module_to_env",
    "discrete_actions",
    "vector_entry_point",
]


def _spec(env: str) -> Any:
    """gymnasium's spec of ``env`` (``module:Id`` imports the module), or None."""
    register_lrtune_envs(env)
    try:
        return gym.spec(env)
    except Exception:  # not a gymnasium id: a Tune-registered name, a typo RLlib will report
        return None


@functools.lru_cache(maxsize=64)
def vector_entry_point(env: str) -> bool | None:
    """Whether gymnasium's registry gives ``env`` a ``vector_entry_point`` (a native VectorEnv).

    None: gymnasium does not know the id (a Tune-registered name, for which RLlib registers a
    vector entry point of its own). An id with ``additional_wrappers`` in its spec does not
    count: gymnasium refuses them in ``"vector_entry_point"`` mode."""
    spec = _spec(env)
    if spec is None:
        return None
    return spec.vector_entry_point is not None and not spec.additional_wrappers


@functools.lru_cache(maxsize=64)
def discrete_actions(env: str) -> bool:
    """Whether ``env``'s vector env has a ``Discrete`` single action space (built once, cached).

    False when the env cannot be built here."""
    try:
        venv = gym.make_vec(env, num_envs=1, vectorization_mode=VECTOR_ENTRY_POINT)
    except Exception:
        return False
    try:
        return isinstance(venv.single_action_space, gym.spaces.Discrete)
    finally:
        venv.close()


def _to_numpy(value: Any) -> Any:
    """RLlib's ``convert_to_numpy`` of one batch column (float64 to float32, int64 to int32),
    with a plain tensor converted without ``tree``'s walk."""
    if not isinstance(value, torch.Tensor):
        return convert_to_numpy(value)
    out = value.cpu().item() if len(value.size()) == 0 else value.detach().cpu().numpy()
    if isinstance(out, np.ndarray):
        if np.issubdtype(out.dtype, np.floating):
            out = out.astype(np.float32)
        elif np.issubdtype(out.dtype, int):
            out = out.astype(np.int32)
    return out


def _stateful_module_error(side: str) -> ValueError:
    """The refusal of either batched piece for a stateful module (``side``: ``env_to_module``
    or ``module_to_env``), naming the setting that brings RLlib's pipeline back."""
    return ValueError(
        f"lrtune's batched {side.replace('_', '-')} pipeline does not support stateful RL "
        f"modules; set hyperparams add_default_connectors_to_{side}_pipeline: "
        "true to use RLlib's default pipeline."
    )


class BatchedActions(ConnectorV2):
    """The module-to-env pipeline of `batched_module_to_env` in one piece: RLlib's
    ``GetActions``, then ``TensorToNumpy``. A stateful module (an LSTM) returns a time rank and
    state outputs that RLlib's default pipeline strips per item; this piece would pass them
    on, so it stops with a message instead.

    For the exploring forward pass of a module whose exploration distribution is RLlib's
    ``TorchCategorical`` (PPO's for a ``Discrete`` action space), it draws the actions and
    their log-probabilities with the tensor operations torch's ``Categorical`` runs for
    ``GetActions`` (RLlib builds it with ``validate_args=False``): logits normalised by their
    ``logsumexp``, ``softmax``, one ``multinomial`` draw per row, ``gather`` of the normalised
    logits; the same values and the same draws from torch's random stream, without building
    two distribution objects on every vector step. Any other case goes through RLlib's
    ``GetActions`` as it is."""

    def __init__(
        self,
        input_observation_space: gym.Space | None = None,
        input_action_space: gym.Space | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self._get_actions = GetActions()

    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: list[Any],
        explore: bool | None = None,
        shared_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``batch`` with actions (and their log-probabilities) added, as numpy."""
        if Columns.STATE_OUT in batch:
            raise _stateful_module_error("module_to_env")
        logits = batch.get(Columns.ACTION_DIST_INPUTS)
        if (
            explore
            and logits is not None
            and Columns.ACTIONS not in batch
            and Columns.ACTION_LOGP not in batch
            and rl_module.get_exploration_action_dist_cls() is TorchCategorical
        ):
            # torch's Categorical(logits=...): __init__, then sample(), then log_prob().
            normalised = logits - logits.logsumexp(dim=-1, keepdim=True)
            probs = torch.nn.functional.softmax(normalised, dim=-1)
            draws = torch.multinomial(probs.reshape(-1, probs.size(-1)), 1, True).T
            actions = draws.reshape(normalised.shape[:-1])
            batch[Columns.ACTIONS] = actions
            batch[Columns.ACTION_LOGP] = normalised.gather(
                -1, actions.long().unsqueeze(-1)
            ).squeeze(-1)
        else:
            batch = self._get_actions(
                rl_module=rl_module,
                batch=batch,
                episodes=episodes,
                explore=explore,
                shared_data=shared_data,
                **kwargs,
            )
        return {key: _to_numpy(value) for key, value in batch.items()}


def batched_module_to_env(env: Any = None, spaces: Any = None) -> list[ConnectorV2]:
    """Module-to-env pieces that keep the model outputs batched (discrete actions only).

    For ``config.env_runners(module_to_env_connector=...)`` with
    ``add_default_connectors_to_module_to_env_pipeline=False``: sample actions from the
    distribution inputs and convert to numpy (`BatchedActions`), and stop there; the env
    runner indexes each ``(num_envs, ...)`` column by env index."""
    return [BatchedActions()]


class BatchedObservations(ConnectorV2):
    """Env-to-module piece in place of RLlib's default ones (``config.env_runners(
    add_default_connectors_to_env_to_module_pipeline=False)``), for a single-agent, memoryless
    module: the batch RLlib's defaults build, in one piece.

    RLlib's defaults add each episode's last observation to the batch one item at a time
    (``AddObservationsFromEpisodesToBatch``), let two pieces find that the module keeps no
    state, stack the items (``BatchIndividualItems``, which also notes each row's episode id
    in ``shared_data["memorized_map_structure"]`` for the module-to-env side) and convert them
    to tensors (``NumpyToTensor``). This piece calls the same functions on the same values
    (``get_observations(-1)``, RLlib's ``batch``, ``convert_to_torch_tensor``) once per vector
    step, so the module gets the same tensor and the episodes are left as they were. It
    refuses what RLlib's defaults would add and it would not: a column that a piece before it
    put into the batch, a stateful module (an LSTM)."""

    def __init__(
        self,
        input_observation_space: gym.Space | None = None,
        input_action_space: gym.Space | None = None,
        *,
        device: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self._device = device

    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: list[Any],
        explore: bool | None = None,
        shared_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """``{"obs": tensor}``: the episodes' last observations, one row per episode in
        order."""
        if batch:
            raise ValueError(
                f"lrtune's batched env-to-module pipeline got batch columns {sorted(batch)} "
                "from a connector before it; it batches observations only. Set hyperparams "
                "add_default_connectors_to_env_to_module_pipeline: true to use RLlib's."
            )
        if rl_module is not None and rl_module.is_stateful():
            raise _stateful_module_error("env_to_module")
        if not episodes:  # RLlib's defaults add nothing then
            return batch
        observations = [episode.get_observations(-1) for episode in episodes]
        if shared_data is not None:
            # BatchIndividualItems' map: one entry per row (a BatchedNdArray holds several).
            rows: list[Any] = []
            for episode, observation in zip(episodes, observations, strict=True):
                count = len(observation) if isinstance(observation, BatchedNdArray) else 1
                rows.extend([episode.id_] * count)
            shared_data["memorized_map_structure"] = rows
        stacked = space_utils.batch(observations, individual_items_already_have_batch_dim="auto")
        if rl_module is None:  # NumpyToTensor leaves numpy when there is no module
            return {Columns.OBS: stacked}
        return {Columns.OBS: convert_to_torch_tensor(stacked, device=self._device)}


class ActionsIntoBounds(ConnectorV2):
    """Module-to-env piece for action spaces holding a Box with an infinite bound: each Box
    bounded on both sides gets a policy's [-1, 1] mapped onto its bounds (RLlib's
    ``unsquash_action``), then every Box is clipped to its bounds (``clip_action``).

    RLlib's own `NormalizeAndClipActions` does one or the other for the whole space: with
    normalisation on, a Box(0, inf) is neither rescaled nor clipped (PPO sent it negative
    actions); with it off, a bounded Box beside it in a Dict or Tuple is not rescaled either
    (a Box(10, 20) got only 10: the policy's actions around 0, clipped). This piece does both,
    part by part; `build_algorithm_config` puts it in the pipeline and turns RLlib's piece off.
    Like RLlib's, it writes ``ACTIONS_FOR_ENV`` and leaves the sampled ``ACTIONS`` (what the
    loss reads) as they are."""

    def __init__(
        self,
        input_observation_space: gym.Space | None = None,
        input_action_space: gym.Space | None = None,
        **kwargs: Any,
    ) -> None:
        self._action_struct: Any = None
        super().__init__(input_observation_space, input_action_space, **kwargs)

    def recompute_output_action_space(
        self, input_observation_space: gym.Space, input_action_space: gym.Space
    ) -> gym.Space:
        """Keep the action space's structure (called by RLlib when the spaces are set)."""
        self._action_struct = get_base_struct_from_space(input_action_space)
        return input_action_space

    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: list[Any],
        explore: bool | None = None,
        shared_data: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Write each item's env action into ``ACTIONS_FOR_ENV``: rescaled where bounded,
        then clipped."""

        def into_bounds(action: Any, env_id: Any, agent_id: Any, module_id: Any) -> Any:
            struct = self._action_struct if agent_id is None else self._action_struct[agent_id]
            return clip_action(unsquash_action(action, struct), struct)

        batch[Columns.ACTIONS_FOR_ENV] = copy.deepcopy(batch[Columns.ACTIONS])
        self.foreach_batch_item_change_in_place(
            batch=batch, column=Columns.ACTIONS_FOR_ENV, func=into_bounds
        )
        return batch
