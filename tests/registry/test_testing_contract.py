"""`lrtune.testing` as a plugin author uses it: a real third-party distribution, installed with
pip and found through its entry point, joins `PluginContract` with one fixture in its own test
file; run by pytest in a child process, the contract passes for a sound plugin and fails, naming
each broken promise, for a broken one."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SOUND_PLUGIN = '''
"""A sound third-party schedule: described, bounded, refusing what it does not take."""
from pydantic import Field

from lrtune.policies import Schedule
from lrtune.registry import PluginParams, schedules


class QuarteringParams(PluginParams):
    every: int = Field(100, gt=0, le=10**9, description="env steps per quartering")


@schedules.register("acme_quartering", params=QuarteringParams, example={"every": 10})
class Quartering(Schedule):
    """Quarter the factor every `every` env steps."""

    def __call__(self, step: int) -> float:
        return 0.25 ** (step // self.params.every)
'''

BROKEN_PLUGIN = '''
"""A broken third-party schedule: one parameter undescribed, one bound silently clamped."""
from pydantic import Field, field_validator

from lrtune.policies import Schedule
from lrtune.registry import PluginParams, schedules


class SloppyParams(PluginParams):
    every: int = Field(100, ge=1, description="env steps per halving")
    floor: float = Field(0.0, ge=0.0, le=1.0)  # no description

    @field_validator("every", mode="before")
    @classmethod
    def _clamp(cls, value: int) -> int:  # the bug: out-of-range values are clamped, not refused
        return max(int(value), 1)


@schedules.register("acme_sloppy", params=SloppyParams)
class Sloppy(Schedule):
    """Halve the factor every `every` env steps, down to `floor`."""

    def __call__(self, step: int) -> float:
        return max(0.5 ** (step // self.params.every), self.params.floor)
'''


def _plugin_test_file(folder: Path, class_name: str, name: str) -> Path:
    """A plugin author's test file: the contract joined with one fixture (and a pytest.ini, so
    that the child pytest's rootdir is that folder, not lrtune's tests)."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    path = folder / "test_my_plugin.py"
    path.write_text(
        textwrap.dedent(
            f"""
            import pytest

            from lrtune.testing import PluginContract


            class {class_name}(PluginContract):
                @pytest.fixture
                def plugin(self):
                    return ("schedules", {name!r})
            """
        )
    )
    return path


@pytest.fixture(scope="module")
def sound_site(plugin_distribution: Any) -> Path:
    """``acme-quartering``, built and pip-installed into its own folder."""
    site: Path = plugin_distribution.install(
        "acme_quartering", SOUND_PLUGIN, "lrtune.schedules", "acme_quartering", "Quartering"
    )
    return site


@pytest.fixture(scope="module")
def broken_site(plugin_distribution: Any) -> Path:
    """``acme-sloppy``, built and pip-installed into its own folder."""
    site: Path = plugin_distribution.install(
        "acme_sloppy", BROKEN_PLUGIN, "lrtune.schedules", "acme_sloppy", "Sloppy"
    )
    return site


def test_an_installed_sound_plugin_passes_the_contract(
    sound_site: Path, tmp_path: Path, plugin_distribution: Any
) -> None:
    test_file = _plugin_test_file(tmp_path, "TestQuartering", "acme_quartering")
    out = plugin_distribution.pytest(sound_site, test_file)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    for test in (
        "test_entry_and_its_parameters_are_described",
        "test_example_and_defaults_validate",
        "test_an_unknown_parameter_is_refused_by_name",
        "test_every_bound_is_refused_naming_the_field",
    ):
        assert f"PASSED test_my_plugin.py::TestQuartering::{test}" in out.stdout, out.stdout
    # Its two bounds (every > 0, every <= 1e9), each a subtest of its own.
    assert "4 passed, 2 subtests passed" in out.stdout, out.stdout[-2000:]


def test_a_broken_plugin_fails_the_contract_naming_what_is_broken(
    broken_site: Path, tmp_path: Path, plugin_distribution: Any
) -> None:
    test_file = _plugin_test_file(tmp_path, "TestSloppy", "acme_sloppy")
    out = plugin_distribution.pytest(broken_site, test_file)
    assert out.returncode == 1, out.stdout[-4000:] + out.stderr[-2000:]
    lines = out.stdout.splitlines()
    failed = [line for line in lines if line.startswith("FAILED ")]
    assert any(
        "TestSloppy::test_entry_and_its_parameters_are_described" in line for line in failed
    ), failed
    assert "schedules:acme_sloppy.floor has no description" in out.stdout
    # The clamped lower bound of `every` is the one subtest that fails, named by its field;
    # the two bounds of `floor` are refused as they should be.
    # (pytest may append " - <message>" to a summary line, depending on the terminal's width.)
    subfailed = [line for line in lines if line.startswith("SUBFAILED")]
    assert len(subfailed) == 1, subfailed
    assert subfailed[0].startswith(
        "SUBFAILED[schedules:acme_sloppy-every=-1] "
        "test_my_plugin.py::TestSloppy::test_every_bound_is_refused_naming_the_field"
    ), subfailed
    assert "2 subtests passed" in out.stdout, out.stdout[-2000:]
    passed = [line for line in lines if line.startswith("PASSED ")]
    for test in ("test_example_and_defaults_validate", "test_an_unknown_parameter_is_refused"):
        assert any(test in line for line in passed), passed


def test_a_contract_class_without_the_plugin_fixture_says_what_to_add(
    tmp_path: Path, plugin_distribution: Any
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    test_file = tmp_path / "test_forgot.py"
    test_file.write_text(
        "from lrtune.testing import PluginContract\n\n\nclass TestForgot(PluginContract):\n"
        "    pass\n"
    )
    out = plugin_distribution.pytest(tmp_path, test_file)
    assert out.returncode == 1
    assert "does not define the `plugin` fixture" in out.stdout, out.stdout[-3000:]


def test_lrtune_runs_without_pytest_and_lrtune_testing_says_what_to_install() -> None:
    # `sys.modules["pytest"] = None` makes `import pytest` fail, as where pytest is not installed.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None
        import lrtune.cli, lrtune.registry, lrtune.policies
        assert "cosine" in lrtune.registry.schedules.names()  # built-in entries load
        try:
            import lrtune.testing
        except ImportError as exc:
            print("REFUSED", exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "REFUSED lrtune.testing needs pytest (9 or later)" in out.stdout, out.stdout
    assert "pip install 'pytest>=9'" in out.stdout


def test_lookup_names_the_slots_for_a_wrong_slot_and_close_matches_for_a_wrong_name() -> None:
    from lrtune.registry import UnknownPluginError
    from lrtune.testing import lookup

    assert lookup(("schedules", "cosine")).name == "cosine"
    with pytest.raises(ValueError, match="unknown slot 'schedule'; the slots are schedules"):
        lookup(("schedule", "cosine"))
    with pytest.raises(UnknownPluginError, match="'cosine'"):
        lookup(("schedules", "cosin"))
