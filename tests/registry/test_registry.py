"""The generic registry: lookups, errors, duplicates, and third-party entry points."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from lrtune.registry import (
    SLOTS,
    DuplicatePluginError,
    NoParams,
    PluginParams,
    PluginParamsError,
    Registry,
    UnknownPluginError,
    schedules,
)


def _fresh() -> Registry[object]:
    return Registry("schedules")


def test_every_slot_exists_and_has_an_entry_point_group() -> None:
    assert list(SLOTS) == [
        "schedules",
        "optimizers",
        "gradients",
        "feedback",
        "populations",
        "searchers",
        "schedulers",
        "agents",
    ]
    for name, registry in SLOTS.items():
        assert registry.entry_point_group == f"lrtune.{name}"


def test_unknown_name_lists_close_matches_and_the_plugins_command() -> None:
    with pytest.raises(UnknownPluginError) as info:
        schedules.get("cosin")
    message = str(info.value)
    assert "'cosine'" in message
    assert "lrtune plugins schedules" in message


def test_duplicate_name_is_an_error_but_reimport_of_the_same_factory_is_not() -> None:
    reg = _fresh()

    @reg.register("halve", params=NoParams)
    class Halve:
        """Halve."""

    reg.register("halve", params=NoParams)(Halve)  # same object: idempotent
    with pytest.raises(DuplicatePluginError, match="registered twice"):

        @reg.register("halve", params=NoParams)
        class Other:
            """Another."""


def test_params_are_validated_with_bounds_and_unknown_keys() -> None:
    reg = _fresh()

    class P(PluginParams):
        k: float = Field(1.0, gt=0, description="k")

    @reg.register("scaled", params=P, description="scaled")
    class Scaled:
        def __init__(self, params: P) -> None:
            self.params = params

    assert reg.build("scaled", {"k": "1e-4"}).params.k == pytest.approx(1e-4)  # YAML's 1e-4
    with pytest.raises(PluginParamsError, match="k"):
        reg.build("scaled", {"k": -1})
    with pytest.raises(PluginParamsError, match="unknown key"):
        reg.build("scaled", {"kk": 1})


def test_description_defaults_to_the_docstring_first_line() -> None:
    reg = _fresh()

    @reg.register("doc")
    class Doc:
        """First line.

        More.
        """

    assert reg.get("doc").description == "First line."


PLUGIN_SOURCE = '''
"""A third-party schedule plugin, installed as a real distribution by the test."""
from lrtune.policies import Schedule
from lrtune.registry import PluginParams, schedules
from pydantic import Field


class HalvingParams(PluginParams):
    every: int = Field(100, gt=0, description="env steps per halving")


@schedules.register("acme_halving", params=HalvingParams)
class Halving(Schedule):
    """Halve the factor every `every` env steps."""

    def __call__(self, step: int) -> float:
        return 0.5 ** (step // self.params.every)
'''


@pytest.fixture(scope="module")
def plugin_site(plugin_distribution: Any) -> Path:
    """The distribution ``acme-lr`` built and installed with pip into its own folder."""
    site: Path = plugin_distribution.install(
        "acme_lr", PLUGIN_SOURCE, "lrtune.schedules", "acme_halving", "Halving"
    )
    return site


def test_entry_point_plugin_is_listed_and_usable_in_a_policy(
    plugin_site: Path, plugin_distribution: Any
) -> None:
    out = plugin_distribution.run(
        plugin_site,
        "import json; from lrtune.registry import schedules; "
        "from lrtune.policies import LRPolicySpec; "
        "s = LRPolicySpec.model_validate({'lr': 1.0, 'schedule': "
        "{'name': 'acme_halving', 'params': {'every': 10}}}).build(); "
        "print(json.dumps([schedules.get('acme_halving').source, s.lr(25)]))",
    )
    assert out.returncode == 0, out.stderr
    source, lr = json.loads(out.stdout.strip().splitlines()[-1])
    assert source == "acme_lr"
    assert lr == 0.25


def test_entry_point_plugin_shows_in_lrtune_plugins(
    plugin_site: Path, plugin_distribution: Any
) -> None:
    out = plugin_distribution.run(
        plugin_site,
        "from lrtune.cli import main; main(['plugins', 'schedules', '--format', 'json'])",
    )
    assert out.returncode == 0, out.stderr
    names = [row["name"] for row in json.loads(out.stdout)]
    assert "acme_halving" in names and "cosine" in names


@pytest.mark.slow
def test_entry_point_plugin_is_found_inside_ray_workers(
    plugin_site: Path, plugin_distribution: Any
) -> None:
    code = textwrap.dedent(
        """
        import os
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        import ray
        from lrtune.running import init_local_ray
        init_local_ray(num_cpus=1)

        @ray.remote
        def lookup():
            from lrtune.registry import schedules
            return schedules.get("acme_halving").build({"every": 4})(9)

        print("WORKER", ray.get(lookup.remote()))
        ray.shutdown()
        """
    )
    out = plugin_distribution.run(plugin_site, code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "WORKER 0.25" in out.stdout


def test_a_broken_entry_point_names_the_distribution_to_fix(
    tmp_path: Path, plugin_distribution: Any
) -> None:
    dist = tmp_path / "broken_lr-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-lr\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lrtune.optimizers]\nbroken = no_such_module:X\n")
    out = plugin_distribution.run(
        tmp_path, "from lrtune.cli import main; raise SystemExit(main(['plugins']))"
    )
    assert out.returncode == 2
    assert "no_such_module" in out.stderr and "Traceback" not in out.stderr
