"""A job naming a user's env module (``pkg.mod:Name-v0``) is validated without running that module;
the env is checked where a run starts, with the same one-paragraph error (exit 2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def user_package(tmp_path: Path) -> Path:
    """``userenvs/envs.py`` registers ``userenvs.envs:Thing-v0`` and leaves a mark when run."""
    pkg = tmp_path / "userenvs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('PACKAGE_RAN').touch()\n"
    )
    (pkg / "envs.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            import gymnasium as gym
            Path(__file__).with_name("MODULE_RAN").touch()
            gym.register("Thing-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv")
            """
        )
    )
    return tmp_path


def _job(tmp_path: Path, env_id: str) -> Path:
    job = tmp_path / "job.yaml"
    job.write_text(
        f"name: userenv\nagent: ppo\nenv: {{id: '{env_id}'}}\n"
        "budget: {trial_env_steps: 1000}\npolicy: {lr: 1.0e-3}\n"
    )
    return job


def _lrtune(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    code = "import sys; from lrtune.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=180,
    )


def _run_is_refused(folder: Path, job: Path, *messages: str) -> None:
    """``lrtune run JOB`` in ``folder`` exits 2 with each of ``messages`` on stderr and no
    traceback, and writes nothing in ``folder``."""
    before = sorted(p.name for p in folder.iterdir())
    done = _lrtune(folder, "run", str(job))
    assert done.returncode == 2, done.stderr[-2000:]
    for message in messages:
        assert message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == before


def test_validation_finds_the_module_without_running_it(user_package: Path) -> None:
    done = _lrtune(user_package, "validate", str(_job(user_package, "userenvs.envs:Thing-v0")))
    assert done.returncode == 0, done.stderr
    assert not (user_package / "userenvs" / "PACKAGE_RAN").exists()
    assert not (user_package / "userenvs" / "MODULE_RAN").exists()


def test_a_missing_module_is_refused_at_validation(user_package: Path) -> None:
    done = _lrtune(user_package, "validate", str(_job(user_package, "userenvs.nope:Thing-v0")))
    assert done.returncode == 2
    assert "env.id" in done.stderr and "no module 'userenvs.nope'" in done.stderr


def test_where_the_run_starts_the_module_is_imported_and_the_name_checked(
    user_package: Path,
) -> None:
    from lrtune.agents import require_env_id
    from lrtune.specs import SpecError

    sys.path.insert(0, str(user_package))
    try:
        require_env_id("userenvs.envs:Thing-v0")
        assert (user_package / "userenvs" / "MODULE_RAN").exists()
        with pytest.raises(SpecError, match=r"env.id: no gymnasium environment 'Thing-v9'"):
            require_env_id("userenvs.envs:Thing-v9")
    finally:
        sys.path.remove(str(user_package))
        for name in [m for m in sys.modules if m.startswith("userenvs")]:
            del sys.modules[name]


def test_lrtune_train_refuses_an_unregistered_name_before_starting_ray(
    user_package: Path,
) -> None:
    done = _lrtune(user_package, "train", "lr: 1e-3", "--env", "userenvs.envs:Thing-v9")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "env.id: no gymnasium environment 'Thing-v9'" in done.stderr


def test_an_agent_is_refused_on_actions_it_cannot_take_before_anything_is_written(
    tmp_path: Path,
) -> None:
    from lrtune.agents import require_env_id
    from lrtune.specs import SpecError

    with pytest.raises(SpecError, match=r"'CartPole-v1' has discrete actions .* choose agent"):
        require_env_id("CartPole-v1", "sac")
    with pytest.raises(SpecError, match=r"'Pendulum-v1' has continuous actions .* agent 'dqn'"):
        require_env_id("Pendulum-v1", "dqn")
    require_env_id("Pendulum-v1", "sac")
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: sac-cartpole\nagent: sac\nenv: {id: CartPole-v1}\n"
        "budget: {trial_env_steps: 1000}\npolicy: {lr: 1e-3}\n"
    )
    _run_is_refused(tmp_path, job, "env.id: 'CartPole-v1' has discrete actions")


def test_an_env_that_cannot_be_built_here_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """Every trial would fail the same way: a package the env needs is missing (exit 2 saying
    to install it), or its keyword arguments are refused (exit 2 naming env.config); `lrtune
    submit`'s check (``must_build=False``) lets the cluster decide."""
    from lrtune.agents import require_env_id
    from lrtune.specs import SpecError

    pkg = tmp_path / "simenvs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import gymnasium as gym

            class NeedsSim(gym.Env):
                def __init__(self):
                    import acme_simulator  # noqa: F401  (not installed anywhere)

            gym.register("NeedsSim-v0", entry_point=NeedsSim)
            """
        )
    )
    job = _job(tmp_path, "simenvs:NeedsSim-v0")
    _run_is_refused(
        tmp_path,
        job,
        "env.id: 'simenvs:NeedsSim-v0' cannot be built here (ModuleNotFoundError",
        "install the package it needs",
    )

    typo = tmp_path / "typo.yaml"
    typo.write_text(
        "name: typo\nagent: ppo\nenv: {id: FrozenLake-v1, config: {map_nam: 8x8}}\n"
        "budget: {trial_env_steps: 1000}\npolicy: {lr: 1.0e-3}\n"
    )
    _run_is_refused(
        tmp_path,
        typo,
        "env.config: 'FrozenLake-v1' cannot be built here (TypeError",
        "map_nam",
        "fix the env's keyword arguments",
    )

    with pytest.raises(SpecError, match=r"env\.config: 'FrozenLake-v1' cannot be built"):
        require_env_id("FrozenLake-v1", "ppo", env_config={"map_nam": "8x8"})
    require_env_id("FrozenLake-v1", "ppo", env_config={"map_nam": "8x8"}, must_build=False)
    require_env_id("FrozenLake-v1", "ppo", env_config={"map_name": "8x8"})


def test_actions_no_agent_or_not_this_agent_takes_are_refused_naming_the_fix(
    tmp_path: Path,
) -> None:
    """DQN and SAC take one kind of action each, SAC within finite bounds; MultiBinary has no
    RLlib action distribution (the error gives the MultiDiscrete that means the same).
    Refused where the run starts, exit 2, nothing written, instead of a traceback in every
    trial."""
    from lrtune.agents import require_env_id
    from lrtune.specs import SpecError

    pkg = tmp_path / "multienvs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import gymnasium as gym
            from gymnasium import spaces

            class Bits(gym.Env):
                observation_space = spaces.Box(0.0, 1.0, (3,))

                def __init__(self, action_space):
                    self.action_space = action_space

                def reset(self, *, seed=None, options=None):
                    return self.observation_space.sample(), {}

                def step(self, action):
                    return self.observation_space.sample(), 0.0, False, True, {}

            gym.register("Multi-v0", entry_point=Bits,
                         kwargs={"action_space": spaces.MultiDiscrete([2, 3])})
            gym.register("Binary-v0", entry_point=Bits,
                         kwargs={"action_space": spaces.MultiBinary(3)})
            gym.register("TupleOfBinary-v0", entry_point=Bits, kwargs={
                "action_space": spaces.Tuple((spaces.Discrete(2), spaces.MultiBinary(2)))})
            gym.register("Grid-v0", entry_point=Bits,
                         kwargs={"action_space": spaces.Box(-1.0, 1.0, (2, 3))})
            gym.register("Counts-v0", entry_point=Bits,
                         kwargs={"action_space": spaces.Box(1, 4, (2,), "int64")})
            gym.register("Dose-v0", entry_point=Bits,
                         kwargs={"action_space": spaces.Box(0.0, float("inf"), (2,))})
            """
        )
    )
    refused = [  # (env, agent, the error's pattern)
        (
            "Multi-v0",
            "dqn",
            r"multi-discrete actions .* agent 'dqn' handles discrete ones only: "
            r"choose agent ppo, or another env",
        ),
        ("Multi-v0", "sac", r"agent 'sac' handles continuous ones only"),
        (
            "Binary-v0",
            "ppo",
            r"no action distribution .* declare it as "
            r"MultiDiscrete\(\[2, 2, 2\]\) \(the same actions\)",
        ),
        ("TupleOfBinary-v0", "ppo", r"no action distribution .* change the env's"),
        # RLlib: "Action space has multiple dimensions", in every trial.
        ("Grid-v0", "ppo", r"1-D Box of shape \(6,\) and reshape"),
        ("Grid-v0", "sac", r"1-D Box of shape \(6,\) and reshape"),
        # RLlib: "Box(..., `int`) action spaces are not supported", in every trial.
        (
            "Counts-v0",
            "ppo",
            r"no action distribution .* declare it as MultiDiscrete\(\[4, 4\]\) "
            r"\(the same actions\) and add the Box's low in the env",
        ),
        # SAC's tanh never left [-1, 1] on a Box RLlib cannot rescale (PPO's actions are
        # clipped to the bounds instead: tests/learners/test_presets.py).
        (
            "Dose-v0",
            "sac",
            r"has actions Box\(0\.0, inf, \(2,\), float32\), with an infinite "
            r"bound; agent 'sac' squashes .* or choose agent ppo$",
        ),
    ]
    sys.path.insert(0, str(tmp_path))
    try:
        for env, agent, pattern in refused:
            with pytest.raises(SpecError, match=pattern):
                require_env_id(f"multienvs:{env}", agent)
        for env in ("Multi-v0", "Dose-v0"):
            require_env_id(f"multienvs:{env}", "ppo")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("multienvs")]:
            del sys.modules[name]

    job = _job(tmp_path, "multienvs:Multi-v0").read_text().replace("agent: ppo", "agent: dqn")
    (tmp_path / "job.yaml").write_text(job)
    _run_is_refused(
        tmp_path,
        tmp_path / "job.yaml",
        "env.id: 'multienvs:Multi-v0' has multi-discrete actions",
    )


def test_spaces_rllib_cannot_use_are_refused_naming_the_part(tmp_path: Path) -> None:
    """gymnasium's ``Discrete(n, start=s)``: RLlib ignores ``start``, so PPO sent action 0 to
    an env whose actions were 1..3 (an assertion in every trial) and one-hot encoding of such
    observations failed ("The max. index of `x` (5) is larger than depth (5)"). Text and
    Sequence observations failed every trial too ("could not convert string to float", "list
    index out of range"). Refused where the run starts, naming the part of the space."""
    from lrtune.agents import require_env_id
    from lrtune.specs import SpecError

    pkg = tmp_path / "offsetenvs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import gymnasium as gym
            from gymnasium import spaces

            class Offset(gym.Env):
                def __init__(self, action_space, observation_space):
                    self.action_space = action_space
                    self.observation_space = observation_space

                def reset(self, *, seed=None, options=None):
                    return self.observation_space.sample(), {}

                def step(self, action):
                    return self.observation_space.sample(), 0.0, False, True, {}

            box = spaces.Box(0.0, 1.0, (3,))
            gym.register("Act-v0", entry_point=Offset, kwargs={
                "action_space": spaces.Discrete(3, start=1), "observation_space": box})
            gym.register("TupleAct-v0", entry_point=Offset, kwargs={
                "action_space": spaces.Tuple((spaces.Discrete(2),
                                              spaces.MultiDiscrete([3, 2], start=[0, -1]))),
                "observation_space": box})
            gym.register("Obs-v0", entry_point=Offset, kwargs={
                "action_space": spaces.Discrete(2),
                "observation_space": spaces.Dict({"cell": spaces.Discrete(5, start=3)})})
            gym.register("Text-v0", entry_point=Offset, kwargs={
                "action_space": spaces.Discrete(2), "observation_space": spaces.Text(5)})
            gym.register("SeqInDict-v0", entry_point=Offset, kwargs={
                "action_space": spaces.Discrete(2), "observation_space": spaces.Dict(
                    {"pos": box, "seen": spaces.Sequence(spaces.Discrete(3))})})
            gym.register("Zero-v0", entry_point=Offset, kwargs={
                "action_space": spaces.Discrete(2, start=0),
                "observation_space": spaces.MultiDiscrete([4, 4])})
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(SpecError, match=r"actions Discrete\(3, start=1\), whose values do "):
            require_env_id("offsetenvs:Act-v0", "dqn")
        with pytest.raises(SpecError, match=r"actions \[1\] MultiDiscrete\(\[3 2\], start="):
            require_env_id("offsetenvs:TupleAct-v0", "ppo")
        with pytest.raises(SpecError, match=r"observations \['cell'\] Discrete\(5, start=3\)"):
            require_env_id("offsetenvs:Obs-v0", "ppo")
        with pytest.raises(SpecError, match=r"observations Text\(1, 5, .* networks cannot read"):
            require_env_id("offsetenvs:Text-v0", "ppo")
        with pytest.raises(SpecError, match=r"observations \['seen'\] Sequence\(Discrete\(3\)"):
            require_env_id("offsetenvs:SeqInDict-v0", "dqn")
        require_env_id("offsetenvs:Zero-v0", "ppo")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("offsetenvs")]:
            del sys.modules[name]
    _run_is_refused(
        tmp_path,
        _job(tmp_path, "offsetenvs:Act-v0"),
        "env.id: 'offsetenvs:Act-v0' has actions Discrete(3, start=1)",
        "declare the space with start 0",
    )


def test_an_env_whose_first_reset_or_step_breaks_gymnasiums_api_is_refused(
    tmp_path: Path,
) -> None:
    """An env written for gym's old API (reset returning the observation alone) failed every
    trial inside RLlib's vector env with "too many values to unpack (expected 2)"; one reset
    and one step where the run starts find it (tests/envs/test_env_check.py has the cases),
    and `lrtune submit` (``must_build=False``) leaves it to the cluster."""
    from lrtune.agents import require_env_id
    from lrtune.specs import SpecError

    pkg = tmp_path / "oldenvs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            import gymnasium as gym
            from gymnasium import spaces

            class Old(gym.Env):
                observation_space = spaces.Box(-1.0, 1.0, (3,))
                action_space = spaces.Discrete(2)

                def reset(self, *, seed=None, options=None):
                    return np.zeros(3, np.float32)

                def step(self, action):
                    return np.zeros(3, np.float32), 1.0, False, {}

            gym.register("Old-v0", entry_point=Old)

            class Sim(Old):
                def __init__(self, scene="flat"):
                    self.scene = scene

                def reset(self, *, seed=None, options=None):
                    if self.scene != "flat":
                        raise RuntimeError(f"no scene {self.scene!r}")
                    return np.zeros(3, np.float32), {}

                def step(self, action):
                    return np.zeros(3, np.float32), 1.0, False, True, {}

            gym.register("Sim-v0", entry_point=Sim)
            """
        )
    )
    _run_is_refused(
        tmp_path,
        _job(tmp_path, "oldenvs:Old-v0"),
        "env.id: 'oldenvs:Old-v0': reset() returned an array of shape (3,), not (observation, "
        "info): the env follows gym's old API",
        "every trial would fail the same way",
    )
    sys.path.insert(0, str(tmp_path))
    try:
        require_env_id("oldenvs:Old-v0", "ppo", must_build=False)
        # A reset that raises only with the job's keyword arguments names env.config.
        require_env_id("oldenvs:Sim-v0", "ppo", env_config={"scene": "flat"})
        with pytest.raises(
            SpecError,
            match=r"^env\.config: 'oldenvs:Sim-v0': its first reset or step raised "
            r"RuntimeError: no scene 'hills'",
        ):
            require_env_id("oldenvs:Sim-v0", "ppo", env_config={"scene": "hills"})
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("oldenvs")]:
            del sys.modules[name]


def test_a_misspelt_rllib_setting_is_refused_where_the_run_starts(tmp_path: Path) -> None:
    """Validation is Ray-free, so RLlib's names are checked where a run starts: a misspelt
    setting in the job or in its space exits 2 naming it, before Ray starts or anything is
    written (it used to fail every trial)."""
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: typo\nagent: ppo\nenv: {id: CartPole-v1}\nbudget: {trial_env_steps: 1000}\n"
        "policy: {lr: 1.0e-3}\nhyperparams: {gama: 0.99}\n"
    )
    _run_is_refused(
        tmp_path,
        job,
        "hyperparams.gama: not a setting of RLlib's PPOConfig",
    )

    (tmp_path / "space.yaml").write_text(
        "schedule: {constant: {}}\noptimizer: {adam: {}}\n"
        "lr: {distribution: log_uniform, low: 1.0e-4, high: 1.0e-3}\n"
        "hyperparams: {lambda_: {distribution: uniform, low: 0.9, high: 0.99},"
        " entropy_coef: {distribution: uniform, low: 0.0, high: 0.01}}\n"
    )
    job.write_text(
        "name: typo\nagent: ppo\nenv: {id: CartPole-v1}\nbudget: {trial_env_steps: 1000}\n"
        "trials: {num: 2}\nspace: space.yaml\n"
    )
    _run_is_refused(
        tmp_path,
        job,
        "space.hyperparams.entropy_coef: not a setting of RLlib's PPOConfig",
    )

    # A buffer setting merged over the presets' buffer that the buffer cannot honour.
    job.write_text(
        "name: typo\nagent: dqn\nenv: {id: CartPole-v1}\nbudget: {trial_env_steps: 1000}\n"
        "policy: {lr: 1.0e-3}\nhyperparams: {replay_buffer_config: {alpha: 0.6}}\n"
    )
    _run_is_refused(
        tmp_path,
        job,
        "hyperparams.replay_buffer_config: TransitionReplayBuffer takes capacity only; "
        "remove alpha",
    )


def test_a_trial_the_local_ray_could_never_start_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """On the embedded Ray, a trial asking for more CPUs than the machine has, or for a GPU
    that torch cannot see, would stay pending forever (Tune only warns each minute)."""
    import os

    import torch

    from lrtune.running._local_ray import local_resource_problem

    too_many = (os.cpu_count() or 1) + 1
    assert "resources.cpus" in str(local_resource_problem(too_many, 0, None))
    assert local_resource_problem(too_many, 0, "ray://head:10001") is None  # a cluster may scale
    assert local_resource_problem(0.5, 0, None) is None
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the refusal is for machines without one")
    job = tmp_path / "job.yaml"
    job.write_text(
        "name: gpu\nagent: ppo\nenv: {id: CartPole-v1}\nbudget: {trial_env_steps: 1000}\n"
        "policy: {lr: 1.0e-3}\nresources: {cpus: 1, gpus: 0.5}\n"
    )
    _run_is_refused(tmp_path, job, "resources.gpus: 0.5 GPU per trial, but torch here sees no GPU")


@pytest.mark.slow
def test_an_env_module_in_the_current_folder_runs_and_its_mid_trial_failure_is_named(
    tmp_path: Path,
) -> None:
    """The ``lrtune`` console script, run in the folder that holds the user's env module, with
    no PYTHONPATH: Ray puts that folder on every trial's import path, and the driver's checks
    now find the module there too (they refused it as "no module on the import path"). The
    env reads a file by a path relative to that folder, which trials now keep as theirs (Tune
    moved them into their trial folders: FileNotFoundError in every trial). The
    env's step raises at its 20th call, after the run-start probe; the trial's line names the
    env's method, its class and RLlib's setting that rebuilds a failed env (`env_raised`)."""
    (tmp_path / "lostlink.py").write_text(
        textwrap.dedent(
            """
            import gymnasium as gym
            from gymnasium.envs.classic_control import CartPoleEnv

            class LostLink(CartPoleEnv):
                def __init__(self):
                    super().__init__()
                    self.steps = int(open("maps/start.txt").read())

                def step(self, action):
                    self.steps += 1
                    if self.steps == 20:
                        raise ConnectionError("simulator connection lost")
                    return super().step(action)

            gym.register("LostLink-v0", entry_point=LostLink, max_episode_steps=200)
            """
        )
    )
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "start.txt").write_text("0")
    (tmp_path / "job.yaml").write_text(
        "name: lostlink\nagent: ppo\nenv: {id: 'lostlink:LostLink-v0'}\n"
        "budget: {trial_env_steps: 512}\npolicy: {lr: 1.0e-3}\n"
        "hyperparams: {train_batch_size_per_learner: 256, minibatch_size: 64, num_epochs: 1}\n"
        "trials: {max_failures: 0}\n"
    )
    script = Path(sys.executable).with_name("lrtune")
    done = subprocess.run(
        [str(script), "run", "job.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": f"{script.parent}:/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=300,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert (
        "failed: lrtune.learners.EnvRaisedError: env.id: the env's step() (LostLink) raised "
        "ConnectionError: simulator connection lost (lostlink.py line 13)" in done.stdout
    ), done.stdout[-3000:] + done.stderr[-3000:]
