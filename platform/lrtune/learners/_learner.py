"""lrtune's RLlib learners: they own the optimizer and the learning rate.

Before every update the learner sets ``lr = base_lr × schedule(env_steps) × feedback factor`` on
every param group of its optimizers, then reads it back; it never lets RLlib's own LR schedulers
(which are not checkpointed, and which apply a restored or exploited LR one iteration late)
touch the rate. The order of calls within one training iteration:

1. `before_gradient_based_update` — the lifetime env-step count arrives; the LR is set.
2. per minibatch: `compute_gradients` → `postprocess_gradients` (gating, norms measured before
   and after) → `apply_gradients` (feedback rules may veto the step, e.g. a divergence guard).
3. `after_gradient_based_update` — the iteration's lrtune metrics are logged.
4. `end_iteration` (called by `LRTuneCallbacks.on_train_result`) — the iteration's signals
   (PPO's KL, the mean episode return) reach the feedback rules; their new factor applies from
   the next update.

Feedback state and the last env-step count are part of the learner's checkpointed state, so a
restored trial continues the exact trajectory; the policy itself always comes from the current
config, so a restore into a config with another base LR takes effect on the very next update.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core import ALL_MODULES
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from lrtune.policies import (
    FeedbackRule,
    FeedbackState,
    IterationSignals,
    LRPolicy,
    LRPolicySpec,
    UpdateSignals,
)

#: Key of lrtune's settings inside RLlib's ``learner_config_dict``.
CONFIG_KEY = "lrtune"
#: Key of lrtune's part of the learner's checkpointed state.
STATE_KEY = "lrtune"
#: Keys of the metrics the learner logs under RLlib's ``ALL_MODULES`` learner results.
METRIC_KEYS = (
    "lr",
    "lr_env_step",
    "grad_norm_pre_gating",
    "grad_norm_post_gating",
    "feedback_factor",
    "schedule_factor",
    "skipped_updates",
    "divergence_events",
    "diverged",
)


class LRMismatchError(RuntimeError):
    """The rate read back from the optimizer differs from the one lrtune set."""


class LRPolicyLearner(TorchLearner):
    """Mixin over an RLlib torch learner that applies an lrtune learning-rate policy.

    Combine it with an algorithm's torch learner, mixin first (see `LRTunePPOLearner`,
    `LRTuneDQNLearner`). The policy is read from ``config.learner_config_dict["lrtune"]``.
    """

    # --- construction -------------------------------------------------------------------------

    def build(self) -> None:
        """Build the learner: set torch's threads to the CPUs held, compile the policy."""
        settings: Mapping[str, Any] = self.config.learner_config_dict.get(CONFIG_KEY, {})
        if "policy" not in settings:
            raise ValueError(
                "lrtune learner: config.learner_config_dict['lrtune']['policy'] is missing; "
                "build the config with lrtune.learners.build_algorithm_config()."
            )
        threads = int(settings.get("num_threads", 0))
        if threads > 0:
            torch.set_num_threads(threads)
        self._lrtune_spec = LRPolicySpec.model_validate(settings["policy"])
        self._lrtune_policy: LRPolicy = self._lrtune_spec.build(budget=settings.get("budget"))
        self._lrtune_rules: list[FeedbackRule] = self._lrtune_policy.rules
        self._lrtune_feedback: list[FeedbackState] = self._lrtune_policy.initial_feedback_state()
        self._lrtune_wants_update_signals = any(
            type(rule).on_update is not FeedbackRule.on_update for rule in self._lrtune_rules
        )
        self._lrtune_env_steps = 0
        self._lrtune_lr = float("nan")
        self._lrtune_last_loss: torch.Tensor | None = None
        self._lrtune_kl: float | None = None
        self._lrtune_skipped = 0
        # Norm sums stay tensors until the iteration ends (no device sync per minibatch).
        self._norm_pre_sum: Any = 0.0
        self._norm_post_sum: Any = 0.0
        self._norm_count = 0
        self._last_pre_norm: Any = torch.zeros(())
        super().build()
        self._apply_lr()

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """Register the policy's optimizer over the module's parameters (no RLlib LR schedule)."""
        assert self._module is not None, "RLlib builds the module before the optimizers"
        module = self._module[module_id]
        params: list[Any] = list(self.get_parameters(module))
        lr = self._lrtune_policy.lr(self._lrtune_env_steps, self._lrtune_feedback)
        optimizer = self._lrtune_policy.optimizer.build(params, lr=lr)
        self.register_optimizer(
            module_id=module_id, optimizer=optimizer, params=params, lr_or_lr_schedule=None
        )

    # --- the learning rate --------------------------------------------------------------------

    def current_lr(self) -> float:
        """The rate the policy gives now (env steps and feedback state as they are)."""
        return self._lrtune_policy.lr(self._lrtune_env_steps, self._lrtune_feedback)

    def _apply_lr(self) -> None:
        lr = self.current_lr()
        if not math.isfinite(lr) or lr < 0:
            raise LRMismatchError(f"lrtune: the policy produced an invalid learning rate {lr!r}")
        for optimizer in self._named_optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
        self._lrtune_lr = lr
        self._check_lr()

    def _check_lr(self) -> None:
        """Fail loudly if any param group's rate differs from the one lrtune set."""
        for name, optimizer in self._named_optimizers.items():
            for i, group in enumerate(optimizer.param_groups):
                applied = group["lr"]
                applied = float(applied.item() if torch.is_tensor(applied) else applied)
                if applied != self._lrtune_lr:
                    raise LRMismatchError(
                        f"lrtune: optimizer {name!r} param group {i} has lr {applied!r}, but the "
                        f"policy set {self._lrtune_lr!r}. Something else changed the rate "
                        "(an RLlib LR schedule or a torch LR scheduler?); lrtune owns it."
                    )

    def applied_lr(self) -> float:
        """The rate read back from the first optimizer's first param group (what torch uses)."""
        optimizer = next(iter(self._named_optimizers.values()))
        value = optimizer.param_groups[0]["lr"]
        return float(value.item() if torch.is_tensor(value) else value)

    # --- hooks of one update ------------------------------------------------------------------

    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Receive the lifetime env-step count and set the learning rate for this update."""
        super().before_gradient_based_update(timesteps=timesteps)
        steps = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME)
        if steps is not None:
            self._lrtune_env_steps = int(steps)
        self._reset_norm_accumulators()
        self._apply_lr()

    def compute_gradients(self, loss_per_module: Any, **kwargs: Any) -> Any:
        """Compute gradients, keeping the total loss for feedback rules that watch it."""
        if self._lrtune_wants_update_signals:
            total = sum(loss_per_module.values())
            self._lrtune_last_loss = total.detach() if torch.is_tensor(total) else None
        return super().compute_gradients(loss_per_module, **kwargs)

    def postprocess_gradients(self, gradients_dict: dict[Any, Any]) -> dict[Any, Any]:
        """Gate the gradients with the policy's gradient plugin; measure the norm around it.

        Replaces RLlib's own ``grad_clip`` handling (the config builder sets it to None).
        """
        refs = [ref for ref, g in gradients_dict.items() if g is not None]
        grads = [gradients_dict[ref] for ref in refs]
        if not grads:
            return gradients_dict
        params = [self._params[ref] for ref in refs]
        pre = _global_norm(grads)
        self._lrtune_policy.gate.apply(grads, params)
        post = _global_norm(grads)
        self._norm_pre_sum = self._norm_pre_sum + pre
        self._norm_post_sum = self._norm_post_sum + post
        self._norm_count += 1
        self._last_pre_norm = pre
        return gradients_dict

    def apply_gradients(self, gradients_dict: dict[Any, Any]) -> None:
        """Let feedback rules veto the step (divergence), then step with the lrtune rate."""
        if self._lrtune_wants_update_signals:
            loss_t = self._lrtune_last_loss
            # No loss tensor (a module without loss terms): judge the gradients alone.
            loss = float(loss_t.item()) if loss_t is not None else 0.0
            pre_norm = float(self._last_pre_norm.item()) if self._norm_count else 0.0
            signals = UpdateSignals(
                env_steps=self._lrtune_env_steps,
                loss=loss,
                grads_finite=math.isfinite(pre_norm),
                grad_norm=pre_norm,
            )
            skip = False
            for i, rule in enumerate(self._lrtune_rules):
                self._lrtune_feedback[i], veto = rule.on_update(self._lrtune_feedback[i], signals)
                skip = skip or veto
            # A rule may have cut its factor: the new rate holds from this very step on.
            self._apply_lr()
            if skip:
                self._lrtune_skipped += 1
                for param in self._params.values():
                    param.grad = None
                return
        self._check_lr()
        super().apply_gradients(gradients_dict)
        self._check_lr()

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Log this update's lrtune metrics (the last update's values win within an iteration)."""
        super().after_gradient_based_update(timesteps=timesteps)
        self._lrtune_kl = self._read_kl()
        n = max(self._norm_count, 1)
        pre = float(self._norm_pre_sum.item()) / n if self._norm_count else float("nan")
        post = float(self._norm_post_sum.item()) / n if self._norm_count else float("nan")
        events = sum(int(s.get("events", 0)) for s in self._lrtune_feedback)
        diverged = any(
            r.diverged(s) for r, s in zip(self._lrtune_rules, self._lrtune_feedback, strict=True)
        )
        values: dict[str, float] = {
            "lr": self.applied_lr(),
            "lr_env_step": float(self._lrtune_env_steps),
            "grad_norm_pre_gating": pre,
            "grad_norm_post_gating": post,
            "feedback_factor": self._lrtune_policy.feedback_factor(self._lrtune_feedback),
            "schedule_factor": self._lrtune_policy.schedule(self._lrtune_env_steps),
            "skipped_updates": float(self._lrtune_skipped),
            "divergence_events": float(events),
            "diverged": float(diverged),
        }
        if self._lrtune_kl is not None:
            values["kl"] = self._lrtune_kl
        for key, value in values.items():
            self.metrics.log_value((ALL_MODULES, f"lrtune_{key}"), value, reduce="item")

    def _read_kl(self) -> float | None:
        return None

    # --- once per iteration -------------------------------------------------------------------

    def end_iteration(self, episode_return: float | None) -> dict[str, float]:
        """Feed the iteration's signals to the feedback rules; return the new feedback factor.

        Called once per training iteration by `LRTuneCallbacks` after the results are in.
        """
        ret = (
            episode_return if episode_return is not None and math.isfinite(episode_return) else None
        )
        signals = IterationSignals(
            env_steps=self._lrtune_env_steps, kl=self._lrtune_kl, episode_return=ret
        )
        for i, rule in enumerate(self._lrtune_rules):
            self._lrtune_feedback[i] = rule.on_iteration(self._lrtune_feedback[i], signals)
        self._apply_lr()
        return {"feedback_factor": self._lrtune_policy.feedback_factor(self._lrtune_feedback)}

    # --- checkpoints --------------------------------------------------------------------------

    def get_state(
        self, components: Any = None, *, not_components: Any = None, **kwargs: Any
    ) -> Any:
        """RLlib's learner state plus lrtune's: feedback state and schedule position."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[STATE_KEY] = {
            "feedback": copy.deepcopy(self._lrtune_feedback),
            "rules": [type(r).__name__ for r in self._lrtune_rules],
            "env_steps": self._lrtune_env_steps,
            "skipped_updates": self._lrtune_skipped,
        }
        return state

    def set_state(self, state: Any) -> None:
        """Restore, then re-apply the *current* policy's rate at once (never the restored one)."""
        super().set_state(state)
        saved = state.get(STATE_KEY) if isinstance(state, Mapping) else None
        if saved is not None:
            self._lrtune_env_steps = int(saved.get("env_steps", 0))
            self._lrtune_skipped = int(saved.get("skipped_updates", 0))
            names = [type(r).__name__ for r in self._lrtune_rules]
            if list(saved.get("rules", [])) == names:
                self._lrtune_feedback = copy.deepcopy(list(saved["feedback"]))
            # A different set of rules (a changed policy) starts its feedback afresh.
        self._apply_lr()

    # --- helpers ------------------------------------------------------------------------------

    def _reset_norm_accumulators(self) -> None:
        self._norm_pre_sum = 0.0
        self._norm_post_sum = 0.0
        self._norm_count = 0
        self._last_pre_norm = torch.zeros(())


def _global_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all ``grads`` together: torch's own (one norm kernel per device and dtype,
    the per-device norms gathered on the first gradient's device)."""
    return torch.nn.utils.get_total_norm(grads)


class LRTunePPOLearner(LRPolicyLearner, PPOTorchLearner):
    """RLlib's PPO torch learner with lrtune's learning-rate policy; reports the KL."""

    def _read_kl(self) -> float | None:
        if not getattr(self.config, "use_kl_loss", False):
            return None
        values = []
        for module_id in self.module.keys():
            try:
                value = self.metrics.peek((module_id, "mean_kl_loss"))
            except (KeyError, ValueError, TypeError):
                continue
            try:
                values.append(float(value.detach() if torch.is_tensor(value) else value))
            except (KeyError, ValueError, TypeError):
                continue
        return sum(values) / len(values) if values else None


class LRTuneDQNLearner(LRPolicyLearner, DQNTorchLearner):
    """RLlib's DQN torch learner with lrtune's learning-rate policy."""


LEARNERS: dict[str, type[Learner]] = {"ppo": LRTunePPOLearner, "dqn": LRTuneDQNLearner}
