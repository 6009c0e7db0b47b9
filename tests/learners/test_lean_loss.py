"""lrtune's PPO loss pieces compute what RLlib's do, bit for bit: `LeanCategorical` against
RLlib's `TorchCategorical` (torch's ``Categorical``), values and gradients."""

from __future__ import annotations

import pytest
import torch
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical

from lrtune.learners._categorical import LeanCategorical


def _logits(kind: str, rows: int = 257, actions: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed({"plain": 0, "wide": 1, "underflow": 2}[kind])
    x = torch.randn(rows, actions, generator=g)
    if kind == "wide":
        x = x * 30.0
    if kind == "underflow":  # probabilities that are exactly 0 (an infinite KL, a 0·log 0)
        x[::3, 0] = -200.0
        x[1::3, 1] = 150.0
    return x


def _terms(cls: type, new: torch.Tensor, old: torch.Tensor, actions: torch.Tensor) -> list:
    curr = cls.from_logits(new)
    prev = cls.from_logits(old)
    kl = prev.kl(curr)
    entropy = curr.entropy()
    logp = curr.logp(actions)
    # A loss over every term, so that each one's gradient reaches the logits.
    finite = torch.where(torch.isfinite(kl), kl, torch.zeros_like(kl))
    return [logp, entropy, kl, (logp.exp() * 0.7 + 0.1 * entropy + 0.3 * finite).mean()]


@pytest.mark.parametrize("kind", ["plain", "wide", "underflow"])
@pytest.mark.parametrize("actions", [2, 5])
def test_lean_categorical_is_torchs_bit_for_bit(kind: str, actions: int) -> None:
    base = _logits(kind, actions=actions)
    old = _logits("plain", actions=actions) * 2.0
    picked = torch.randint(0, actions, (base.shape[0],), generator=torch.Generator().manual_seed(9))
    results, grads = [], []
    for cls in (TorchCategorical, LeanCategorical):
        new = base.clone().requires_grad_(True)
        terms = _terms(cls, new, old, picked.to(torch.int32))
        terms[-1].backward()
        results.append([t.detach() for t in terms])
        grads.append(new.grad)
    for theirs, ours in zip(*results, strict=True):
        assert theirs.dtype == ours.dtype and theirs.shape == ours.shape
        assert torch.equal(theirs.isnan(), ours.isnan())
        assert torch.equal(theirs.nan_to_num(), ours.nan_to_num())
    assert torch.equal(grads[0], grads[1])
    if kind == "underflow":
        assert torch.isinf(results[0][2]).any()  # the case torch marks with an infinite KL
