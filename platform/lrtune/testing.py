"""Test helpers: contract tests for plugin authors (as ``optuna.testing`` for samplers), a server.

Every registry entry, built-in or a third party's, keeps one contract: it is described (the entry
and each parameter), its ``example`` and (when no parameter is required) its defaults validate,
an unknown parameter is refused naming it, and a value beyond each numeric bound of its parameter
model is refused naming the field. A test file joins the contract with one fixture that names the
entry as ``(slot, name)``::

    import pytest
    from lrtune.testing import PluginContract

    class TestMySchedule(PluginContract):
        @pytest.fixture
        def plugin(self) -> tuple[str, str]:
            return ("schedules", "my_schedule")

The entry is looked up in the slot's registry, so it must be registered the way users get it:
through the distribution's ``lrtune.<slot>`` entry point, or by importing the module that
registers it. Each bound is checked as its own subtest, so a failure names every bound that was
not refused.

`local_mlflow_server` starts a real ``mlflow server`` on 127.0.0.1 for tests and benchmarks
that talk to a tracking server as a user's run does; `start_lrtune` starts ``lrtune`` as a child
process with its own Ray, as a user's shell does.

This module needs pytest 9 or later (its ``subtests`` fixture), which lrtune itself does not
depend on: install it with ``pip install 'pytest>=9'`` (or lrtune's ``dev`` extra). lrtune's
other modules never import this one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

try:
    import pytest
except ImportError as exc:  # pytest is a dev dependency, not one of lrtune's
    raise ImportError(
        "lrtune.testing needs pytest (9 or later), which is not installed: "
        "pip install 'pytest>=9' (or install lrtune with its 'dev' extra)."
    ) from exc

from lrtune.registry import SLOTS, Entry, PluginParamsError

__all__ = [
    "AgentContract",
    "PluginContract",
    "bound_violations",
    "local_mlflow_server",
    "lookup",
    "start_lrtune",
]

if not hasattr(pytest, "Subtests"):  # pytest < 9 has no built-in subtests fixture
    raise ImportError(
        f"lrtune.testing needs pytest 9 or later (its built-in `subtests` fixture); pytest "
        f"{pytest.__version__} is installed: pip install 'pytest>=9'."
    )

#: A parameter that no plugin declares, used to check that unknown keys are refused by name.
UNKNOWN_PARAMETER = "no_such_param"


def lookup(plugin: tuple[str, str]) -> Entry[Any]:
    """The registry entry named by ``(slot, name)``, with a clear error for a wrong slot."""
    slot, name = plugin
    if slot not in SLOTS:
        raise ValueError(
            f"plugin fixture: unknown slot {slot!r}; the slots are {', '.join(SLOTS)}. "
            "Return (slot, name), e.g. ('schedules', 'my_schedule')."
        )
    return SLOTS[slot].get(name)


def bound_violations(schema: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(field, a value beyond one of its numeric bounds)`` for every bound in a parameter
    model's JSON schema (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``,
    also inside ``anyOf`` variants such as ``float | None``)."""
    out: list[tuple[str, Any]] = []
    for name, prop in schema.get("properties", {}).items():
        for variant in [prop, *prop.get("anyOf", [])]:
            step = 1 if variant.get("type") == "integer" else 1.0
            if "minimum" in variant:
                out.append((name, variant["minimum"] - step - abs(variant["minimum"])))
            if "maximum" in variant:
                out.append((name, variant["maximum"] + step + abs(variant["maximum"])))
            if "exclusiveMinimum" in variant:
                out.append((name, variant["exclusiveMinimum"]))
            if "exclusiveMaximum" in variant:
                out.append((name, variant["exclusiveMaximum"]))
    return out


class PluginContract:
    """The contract every lrtune plugin keeps; a test class joins it by subclassing and
    defining the ``plugin`` fixture (``(slot, name)``, e.g. ``("schedules", "my_schedule")``).

    The fixture may be parametrised (``@pytest.fixture(params=[...])``) to run the contract
    over several entries, as lrtune's own tests do over every built-in entry.
    """

    @pytest.fixture
    def plugin(self) -> tuple[str, str]:
        """The entry under test as ``(slot, name)``: a subclass must define this fixture."""
        raise NotImplementedError(
            f"{type(self).__name__} joins lrtune.testing.PluginContract but does not define the "
            "`plugin` fixture: add `@pytest.fixture def plugin(self): return (slot, name)`."
        )

    def test_entry_and_its_parameters_are_described(self, plugin: tuple[str, str]) -> None:
        """The entry and every parameter have a description (`lrtune plugins` shows them)."""
        slot, name = plugin
        entry = lookup(plugin)
        assert entry.description.strip(), f"{slot}:{name} has no description"
        for field, info in entry.params_model.model_fields.items():
            assert info.description, f"{slot}:{name}.{field} has no description"

    def test_example_and_defaults_validate(self, plugin: tuple[str, str]) -> None:
        """The entry's ``example`` validates, and so does ``{}`` when nothing is required."""
        entry = lookup(plugin)
        entry.validate_params(entry.example)
        if not any(info.is_required() for info in entry.params_model.model_fields.values()):
            entry.validate_params({})

    def test_an_unknown_parameter_is_refused_by_name(self, plugin: tuple[str, str]) -> None:
        """A key the parameter model does not declare is an error that names the key."""
        entry = lookup(plugin)
        with pytest.raises(PluginParamsError, match=UNKNOWN_PARAMETER):
            entry.validate_params({**entry.example, UNKNOWN_PARAMETER: 1})

    def test_every_bound_is_refused_naming_the_field(
        self, plugin: tuple[str, str], subtests: pytest.Subtests
    ) -> None:
        """A value beyond each numeric bound is an error naming the field (a subtest each)."""
        slot, name = plugin
        entry = lookup(plugin)
        for field, value in bound_violations(entry.params_model.model_json_schema()):
            with subtests.test(msg=f"{slot}:{name}-{field}={value}"):
                with pytest.raises(PluginParamsError, match=field):
                    entry.validate_params({**entry.example, field: value})


class AgentContract(PluginContract):
    """The extra contract of an ``agents`` entry; a test class joins it with the ``plugin``
    fixture returning ``("agents", name)``. It imports RLlib (the classes the entry names).

    It checks the declaration against RLlib: the config and learner classes load and fit
    together, every role names optimizers, the agent's own owned hyper-parameters and every
    preset key are settings RLlib's config accepts (and no preset sets an owned one). That
    the learner applies each role's rate is tested by building the agent (lrtune's own
    ``tests/learners/test_agents.py`` does it for every entry).
    """

    def test_declaration_fits_rllib(self, plugin: tuple[str, str]) -> None:
        """Classes load; roles, network defaults and the baseline rate are usable."""
        from lrtune.agents import AgentPlugin
        from lrtune.learners import LRPolicyLearner

        agent = lookup(plugin).build({})
        assert isinstance(agent, AgentPlugin)
        config_class = agent.config_class()
        assert issubclass(agent.learner_class(), LRPolicyLearner)
        default_learner = config_class().get_default_learner_class()
        assert issubclass(agent.learner_class(), default_learner), (
            f"{plugin[1]}: the learner should extend {default_learner.__name__}"
        )
        assert agent.roles and all(names for names in agent.roles.values())
        from lrtune.agents import ACTION_KINDS

        assert agent.action_spaces and agent.action_spaces <= set(ACTION_KINDS)
        assert agent.initializers and set(agent.initializers) <= {"orthogonal", "torch"}
        assert agent.loss_metrics and agent.baseline_lr > 0 and agent.hidden
        from lrtune.specs import AgentSettings

        assert agent.agent_settings <= set(AgentSettings.model_fields), (
            f"{plugin[1]}: agent_settings names no field of lrtune.specs.AgentSettings: "
            f"{sorted(agent.agent_settings - set(AgentSettings.model_fields))}"
        )

    def test_owned_and_preset_settings_are_rllib_settings(self, plugin: tuple[str, str]) -> None:
        """Each owned and preset key is a setting of the RLlib config; presets set no owned key."""
        from lrtune.learners._config import SECTIONS, section_parameters

        agent = lookup(plugin).build({})
        config_class = agent.config_class()
        known = set().union(*(section_parameters(config_class, s) for s in SECTIONS))
        assert set(agent.owned_hyperparams) <= known
        presets = agent.presets()
        layers = [presets.defaults, presets.continuous, *presets.by_env.values()]
        for layer in layers:
            assert set(layer) <= known, set(layer) - known
            assert not set(layer) & set(agent.owned()), set(layer) & set(agent.owned())


#: The setting that keeps `mlflow server` from starting its job runner (huey consumers: GenAI
#: jobs and periodic tasks, nothing tracking needs), as ``(variable, value)``.
NO_JOB_RUNNER = ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


@contextlib.contextmanager
def local_mlflow_server(
    backend_uri: str,
    *,
    artifacts: Path | None = None,
    cwd: Path | None = None,
    app_name: str | None = None,
    env: Mapping[str, str] | None = None,
    start_timeout_s: float = 180.0,
) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (a free port) over ``backend_uri``.

    Yields its URL once ``/health`` answers (it takes 27-45 s on a loaded 2-core machine) and
    stops it by process group at the end. ``app_name`` (e.g. ``basic-auth``) and ``env`` (the
    server's whole environment; this process's by default) are passed on as given, except that
    MLflow's job runner is off unless ``env`` sets ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``: its
    four extra processes cost about 10 CPU-seconds a start (measured), and tracking never uses
    them. For tests and benchmarks that talk to a tracking server the way a user's run does.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    command = [sys.executable, "-m", "mlflow", "server"]
    if app_name is not None:
        command += ["--app-name", app_name]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", backend_uri]
    if artifacts is not None:
        command += ["--artifacts-destination", str(artifacts)]
    server_env = dict(env if env is not None else os.environ)
    server_env.setdefault(NO_JOB_RUNNER[0], NO_JOB_RUNNER[1])
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            if proc.poll() is not None or time.monotonic() > deadline:
                assert proc.stderr is not None
                raise RuntimeError(f"mlflow server did not start: {proc.stderr.read()!r}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def start_lrtune(
    *args: str,
    cwd: Path,
    env: Mapping[str, str | None] | None = None,
    new_session: bool = False,
    stderr_apart: bool = False,
) -> subprocess.Popen[str]:
    """``python -m lrtune *args`` in ``cwd`` as a child process, its output read as text.

    The child gets this process's environment without ``RAY_ADDRESS`` (so `lrtune run` starts
    its own Ray rather than joining a test's), then ``env``: a value sets a variable, ``None``
    removes it. ``new_session`` puts the child (and the Ray processes it starts) in a session of
    its own, to be killed by session id; ``stderr_apart`` keeps stderr on its own pipe instead
    of merged into stdout.
    """
    child_env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    return subprocess.Popen(
        [sys.executable, "-m", "lrtune", *args],
        cwd=cwd,
        env=child_env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if stderr_apart else subprocess.STDOUT,
        start_new_session=new_session,
    )
