"""The notices Ray and RLlib print on every algorithm built in the command's process are left
out of ``lrtune``'s stderr (`LibraryNotices`), other records of the same loggers are not, and
``-vv`` keeps them all."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lrtune.cli._args import LibraryNotices, configure_logging

# As RLlib 2.60 and Ray write them (algorithm_config.py, sac.py, rl_module.py via Ray's
# deprecation helper, tune/utils/util.py).
NOTICES = {
    "ray.rllib.algorithms.algorithm_config": "You are running DQN on the new API stack! This is "
    "the new default behavior for this algorithm. If you don't want to use the new API stack, "
    "set `config.api_stack(enable_rl_module_and_learner=False,...)`.",
    "ray.rllib.algorithms.sac.sac": "You are running SAC on the new API stack! This is the new "
    "default behavior for this algorithm.",
    "ray._common.deprecation": "DeprecationWarning: `RLModule(config=[RLModuleConfig object])` "
    "has been deprecated. Use `RLModule(observation_space=.., action_space=..)` instead. This "
    "will raise an error in the future!",
    "ray.tune.utils.util": "Install gputil for GPU system monitoring.",
}


@pytest.fixture()
def _restore_logging() -> Iterator[None]:
    yield
    configure_logging(0, 0)


def _passes(logger_name: str, message: str) -> bool:
    record = logging.LogRecord(logger_name, logging.WARNING, __file__, 1, message, None, None)
    return bool(logging.getLogger(logger_name).filter(record))


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize("logger_name", sorted(NOTICES))
def test_the_notices_are_dropped_other_records_pass_and_vv_keeps_them(logger_name: str) -> None:
    assert set(NOTICES) == set(LibraryNotices.LOGGERS)
    configure_logging(0, 0)
    assert not _passes(logger_name, NOTICES[logger_name])
    assert _passes(logger_name, "Something about the user's own config is wrong.")
    configure_logging(0, 0)  # configured again (tests call `main` many times): one filter
    assert sum(isinstance(f, LibraryNotices) for f in logging.getLogger(logger_name).filters) == 1
    configure_logging(2, 0)
    assert _passes(logger_name, NOTICES[logger_name])


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["dqn", "sac"])
def test_lrtune_train_prints_none_of_them(agent: str, tmp_path: Path) -> None:
    """A fresh process, so RLlib's once-per-process notices are due."""
    env = {"dqn": "CartPole-v1", "sac": "Pendulum-v1"}[agent]
    command = [sys.executable, "-m", "lrtune", "train", "lr: 1e-3", "--agent", agent]
    done = subprocess.run(
        [*command, "--env", env, "--steps", "300"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("lrtune: done")
    for text in ("new API stack", "RLModuleConfig", "gputil"):
        assert text not in done.stderr
