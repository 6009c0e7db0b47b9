"""lrtune's leaner learner update (per-update metrics, its own minibatch cutter) changes no
result: the same minibatches, weights and reduced metrics as RLlib's per-minibatch path."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import torch
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.minibatch_utils import MiniBatchCyclicIterator

from lrtune.learners import build_algorithm_config
from lrtune.learners._minibatches import FlatMiniBatchCycle, eligible


def _batch(rows: int, seed: int = 0) -> MultiAgentBatch:
    g = torch.Generator().manual_seed(seed)
    columns = {
        "obs": torch.randn(rows, 4, generator=g),
        "actions": torch.randint(0, 2, (rows,), generator=g, dtype=torch.int32),
        "loss_mask": torch.rand(rows, generator=g) > 0.05,
        "weights_seq_no": torch.arange(rows, dtype=torch.int64),
        "advantages": torch.randn(rows, generator=g),
    }
    return MultiAgentBatch({"default_policy": SampleBatch(columns)}, env_steps=rows)


@pytest.mark.parametrize(
    ("rows", "minibatch", "epochs", "shuffle", "total"),
    [
        (2158, 256, 10, True, 0),  # throughput.py's PPO: minibatches straddle epochs
        (512, 256, 3, True, 0),  # an exact fit
        (300, 64, 2, False, 0),
        (200, 64, 1, True, 7),  # a fixed number of minibatches
        (50, 64, 2, True, 0),  # a minibatch longer than the batch
    ],
)
def test_flat_cycle_yields_rllibs_minibatches(
    rows: int, minibatch: int, epochs: int, shuffle: bool, total: int
) -> None:
    kwargs = {
        "num_epochs": epochs,
        "minibatch_size": minibatch,
        "shuffle_batch_per_epoch": shuffle,
        "num_total_minibatches": total,
    }
    theirs_batch, ours_batch = _batch(rows), _batch(rows)
    np.random.seed(7)
    theirs = list(MiniBatchCyclicIterator(theirs_batch, **kwargs))
    stream_after = np.random.randint(1 << 30)
    np.random.seed(7)
    iterator = MiniBatchCyclicIterator(ours_batch, **kwargs)
    assert eligible(iterator)
    ours = list(FlatMiniBatchCycle(iterator))
    assert np.random.randint(1 << 30) == stream_after  # the same draws from numpy's stream
    assert len(ours) == len(theirs) > 0
    for a, b in zip(theirs, ours, strict=True):
        assert b.env_steps() == a.env_steps()
        (sa,), (sb,) = a.policy_batches.values(), b.policy_batches.values()
        assert list(sb.keys()) == list(sa.keys())
        assert len(sb) == len(sa)
        assert (sb.time_major, sb.zero_padded, sb.max_seq_len, sb.num_grad_updates) == (
            sa.time_major,
            sa.zero_padded,
            sa.max_seq_len,
            sa.num_grad_updates,
        )
        for key in sa.keys():
            assert sb[key].dtype == sa[key].dtype
            assert torch.equal(sb[key], sa[key]), key
    # The train batch is left shuffled as RLlib leaves it.
    for key in theirs_batch["default_policy"].keys():
        assert torch.equal(ours_batch["default_policy"][key], theirs_batch["default_policy"][key])


def test_flat_cycle_leaves_sequences_and_non_tensor_columns_to_rllib() -> None:
    seq = SampleBatch({"obs": torch.zeros(8, 2), "seq_lens": torch.tensor([4, 4])})
    listed = SampleBatch({"obs": torch.zeros(8, 2), "infos": [{}] * 8})
    numpy = SampleBatch({"obs": np.zeros((8, 2))})
    for module_batch in (seq, listed, numpy):
        batch = MultiAgentBatch({"default_policy": module_batch}, env_steps=8)
        assert not eligible(MiniBatchCyclicIterator(batch, num_epochs=2, minibatch_size=4))
    ok = MultiAgentBatch({"default_policy": SampleBatch({"obs": torch.zeros(8, 2)})}, 8)
    assert eligible(MiniBatchCyclicIterator(ok, num_epochs=2, minibatch_size=4))


# --- in a real PPO (Ray) ------------------------------------------------------------------------

PPO_SMALL: dict[str, Any] = {
    "train_batch_size_per_learner": 256,
    "minibatch_size": 96,  # minibatches straddle epochs (the batch has ~260-280 rows)
    "num_epochs": 3,
    "num_envs_per_env_runner": 2,
}
TIMING = ("timer", "throughput", "_time", "time_")


@pytest.fixture(scope="module")
def _ray(ray_session: Any) -> Iterator[None]:
    yield


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flat(v, key))
        elif not any(t in key for t in TIMING):
            out[key] = v
    return out


def _run(
    lean: bool, use_kl_loss: bool, coefficients: Mapping[str, float]
) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    config = build_algorithm_config(
        "ppo",
        "CartPole-v1",
        policy={"lr": 1e-3},
        hyperparams={**PPO_SMALL, "use_kl_loss": use_kl_loss, **coefficients},
        budget=2048,
        seed=5,
    )
    algo = config.build_algo()
    try:
        learner = algo.learner_group._learner
        learner._lrtune_lean = lean
        results = [_flat(algo.train()["learners"]) for _ in range(3)]
        weights = [p.detach().clone() for p in learner.module["default_policy"].parameters()]
        return weights, results
    finally:
        algo.stop()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and bool(a == b)


@pytest.mark.slow
@pytest.mark.usefixtures("_ray")
@pytest.mark.parametrize(
    ("use_kl_loss", "coefficients"),
    [
        (True, {}),  # RLlib's kl_coeff 0.2, entropy_coeff 0: the entropy outside autograd
        (False, {}),
        (True, {"kl_coeff": 0.0}),  # the presets': KL and entropy outside autograd
        (True, {"kl_coeff": 0.0, "entropy_coeff": 0.01}),  # the KL alone outside it
        (True, {"entropy_coeff": 0.01}),  # every term in autograd
    ],
    ids=["kl", "no-kl", "zero-kl", "zero-kl-entropy", "kl-entropy"],
)
def test_lean_update_trains_and_reports_as_rllibs_per_minibatch_path(
    use_kl_loss: bool, coefficients: Mapping[str, float]
) -> None:
    weights_rllib, results_rllib = _run(False, use_kl_loss, coefficients)
    weights_lean, results_lean = _run(True, use_kl_loss, coefficients)
    for a, b in zip(weights_rllib, weights_lean, strict=True):
        assert torch.equal(a, b)
    for ra, rb in zip(results_rllib, results_lean, strict=True):
        assert ra.keys() == rb.keys()
        different = {k: (ra[k], rb[k]) for k in ra if not _same(ra[k], rb[k])}
        assert not different
        assert "default_policy/vf_explained_var" in ra
        assert ("default_policy/mean_kl_loss" in ra) and (
            (ra["default_policy/mean_kl_loss"] != 0.0) == use_kl_loss
        )


def test_the_learners_global_norm_is_torchs_bit_for_bit() -> None:
    """`_global_norm`'s single-device fast path gives `get_total_norm`'s value exactly (a torch
    upgrade that changes that function makes this fail, not the norms drift)."""
    from lrtune.learners._learner import _global_norm

    g = torch.Generator().manual_seed(3)
    for scale in (1e-6, 1.0, 1e4):
        grads = [torch.randn(s, generator=g) * scale for s in ((64, 4), (64,), (64, 64), (2, 64))]
        assert torch.equal(_global_norm(grads), torch.nn.utils.get_total_norm(grads))
