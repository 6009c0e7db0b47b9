"""lrtune's vocabulary: the one place the names of MLflow tags, Ray job metadata keys, run roles,
trial statuses and groupings live.

Every room writes and reads these names through this module (it imports nothing of lrtune, so
any room may import it). The *values* are what existing MLflow stores and Ray clusters hold:
changing one breaks reading old experiments, so a new name gets a new constant instead.

Groupings are the names users write in ``compare --by``, ``report --by`` and ``finalize --per``
(``family``, ``optimizer``, ``gating``, ...), each held by one trial tag. The policy's YAML
field names (``schedule``, ``gradients``) are accepted as aliases of the groupings they stand
for, so ``--by schedule`` means ``--by family`` and ``--by gradients`` means ``--by gating``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

#: The value of a boolean tag that is set (``tags.diverged = 'true'`` in an MLflow search).
TRUE: Final = "true"

# --- tags of every run lrtune creates ------------------------------------------------------

#: MLflow's own tag: the parent run of a nested run (trial and finalist runs).
PARENT_TAG: Final = "mlflow.parentRunId"
#: The run's role: one of `RunRole` (experiment parent, search trial, finalist).
TAG_ROLE: Final = "lrtune.role"

# --- tags of the experiment's parent run ---------------------------------------------------

#: The lrtune experiment's name (the job's ``name``).
TAG_EXPERIMENT: Final = "lrtune.experiment"
#: The resolved job's hash: a resume of the same job finds its parent run by it.
TAG_JOB_HASH: Final = "lrtune.job_hash"
#: The tracking journal's key of the parent run (found again after a driver died).
TAG_PARENT_KEY: Final = "lrtune.parent_key"
#: The best trial's Tune id, and its score (set when the run ends).
TAG_BEST_TRIAL: Final = "lrtune.best_trial"
TAG_BEST_SCORE: Final = "lrtune.best_score"
#: A population run's best member's ancestry, as text (``a@0 → b@4000``).
TAG_BEST_ANCESTRY: Final = "lrtune.best_ancestry"
#: ``true`` on the parent run of a population (PBT, PB2) experiment.
TAG_POPULATION: Final = "lrtune.population"

# --- tags of a trial run (search trial or finalist) ----------------------------------------

#: Tune's trial id.
TAG_TRIAL_ID: Final = "lrtune.trial_id"
#: The trial's final status: one of `TrialStatus` (absent while it runs).
TAG_STATUS: Final = "lrtune.status"
#: ``true`` on a run that diverged (a plain tag too, for MLflow searches).
TAG_DIVERGED: Final = "diverged"
#: A failed trial's exception, in one line.
TAG_ERROR: Final = "lrtune.error"
#: ``true`` on a run a killed driver left open that Tune will not resume.
TAG_LOST: Final = "lrtune.lost"
#: The agent (``ppo``, ``dqn``, ...) and gymnasium env id the trial trained.
TAG_AGENT: Final = "agent"
TAG_ENV: Final = "env"
#: The schedule family (``cosine``; ``warmup+cosine`` for a warm-up): grouping ``family``.
TAG_SCHEDULE_FAMILY: Final = "schedule_family"
#: The optimizer's name: grouping ``optimizer``.
TAG_OPTIMIZER: Final = "optimizer"
#: The gradient gate's name (the policy's ``gradients`` entry): grouping ``gating``.
TAG_GATING: Final = "gating"
#: The feedback rules' names, comma-joined, or ``none``: grouping ``feedback``.
TAG_FEEDBACK: Final = "feedback"
#: ``true`` on the job's baseline policy's trial.
TAG_BASELINE: Final = "baseline"
#: The policy in one line (``adam 1e-03 cosine``): grouping ``policy``.
TAG_POLICY: Final = "lrtune.policy"
#: The agent's network (grouping ``model``) and its searched settings (grouping ``agent``).
TAG_MODEL: Final = "lrtune.model"
TAG_AGENT_SETTINGS: Final = "lrtune.agent"
#: A population member's number of exploits, and each one's record (``lrtune.exploit.<k>``).
TAG_EXPLOITS: Final = "lrtune.exploits"
TAG_EXPLOIT_PREFIX: Final = "lrtune.exploit."

# --- tags of a finalist run (``lrtune finalize``) ------------------------------------------

#: ``true`` on a finalist run; the plain ``finalist`` tag says the same for MLflow searches.
TAG_FINALIST: Final = "lrtune.finalist"
TAG_FINALIST_PLAIN: Final = "finalist"
#: The search trial the finalist re-trains, the held-out seed, the finalize round (a UTC
#: timestamp, also on the parent run) and the source trial's search score.
TAG_SOURCE_TRIAL: Final = "lrtune.source_trial"
TAG_TEST_SEED: Final = "lrtune.test_seed"
TAG_ROUND: Final = "lrtune.finalize_round"
TAG_SEARCH_SCORE: Final = "lrtune.search_score"
#: The finalist's rank among the finalists (1: the best search score).
TAG_FINALIST_RANK: Final = "finalist_rank"
#: What a test run computes: the hash of its resolved one-seed job (`JobSpec.resolved_hash`, the
#: name left out), so that a later round re-uses a finished run of the same configuration, seed,
#: budget and scoring instead of training it again.
TAG_FINALIST_HASH: Final = "lrtune.finalist_hash"
#: On a test run a later round re-used: the round that trained it.
TAG_TRAINED_IN_ROUND: Final = "lrtune.trained_in_round"

# --- Optuna study user attributes (``results/<name>/optuna.db``) ---------------------------

#: A study trial's lrtune status where Optuna's own state cannot say it (``diverged``: told as
#: complete with the job's worst value; ``stopped``: closed as FAIL after a killed driver).
STUDY_STATUS_ATTR: Final = "lrtune_status"
#: ``True`` on a study trial told again after a resume.
STUDY_RESUMED_ATTR: Final = "lrtune_resumed"

# --- Tune trial configs (Tune's experiment state holds them; a resume reads them back) -------

#: The key under which the grid, populations and finalize list one `lrtune.specs.TrialPoint`
#: per trial (one ``tune.grid_search``); Optuna's trials hold the point at the top level.
CONFIG_POINT_KEY: Final = "point"

# --- Ray job metadata (``lrtune submit``; not MLflow tags) ---------------------------------

#: The job's name, its resolved hash, Tune's storage path, the MLflow experiment, the tracking
#: URI (password redacted) and the job file relative to the working dir.
META_JOB: Final = "lrtune.job"
META_JOB_HASH: Final = "lrtune.job_hash"
META_STORAGE: Final = "lrtune.storage_path"
META_EXPERIMENT: Final = "lrtune.experiment"
META_TRACKING_URI: Final = "lrtune.tracking_uri"
META_JOB_FILE: Final = "lrtune.job_file"
#: Metadata of the small Ray Job `lrtune submit` runs first to check the nodes' Python.
META_PROBE: Final = "lrtune.probe"


def exploit_tag(index: int) -> str:
    """The tag holding a population member's ``index``-th exploit (``lrtune.exploit.0``)."""
    return f"{TAG_EXPLOIT_PREFIX}{index}"


def tag_names() -> frozenset[str]:
    """Every fixed tag name above (exploit tags are `TAG_EXPLOIT_PREFIX` plus a number)."""
    return frozenset(
        value
        for name, value in globals().items()
        if (name.startswith("TAG_") and name != "TAG_EXPLOIT_PREFIX") or name == "PARENT_TAG"
    )


def is_tag_name(name: str) -> bool:
    """Whether ``name`` is a tag lrtune writes on a run (exploit tags included)."""
    if name in tag_names():
        return True
    return name.startswith(TAG_EXPLOIT_PREFIX) and name[len(TAG_EXPLOIT_PREFIX) :].isdigit()


class RunRole(enum.StrEnum):
    """The role of an lrtune MLflow run (the `TAG_ROLE` tag's value)."""

    EXPERIMENT = "experiment"  # the experiment's parent run
    TRIAL = "trial"  # one search trial (or population member)
    FINALIST = "finalist"  # one finalist re-trained on a held-out test seed


class TrialStatus(enum.StrEnum):
    """lrtune's final status of a trial (the `TAG_STATUS` tag's value).

    A `str`: it compares equal to, and serialises as, its value.
    """

    COMPLETED = "completed"  # trained its whole budget
    PRUNED = "pruned"  # stopped early by the scheduler (scored on fewer env steps)
    # Stopped (or never started) when the experiment's budget.experiment_env_steps or
    # budget.experiment_seconds ran out; scored on the env steps it had.
    OUT_OF_BUDGET = "out_of_budget"
    DIVERGED = "diverged"  # its divergence persisted: scored the job's worst value
    FAILED = "failed"  # raised, its retries spent
    STOPPED = "stopped"  # interrupted (Ctrl-C, a killed driver) before it ended

    @property
    def run_status(self) -> str:
        """The MLflow run status a run with this status ends with."""
        return RUN_STATUS[self]

    @property
    def finished(self) -> bool:
        """Whether the trial ended with a real score (completed, pruned, or out of budget)."""
        return self in (TrialStatus.COMPLETED, TrialStatus.PRUNED, TrialStatus.OUT_OF_BUDGET)


#: lrtune status → MLflow run status (``FINISHED``, ``FAILED``, ``KILLED``).
RUN_STATUS: Final[Mapping[str, str]] = MappingProxyType(
    {
        TrialStatus.COMPLETED: "FINISHED",
        TrialStatus.PRUNED: "FINISHED",
        TrialStatus.OUT_OF_BUDGET: "FINISHED",
        TrialStatus.DIVERGED: "FINISHED",
        TrialStatus.FAILED: "FAILED",
        TrialStatus.STOPPED: "KILLED",
    }
)


# --- groupings ------------------------------------------------------------------------------


#: Grouping names, as users write them (``--by``, ``--per``) and as summaries key group labels.
BY_FAMILY: Final = "family"
BY_OPTIMIZER: Final = "optimizer"
BY_GATING: Final = "gating"
BY_FEEDBACK: Final = "feedback"
BY_POLICY: Final = "policy"
BY_MODEL: Final = "model"
BY_AGENT: Final = "agent"
BY_EXPERIMENT: Final = "experiment"
#: The grouping ``compare`` and ``report`` use when none is given.
DEFAULT_GROUPING: Final = BY_FAMILY


@dataclass(frozen=True)
class Grouping:
    """A way to group runs: the name users write, and the trial tag that holds its label."""

    name: str
    #: The trial tag holding the group label; None for ``experiment`` (the experiment's name).
    tag: str | None
    #: What a group is, in a few words (for help texts).
    doc: str
    #: Whether the label follows from the LR policy alone (``finalize --per`` groups by these).
    of_policy: bool = False


#: The groupings, by the name users write (the README's spelling), in help-text order.
GROUPINGS: Final[Mapping[str, Grouping]] = MappingProxyType(
    {
        g.name: g
        for g in (
            Grouping(BY_FAMILY, TAG_SCHEDULE_FAMILY, "the schedule family", of_policy=True),
            Grouping(BY_OPTIMIZER, TAG_OPTIMIZER, "the optimizer", of_policy=True),
            Grouping(BY_GATING, TAG_GATING, "the gradient gate", of_policy=True),
            Grouping(BY_FEEDBACK, TAG_FEEDBACK, "the feedback rules", of_policy=True),
            Grouping(BY_POLICY, TAG_POLICY, "the whole LR policy", of_policy=True),
            Grouping(BY_MODEL, TAG_MODEL, "the agent's network"),
            Grouping(BY_AGENT, TAG_AGENT_SETTINGS, "the agent's searched settings"),
            Grouping(BY_EXPERIMENT, None, "the experiment"),
        )
    }
)

#: Grouping name → the trial tag holding it (every grouping but ``experiment``).
GROUPING_TAGS: Final[Mapping[str, str]] = MappingProxyType(
    {name: g.tag for name, g in GROUPINGS.items() if g.tag is not None}
)

#: Other spellings users write, → the grouping's name: the policy's YAML field names.
GROUPING_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {"schedule": BY_FAMILY, "gradients": BY_GATING}
)

#: The policy's YAML fields (and the search space's choice parameters) → their grouping.
POLICY_FIELD_GROUPINGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "schedule": BY_FAMILY,
        "optimizer": BY_OPTIMIZER,
        "gradients": BY_GATING,
        "feedback": BY_FEEDBACK,
    }
)

#: What ``finalize --per`` accepts: the groupings that follow from the LR policy alone.
PER_GROUPINGS: Final = tuple(name for name, g in GROUPINGS.items() if g.of_policy)


def canonical_grouping(name: str) -> str | None:
    """The grouping ``name`` (or its alias) stands for, or None if it is none of them."""
    name = name.strip()
    if name in GROUPINGS:
        return name
    return GROUPING_ALIASES.get(name)


def parse_groupings(
    names: Iterable[str], allowed: Iterable[str] = GROUPINGS
) -> tuple[tuple[str, ...], list[str]]:
    """``(canonical names, unknown names)`` of ``names``, aliases resolved; a name whose
    grouping is not in ``allowed`` is unknown."""
    allowed = tuple(allowed)
    known: list[str] = []
    unknown: list[str] = []
    for raw in names:
        name = canonical_grouping(raw)
        if name is None or name not in allowed:
            unknown.append(raw.strip())
        else:
            known.append(name)
    return tuple(known), unknown


def groupings_help(allowed: Iterable[str] = GROUPINGS) -> str:
    """``family, optimizer, ... (aliases: schedule = family, gradients = gating)``."""
    allowed = tuple(allowed)
    aliases = ", ".join(f"{a} = {g}" for a, g in GROUPING_ALIASES.items() if g in allowed)
    return ", ".join(allowed) + (f" (aliases: {aliases})" if aliases else "")


__all__ = [
    "CONFIG_POINT_KEY",
    "GROUPINGS",
    "GROUPING_ALIASES",
    "GROUPING_TAGS",
    "META_EXPERIMENT",
    "META_JOB",
    "META_JOB_FILE",
    "META_JOB_HASH",
    "META_PROBE",
    "META_STORAGE",
    "META_TRACKING_URI",
    "PARENT_TAG",
    "PER_GROUPINGS",
    "POLICY_FIELD_GROUPINGS",
    "RUN_STATUS",
    "STUDY_RESUMED_ATTR",
    "STUDY_STATUS_ATTR",
    "TAG_AGENT",
    "TAG_AGENT_SETTINGS",
    "TAG_BASELINE",
    "TAG_BEST_ANCESTRY",
    "TAG_BEST_SCORE",
    "TAG_BEST_TRIAL",
    "TAG_DIVERGED",
    "TAG_ENV",
    "TAG_ERROR",
    "TAG_EXPERIMENT",
    "TAG_EXPLOITS",
    "TAG_EXPLOIT_PREFIX",
    "TAG_FEEDBACK",
    "TAG_FINALIST",
    "TAG_FINALIST_HASH",
    "TAG_FINALIST_PLAIN",
    "TAG_FINALIST_RANK",
    "TAG_GATING",
    "TAG_JOB_HASH",
    "TAG_LOST",
    "TAG_MODEL",
    "TAG_OPTIMIZER",
    "TAG_PARENT_KEY",
    "TAG_POLICY",
    "TAG_POPULATION",
    "TAG_ROLE",
    "TAG_ROUND",
    "TAG_SCHEDULE_FAMILY",
    "TAG_SEARCH_SCORE",
    "TAG_SOURCE_TRIAL",
    "TAG_STATUS",
    "TAG_TEST_SEED",
    "TAG_TRAINED_IN_ROUND",
    "TAG_TRIAL_ID",
    "TRUE",
    "Grouping",
    "RunRole",
    "TrialStatus",
    "canonical_grouping",
    "exploit_tag",
    "groupings_help",
    "is_tag_name",
    "parse_groupings",
    "tag_names",
]
