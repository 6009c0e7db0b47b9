"""Search plugins: the ``searchers`` and ``schedulers`` slots and their built-in entries.

A job's ``search:`` names a searcher (an Optuna sampler that lrtune's Optuna searcher drives,
an exhaustive grid, or any other Ray Tune searcher) and its ``scheduler:`` an early-stopping
scheduler; both are registry entries looked up by name when a job is validated. Like the
``populations`` slot, the entries import neither Ray nor Optuna: the Tune and Optuna objects
are built when a run starts (`SearcherPlugin`, `SchedulerPlugin`).

Third-party searchers and schedulers register through the entry-point groups
``lrtune.searchers`` and ``lrtune.schedulers``.
"""

from lrtune.search.schedulers import SchedulerPlugin, SchedulerSetup
from lrtune.search.searchers import (
    GridPlugin,
    OptunaSamplerPlugin,
    SearcherPlugin,
    SearchSetup,
    TuneSearcherPlugin,
    make_sampler,
    sampler_warning,
)

__all__ = [
    "GridPlugin",
    "OptunaSamplerPlugin",
    "SchedulerPlugin",
    "SchedulerSetup",
    "SearchSetup",
    "SearcherPlugin",
    "TuneSearcherPlugin",
    "make_sampler",
    "sampler_warning",
]
