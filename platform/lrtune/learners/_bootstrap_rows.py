"""PPO's train batch without the rows RLlib adds only to bootstrap values.

RLlib 2.60's PPO learner pipeline appends one artificial timestep to every episode chunk
(``AddOneTsToEpisodesAndTruncate``) so that GAE can bootstrap the value of the chunk's last
observation, and marks those rows out of the loss with ``Columns.LOSS_MASK``. They stay in the
batch after GAE: its minibatches of ``minibatch_size`` rows carry them (fewer real samples in
some), an epoch takes more minibatches than ``train_batch_size / minibatch_size`` (about 82 in
place of 80 on `benchmarks/throughput.py`'s PPO, 2 % more updates), and each loss term is a
masked mean (a boolean gather and its backward, ~40 µs per term on one CPU).

`DropBootstrapRows`, appended after GAE, keeps only the rows the loss reads, so the minibatches
are made of sampled steps alone, as Stable-Baselines3's and CleanRL's PPO make them: 10 epochs
over 2,048 steps in minibatches of 256 are 80 updates of 256 steps. It acts on flat batches
(a module without state); a stateful module's batch is zero-padded sequences that need the mask,
and is left as it is.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import tree
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns


class DropBootstrapRows(ConnectorV2):  # type: ignore[misc]
    """Learner connector piece: a flat module batch's rows with a false ``LOSS_MASK`` removed,
    and the mask with them (the loss then takes plain means). Called once per learner update,
    after GAE, with the batch's columns already torch tensors."""

    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: Any,
        explore: Any = None,
        shared_data: Any = None,
        metrics: Any = None,
        **kwargs: Any,
    ) -> Any:
        for module_id, module_batch in batch.items():
            mask = module_batch.get(Columns.LOSS_MASK)
            if not _flat_mask(mask) or rl_module[module_id].is_stateful():
                continue
            rows = int(mask.shape[0])
            columns = {k: v for k, v in module_batch.items() if k != Columns.LOSS_MASK}
            if not all(_rowwise(v, rows) for v in tree.flatten(columns)):
                continue  # a column that is not one entry per row: keep RLlib's masked batch
            del module_batch[Columns.LOSS_MASK]
            if bool(mask.all()):
                continue
            keep = mask.nonzero().squeeze(1)
            for key, value in columns.items():
                module_batch[key] = tree.map_structure(partial(_rows, keep), value)
        return batch


def _rows(keep: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return value.index_select(0, keep)


def _flat_mask(mask: Any) -> bool:
    return torch.is_tensor(mask) and mask.dim() == 1 and mask.dtype == torch.bool


def _rowwise(value: Any, rows: int) -> bool:
    return torch.is_tensor(value) and value.dim() >= 1 and int(value.shape[0]) == rows
