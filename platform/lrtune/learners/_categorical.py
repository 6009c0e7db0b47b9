"""RLlib's `TorchCategorical` as PPO's loss uses it, without its per-call objects.

RLlib 2.60's PPO loss builds one `TorchCategorical` per minibatch for the current policy and one
for the old (the KL term), each wrapping a ``torch.distributions.Categorical``
(``validate_args=False``), and asks them for ``logp``, ``entropy`` and the KL (torch's
``kl_divergence`` registry lookup). On a 256-row minibatch of a two-action policy that Python
(object construction, lazy properties, the registry) costs about as much as the kernels.
`LeanCategorical` runs torch 2.13's kernels for those calls, in the same order and with the same
arguments (``Categorical.__init__``, ``log_prob``, ``entropy``, the lazy ``probs`` and
``_kl_categorical_categorical``), so the same autograd graph: the same values and gradients bit
for bit (``tests/learners/test_lean_loss.py`` checks them against torch's own).
"""

from __future__ import annotations

from math import inf
from typing import Any

import torch
from torch.nn import functional


class LeanCategorical:
    """The categorical distribution over ``logits``' last axis, as RLlib's `TorchCategorical`
    (from logits) computes its log-probabilities, entropy and KL divergence."""

    __slots__ = ("_probs", "logits")

    def __init__(self, logits: torch.Tensor) -> None:
        # Categorical.__init__: the normalised log-probabilities.
        self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._probs: torch.Tensor | None = None

    @classmethod
    def from_logits(cls, logits: torch.Tensor, **kwargs: Any) -> LeanCategorical:
        """As `TorchCategorical.from_logits`."""
        return cls(logits)

    def detached(self) -> LeanCategorical:
        """The same distribution outside autograd (its probabilities too, if computed)."""
        view = LeanCategorical.__new__(LeanCategorical)
        view.logits = self.logits.detach()
        view._probs = None if self._probs is None else self._probs.detach()
        return view

    @property
    def probs(self) -> torch.Tensor:
        """Categorical's lazy ``probs`` (``logits_to_probs``: a softmax), computed once."""
        if self._probs is None:
            with torch.enable_grad():  # as torch's lazy_property
                self._probs = functional.softmax(self.logits, dim=-1)
        return self._probs

    def logp(self, value: torch.Tensor) -> torch.Tensor:
        """``Categorical.log_prob`` (without argument validation, as RLlib builds it)."""
        index = value.long().unsqueeze(-1)
        index, log_pmf = torch.broadcast_tensors(index, self.logits)
        index = index[..., :1]
        return log_pmf.gather(-1, index).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """``Categorical.entropy``."""
        min_real = torch.finfo(self.logits.dtype).min
        logits = torch.clamp(self.logits, min=min_real)
        p_log_p = logits * self.probs
        return -p_log_p.sum(-1)

    def kl(self, other: LeanCategorical) -> torch.Tensor:
        """KL(self ‖ other): torch's ``_kl_categorical_categorical``."""
        t = self.probs * (self.logits - other.logits)
        t[(other.probs == 0).expand_as(t)] = inf
        t[(self.probs == 0).expand_as(t)] = 0
        return t.sum(-1)
