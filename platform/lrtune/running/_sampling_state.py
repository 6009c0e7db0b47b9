"""What an exact resume needs beyond RLlib's checkpoint: the sampling state of each seed.

RLlib's ``Algorithm.save_to_path`` keeps the weights, optimizers, connector states and metrics,
but not the envs nor the episodes they are in the middle of, nor the process-wide random
streams. A restored algorithm therefore resets its envs with the seed it was built with and
draws afresh: the LR policy continues exactly (it is a function of the restored env-step
count), the episodes start over. `save_sampling_state` pickles what the local env runner holds
between two ``sample()`` calls (its vector env, the ongoing episodes and the env-to-module output
it has cached for the next step) together with the seed's random streams;
`load_sampling_state` puts them back, so the resumed run takes the steps the uninterrupted run
takes. Where the envs cannot be pickled (an env holding a subprocess, a socket, a file) or the
algorithm samples on remote env runners, only the random streams are kept and the envs are
reset; the saved file says which, and `load_sampling_state` returns it.
"""

from __future__ import annotations

import os
import pickle
import types
from dataclasses import dataclass
from typing import Any

from ray import cloudpickle

from lrtune._upstream import SAMPLING_RUNNER_ATTRIBUTES
from lrtune.running._seed_streams import GlobalRandomState

SAMPLING_FILE = "lrtune_sampling_state.pkl"

# What SingleAgentEnvRunner keeps between two `sample()` calls: its envs (public) and the
# private attributes `lrtune._upstream` lists with why each is needed (the episodes the envs
# are in, the shared connector data, the env-to-module output cached for the next action,
# whether the envs still need a reset, the chunks of ongoing episodes already sampled).
_RUNNER_ATTRIBUTES = ("env", *SAMPLING_RUNNER_ATTRIBUTES)


@dataclass(frozen=True)
class SamplingState:
    """One seed's sampling state as saved: its random streams and, where they could be saved,
    its env runner's envs and episodes (``runner`` is None otherwise, with ``why_not``)."""

    streams: GlobalRandomState
    runner: bytes | None
    why_not: str | None


def save_sampling_state(algo: Any, streams: GlobalRandomState, directory: str) -> SamplingState:
    """Write ``algo``'s sampling state and ``streams`` (this seed's random streams) into
    ``directory`` (the seed's checkpoint folder); returns what was written."""
    runner, why_not = _pickled_runner(algo)
    state = SamplingState(streams=streams, runner=runner, why_not=why_not)
    with open(os.path.join(directory, SAMPLING_FILE), "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return state


def load_sampling_state(algo: Any, directory: str) -> SamplingState | None:
    """Put back the sampling state `save_sampling_state` wrote into ``directory``: the envs and
    episodes into ``algo``'s env runner (closing the envs it built); returns the state, whose
    ``streams`` the caller makes current (``runner`` None and ``why_not`` set where the envs
    were not saved or do not load: the env runner then resets them as RLlib does), or None
    when the checkpoint has none (an older one)."""
    path = os.path.join(directory, SAMPLING_FILE)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        state: SamplingState = pickle.load(handle)
    if state.runner is None:
        return state
    try:  # envs saved by another version of their code may no longer load
        values = pickle.loads(state.runner)
    except Exception as exc:  # unpickling runs the envs' own code; the reason is kept
        why_not = f"the saved envs cannot be loaded ({type(exc).__name__}: {exc})"
        return SamplingState(streams=state.streams, runner=None, why_not=why_not)
    env_runner = algo.env_runner
    fresh_env = env_runner.env
    for name, value in zip(_RUNNER_ATTRIBUTES, values, strict=True):
        setattr(env_runner, name, value)
    if fresh_env is not None and fresh_env is not env_runner.env:
        fresh_env.close()
    return state


def _pickled_runner(algo: Any) -> tuple[bytes | None, str | None]:
    """The local env runner's sampling attributes, pickled, or None and the reason why not."""
    if algo.config.num_env_runners:
        return None, "the algorithm samples on remote env runners"
    env_runner = algo.env_runner
    missing = [name for name in _RUNNER_ATTRIBUTES if not hasattr(env_runner, name)]
    if missing:
        return None, f"the env runner ({type(env_runner).__name__}) has no {missing[0]}"
    values = tuple(getattr(env_runner, name) for name in _RUNNER_ATTRIBUTES)
    spent = _spent_env_fns(env_runner.env)
    for layer in spent:  # emptied while pickling only
        layer.env_fns = ()
    try:  # cloudpickle: an env may hold closures or classes defined in a script
        return cloudpickle.dumps(values), None
    except Exception as exc:  # any env may refuse, each its own way; the reason is kept
        return None, f"the envs cannot be pickled ({type(exc).__name__}: {exc})"
    finally:
        for layer, env_fns in spent.items():
            layer.env_fns = env_fns


def _spent_env_fns(env: Any) -> dict[Any, Any]:
    """The layers of ``env``'s wrapper chain whose ``env_fns`` is a generator, with it.

    gymnasium's ``SyncVectorEnv`` keeps the ``env_fns`` it was built from; ``gym.make_vec``
    passes a generator, which building the sub-envs used up and which nothing reads again, and
    a generator cannot be pickled."""
    spent: dict[Any, Any] = {}
    layer = env
    while layer is not None:
        if isinstance(getattr(layer, "env_fns", None), types.GeneratorType):
            spent[layer] = layer.env_fns
        layer = getattr(layer, "env", None)
    return spent
