"""Bytes a DQN replay buffer holds per Atari-sized uint8 frame: lrtune's in-module cast against
the connector cast it replaced, side by side in one run.

RLlib's networks take float input only. lrtune used to cast integer observations to float32
in the env-to-module connector (`FloatObservations`), which writes the cast copy back into the
episodes, so a replay buffer held float32 images: four times the bytes of the env's uint8.
PPO's and DQN's modules now cast inside the network (`cast_observations_to_float32`), and the
episodes keep uint8.

Both configs are lrtune's DQN (`build_algorithm_config` with the DQN presets' hyper-parameters:
8 parallel envs, a 50k uniform replay buffer; constant LR) on a random-frame env of shape
84x84x4 uint8 (the Atari wrappers' shape); the ``connector`` one only swaps in
``ObservationConnectors(module_casts=False)``, the pipeline before this change.
Learning never starts (``num_steps_sampled_before_learning_starts`` above the run), so each
``train()`` only samples into the buffer, until it holds ``--steps`` env steps. Since
2026-12-05 the presets' buffer is lrtune's `TransitionReplayBuffer`, which allocates its
``capacity`` slots on the first add, each holding one observation in the dtype the episodes
carry plus its action, reward and links; the figure is those bytes per slot
(`TransitionReplayBuffer.bytes_per_slot`) and their total at DQN's default 50,000-slot
capacity. Sampling speed (env steps per second) is printed beside it, as the cast moved
from the connector into the network.

Last lines: ``<mode> bytes_per_step=<b> at_50k_GB=<g> steps_per_s=<s>`` for each mode, then
``memory_ratio=<connector / module bytes>``.

Measured 2026-12-05 01:42 UTC on the 2-core VM, nothing else running, ``--steps 3000``, with
the flat buffer: module 28,253 bytes per slot (28,224 of them the frame; 1.41 GB at 50k),
1,337 env steps/s; connector 112,925 bytes (5.65 GB), 702 env steps/s; ``memory_ratio=4.00``.
Before it, with RLlib's ``EpisodeReplayBuffer`` (the bytes of every observation array in its
episodes per stored step; 2026-12-05 00:33 UTC, lrtune's Nature filters): module 28,371,
1,040 env steps/s; connector 113,484, 533 env steps/s; ``memory_ratio=4.00``. With RLlib's
84x84 filters (before 36a12c6; 2026-12-04 23:28 UTC) the bytes were the same and the speeds
288 and 232 env steps/s. The speeds are one run each.

Run: ``.venv/bin/python benchmarks/image_replay_memory.py [--steps 3000]``
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium
import numpy as np

from lrtune.learners import build_algorithm_config
from lrtune.learners._modules import ObservationConnectors
from lrtune.learners._presets import preset_hyperparams
from lrtune.running import init_local_ray

ENV_ID = "LRTuneBench/Frames84-v0"
SHAPE = (84, 84, 4)
CAPACITY = 50_000  # RLlib's and SB3's default DQN replay capacity


class Frames(gymnasium.Env[Any, Any]):
    """Random uint8 frames of the Atari wrappers' shape; 200-step episodes."""

    observation_space = gymnasium.spaces.Box(0, 255, SHAPE, np.uint8)
    action_space = gymnasium.spaces.Discrete(4)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.t = 0
        return self.np_random.integers(0, 256, SHAPE, dtype=np.uint8), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.t += 1
        frame = self.np_random.integers(0, 256, SHAPE, dtype=np.uint8)
        return frame, float(action == 0), False, self.t >= 200, {}


def fill(mode: str, steps: int) -> tuple[float, float]:
    """Bytes of stored observations per env step, and env steps per second, of one mode."""
    hyperparams = {
        **preset_hyperparams("dqn", ENV_ID),  # what a trial of lrtune's DQN runs with
        "num_steps_sampled_before_learning_starts": 10 * steps,
        "min_sample_timesteps_per_iteration": 500,
    }
    config = build_algorithm_config(
        "dqn", ENV_ID, policy={"lr": 1e-4}, hyperparams=hyperparams, seed=0
    )
    if mode == "connector":
        config.env_runners(env_to_module_connector=ObservationConnectors(module_casts=False))
    algo = config.build_algo()
    try:
        start = time.perf_counter()
        buffer = algo.local_replay_buffer
        while buffer.added_env_steps < steps:
            algo.train()
        elapsed = time.perf_counter() - start
        stored = buffer.added_env_steps
        # Each slot holds one observation in the dtype the episodes carried, its action,
        # reward and links; the buffer allocates `capacity` slots.
        per_slot = buffer.bytes_per_slot
    finally:
        algo.stop()
    return per_slot, stored / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env steps in the buffer")
    args = parser.parse_args()
    gymnasium.register(ENV_ID, entry_point=Frames)
    init_local_ray()
    figures = {}
    for mode in ("module", "connector"):
        per_step, speed = fill(mode, args.steps)
        figures[mode] = per_step
        print(
            f"{mode} bytes_per_step={per_step:.0f} "
            f"at_50k_GB={per_step * CAPACITY / 1e9:.2f} steps_per_s={speed:.0f}",
            flush=True,
        )
    print(f"memory_ratio={figures['connector'] / figures['module']:.2f}")


if __name__ == "__main__":
    main()
