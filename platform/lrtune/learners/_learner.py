"""lrtune's RLlib learners: they own the optimizer and the learning rate.

Before every update the learner sets ``lr = base_lr × schedule(env_steps) × feedback factor`` on
every param group of its optimizers, then reads it back; it never lets RLlib's own LR schedulers
(which are not checkpointed, and which apply a restored or exploited LR one iteration late)
touch the rate. The order of calls within one training iteration:

1. `before_gradient_based_update` — the lifetime env-step count arrives; the LR is set.
2. per minibatch: `compute_gradients` → `postprocess_gradients` (gating, norms measured before
   and after) → `apply_gradients` (feedback rules may veto the step, e.g. a divergence guard).
3. `after_gradient_based_update` — the iteration's lrtune metrics are logged, and so are the
   RLlib metrics that RLlib logs per minibatch but keeps once per update (the last minibatch's
   PPO loss terms, the steps trained: see `LRPolicyLearner._flush_deferred`).
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.algorithms.ppo.ppo import (
    LEARNER_RESULTS_KL_KEY,
    LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY,
    LEARNER_RESULTS_VF_LOSS_UNCLIPPED_KEY,
)
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core import ALL_MODULES
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.core.learner.learner import (
    DEFAULT_OPTIMIZER,
    ENTROPY_KEY,
    POLICY_LOSS_KEY,
    VF_LOSS_KEY,
)
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.evaluation.postprocessing import Postprocessing
from ray.rllib.utils.metrics import (
    MODULE_TRAIN_BATCH_SIZE_MEAN,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_ENV_STEPS_TRAINED,
    NUM_ENV_STEPS_TRAINED_LIFETIME,
    NUM_MODULE_STEPS_TRAINED,
    NUM_MODULE_STEPS_TRAINED_LIFETIME,
    WEIGHTS_SEQ_NO,
)
from ray.rllib.utils.torch_utils import explained_variance

from lrtune.agents import MODEL_ROLE
from lrtune.learners._categorical import LeanCategorical
from lrtune.learners._minibatches import FlatMiniBatchCycle, eligible
from lrtune.learners._rewards import RewardScaling, reward_scaling_pieces
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


@dataclass
class _Role:
    """One optimizer role's compiled policy, feedback state and the rate last set."""

    name: str
    policy: LRPolicy
    feedback: list[FeedbackState]
    lr: float = float("nan")


class LRPolicyLearner(TorchLearner):
    """Mixin over an RLlib torch learner that applies an lrtune learning-rate policy.

    Combine it with an algorithm's torch learner, mixin first (see `LRTunePPOLearner`,
    `LRTuneDQNLearner`, `LRTuneSACLearner`). The policy is read from
    ``config.learner_config_dict["lrtune"]``: ``policy`` (the shared policy), ``roles`` (each
    optimizer role's complete policy, `LRPolicySpec.for_role`) and ``optimizer_roles`` (RLlib
    optimizer name -> role, ``"*"`` for every optimizer). Each role has its own rate, feedback
    state and gradient gate; the first role is the one reported as ``lr``.
    """

    # What the update's minibatches leave for `_flush_deferred` (see there).
    _deferred_off_policy_batch: Any
    _deferred_module_sizes: dict[Any, list[int]]
    _deferred_env_steps: list[int]
    _deferred_prometheus: list[int]

    # --- construction -------------------------------------------------------------------------

    def build(self) -> None:
        """Build the learner: set torch's threads to the CPUs held, compile each role's policy."""
        settings: Mapping[str, Any] = self.config.learner_config_dict.get(CONFIG_KEY, {})
        if "policy" not in settings:
            raise ValueError(
                "lrtune learner: config.learner_config_dict['lrtune']['policy'] is missing; "
                "build the config with lrtune.learners.build_algorithm_config()."
            )
        threads = int(settings.get("num_threads", 0))
        if threads > 0:
            torch.set_num_threads(threads)
        budget = settings.get("budget")
        role_specs: Mapping[str, Any] = settings.get("roles") or {MODEL_ROLE: settings["policy"]}
        self._lrtune_roles: dict[str, _Role] = {}
        for name, data in role_specs.items():
            policy = LRPolicySpec.model_validate(data).build(budget=budget)
            self._lrtune_roles[name] = _Role(name, policy, policy.initial_feedback_state())
        self._lrtune_main = next(iter(self._lrtune_roles.values()))
        self._lrtune_role_of_optimizer: dict[str, str] = dict(settings.get("optimizer_roles", {}))
        # RLlib's full optimizer name (``<module>_<name>``) -> role; param ref -> role.
        self._lrtune_optimizer_role: dict[str, str] = {}
        self._lrtune_param_role: dict[Any, str] = {}
        self._lrtune_wants_update_signals = any(
            type(rule).on_update is not FeedbackRule.on_update
            for role in self._lrtune_roles.values()
            for rule in role.policy.rules
        )
        self._lrtune_env_steps = 0
        self._lrtune_last_loss: torch.Tensor | None = None
        self._lrtune_kl: float | None = None
        self._lrtune_skipped = 0
        # Norm sums stay tensors until the iteration ends (no device sync per minibatch).
        self._norm_pre_sum: Any = 0.0
        self._norm_post_sum: Any = 0.0
        self._norm_count = 0
        self._last_pre_norm: Any = torch.zeros(())
        self._last_post_norm: Any = torch.zeros(())
        # Without a gate that changes gradients, the norm after gating is the one before it.
        self._lrtune_gates_change = any(
            role.policy.gate.changes_gradients for role in self._lrtune_roles.values()
        )
        super().build()
        # RLlib's apply_gradients checks every gradient tensor for NaN/inf, twice, per update;
        # lrtune has the global norm already, which is finite iff they all are. Its own step
        # (see apply_gradients) skips those checks unless RLlib has more to do there: torch LR
        # schedulers (which lrtune must see change the rate) or mixed-precision grad scalers.
        self._lrtune_steps_itself = self._lr_scheduler_classes is None and (
            self._grad_scalers is None
        )
        # RLlib logs several metrics once per minibatch that it keeps once per update (window
        # 1, or sums): lrtune logs them once per update, at its end (see `_flush_deferred`),
        # and cuts the minibatches itself (`FlatMiniBatchCycle`). Not under torch.compile,
        # which traces the per-minibatch calls.
        self._lrtune_lean = not getattr(self, "_torch_compile_complete_update", False)
        self._reset_deferred()
        self._apply_lr()

    def role_for(self, optimizer_name: str) -> _Role:
        """The role whose policy owns RLlib optimizer ``optimizer_name`` (as the agent entry's
        `AgentPlugin.roles` say; an agent with one role owns every optimizer)."""
        name = self._lrtune_role_of_optimizer.get(
            optimizer_name, self._lrtune_role_of_optimizer.get("*")
        )
        if name is None:
            if len(self._lrtune_roles) == 1:
                return self._lrtune_main
            raise ValueError(
                f"lrtune learner: optimizer {optimizer_name!r} belongs to no optimizer role "
                f"({sorted(self._lrtune_role_of_optimizer)}); fix the agent entry's roles."
            )
        return self._lrtune_roles[name]

    def register_role_optimizer(
        self, module_id: str, optimizer_name: str, params: list[Any], **build_kwargs: Any
    ) -> None:
        """Build ``optimizer_name``'s optimizer with its role's plugin and rate, and register
        it with RLlib without an RLlib LR schedule (lrtune sets the rate itself)."""
        role = self.role_for(optimizer_name)
        lr = role.policy.lr(self._lrtune_env_steps, role.feedback)
        optimizer = role.policy.optimizer.build(params, lr=lr, **build_kwargs)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name=optimizer_name,
            optimizer=optimizer,
            params=params,
            lr_or_lr_schedule=None,
        )
        self._lrtune_optimizer_role[f"{module_id}_{optimizer_name}"] = role.name
        for param in params:
            self._lrtune_param_role[self.get_param_ref(param)] = role.name

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """Register the policy's optimizer over the module's parameters (no RLlib LR schedule)."""
        assert self._module is not None, "RLlib builds the module before the optimizers"
        module = self._module[module_id]
        params: list[Any] = list(self.get_parameters(module))
        self.register_role_optimizer(module_id, DEFAULT_OPTIMIZER, params)

    # --- the learning rate --------------------------------------------------------------------

    def current_lr(self, role: str | None = None) -> float:
        """The rate the policy of ``role`` (default: the first role) gives now."""
        r = self._lrtune_roles[role] if role is not None else self._lrtune_main
        return r.policy.lr(self._lrtune_env_steps, r.feedback)

    def _apply_lr(self) -> None:
        for role in self._lrtune_roles.values():
            lr = role.policy.lr(self._lrtune_env_steps, role.feedback)
            if not math.isfinite(lr) or lr < 0:
                raise LRMismatchError(
                    f"lrtune: the policy of role {role.name!r} produced an invalid learning "
                    f"rate {lr!r}"
                )
            role.lr = lr
        for name, optimizer in self._named_optimizers.items():
            lr = self._lrtune_roles[self._lrtune_optimizer_role[name]].lr
            for group in optimizer.param_groups:
                group["lr"] = lr
        self._check_lr()

    def _check_lr(self) -> None:
        """Fail loudly if any param group's rate differs from the one lrtune set for its role."""
        for name, optimizer in self._named_optimizers.items():
            role = self._lrtune_roles[self._lrtune_optimizer_role[name]]
            for i, group in enumerate(optimizer.param_groups):
                applied = group["lr"]
                applied = float(applied.item() if torch.is_tensor(applied) else applied)
                if applied != role.lr:
                    raise LRMismatchError(
                        f"lrtune: optimizer {name!r} param group {i} has lr {applied!r}, but the "
                        f"policy of role {role.name!r} set {role.lr!r}. Something else changed "
                        "the rate (an RLlib LR schedule or a torch LR scheduler?); lrtune owns it."
                    )

    def applied_lr(self, role: str | None = None) -> float:
        """The rate read back from the first param group of the first optimizer of ``role``
        (default: the first role), i.e. what torch uses."""
        wanted = role if role is not None else self._lrtune_main.name
        for name, optimizer in self._named_optimizers.items():
            if self._lrtune_optimizer_role[name] == wanted:
                value = optimizer.param_groups[0]["lr"]
                return float(value.item() if torch.is_tensor(value) else value)
        raise KeyError(f"no optimizer has role {wanted!r}")

    # --- hooks of one update ------------------------------------------------------------------

    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Receive the lifetime env-step count and set the learning rate for this update."""
        super().before_gradient_based_update(timesteps=timesteps)
        steps = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME)
        if steps is not None:
            self._lrtune_env_steps = int(steps)
        self._reset_norm_accumulators()
        self._reset_deferred()
        self._apply_lr()

    def compute_gradients(self, loss_per_module: Any, **kwargs: Any) -> Any:
        """Compute gradients, keeping the total loss for feedback rules that watch it."""
        if self._lrtune_wants_update_signals:
            total = sum(loss_per_module.values())
            self._lrtune_last_loss = total.detach() if torch.is_tensor(total) else None
        if not self._lrtune_lean or self._grad_scalers is not None or len(loss_per_module) != 1:
            return super().compute_gradients(loss_per_module, **kwargs)
        # RLlib's, for one loss without grad scalers: every optimizer's gradients set to None
        # (``zero_grad(set_to_none=True)``, without its profiler scope), then backward from the
        # loss (RLlib's ``sum`` adds it to 0: the same gradients).
        for optimizer in self._named_optimizers.values():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    param.grad = None
        (loss,) = loss_per_module.values()
        if not torch.is_tensor(loss) or loss.grad_fn is None:
            return super().compute_gradients(loss_per_module, **kwargs)
        loss.backward()
        return {pid: p.grad for pid, p in self._params.items()}

    def postprocess_gradients(self, gradients_dict: dict[Any, Any]) -> dict[Any, Any]:
        """Gate each role's gradients with its policy's gradient plugin; measure the global
        norm around it. Replaces RLlib's own ``grad_clip`` handling (the config builder sets it
        to None)."""
        refs = [ref for ref, g in gradients_dict.items() if g is not None]
        if not refs:
            return gradients_dict
        grads = [gradients_dict[ref] for ref in refs]
        pre = _global_norm(grads)
        for role in self._lrtune_roles.values():
            if not role.policy.gate.changes_gradients:
                continue  # a gate that leaves the gradients as they are
            mine = [ref for ref in refs if self._lrtune_param_role.get(ref) == role.name]
            if mine:
                role.policy.gate.apply(
                    [gradients_dict[ref] for ref in mine], [self._params[ref] for ref in mine]
                )
        post = _global_norm(grads) if self._lrtune_gates_change else pre
        self._norm_pre_sum = self._norm_pre_sum + pre
        self._norm_post_sum = self._norm_post_sum + post
        self._norm_count += 1
        self._last_pre_norm = pre
        self._last_post_norm = post
        return gradients_dict

    def apply_gradients(self, gradients_dict: dict[Any, Any]) -> None:
        """Let feedback rules veto the step (divergence), then step with the lrtune rates."""
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
            for role in self._lrtune_roles.values():
                for i, rule in enumerate(role.policy.rules):
                    role.feedback[i], veto = rule.on_update(role.feedback[i], signals)
                    skip = skip or veto
            # A rule may have cut its factor: the new rate holds from this very step on.
            self._apply_lr()
            if skip:
                self._lrtune_skipped += 1
                for param in self._params.values():
                    param.grad = None
                return
        self._check_lr()
        if (
            self._lrtune_steps_itself
            and self._norm_count
            and bool(torch.isfinite(self._last_post_norm))
        ):
            # Every gradient is finite: what RLlib's apply_gradients would do, minus its
            # per-tensor NaN/inf checks (~0.3 ms of a ~3.5 ms PPO minibatch update on CPU).
            for ref, grad in gradients_dict.items():
                param = self._params[ref]
                if param.grad is not grad:  # RLlib's gradients are the parameters' own
                    param.grad = grad
            for optimizer in self._named_optimizers.values():
                optimizer.step()
        else:
            super().apply_gradients(gradients_dict)
        self._check_lr()

    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Log this update's lrtune metrics (the last update's values win within an iteration)."""
        self._flush_deferred()  # before RLlib's hooks, which read the loss metrics (PPO's KL)
        super().after_gradient_based_update(timesteps=timesteps)
        self._lrtune_kl = self._read_kl()
        n = max(self._norm_count, 1)
        pre = float(self._norm_pre_sum.item()) / n if self._norm_count else float("nan")
        post = float(self._norm_post_sum.item()) / n if self._norm_count else float("nan")
        roles = list(self._lrtune_roles.values())
        events = sum(int(s.get("events", 0)) for r in roles for s in r.feedback)
        diverged = any(
            rule.diverged(state)
            for r in roles
            for rule, state in zip(r.policy.rules, r.feedback, strict=True)
        )
        main = self._lrtune_main
        values: dict[str, float] = {
            "lr": self.applied_lr(),
            "lr_env_step": float(self._lrtune_env_steps),
            "grad_norm_pre_gating": pre,
            "grad_norm_post_gating": post,
            "feedback_factor": main.policy.feedback_factor(main.feedback),
            "schedule_factor": main.policy.schedule(self._lrtune_env_steps),
            "skipped_updates": float(self._lrtune_skipped),
            "divergence_events": float(events),
            "diverged": float(diverged),
        }
        if len(roles) > 1:
            for r in roles:
                values[f"lr.{r.name}"] = self.applied_lr(r.name)
        if self._lrtune_kl is not None:
            values["kl"] = self._lrtune_kl
        for key, value in values.items():
            self.metrics.log_value((ALL_MODULES, f"lrtune_{key}"), value, reduce="item")

    def _read_kl(self) -> float | None:
        return None

    # --- RLlib's per-minibatch bookkeeping, once per update -----------------------------------
    #
    # RLlib 2.60's `Learner.update` calls these per minibatch. What they log is either kept as
    # the last value only (``window=1``: the off-policyness, the weights' sequence number,
    # PPO's loss terms) or summed (steps trained, Ray's Prometheus counters): logged once per
    # update from the last minibatch or the totals, the reduced results are the same. About
    # 1 ms of each ~8 ms PPO minibatch update on a shared 2-core CPU.

    def _create_iterator_if_necessary(self, **kwargs: Any) -> Any:
        """RLlib's iterator, or `FlatMiniBatchCycle` (the same minibatches) where it can."""
        iterator = super()._create_iterator_if_necessary(**kwargs)
        if self._lrtune_lean and eligible(iterator):
            return FlatMiniBatchCycle(iterator)  # type: ignore[arg-type]
        return iterator

    def _compute_off_policyness(self, batch: Any) -> None:
        """Keep the minibatch; the last one's off-policyness is logged by `_flush_deferred`."""
        if not self._lrtune_lean:
            super()._compute_off_policyness(batch)
            return
        self._deferred_off_policy_batch = batch

    def _log_steps_trained_metrics(self, batch: Any) -> None:
        """Count the minibatch's steps; `_flush_deferred` logs the update's totals."""
        if not self._lrtune_lean:
            super()._log_steps_trained_metrics(batch)
            return
        for mid, module_batch in batch.policy_batches.items():
            self._deferred_module_sizes.setdefault(mid, []).append(len(module_batch))
        self._deferred_env_steps.append(batch.env_steps())

    def _log_metrics(self, batch: Any) -> None:
        """Count the minibatch's steps for Ray's Prometheus counters (`_flush_deferred`)."""
        env_steps = int(batch.env_steps())
        if not self._lrtune_lean or env_steps <= 0:
            super()._log_metrics(batch)  # RLlib's warning for an empty batch
            return
        self._deferred_prometheus[0] += env_steps
        self._deferred_prometheus[1] += sum(len(b) for b in batch.policy_batches.values())

    def _flush_deferred(self) -> None:
        """Log what the update's minibatches left, as RLlib's per-minibatch calls would have
        left it after reduction."""
        if self._deferred_off_policy_batch is not None:
            super()._compute_off_policyness(self._deferred_off_policy_batch)
        all_sizes: list[int] = []
        for mid, sizes in self._deferred_module_sizes.items():
            self.metrics.log_value((mid, WEIGHTS_SEQ_NO), self._weights_seq_no, window=1)
            for size in sizes:  # a mean over the minibatches: each one, as RLlib logs them
                self.metrics.log_value(
                    key=(mid, MODULE_TRAIN_BATCH_SIZE_MEAN), value=size, reduce="mean"
                )
            all_sizes.extend(sizes)
            self.metrics.log_value(
                key=(mid, NUM_MODULE_STEPS_TRAINED), value=_summed(sizes), reduce="sum"
            )
            self.metrics.log_value(
                key=(mid, NUM_MODULE_STEPS_TRAINED_LIFETIME),
                value=sum(sizes),
                reduce="lifetime_sum",
                with_throughput=True,
            )
        if all_sizes:
            self.metrics.log_value(
                key=(ALL_MODULES, NUM_MODULE_STEPS_TRAINED),
                value=_summed(all_sizes),
                reduce="sum",
                with_throughput=True,
            )
            self.metrics.log_value(
                key=(ALL_MODULES, NUM_MODULE_STEPS_TRAINED_LIFETIME),
                value=sum(all_sizes),
                reduce="lifetime_sum",
                with_throughput=True,
            )
        if self._deferred_env_steps:
            self.metrics.log_value(
                (ALL_MODULES, NUM_ENV_STEPS_TRAINED),
                _summed(self._deferred_env_steps),
                reduce="sum",
                with_throughput=True,
            )
            self.metrics.log_value(
                (ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME),
                sum(self._deferred_env_steps),
                reduce="lifetime_sum",
                with_throughput=True,
            )
        env_steps, module_steps = self._deferred_prometheus
        if env_steps > 0:
            self._metrics_all_modules_num_env_steps_trained.inc(value=env_steps)
            self._metrics_all_modules_num_module_steps_trained.inc(value=module_steps)
        self._reset_deferred()

    def _reset_deferred(self) -> None:
        self._deferred_off_policy_batch = None
        self._deferred_module_sizes = {}
        self._deferred_env_steps = []
        self._deferred_prometheus = [0, 0]

    # --- once per iteration -------------------------------------------------------------------

    def end_iteration(self, episode_return: float | None) -> dict[str, float]:
        """Feed the iteration's signals to every role's feedback rules; return the first role's
        new feedback factor. Called once per training iteration by `LRTuneCallbacks` after the
        results are in."""
        ret = (
            episode_return if episode_return is not None and math.isfinite(episode_return) else None
        )
        signals = IterationSignals(
            env_steps=self._lrtune_env_steps, kl=self._lrtune_kl, episode_return=ret
        )
        for role in self._lrtune_roles.values():
            for i, rule in enumerate(role.policy.rules):
                role.feedback[i] = rule.on_iteration(role.feedback[i], signals)
        self._apply_lr()
        main = self._lrtune_main
        return {"feedback_factor": main.policy.feedback_factor(main.feedback)}

    # --- checkpoints --------------------------------------------------------------------------

    def get_state(
        self, components: Any = None, *, not_components: Any = None, **kwargs: Any
    ) -> Any:
        """RLlib's learner state plus lrtune's: each role's feedback state, schedule position."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        main = self._lrtune_main
        state[STATE_KEY] = {
            # The first role's at the top level, as before roles existed.
            "feedback": copy.deepcopy(main.feedback),
            "rules": [type(r).__name__ for r in main.policy.rules],
            "roles": {
                r.name: {
                    "feedback": copy.deepcopy(r.feedback),
                    "rules": [type(rule).__name__ for rule in r.policy.rules],
                }
                for r in self._lrtune_roles.values()
            },
            "env_steps": self._lrtune_env_steps,
            "skipped_updates": self._lrtune_skipped,
        }
        scaling = self._lrtune_reward_scaling()
        if scaling is not None:
            state[STATE_KEY]["reward_scaling"] = scaling.get_state()
        return state

    def set_state(self, state: Any) -> None:
        """Restore, then re-apply the *current* policy's rates at once (never the restored ones)."""
        super().set_state(state)
        saved = state.get(STATE_KEY) if isinstance(state, Mapping) else None
        if saved is not None:
            self._lrtune_env_steps = int(saved.get("env_steps", 0))
            self._lrtune_skipped = int(saved.get("skipped_updates", 0))
            per_role = saved.get("roles") or {self._lrtune_main.name: saved}
            for role in self._lrtune_roles.values():
                kept = per_role.get(role.name)
                names = [type(r).__name__ for r in role.policy.rules]
                if kept is not None and list(kept.get("rules", [])) == names:
                    role.feedback = copy.deepcopy(list(kept["feedback"]))
                # A different set of rules (a changed policy) starts its feedback afresh.
            scaling = self._lrtune_reward_scaling()
            if scaling is not None and "reward_scaling" in saved:
                scaling.set_state(saved["reward_scaling"])
        self._apply_lr()

    # --- helpers ------------------------------------------------------------------------------

    def _lrtune_reward_scaling(self) -> RewardScaling | None:
        """The learner pipeline's `RewardScaling` piece, if it has one."""
        pipeline = getattr(self, "_learner_connector", None)
        pieces = reward_scaling_pieces(pipeline.connectors) if pipeline is not None else []
        return pieces[0] if pieces else None

    def _reset_norm_accumulators(self) -> None:
        self._norm_pre_sum = 0.0
        self._norm_post_sum = 0.0
        self._norm_count = 0
        self._last_pre_norm = torch.zeros(())


def _global_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all ``grads`` together: torch's own (one norm kernel per device and dtype,
    the per-device norms gathered on the first gradient's device).

    Gradients of one device and dtype (the usual case) take the path `get_total_norm` takes for
    them, the same kernels in the same order (so the same value, bit for bit), without its
    grouping by device and dtype (~40 % of its CPU time for a 12-tensor MLP)."""
    first = grads[0]
    if first.device.type in _FOREACH_DEVICES and all(
        type(g) is torch.Tensor and g.device == first.device and g.dtype == first.dtype
        for g in grads
    ):
        with torch.no_grad():
            norms = torch._foreach_norm(list(grads), 2.0)
            return torch.linalg.vector_norm(torch.stack(norms), 2.0)
    return torch.nn.utils.get_total_norm(grads)


def _summed(values: Sequence[int]) -> Any:
    """``values`` summed as RLlib's ``reduce="sum"`` metrics sum what is logged to them one by
    one: numpy's ``nansum`` from the second value on (a numpy integer), the value itself when
    alone. (Its ``lifetime_sum`` metrics add to a float: a plain `sum` of the ints is exact.)"""
    return np.nansum(values) if len(values) > 1 else values[0]


def _is_zero(value: Any) -> bool:
    """Whether a loss coefficient (a number or a one-element tensor) is exactly 0."""
    return bool(value == 0)


#: Devices on which `get_total_norm` takes torch's foreach norm for plain tensors.
_FOREACH_DEVICES = ("cpu", "cuda")


class LRTunePPOLearner(LRPolicyLearner, PPOTorchLearner):
    """RLlib's PPO torch learner with lrtune's learning-rate policy; reports the KL; scales
    rewards when ``config.learner_config_dict["lrtune"]["normalize_rewards"]`` is true."""

    # Module id -> the last minibatch's loss terms, computed when called (`_flush_deferred`).
    _deferred_ppo_losses: dict[Any, Callable[[], dict[str, Any]]]
    # Module id -> whether its KL and entropy coefficients are 0 this update (`_zero_terms`).
    _deferred_zero_terms: dict[Any, tuple[bool, bool]]

    def build(self) -> None:
        """Build as RLlib's PPO learner does, then, when asked, put `RewardScaling` into the
        learner pipeline just before GAE (the batch's rewards built, advantages not yet)."""
        super().build()
        settings: Mapping[str, Any] = self.config.learner_config_dict.get(CONFIG_KEY, {})
        if settings.get("normalize_rewards") and self._learner_connector is not None:
            self._learner_connector.insert_before(
                GeneralAdvantageEstimation, RewardScaling(gamma=self.config.gamma)
            )

    def compute_loss_for_module(
        self, *, module_id: Any, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> Any:
        """RLlib 2.60's PPO loss (`PPOTorchLearner.compute_loss_for_module`), op for op where
        the loss is concerned, so the same loss and gradients bit for bit. Only its metrics
        differ, in when they are computed and logged: RLlib computes six loss terms per
        minibatch (four masked means and the explained variance only for them) and logs them
        with ``window=1``, so the last minibatch's values are the update's; lrtune keeps that
        minibatch's tensors and computes and logs its terms at the update's end
        (`_flush_deferred`). The old policy's action distribution is built only when the KL
        term needs it. A categorical policy's terms come from `LeanCategorical` (torch's
        kernels without RLlib's distribution objects), and a KL or entropy term whose
        coefficient is 0 is computed outside autograd (`_zero_terms`: the same loss value,
        the same gradients while the logits are finite)."""
        if not self._lrtune_lean:
            return super().compute_loss_for_module(
                module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
            )
        module: Any = self.module[module_id].unwrapped()
        possibly_masked_mean: Any
        if Columns.LOSS_MASK in batch:
            mask = batch[Columns.LOSS_MASK]
            num_valid = torch.sum(mask)

            def masked_mean(data_: Any) -> Any:
                return torch.sum(data_[mask]) / num_valid

            possibly_masked_mean = masked_mean

        else:
            possibly_masked_mean = torch.mean

        action_dist_class_train: Any = module.get_train_action_dist_cls()
        action_dist_class_exploration: Any = (
            module.get_exploration_action_dist_cls() if config.use_kl_loss else None
        )
        # RLlib's categorical distribution, the same kernels without its objects.
        if action_dist_class_train is TorchCategorical and (
            action_dist_class_exploration in (None, TorchCategorical)
        ):
            action_dist_class_train = action_dist_class_exploration = LeanCategorical
        curr_action_dist = action_dist_class_train.from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        kl_off, entropy_off = (
            self._zero_terms(module_id, config)
            if action_dist_class_train is LeanCategorical
            else (False, False)
        )
        logp_ratio = torch.exp(
            curr_action_dist.logp(batch[Columns.ACTIONS]) - batch[Columns.ACTION_LOGP]
        )
        quiet: Any = None  # the current distribution outside autograd, when a term needs it
        if config.use_kl_loss:
            prev_action_dist = action_dist_class_exploration.from_logits(
                batch[Columns.ACTION_DIST_INPUTS]
            )
            if kl_off:
                if not entropy_off:
                    # RLlib's KL term creates the current probabilities' graph node here,
                    # before the entropy's nodes: the same order, the same gradients.
                    curr_action_dist.probs  # noqa: B018
                quiet = curr_action_dist.detached()
                with torch.no_grad():
                    action_kl = prev_action_dist.kl(quiet)
                    mean_kl_loss = possibly_masked_mean(action_kl)
            else:
                action_kl = prev_action_dist.kl(curr_action_dist)
                mean_kl_loss = possibly_masked_mean(action_kl)
        else:
            mean_kl_loss = torch.tensor(0.0, device=logp_ratio.device)

        if entropy_off:
            quiet = quiet if quiet is not None else curr_action_dist.detached()
            with torch.no_grad():
                curr_entropy = quiet.entropy()
        else:
            curr_entropy = curr_action_dist.entropy()

        surrogate_loss = torch.min(
            batch[Postprocessing.ADVANTAGES] * logp_ratio,
            batch[Postprocessing.ADVANTAGES]
            * torch.clamp(logp_ratio, 1 - config.clip_param, 1 + config.clip_param),
        )
        if config.use_critic:
            value_fn_out = module.compute_values(batch, embeddings=fwd_out.get(Columns.EMBEDDINGS))
            vf_loss = torch.pow(value_fn_out - batch[Postprocessing.VALUE_TARGETS], 2.0)
            vf_loss_clipped = torch.clamp(vf_loss, 0, config.vf_clip_param)
        else:
            z = torch.tensor(0.0, device=surrogate_loss.device)
            value_fn_out = vf_loss = vf_loss_clipped = z

        total_loss = possibly_masked_mean(
            -surrogate_loss
            + config.vf_loss_coeff * vf_loss_clipped
            - (
                self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
                * curr_entropy
            )
        )
        if config.use_kl_loss:
            total_loss += self.curr_kl_coeffs_per_module[module_id] * mean_kl_loss

        # The metric-only terms, from this minibatch's tensors, if it is the update's last.
        use_critic = bool(config.use_critic)
        surrogate = surrogate_loss.detach()
        entropy = curr_entropy.detach()
        vf, vf_clipped = vf_loss.detach(), vf_loss_clipped.detach()
        values = value_fn_out.detach()
        targets = batch[Postprocessing.VALUE_TARGETS]
        kl = mean_kl_loss.detach()

        def terms() -> dict[str, Any]:
            return {
                POLICY_LOSS_KEY: -possibly_masked_mean(surrogate),
                VF_LOSS_KEY: possibly_masked_mean(vf_clipped) if use_critic else vf_clipped,
                LEARNER_RESULTS_VF_LOSS_UNCLIPPED_KEY: (
                    possibly_masked_mean(vf) if use_critic else vf
                ),
                LEARNER_RESULTS_VF_EXPLAINED_VAR_KEY: explained_variance(targets, values),
                ENTROPY_KEY: possibly_masked_mean(entropy),
                LEARNER_RESULTS_KL_KEY: kl,
            }

        self._deferred_ppo_losses[module_id] = terms
        return total_loss

    def _zero_terms(self, module_id: Any, config: Any) -> tuple[bool, bool]:
        """Whether the KL and the entropy terms of ``module_id``'s loss have a coefficient of
        exactly 0 in this update (RLlib changes both only after an update).

        Such a term adds exact zeros to every gradient while the policy's logits are finite
        (a non-finite logit makes the update non-finite through the log-probabilities
        anyway), so lrtune computes its value outside autograd: the loss keeps the term's
        value (0 × it, so a non-finite KL still makes the loss NaN, as in RLlib's), the
        metrics keep theirs, and the backward pass skips the term's share of the graph. The
        presets' PPO (``kl_coeff`` 0, ``entropy_coeff`` 0) has both."""
        flags = self._deferred_zero_terms.get(module_id)
        if flags is None:
            entropy = self.entropy_coeff_schedulers_per_module[module_id].get_current_value()
            kl = self.curr_kl_coeffs_per_module[module_id] if config.use_kl_loss else None
            flags = (kl is not None and _is_zero(kl), _is_zero(entropy))
            self._deferred_zero_terms[module_id] = flags
        return flags

    def _flush_deferred(self) -> None:
        """Log the last minibatch's PPO loss terms (window 1), as RLlib's loss would have."""
        for module_id, terms in self._deferred_ppo_losses.items():
            self.metrics.log_dict(terms(), key=module_id, window=1)
        super()._flush_deferred()

    def _reset_deferred(self) -> None:
        super()._reset_deferred()
        self._deferred_ppo_losses = {}
        self._deferred_zero_terms = {}

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


class LRTuneSACLearner(LRPolicyLearner, SACTorchLearner):  # type: ignore[misc]
    """RLlib's SAC torch learner with lrtune's learning-rate policy per optimizer role:
    ``critic`` (the Q network and its twin), ``actor`` (the policy) and ``alpha`` (the
    temperature), each built by its role's optimizer plugin with its own rate."""

    def configure_optimizers_for_module(self, module_id: str, config: Any = None) -> None:
        """Register the critic, twin critic, actor and temperature optimizers as RLlib's
        ``SACTorchLearner`` does (same parameters, same names), built by lrtune's roles."""
        assert self._module is not None, "RLlib builds the module before the optimizers"
        module: Any = self._module[module_id]
        config = config or self.config.get_config_for_module(module_id)

        def params_of(*parts: Any) -> list[Any]:
            return [p for part in parts for p in self.get_parameters(part)]

        self.register_role_optimizer(module_id, "qf", params_of(module.qf_encoder, module.qf))
        if config.twin_q:
            twin = params_of(module.qf_twin_encoder, module.qf_twin)
            self.register_role_optimizer(module_id, "qf_twin", twin)
        actor = params_of(module.pi_encoder, module.pi)
        self.register_role_optimizer(module_id, "policy", actor)
        self.register_role_optimizer(module_id, "alpha", [self.curr_log_alpha[module_id]])

    # RLlib 2.60's SAC learner keeps the temperature (``curr_log_alpha``) out of its state:
    # its optimizer's moments come back from a checkpoint, the value itself would restart at
    # ``initial_alpha``.
    def get_state(
        self, components: Any = None, *, not_components: Any = None, **kwargs: Any
    ) -> Any:
        """The learner state plus each module's ``log_alpha``."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[STATE_KEY]["log_alpha"] = {
            module_id: float(torch.as_tensor(value).detach().cpu().item())
            for module_id, value in self.curr_log_alpha.items()
        }
        return state

    def set_state(self, state: Any) -> None:
        """Restore, then set each saved ``log_alpha`` in place (its optimizer holds the tensor)."""
        super().set_state(state)
        saved = state.get(STATE_KEY) if isinstance(state, Mapping) else None
        for module_id, value in ((saved or {}).get("log_alpha") or {}).items():
            log_alpha = self.curr_log_alpha[module_id]
            assert isinstance(log_alpha, torch.Tensor)
            with torch.no_grad():
                log_alpha.fill_(value)
