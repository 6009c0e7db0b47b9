"""Every private API of Ray, Optuna, MLflow, torch and the standard library lrtune uses, and why.

Private names (a leading underscore) can move or vanish in any release, without a deprecation.
They are listed here, as data, so that one place says what an upgrade can break, and
tests/test_upstream_private_apis.py resolves each entry against the installed libraries (and
checks that no other private name is used), failing with the entry's name when one moved.
Everything else lrtune calls is public.

`check` resolves one entry; it imports the owning library only when called.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any, Literal

#: How an entry is reached: a module attribute or function (``attribute``), a method lrtune
#: overrides (``override``, whose parameters must stay as listed), or an attribute that the
#: class's ``__init__`` (or a base class's) sets on each instance (``instance_attribute``).
Kind = Literal["attribute", "override", "instance_attribute"]


@dataclass(frozen=True)
class PrivateAPI:
    """One private upstream name lrtune relies on.

    Attributes:
        module: the importable module that holds it, e.g. ``"ray.tune.schedulers.pbt"``.
        path: the name inside ``module``, dotted through a class, e.g.
            ``"PopulationBasedTraining._get_new_config"``.
        kind: how it is resolved (see `Kind`).
        used_in: the lrtune source files (relative to ``platform/lrtune``) that use it.
        why: what lrtune needs it for, and why no public API does it.
        parameters: for callables, the parameter names lrtune's calls or override rely on.
    """

    module: str
    path: str
    kind: Kind
    used_in: tuple[str, ...]
    why: str
    parameters: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The private name itself (the last part of ``path``), as it appears in lrtune's code."""
        return self.path.rsplit(".", 1)[-1]

    @property
    def qualified(self) -> str:
        """``module.path``, for messages."""
        return f"{self.module}.{self.path}"


# What the local env runner keeps between two `sample()` calls besides its public ``env``.
_SAMPLING = (
    ("_shared_data", "data the env runner's connectors share across steps"),
    ("_cached_to_module", "the env-to-module output the next action is computed from"),
    ("_needs_initial_reset", "whether the next `sample()` resets (and re-seeds) the envs"),
    ("_ongoing_episodes_for_metrics", "the chunks of running episodes already returned"),
)

# The private SingleAgentEnvRunner attributes a trial's checkpoint saves and its restore sets
# back, read by `lrtune.running._sampling_state`: each has an entry below by construction.
SAMPLING_RUNNER_ATTRIBUTES: tuple[str, ...] = (
    "_ongoing_episodes",
    *(name for name, _ in _SAMPLING),
)


def _foreach(name: str, why: str, *also: str) -> PrivateAPI:
    return PrivateAPI("torch", name, "attribute", ("policies/gradients.py", *also), why)


_FOREACH_WHY = (
    "per-tensor norm clipping (`clip_norm`) and scaling by a 0-d tensor (`normalize`) in one "
    "kernel per device and dtype; torch.nn.utils has public global-norm and value clipping "
    "(used) but no per-tensor clip, and its own clipping is built on these kernels"
)

_NORM_WHY = (
    "; the learner's global gradient norm takes `get_total_norm`'s own kernel without its "
    "grouping by device and dtype (the same value, ~40 % less CPU for a small MLP)"
)

PRIVATE_APIS: tuple[PrivateAPI, ...] = (
    PrivateAPI(
        "ray._private.ray_constants",
        "ENABLE_RAY_CLUSTER",
        "attribute",
        ("running/_local_ray.py",),
        "Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when it is imported; where Ray was "
        "imported before lrtune set the variable (tests, notebooks) the constant is patched so "
        "that the embedded Ray still listens on loopback only. Ray has no public setter.",
    ),
    PrivateAPI(
        "ray.tune.schedulers.pbt",
        "_explore",
        "attribute",
        ("policies/_tune_pbt.py",),
        "Tune's PBT explore step (resample, or multiply by a perturbation factor), called once "
        "per mutable parameter so that each has its own factors and log scale; re-using it keeps "
        "Tune's perturbation rules instead of a copy of them.",
        parameters=(
            "config",
            "mutations",
            "resample_probability",
            "perturbation_factors",
            "custom_explore_fn",
        ),
    ),
    PrivateAPI(
        "ray.tune.schedulers.pbt",
        "PopulationBasedTraining._get_new_config",
        "override",
        ("policies/_tune_pbt.py",),
        "the only hook of Tune's PBT for the explore step; `LRTunePBT` overrides it (and nothing "
        "else) for per-parameter factors, log-scaled parameters and bounds.",
        parameters=("self", "trial", "trial_to_clone"),
    ),
    PrivateAPI(
        "ray.tune.schedulers.pbt",
        "PopulationBasedTraining._resample_probability",
        "instance_attribute",
        ("policies/_tune_pbt.py",),
        "the resample probability the user gave PBT, passed on to `_explore` by the override.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._learner_connector",
        "instance_attribute",
        ("learners/_learner.py",),
        "the learner's connector pipeline: PPO's learner puts `RewardScaling` into it just "
        "before RLlib's GAE piece (which it appends in `build`; `learner_connector=` in the "
        "config only adds pieces at the front, before the rewards are batched), and lrtune's "
        "learner state carries that piece's statistics, which RLlib's learner checkpoint leaves "
        "out. RLlib has no public accessor for the pipeline.",
    ),
    PrivateAPI(
        "ray.rllib.algorithms.dqn.dqn",
        "DQN._training_step_new_api_stack",
        "override",
        ("learners/_replay.py",),
        "DQN's training step on the new API stack: `LRTuneDQN` overrides it to train from "
        "`TransitionReplayBuffer` (a flat-array batch handed to the learner, no learner "
        "connector) and calls RLlib's for any other buffer. `training_step`, the public hook, "
        "also dispatches to the old stack, which lrtune never runs.",
        parameters=("self",),
    ),
    PrivateAPI(
        "ray.rllib.execution.rollout_ops",
        "synchronous_parallel_sample",
        "attribute",
        ("learners/_replay.py",),
        "public, but the new stack's episodes and env-runner metrics come back only through "
        "its private keywords `_uses_new_env_runners` and `_return_metrics`, which `LRTuneDQN`'s "
        "training step passes as RLlib's own DQN does.",
        parameters=(
            "worker_set",
            "max_agent_steps",
            "max_env_steps",
            "concat",
            "sample_timeout_s",
            "random_actions",
            "_uses_new_env_runners",
            "_return_metrics",
        ),
    ),
    PrivateAPI(
        "ray.rllib.algorithms.algorithm",
        "Algorithm._create_local_replay_buffer_if_necessary",
        "override",
        ("learners/_replay.py",),
        "where an algorithm builds its replay buffer from `replay_buffer_config`: `LRTuneDQN` "
        "builds `TransitionReplayBuffer` with the trial's seed there (RLlib's `from_config` "
        "passes no seed) and leaves every other type to RLlib.",
        parameters=("self", "config"),
    ),
    PrivateAPI(
        "ray.rllib.env.single_agent_env_runner",
        "SingleAgentEnvRunner._ongoing_episodes",
        "instance_attribute",
        ("learners/_callbacks.py", "running/_sampling_state.py", "learners/_env_runner.py"),
        "the episodes a failed `sample()` was stepping: a NaN or infinite observation from the "
        "env stops RLlib inside the action distribution (torch's 'invalid multinomial "
        "distribution'), before any callback sees the episodes; `sampling_problem` reads them "
        "after the failure to name the env's fault instead. No public accessor exists. Also "
        "saved with a trial's checkpoint and set back on its restore (`_SAMPLING`, below).",
    ),
    *(
        PrivateAPI(
            "ray.rllib.env.single_agent_env_runner",
            f"SingleAgentEnvRunner.{name}",
            "instance_attribute",
            ("running/_sampling_state.py", "learners/_env_runner.py"),
            f"{what}: saved with a trial's checkpoint and set back on its restore, so a "
            "resumed trial takes the steps the uninterrupted one takes. RLlib's checkpoint "
            "leaves the env runner's envs and episodes out and has no hook to add them.",
        )
        for name, what in _SAMPLING
    ),
    PrivateAPI(
        "ray.rllib.env.single_agent_env_runner",
        "SingleAgentEnvRunner._sample",
        "override",
        ("learners/_env_runner.py",),
        "the env runner's sampling loop, which `LRTuneEnvRunner` runs with less bookkeeping "
        "per vector step (no per-step timers, no no-op step callbacks) for the same episodes; "
        "RLlib has no setting that turns that bookkeeping off. Its other private names below "
        "are the pieces of that loop it calls as RLlib's loop does.",
        parameters=(
            "self",
            "num_timesteps",
            "num_episodes",
            "explore",
            "random_actions",
            "force_reset",
        ),
    ),
    *(
        PrivateAPI(
            module,
            path,
            "attribute" if callable_ else "instance_attribute",
            ("learners/_env_runner.py",),
            f"{what}, used by `LRTuneEnvRunner._sample` as RLlib's `_sample` uses it.",
        )
        for module, path, callable_, what in (
            (
                "ray.rllib.env.env_runner",
                "EnvRunner._reset_envs_and_episodes",
                True,
                "resets the envs and starts new episodes",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._make_on_episode_callback",
                True,
                "calls the episode callbacks with RLlib's arguments",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._new_episode",
                True,
                "starts the next episode in an env slot (and its on_episode_created callback)",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._increase_sampled_metrics",
                True,
                "counts the sampled steps and episodes in the env runner's metrics",
            ),
            (
                "ray.rllib.env.env_runner",
                "EnvRunner._log_env_steps",
                True,
                "increments Ray's Prometheus counters of env steps",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._env_to_module",
                False,
                "the env-to-module connector pipeline, whose pieces it calls",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._module_to_env",
                False,
                "the module-to-env connector pipeline, whose pieces it calls",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._weights_seq_no",
                False,
                "the weights' sequence number stored with each step",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._callbacks",
                False,
                "the callback objects, asked whether any acts on every step",
            ),
            (
                "ray.rllib.env.single_agent_env_runner",
                "SingleAgentEnvRunner._done_episodes_for_metrics",
                False,
                "the done episodes whose metrics `get_metrics` logs",
            ),
            (
                "ray.rllib.env.env_runner",
                "EnvRunner._metrics_num_try_env_step",
                False,
                "Ray's Prometheus counter of env.step() calls",
            ),
            (
                "ray.rllib.env.env_runner",
                "EnvRunner._metrics_num_env_steps_sampled",
                False,
                "Ray's Prometheus counter of env steps sampled",
            ),
        )
    ),
    PrivateAPI(
        "ray.tune.search.optuna.optuna_search",
        "OptunaSearch._ot_trials",
        "instance_attribute",
        ("running/_search.py",),
        "Tune trial id → the Optuna trial Ray asked for it: `LRTuneOptunaSearch` tells Optuna "
        "each outcome its own way (diverged: COMPLETE with the worst value; stopped: PRUNED; "
        "failed: FAIL) and reports intermediate values at env steps; OptunaSearch exposes no "
        "public hook for how a trial is told.",
    ),
    PrivateAPI(
        "ray.tune.search.optuna.optuna_search",
        "OptunaSearch._ot_study",
        "instance_attribute",
        ("running/_search.py",),
        "the Optuna study Ray created (and may have resumed), to tell it outcomes and add the "
        "trials of an interrupted run afresh.",
    ),
    PrivateAPI(
        "ray.tune.search.optuna.optuna_search",
        "OptunaSearch._completed_trials",
        "instance_attribute",
        ("running/_search.py",),
        "Ray's set of trials already told to Optuna, kept up to date so that a trial is told once.",
    ),
    PrivateAPI(
        "ray.tune.search.optuna.optuna_search",
        "OptunaSearch._space",
        "instance_attribute",
        ("running/_search.py",),
        "the define-by-run space: `LRTuneOptunaSearch.suggest` hands a lost Optuna trial out "
        "again only for a define-by-run space (its parameters are replayed through it).",
    ),
    PrivateAPI(
        "ray.tune.tuner",
        "Tuner._local_tuner",
        "instance_attribute",
        ("running/_run.py",),
        "the TunerInternal behind a restored Tuner: `Tuner.restore` reloads the first run's "
        "RunConfig and TuneConfig from tuner.pkl and offers no public way to replace them, so a "
        "resume would keep the old tracking callbacks, stopper and concurrency limit.",
    ),
    PrivateAPI(
        "ray.tune.impl.tuner_internal",
        "TunerInternal._run_config",
        "instance_attribute",
        ("running/_run.py",),
        "replaced on a resume by this command's RunConfig (callbacks tracking to the current "
        "MLflow URI, the budget stopper); same name and storage path as the restored one.",
    ),
    PrivateAPI(
        "ray.tune.impl.tuner_internal",
        "TunerInternal._tune_config",
        "instance_attribute",
        ("running/_run.py",),
        "replaced on a resume by this command's TuneConfig (its searcher and concurrency "
        "limit: `trials.max_concurrent` as the user runs it now).",
    ),
    PrivateAPI(
        "optuna.study",
        "Study._storage",
        "instance_attribute",
        ("running/_search.py",),
        "the study's storage: reads an asked trial back by id (was it closed while the run was "
        "interrupted?) and marks the RUNNING trials of an interrupted study FAIL with lrtune's "
        "`stopped` status.",
    ),
    PrivateAPI(
        "optuna.trial",
        "Trial._trial_id",
        "instance_attribute",
        ("running/_search.py",),
        "the storage id of an asked trial, the key `Study._storage.get_trial` takes.",
    ),
    PrivateAPI(
        "optuna.trial",
        "FrozenTrial._trial_id",
        "instance_attribute",
        ("running/_search.py",),
        "the storage id of a RUNNING trial of a loaded study, to close it after an interrupt.",
    ),
    PrivateAPI(
        "ray.tune.result_grid",
        "ResultGrid._experiment_analysis",
        "instance_attribute",
        ("running/_run.py",),
        "the Tune `Trial` objects behind a ResultGrid, with their statuses: whether every trial "
        "ended (TERMINATED or ERROR) or the run was interrupted; ResultGrid's public `Result`s "
        "carry no trial status.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner_group",
        "LearnerGroup._learner",
        "instance_attribute",
        ("learners/_replay.py",),
        "the local learner, read once per training step by the in-process weight copy to the "
        "env runner, and once per iteration to reduce the metrics of its updates; the public "
        "`foreach_learner` wraps every call in result objects.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner.update",
        "attribute",
        ("learners/_replay.py",),
        "its private keyword ``_no_metrics_reduce``: a whole iteration's replay updates run "
        "without reducing the learner's metrics after each (`FlatReplayTraining`), which "
        "reduces them once at the iteration's end; no public setting skips that reduction.",
        parameters=(
            "self",
            "batch",
            "batches",
            "batch_refs",
            "episodes",
            "episodes_refs",
            "data_iterators",
            "training_data",
            "timesteps",
            "num_total_minibatches",
            "num_epochs",
            "minibatch_size",
            "shuffle_batch_per_epoch",
            "_no_metrics_reduce",
            "kwargs",
        ),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._named_optimizers",
        "instance_attribute",
        ("learners/_learner.py", "running/_trainable.py"),
        "every optimizer the learner registered, across modules: the rate is set on and read "
        "back from all of them, their gradients are set to None before each backward pass "
        "(`compute_gradients`), and their state is hashed to check checkpoint round trips; the "
        "public accessors go module by module.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._params",
        "instance_attribute",
        ("learners/_learner.py",),
        "parameter reference → parameter: pairs each gradient of RLlib's gradients dict with "
        "its weights (AGC clips relative to the weights' norm) and checks the weights stay finite.",
    ),
    PrivateAPI(
        "ray.rllib.core.rl_module.rl_module",
        "RLModule._forward_exploration",
        "attribute",
        ("learners/_modules.py",),
        "the exploration forward pass itself (RLlib's documented extension point, marked "
        "OverrideToImplementCustomLogic): `ModeSetOnce.forward_exploration` calls it directly "
        "once an inference-only module is in eval mode, instead of RLlib's public wrapper, "
        "which walks every submodule twice per call to set the mode.",
        parameters=("self", "batch", "kwargs"),
    ),
    PrivateAPI(
        "ray.rllib.core.rl_module.rl_module",
        "RLModule._forward_inference",
        "attribute",
        ("learners/_modules.py",),
        "as `_forward_exploration`, for greedy (evaluation) passes.",
        parameters=("self", "batch", "kwargs"),
    ),
    PrivateAPI(
        "ray.rllib.core.rl_module.rl_module",
        "RLModule._forward_train",
        "attribute",
        ("learners/_modules.py",),
        "the training forward pass (RLlib's documented extension point, as "
        "`_forward_exploration`): `LRTunePPOTorchRLModule` overrides the three passes for "
        "`model.exploration: gsde`, whose distribution inputs RLlib's head cannot produce, "
        "and calls RLlib's own otherwise.",
        parameters=("self", "batch", "kwargs"),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.torch.torch_learner",
        "TorchLearner._lr_scheduler_classes",
        "instance_attribute",
        ("learners/_learner.py",),
        "whether RLlib's apply_gradients has torch LR schedulers to build and step; lrtune "
        "steps the optimizers itself (without RLlib's per-tensor NaN checks) only when none "
        "are set. The config's public side is the private `_torch_lr_scheduler_classes` too.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.torch.torch_learner",
        "TorchLearner._grad_scalers",
        "instance_attribute",
        ("learners/_learner.py",),
        "whether RLlib's apply_gradients steps through mixed-precision grad scalers; lrtune "
        "steps the optimizers itself only when there are none.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._module",
        "instance_attribute",
        ("learners/_learner.py",),
        "the MultiRLModule while `configure_optimizers_for_module` runs, as RLlib's own "
        "learners read it there.",
    ),
    PrivateAPI(
        "mlflow.tracking.client",
        "MlflowClient._tracking_client",
        "instance_attribute",
        ("analysis/_records.py",),
        "the client's tracking-service client, whose store reads the metric histories of 100 "
        "runs in one query (below); when it is missing lrtune falls back to the public per-run "
        "`get_metric_history`, slower on long histories.",
    ),
    PrivateAPI(
        "mlflow.tracking._tracking_service.client",
        "TrackingServiceClient.store",
        "attribute",
        ("analysis/_records.py",),
        "the tracking store behind the client (a private module's public property).",
    ),
    PrivateAPI(
        "mlflow.store.tracking.sqlalchemy_store",
        "SqlAlchemyStore.get_metric_history_bulk",
        "attribute",
        ("analysis/_records.py",),
        "the store method the server's get-history-bulk endpoint runs: one query per 100 runs; "
        "MlflowClient has no public bulk read of full histories.",
        parameters=("self", "run_ids", "metric_key", "max_results"),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._create_iterator_if_necessary",
        "override",
        ("learners/_learner.py",),
        "where RLlib builds the update's minibatch iterator: lrtune's learner swaps RLlib's "
        "`MiniBatchCyclicIterator` for `FlatMiniBatchCycle` (the same minibatches, cut column by "
        "column instead of sliced and copied by `concat_samples`: ~0.4 ms of each PPO minibatch "
        "update); there is no public way to choose the iterator.",
        parameters=(
            "self",
            "training_data",
            "num_total_minibatches",
            "num_epochs",
            "minibatch_size",
            "shuffle_batch_per_epoch",
            "kwargs",
        ),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.torch.torch_learner",
        "TorchLearner._compute_off_policyness",
        "override",
        ("learners/_learner.py",),
        "RLlib logs the off-policyness once per minibatch and keeps the last (window 1); lrtune "
        "keeps the last minibatch and calls RLlib's method once per update. If RLlib renames "
        "it, RLlib's per-minibatch logging simply stays.",
        parameters=("self", "batch"),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._log_steps_trained_metrics",
        "override",
        ("learners/_learner.py",),
        "RLlib logs the steps trained once per minibatch into sums; lrtune counts them and logs "
        "the same sums once per update (`_flush_deferred`).",
        parameters=("self", "batch"),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._log_metrics",
        "override",
        ("learners/_learner.py",),
        "RLlib increments Ray's Prometheus counters of steps trained once per minibatch; lrtune "
        "increments them once per update by the same totals.",
        parameters=("self", "batch"),
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._weights_seq_no",
        "instance_attribute",
        ("learners/_learner.py",),
        "the weights' sequence number RLlib logs per minibatch (window 1); lrtune logs it once "
        "per update, as `_log_steps_trained_metrics` would have.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._metrics_all_modules_num_env_steps_trained",
        "instance_attribute",
        ("learners/_learner.py",),
        "Ray's Prometheus counter of env steps trained, incremented by lrtune once per update "
        "(RLlib's `_log_metrics` does it per minibatch); no public handle.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.learner",
        "Learner._metrics_all_modules_num_module_steps_trained",
        "instance_attribute",
        ("learners/_learner.py",),
        "as `_metrics_all_modules_num_env_steps_trained`, for module steps.",
    ),
    PrivateAPI(
        "ray.rllib.core.learner.torch.torch_learner",
        "TorchLearner._torch_compile_complete_update",
        "instance_attribute",
        ("learners/_learner.py",),
        "whether RLlib compiles the whole update with torch.compile; lrtune's once-per-update "
        "metrics and minibatch cutting stay off then (the compiled update traces the "
        "per-minibatch calls).",
    ),
    *(
        PrivateAPI(
            "ray.rllib.utils.minibatch_utils",
            f"MiniBatchCyclicIterator.{name}",
            "instance_attribute",
            ("learners/_minibatches.py",),
            f"{what}, read by `FlatMiniBatchCycle`, which yields the iterator's minibatches; "
            "the iterator has no public accessors.",
        )
        for name, what in (
            ("_batch", "the train batch"),
            ("_minibatch_size", "the minibatch size"),
            ("_num_epochs", "the number of epochs"),
            ("_shuffle_batch_per_epoch", "whether each epoch shuffles the batch"),
            ("_num_total_minibatches", "the number of minibatches, when fixed"),
        )
    ),
    PrivateAPI(
        "ray.rllib.policy.sample_batch",
        "SampleBatch._slice_seq_lens_in_B",
        "instance_attribute",
        ("learners/_minibatches.py",),
        "a batch whose slices follow its sequence lengths keeps RLlib's iterator "
        "(`FlatMiniBatchCycle` cuts flat rows only); no public accessor.",
    ),
    _foreach("_foreach_norm", _FOREACH_WHY + _NORM_WHY, "learners/_learner.py"),
    _foreach("_foreach_add_", _FOREACH_WHY),
    _foreach("_foreach_reciprocal_", _FOREACH_WHY),
    _foreach("_foreach_mul_", _FOREACH_WHY),
    _foreach("_foreach_clamp_max_", _FOREACH_WHY),
    PrivateAPI(
        "importlib.metadata",
        "PathDistribution._path",
        "instance_attribute",
        ("cluster/_package.py",),
        "the installed `.dist-info` folder, shipped beside an lrtune installed from a wheel "
        "(`lrtune submit`); importlib.metadata has no public path of that folder.",
    ),
)


def check(api: PrivateAPI) -> str | None:
    """Resolve ``api`` against the installed libraries: None when it is there as listed, else
    what is wrong (the module, the name or the parameters)."""
    try:
        owner: Any = importlib.import_module(api.module)
    except ImportError as exc:
        return f"module {api.module} does not import: {exc}"
    *containers, name = api.path.split(".")
    for part in containers:
        if not hasattr(owner, part):
            return f"{api.module} has no {part!r}"
        owner = getattr(owner, part)
    if api.kind == "instance_attribute":
        return _check_instance_attribute(owner, name)
    if not hasattr(owner, name):
        return f"{'.'.join([api.module, *containers])} has no {name!r}"
    if api.parameters:
        found = tuple(inspect.signature(getattr(owner, name)).parameters)
        if found != api.parameters:
            return f"its parameters are {found}, lrtune relies on {api.parameters}"
    return None


def _check_instance_attribute(cls: type, name: str) -> str | None:
    """An attribute set per instance is found where the class (or a base) assigns it."""
    # An annotation may span lines (``self._x: DefaultDict[\n    K, V\n] = ...``).
    assignment = re.compile(rf"self\.{re.escape(name)}\s*(:[^=]+?)?=[^=]")
    for klass in cls.__mro__:
        if klass is object:
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # a class defined in C has no source to read
            continue
        if assignment.search(source):
            return None
    return f"neither {cls.__qualname__} nor a base class assigns self.{name}"
