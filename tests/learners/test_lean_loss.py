"""lrtune's PPO loss computes what RLlib's does, bit for bit: `LeanCategorical` against RLlib's
`TorchCategorical` (torch's ``Categorical``), and the whole loss (values and gradients) against
RLlib's `PPOTorchLearner.compute_loss_for_module`."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.evaluation.postprocessing import Postprocessing

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


# --- the PPO loss (a learner without Ray) ---------------------------------------------------------


def _ppo_learner(coefficients: dict[str, float]) -> Any:
    import gymnasium as gym

    from lrtune.learners import build_algorithm_config

    config = build_algorithm_config(
        "ppo", "CartPole-v1", policy={"lr": 1e-3}, hyperparams=coefficients, budget=2048, seed=5
    )
    return config.build_learner(env=gym.make("CartPole-v1"))


def _ppo_batch(rows: int = 7) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(4)
    return {
        Columns.OBS: torch.randn(rows, 4, generator=g),
        Columns.ACTIONS: torch.randint(0, 2, (rows,), generator=g),
        Columns.ACTION_LOGP: -torch.rand(rows, generator=g),
        Columns.ACTION_DIST_INPUTS: torch.randn(rows, 2, generator=g),
        Postprocessing.ADVANTAGES: torch.randn(rows, generator=g),
        Postprocessing.VALUE_TARGETS: torch.randn(rows, generator=g),
        Columns.LOSS_MASK: torch.arange(rows) != 3,
    }


@pytest.mark.parametrize(
    "coefficients",
    [{"kl_coeff": 0.0}, {"kl_coeff": 0.0, "entropy_coeff": 0.01}, {}, {"entropy_coeff": 0.01}],
    ids=["zero-kl", "zero-kl-entropy", "kl", "kl-entropy"],
)
@pytest.mark.parametrize("vanishing", [False, True], ids=["finite", "vanishing-probability"])
def test_lean_ppo_loss_is_rllibs_bit_for_bit(
    coefficients: dict[str, float], vanishing: bool
) -> None:
    """lrtune's PPO loss (zero-coefficient terms outside autograd, `LeanCategorical`) gives
    RLlib's loss value and gradients, also where a probability underflows to 0 (an infinite
    KL: RLlib's loss is then NaN with ``kl_coeff`` 0, inf with another, and lrtune's too)."""
    learner = _ppo_learner(coefficients)
    module_id = "default_policy"
    config = learner.config.get_config_for_module(module_id)
    batch = _ppo_batch()
    logits_data = torch.randn(7, 2, generator=torch.Generator().manual_seed(8))
    if vanishing:
        logits_data[1] = torch.tensor([-200.0, 150.0])
    params = list(learner.module[module_id].parameters())
    outcomes = []
    for lean in (False, True):
        learner._lrtune_lean = lean
        learner._reset_deferred()
        for param in params:
            param.grad = None
        logits = logits_data.clone().requires_grad_(True)
        loss = learner.compute_loss_for_module(
            module_id=module_id,
            config=config,
            batch=batch,
            fwd_out={Columns.ACTION_DIST_INPUTS: logits},
        )
        loss.backward()
        grads = [logits.grad] + [p.grad for p in params if p.grad is not None]
        outcomes.append((loss.detach(), grads))
    (loss_a, grads_a), (loss_b, grads_b) = outcomes
    if vanishing:
        assert not torch.isfinite(loss_a)
    assert torch.equal(loss_a.isnan(), loss_b.isnan())
    assert torch.equal(loss_a.nan_to_num(), loss_b.nan_to_num())
    assert len(grads_a) == len(grads_b) > 1
    for a, b in zip(grads_a, grads_b, strict=True):
        assert torch.equal(a, b)
