"""A third-party population plugin, installed as a real distribution through the entry point."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

PLUGIN_SOURCE = '''
"""A third-party population plugin: PBT that only ever halves or doubles."""
from pydantic import Field

from lrtune.registry import PluginParams, populations
from lrtune.running import PBT


class HalvingParams(PluginParams):
    quantile_fraction: float = Field(0.5, ge=0.0, le=0.5)


@populations.register("acme_pbt", params=HalvingParams)
class AcmePBT(PBT):
    """PBT with the weaker half copying the stronger half."""

    def scheduler(self, setup):
        from lrtune.running import LRTunePBT

        return LRTunePBT(
            setup,
            time_attr=setup.time_attr,
            perturbation_interval=setup.interval,
            hyperparam_mutations=setup.nest({k: [0.0] for k in setup.mutable}),
            quantile_fraction=self.params.quantile_fraction,
            resample_probability=0.0,
        )
'''


@pytest.fixture(scope="module")
def plugin_site(plugin_distribution: Any) -> Path:
    """The distribution ``acme-pop`` built and installed with pip into its own folder."""
    site: Path = plugin_distribution.install(
        "acme_pop", PLUGIN_SOURCE, "lrtune.populations", "acme_pbt", "AcmePBT"
    )
    return site


def test_entry_point_population_is_listed_validated_and_builds_its_scheduler(
    plugin_site: Path, plugin_distribution: Any
) -> None:
    code = textwrap.dedent(
        """
        import io, json, contextlib
        from lrtune.cli import main
        from lrtune.specs import parse_job
        from lrtune.running._populations import population_plan
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main(["plugins", "populations", "--format", "json"])
        names = [row["name"] for row in json.loads(out.getvalue())]
        job = parse_job({
            "name": "acme", "agent": "ppo", "env": {"id": "CartPole-v1"},
            "budget": {"trial_env_steps": 4096}, "policy": {"lr": 3e-4},
            "population": {"name": "acme_pbt", "size": 4, "interval": 1024,
                           "mutable": {"lr": {"low": 1e-5, "high": 1e-2}}},
        })
        plan = population_plan(job)
        bad = None
        try:
            parse_job({**job.to_yaml_dict(), "population": {
                **job.population.model_dump(mode="json"), "resample_probability": 0.1}})
        except Exception as exc:
            bad = str(exc)
        print(json.dumps({
            "names": names, "params": job.population.params,
            "scheduler": type(plan.scheduler).__name__,
            "quantile": plan.scheduler._quantile_fraction,
            "members": len(plan.param_space["point"]["grid_search"]), "bad": bad,
        }))
        """
    )
    out = plugin_distribution.run(plugin_site, code)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"acme_pbt", "pbt", "pb2"} <= set(got["names"])
    assert got["params"] == {"quantile_fraction": 0.5}
    assert got["scheduler"] == "LRTunePBT" and got["quantile"] == 0.5
    assert got["members"] == 4
    assert "population.resample_probability" in got["bad"]
