"""Running trials: the embedded loopback Ray and single-trial training (Tune comes next)."""

from lrtune.running._local_ray import init_local_ray, prepare_loopback_env
from lrtune.running._single import IterationRecord, train_single

__all__ = ["IterationRecord", "init_local_ray", "prepare_loopback_env", "train_single"]
