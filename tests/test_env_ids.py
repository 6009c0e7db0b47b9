"""`lrtune._env_ids`: the one reading of a job's env id (bare or ``module:Name``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lrtune._env_ids import env_name


@pytest.mark.parametrize(
    ("env_id", "name"),
    [
        ("CartPole-v1", "CartPole-v1"),
        ("lrtune/RecSys-v0", "lrtune/RecSys-v0"),
        ("lrtune.envs:lrtune/RecSys-v0", "lrtune/RecSys-v0"),
        ("my_pkg.envs:Grid-v2", "Grid-v2"),
    ],
)
def test_env_name_is_the_part_after_the_module(env_id: str, name: str) -> None:
    assert env_name(env_id) == name


def test_lrtune_ids_are_registered_on_demand_and_others_import_nothing() -> None:
    # A fresh interpreter: in this session lrtune.envs is imported already.
    script = (
        "import sys, gymnasium\n"
        "from lrtune._env_ids import register_lrtune_envs\n"
        "register_lrtune_envs('CartPole-v1')\n"
        "print('lrtune.envs' in sys.modules)\n"
        "register_lrtune_envs('some.module:lrtune/RecSys-v0')\n"
        "print('lrtune.envs' in sys.modules, 'lrtune/RecSys-v0' in gymnasium.registry)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["False", "True True"]
