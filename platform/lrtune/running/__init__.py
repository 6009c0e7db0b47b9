"""Running trials: the embedded loopback Ray, single-trial training, and Tune experiments."""

from lrtune.running._local_ray import init_local_ray, prepare_loopback_env
from lrtune.running._populations import (
    PBT,
    LRTunePBT,
    PB2Population,
    PopulationPlugin,
    PopulationSetup,
)
from lrtune.running._results import RunOutcome, TrialOutcome, read_results
from lrtune.running._run import (
    ExperimentConflictError,
    experiment_paths,
    run_job,
    start_warnings,
)
from lrtune.running._single import IterationRecord, train_single
from lrtune.running._trainable import LRTuneTrainable

__all__ = [
    "PBT",
    "ExperimentConflictError",
    "IterationRecord",
    "LRTunePBT",
    "LRTuneTrainable",
    "PB2Population",
    "PopulationPlugin",
    "PopulationSetup",
    "RunOutcome",
    "TrialOutcome",
    "experiment_paths",
    "init_local_ray",
    "prepare_loopback_env",
    "read_results",
    "run_job",
    "start_warnings",
    "train_single",
]
