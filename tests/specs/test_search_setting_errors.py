"""Bad search settings (startup trials, grace fraction) and bad combined or agent spaces:
`lrtune validate` (or `lrtune run --dry-run`) exits 2 with one paragraph naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrtune.cli import main

LR_SPACE = """\
version: 1
lr: {distribution: log_uniform, low: 1e-4, high: 3e-3}
schedule: {constant: {}, cosine: {min_factor: {distribution: uniform, low: 0.0, high: 0.2}}}
"""
AGENT_SPACE = """\
version: 1
hyperparams:
  gamma: {distribution: categorical, choices: [0.95, 0.99]}
model:
  hidden: {distribution: categorical, choices: [[64], [64, 64]]}
agent_settings:
  num_minibatches: {distribution: categorical, choices: [2, 4]}
"""

GRID_SPACE = "version: 1\nlr: {values: [1e-4, 1e-3]}\n"

SMALL_BATCHES = AGENT_SPACE.replace("[2, 4]", "[2, 64]").replace(
    "hyperparams:\n",
    "hyperparams:\n  train_batch_size_per_learner: "
    "{distribution: categorical, choices: [32, 128]}\n",
)


def job(agent: str = "ppo", space: str = "[lr.yaml, agent.yaml]", **sections: str) -> str:
    """A job over a combined space, with extra top-level sections (``search="{...}"``)."""
    lines = [
        "name: bad",
        f"agent: {agent}",
        "env: {id: CartPole-v1}",
        "budget: {trial_env_steps: 20000}",
        "trials: {num: 8}",
        f"space: {space}",
    ]
    lines += [f"{key}: {value}" for key, value in sections.items()]
    return "\n".join(lines) + "\n"


def files(job_text: str, agent_space: str = AGENT_SPACE, lr: str = LR_SPACE) -> dict[str, str]:
    """The files of one case: the job, the LR space and the agent space."""
    return {"job.yaml": job_text, "lr.yaml": lr, "agent.yaml": agent_space}


# (id, {file: text}, command, substrings the error must hold)
CASES: list[tuple[str, dict[str, str], list[str], list[str]]] = [
    (
        "startup_trials wrong type",
        files(job(search="{startup_trials: many}")),
        ["validate", "job.yaml"],
        ["search.startup_trials:", "integer"],
    ),
    (
        "startup_trials out of range",
        files(job(search="{startup_trials: 0}")),
        ["validate", "job.yaml"],
        ["search.startup_trials:", "greater than or equal to 1"],
    ),
    (
        "startup_trials more than trials",
        files(job(search="{startup_trials: 9}")),
        ["validate", "job.yaml"],
        ["search.startup_trials:", "more than trials.num (8)"],
    ),
    (
        "startup_trials with a model-free sampler",
        files(job(search="{sampler: random, startup_trials: 2}")),
        ["validate", "job.yaml"],
        ["search.startup_trials:", "sampler random has no model", "cmaes, gp or tpe"],
    ),
    (
        "batch wrong type",
        files(job(search="{batch: sometimes}")),
        ["validate", "job.yaml"],
        ["search.batch:", "boolean"],
    ),
    (
        "batch with a grid",
        files(job(space="lr.yaml", search="{algorithm: grid, batch: true}"), lr=GRID_SPACE),
        ["validate", "job.yaml"],
        ["search.batch:", "a grid's trials are fixed", "leave batch out"],
    ),
    (
        "batch without a space",
        {"job.yaml": job(space="null", policy="{lr: 1e-3}", search="{batch: true}")},
        ["validate", "job.yaml"],
        ["search.batch:", "a job without a space has no searcher", "leave batch out"],
    ),
    (
        "search unknown key",
        files(job(search="{startup_trial: 2}")),
        ["validate", "job.yaml"],
        ["search.startup_trial:", "unknown key"],
    ),
    (
        "grace_fraction wrong type",
        files(job(scheduler="{grace_fraction: half}")),
        ["validate", "job.yaml"],
        ["scheduler.grace_fraction:", "number"],
    ),
    (
        "grace_fraction above 1",
        files(job(scheduler="{grace_fraction: 1.5}")),
        ["validate", "job.yaml"],
        ["scheduler.grace_fraction:", "less than or equal to 1"],
    ),
    (
        "grace_fraction zero",
        files(job(scheduler="{grace_fraction: 0}")),
        ["validate", "job.yaml"],
        ["scheduler.grace_fraction:", "greater than 0"],
    ),
    (
        "grace given twice",
        files(job(scheduler="{grace_period: 1000, grace_fraction: 0.25}")),
        ["validate", "job.yaml"],
        ["scheduler.grace_fraction:", "grace_period (env steps) or grace_fraction", "not both"],
    ),
    (
        "grace_fraction with a scheduler that has no grace period",
        files(job(scheduler="{name: hyperband, grace_fraction: 0.25}")),
        ["validate", "job.yaml"],
        ["scheduler.grace_fraction:", "would be ignored", "asha or median"],
    ),
    (
        "scheduler unknown key",
        files(job(scheduler="{grace_frac: 0.25}")),
        ["validate", "job.yaml"],
        ["scheduler.grace_frac:", "unknown key"],
    ),
    (
        "bad entry in the second space file",
        files(job(), AGENT_SPACE.replace("[[64], [64, 64]]", "[[64], [0]]")),
        ["validate", "job.yaml"],
        ["space.model.hidden:", "agent.yaml", "greater than or equal to 1"],
    ),
    (
        "bad entry in the first space file",
        files(job(), lr=LR_SPACE.replace("high: 0.2", "high: 1.5")),
        ["validate", "job.yaml"],
        ["space.schedule.cosine.min_factor:", "lr.yaml", "1.5"],
    ),
    (
        "a key set by two space files",
        files(job(), lr=LR_SPACE + "hyperparams: {gamma: 0.9}\n"),
        ["validate", "job.yaml"],
        ["space.hyperparams.gamma:", "set by both", "lr.yaml", "agent.yaml"],
    ),
    (
        "a slot set by two space files",
        files(job(), AGENT_SPACE + "schedule: {constant: {}}\n"),
        ["validate", "job.yaml"],
        ["space.schedule:", "set by both", "lr.yaml", "agent.yaml"],
    ),
    (
        "inline part with an unknown key",
        files(job(space="[lr.yaml, {hyperparms: {gamma: 0.9}}]")),
        ["validate", "job.yaml"],
        ["space.hyperparms:", "unknown key", "space[1] (inline)"],
    ),
    (
        "space part of the wrong type",
        files(job(space="[lr.yaml, 3]")),
        ["validate", "job.yaml"],
        ["space.1:", "a file path or a mapping"],
    ),
    (
        "space part file missing",
        files(job(space="[lr.yaml, absent.yaml]")),
        ["validate", "job.yaml"],
        ["space.1:", "no such file 'absent.yaml'"],
    ),
    (
        "empty space list",
        files(job(space="[]")),
        ["validate", "job.yaml"],
        ["space:", "an empty list"],
    ),
    (
        "agent setting of another agent",
        files(job(agent="dqn")),
        ["validate", "job.yaml"],
        ["space.agent_settings.num_minibatches:", "a PPO's setting", "agent is dqn"],
    ),
    (
        "agent setting unknown key",
        {"s.yaml": "agent_settings: {minibatches: 4}\n"},
        ["validate", "s.yaml"],
        ["agent_settings.minibatches:", "not a lrtune agent setting", "num_minibatches"],
    ),
    (
        "agent setting wrong type",
        {
            "s.yaml": "agent_settings: {num_minibatches: {distribution: categorical, "
            "choices: [two]}}\n"
        },
        ["validate", "s.yaml"],
        ["agent_settings.num_minibatches:", "integer"],
    ),
    (
        "agent setting out of range",
        {
            "s.yaml": "agent_settings: {exploration_final_eps: {distribution: uniform, "
            "low: 0.0, high: 1.5}}\n"
        },
        ["validate", "s.yaml"],
        ["agent_settings.exploration_final_eps:", "the range's high 1.5"],
    ),
    (
        "agent setting beside the setting it replaces",
        files(job(hyperparams="{minibatch_size: 64}")),
        ["validate", "job.yaml"],
        ["space.agent_settings.num_minibatches:", "minibatch_size", "hyperparams.minibatch_size"],
    ),
    (
        "DQN's updates per env step beside the training intensity",
        files(
            job(agent="dqn", hyperparams="{training_intensity: 16}"),
            "version: 1\nagent_settings: {updates_per_env_step: {distribution: log_uniform, "
            "low: 0.25, high: 1.0}}\n",
        ),
        ["validate", "job.yaml"],
        [
            "space.agent_settings.updates_per_env_step:",
            "training_intensity",
            "hyperparams.training_intensity",
        ],
    ),
    (
        "model setting unknown key",
        {"s.yaml": "model: {hiden: {distribution: categorical, choices: [[64]]}}\n"},
        ["validate", "s.yaml"],
        ["model.hiden:", "not a model setting", "hidden"],
    ),
    (
        "model setting wrong value",
        {"s.yaml": "model: {activation: {distribution: categorical, choices: [tanh, sigmoid]}}\n"},
        ["validate", "s.yaml"],
        ["model.activation:", "sigmoid"],
    ),
    (
        "more minibatches than the smallest batch",
        files(job(), SMALL_BATCHES),
        ["run", "job.yaml", "--dry-run"],
        ["space.agent_settings.num_minibatches:", "up to 64 minibatches", "as small as 32"],
    ),
]


@pytest.mark.parametrize(
    ("texts", "argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_search_setting_exits_2_naming_the_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    texts: dict[str, str],
    argv: list[str],
    expected: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    assert main(argv) == 2
    out = capsys.readouterr()
    err = out.err.strip()
    assert err.startswith("lrtune: error: "), err
    assert "\n" not in err, "one paragraph"
    assert "Traceback" not in err and "internal error" not in err
    for part in expected:
        assert part in err, f"{part!r} not in: {err}"
