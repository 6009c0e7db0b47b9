"""Bad job and space files: `lrtune validate` exits 2 with one paragraph naming the field."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lrtune.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPACE = """\
version: 1
lr: {distribution: log_uniform, low: 1e-5, high: 3e-3}
schedule:
  constant: {}
  cosine: {min_factor: {distribution: uniform, low: 0.0, high: 0.2}}
"""
JOB = """\
name: cartpole
agent: ppo
env: {id: CartPole-v1}
budget: {trial_env_steps: 20000}
space: space.yaml
"""


def job(**replace: str) -> str:
    """The valid JOB with top-level keys replaced (a value of '' drops the key)."""
    lines = {line.split(":", 1)[0]: line for line in JOB.splitlines()}
    for key, value in replace.items():
        if value:
            lines[key] = f"{key}: {value}"
        else:
            lines.pop(key, None)
    return "\n".join(lines.values()) + "\n"


# (id, {file: text}, file to validate, --set overrides, substrings the error must hold)
CASES: list[tuple[str, dict[str, str], str, list[str], list[str]]] = [
    (
        "unknown plugin",
        {"s.yaml": "schedule: {cosin: {}}\n"},
        "s.yaml",
        [],
        ["schedule.cosin:", "unknown schedule 'cosin'", "Did you mean 'cosine'"],
    ),
    (
        "unknown optimizer in job",
        {"space.yaml": "lr: 1e-3\noptimizer: {adamm: {}}\n", "job.yaml": JOB},
        "job.yaml",
        [],
        ["invalid job: space.optimizer.adamm:", "unknown optimizer"],
    ),
    (
        "wrong type",
        {"space.yaml": SPACE, "job.yaml": job(trials="{num: many}")},
        "job.yaml",
        [],
        ["trials.num:", "integer"],
    ),
    (
        "range out of plugin bounds",
        {
            "s.yaml": "schedule:\n  cosine: {min_factor: "
            "{distribution: uniform, low: 0.0, high: 1.5}}\n"
        },
        "s.yaml",
        [],
        ["schedule.cosine.min_factor:", "1.5", "<1.0"],
    ),
    (
        "range out of bounds via job",
        {
            "space.yaml": "lr: 1e-3\nschedule:\n  cosine: "
            "{min_factor: {distribution: uniform, low: -1, high: 0.2}}\n",
            "job.yaml": JOB,
        },
        "job.yaml",
        [],
        ["space.schedule.cosine.min_factor:", ">=0.0", "space.yaml"],
    ),
    (
        "unknown plugin param",
        {"s.yaml": "gradients: {clip_global_norm: {max_nrom: 1.0}}\n"},
        "s.yaml",
        [],
        ["gradients.clip_global_norm.max_nrom:", "which takes max_norm"],
    ),
    (
        "required plugin param missing",
        {"s.yaml": "schedule: {warmup: {}}\n"},
        "s.yaml",
        [],
        ["schedule.warmup.steps:", "required"],
    ),
    (
        "log range from zero",
        {"s.yaml": "lr: {distribution: log_uniform, low: 0, high: 1}\n"},
        "s.yaml",
        [],
        ["lr:", "low > 0"],
    ),
    (
        "int range not whole",
        {"s.yaml": "schedule: {warmup: {steps: {distribution: int, low: 10.5, high: 100}}}\n"},
        "s.yaml",
        [],
        ["schedule.warmup.steps:", "whole-number"],
    ),
    (
        "empty categorical",
        {"s.yaml": "hyperparams: {gamma: {distribution: categorical, choices: []}}\n"},
        "s.yaml",
        [],
        ["hyperparams.gamma:", "choices"],
    ),
    (
        "unknown distribution",
        {"s.yaml": "lr: {distribution: loguniform, low: 1, high: 2}\n"},
        "s.yaml",
        [],
        ["lr.distribution:", "log_uniform"],
    ),
    (
        "kl_adaptive with dqn (space)",
        {"space.yaml": "lr: 1e-3\nfeedback: {kl: [kl_adaptive]}\n", "job.yaml": job(agent="dqn")},
        "job.yaml",
        [],
        ["space.feedback.kl.0:", "kl_adaptive", "does not support agent 'dqn'"],
    ),
    (
        "kl_adaptive with dqn (policy)",
        {"job.yaml": job(agent="dqn", space="", policy="{lr: 1e-3, feedback: [kl_adaptive]}")},
        "job.yaml",
        [],
        ["policy.feedback.0:", "does not support agent 'dqn'"],
    ),
    (
        "kl_adaptive in a sac role's own policy",
        {
            "job.yaml": job(
                agent="sac",
                space="",
                policy="{lr: 1e-3, roles: {critic: {feedback: [kl_adaptive]}}}",
            )
        },
        "job.yaml",
        [],
        ["policy.roles.critic.feedback.0:", "does not support agent 'sac'"],
    ),
    (
        "grid without values",
        {"space.yaml": SPACE, "job.yaml": job(search="{algorithm: grid}")},
        "job.yaml",
        [],
        ["space.lr:", "space.schedule.cosine.min_factor:", "`values`"],
    ),
    (
        "grid too big",
        {
            "space.yaml": "lr: {values: ["
            + ", ".join(f"{i}e-5" for i in range(1, 101))
            + "]}\nhyperparams: {gamma: {values: ["
            + ", ".join(f"0.{i + 100}" for i in range(101))
            + "]}}\n",
            "job.yaml": job(search="{algorithm: grid}"),
        },
        "job.yaml",
        [],
        ["search.algorithm:", "10100 points"],
    ),
    (
        "negative budget",
        {"space.yaml": SPACE, "job.yaml": job(budget="{trial_env_steps: -5}")},
        "job.yaml",
        [],
        ["budget.trial_env_steps:", "greater than 0"],
    ),
    (
        "zero experiment budget",
        {
            "space.yaml": SPACE,
            "job.yaml": job(budget="{trial_env_steps: 100, experiment_seconds: 0}"),
        },
        "job.yaml",
        [],
        ["budget.experiment_seconds:"],
    ),
    (
        "cluster section with an unknown install mode",
        {"space.yaml": SPACE, "job.yaml": JOB + "cluster: {install: docker}\n"},
        "job.yaml",
        [],
        ["cluster.install:", "wheel", "preinstalled"],
    ),
    (
        "cluster section carrying the token",
        {"space.yaml": SPACE, "job.yaml": JOB + "cluster: {env_vars: {RAY_AUTH_TOKEN: x}}\n"},
        "job.yaml",
        [],
        ["cluster.env_vars:", "RAY_AUTH_TOKEN cannot be set here"],
    ),
    (
        "model value network setting not a boolean",
        {"space.yaml": SPACE, "job.yaml": job(model="{vf_share_layers: maybe}")},
        "job.yaml",
        [],
        ["model.vf_share_layers:", "valid boolean", "maybe"],
    ),
    (
        "model initializer unknown",
        {"space.yaml": SPACE, "job.yaml": job(model="{initializer: xavier}")},
        "job.yaml",
        [],
        ["model.initializer:", "'orthogonal' or 'torch'", "xavier"],
    ),
    (
        "model observation normalisation not a boolean",
        {"space.yaml": SPACE, "job.yaml": job(model="{normalize_observations: 1}")},
        "job.yaml",
        [],
        ["model.normalize_observations:", "valid boolean"],
    ),
    (
        "model hidden size out of range",
        {"space.yaml": SPACE, "job.yaml": job(model="{hidden: [64, 0]}")},
        "job.yaml",
        [],
        ["model.hidden.1:", "greater than or equal to 1"],
    ),
    (
        "model orthogonal initialisation with dqn",
        {"space.yaml": SPACE, "job.yaml": job(agent="dqn", model="{initializer: orthogonal}")},
        "job.yaml",
        [],
        ["model.initializer:", "built for PPO"],
    ),
    (
        "model conv filter layer not a triple",
        {"space.yaml": SPACE, "job.yaml": job(model="{conv_filters: [[16, 3]]}")},
        "job.yaml",
        [],
        ["model.conv_filters.0.2:", "Field required"],
    ),
    (
        "model conv filters empty",
        {"space.yaml": SPACE, "job.yaml": job(model="{conv_filters: []}")},
        "job.yaml",
        [],
        ["model.conv_filters:", "give 1 to 12 layers", "leave conv_filters out"],
    ),
    (
        "model conv filter stride out of range",
        {"space.yaml": SPACE, "job.yaml": job(model="{conv_filters: [[16, 3, 0]]}")},
        "job.yaml",
        [],
        ["model.conv_filters.0.2:", "greater than or equal to 1"],
    ),
    (
        "model reward normalisation not a boolean",
        {"space.yaml": SPACE, "job.yaml": job(model="{normalize_rewards: yes please}")},
        "job.yaml",
        [],
        ["model.normalize_rewards:", "valid boolean"],
    ),
    (
        "model reward normalisation with dqn",
        {"space.yaml": SPACE, "job.yaml": job(agent="dqn", model="{normalize_rewards: true}")},
        "job.yaml",
        [],
        ["model.normalize_rewards:", "only PPO", "set it to false"],
    ),
    (
        "space model reward normalisation searched with dqn",
        {
            "space.yaml": SPACE
            + "model: {normalize_rewards: {distribution: categorical, choices: [false, true]}}\n",
            "job.yaml": job(agent="dqn"),
        },
        "job.yaml",
        [],
        ["space.model.normalize_rewards:", "only PPO", "set it to false for dqn"],
    ),
    (
        "model gsde exploration with dqn",
        {"space.yaml": SPACE, "job.yaml": job(agent="dqn", model="{exploration: gsde}")},
        "job.yaml",
        [],
        ["model.exploration:", "dqn has no exploration setting", "leave model.exploration out"],
    ),
    (
        "model gsde exploration with sac",
        {
            "job.yaml": job(
                agent="sac",
                env="{id: Pendulum-v1}",
                space="",
                policy="{lr: 1e-3}",
                model="{exploration: gsde, log_std_init: -2}",
            )
        },
        "job.yaml",
        [],
        ["model.exploration:", "sac has no exploration setting", "PPO's"],
    ),
    (
        "model exploration unknown kind",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: sde}")},
        "job.yaml",
        [],
        ["model.exploration:", "'gaussian' or 'gsde'"],
    ),
    (
        "model exploration log-std init not a number",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: gsde, log_std_init: low}")},
        "job.yaml",
        [],
        ["model.log_std_init:", "number"],
    ),
    (
        "model exploration log-std init out of range",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: gsde, log_std_init: -30}")},
        "job.yaml",
        [],
        ["model.log_std_init:", "greater than or equal to -20"],
    ),
    (
        "model log-std init without exploration",
        {"space.yaml": SPACE, "job.yaml": job(model="{log_std_init: -2}")},
        "job.yaml",
        [],
        ["model.log_std_init:", "model.exploration is not set", "leave log_std_init out"],
    ),
    (
        "model gsde sample frequency zero",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: gsde, sde_sample_freq: 0}")},
        "job.yaml",
        [],
        ["model.sde_sample_freq:", "give -1", "positive number of env steps"],
    ),
    (
        "model gsde sample frequency below -1",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: gsde, sde_sample_freq: -4}")},
        "job.yaml",
        [],
        ["model.sde_sample_freq:", "greater than or equal to -1"],
    ),
    (
        "model gsde sample frequency not whole",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: gsde, sde_sample_freq: 2.5}")},
        "job.yaml",
        [],
        ["model.sde_sample_freq:", "integer"],
    ),
    (
        "model gsde sample frequency with gaussian exploration",
        {
            "space.yaml": SPACE,
            "job.yaml": job(model="{exploration: gaussian, sde_sample_freq: 8}"),
        },
        "job.yaml",
        [],
        ["model.sde_sample_freq:", "model.exploration is gaussian", "set model.exploration: gsde"],
    ),
    (
        "model exploration misspelt key",
        {"space.yaml": SPACE, "job.yaml": job(model="{exploration: gsde, log_std_int: -2}")},
        "job.yaml",
        [],
        ["model.log_std_int:", "unknown key", "check its spelling"],
    ),
    (
        "space model gsde exploration searched with dqn",
        {
            "space.yaml": SPACE
            + "model: {exploration: {distribution: categorical, choices: [gaussian, gsde]}}\n",
            "job.yaml": job(agent="dqn"),
        },
        "job.yaml",
        [],
        ["space.model.exploration:", "dqn has no exploration setting"],
    ),
    (
        "space model orthogonal initialisation with dqn",
        {"space.yaml": SPACE + "model: {initializer: orthogonal}\n", "job.yaml": job(agent="dqn")},
        "job.yaml",
        [],
        ["space.model.initializer:", "built for PPO"],
    ),
    (
        "space model shared value layers with dqn",
        {
            "space.yaml": SPACE
            + "model:\n  vf_share_layers: {values: [false, true]}\n"
            + "  hidden: {values: [[64], [32]]}\n",
            "job.yaml": job(agent="dqn", search="{algorithm: grid}"),
        },
        "job.yaml",
        [],
        ["space.model.vf_share_layers:", "no value network"],
    ),
    (
        "unknown model key",
        {"space.yaml": SPACE, "job.yaml": job(model="{normalise_observations: true}")},
        "job.yaml",
        [],
        ["model.normalise_observations:", "unknown key"],
    ),
    (
        "unknown job key",
        {"space.yaml": SPACE, "job.yaml": JOB + "trails: {num: 4}\n"},
        "job.yaml",
        [],
        ["trails:", "unknown key"],
    ),
    (
        "unknown space key",
        {"s.yaml": SPACE + "schedules: {}\n"},
        "s.yaml",
        [],
        ["schedules:", "unknown key"],
    ),
    (
        "missing space file",
        {"job.yaml": job(space="nowhere/space.yaml")},
        "job.yaml",
        [],
        ["space:", "no such file", "nowhere/space.yaml", "tried"],
    ),
    (
        "test seeds overlap tuning",
        {"space.yaml": SPACE, "job.yaml": job(seeds="{tuning: [0, 1], test: [1, 2]}")},
        "job.yaml",
        [],
        ["seeds.test:", "[1]"],
    ),
    (
        "override with unknown key",
        {"space.yaml": SPACE, "job.yaml": JOB},
        "job.yaml",
        ["trials.nmu=4"],
        ["trials.nmu:", "unknown key", "num, max_concurrent, max_failures"],
    ),
    (
        "override at the top",
        {"space.yaml": SPACE, "job.yaml": JOB},
        "job.yaml",
        ["budgett=1"],
        ["budgett:", "valid keys at the top level"],
    ),
    (
        "override into a value",
        {"space.yaml": SPACE, "job.yaml": JOB},
        "job.yaml",
        ["budget.trial_env_steps.x=1"],
        ["budget.trial_env_steps:", "set it whole"],
    ),
    (
        "override making it bad",
        {"space.yaml": SPACE, "job.yaml": JOB},
        "job.yaml",
        ["space.lr.low=0"],
        ["space.lr:", "low > 0"],
    ),
    (
        "override without '='",
        {"space.yaml": SPACE, "job.yaml": JOB},
        "job.yaml",
        ["budget.trial_env_steps"],
        ["KEY.PATH=VALUE"],
    ),
    (
        "owned hyper-parameter",
        {"space.yaml": SPACE, "job.yaml": job(hyperparams="{grad_clip: 0.5}")},
        "job.yaml",
        [],
        ["hyperparams.grad_clip:", "clip_global_norm"],
    ),
    (
        "hyper-parameter also searched",
        {
            "space.yaml": SPACE + "hyperparams: {gamma: {distribution:"
            " uniform, low: 0.9, high: 0.99}}\n",
            "job.yaml": job(hyperparams="{gamma: 0.98}"),
        },
        "job.yaml",
        [],
        ["hyperparams.gamma:", "space.hyperparams.gamma"],
    ),
    (
        "unknown env",
        {"space.yaml": SPACE, "job.yaml": job(env="{id: CartPol-v1}")},
        "job.yaml",
        [],
        ["env.id:", "'CartPole-v1'"],
    ),
    (
        "env module missing",
        {"space.yaml": SPACE, "job.yaml": job(env="{id: 'no_such_pkg_xyz.envs:Thing-v0'}")},
        "job.yaml",
        [],
        ["env.id:", "no_such_pkg_xyz"],
    ),
    (
        "neither policy nor space",
        {"job.yaml": job(space="")},
        "job.yaml",
        [],
        ["policy:", "give a policy or a space"],
    ),
    (
        "space without lr, no policy",
        {"space.yaml": "schedule: {constant: {}}\n", "job.yaml": JOB},
        "job.yaml",
        [],
        ["space.lr:", "policy"],
    ),
    (
        "bad name",
        {"space.yaml": SPACE, "job.yaml": job(name="'has space'")},
        "job.yaml",
        [],
        ["name: 'has space' is not a usable name", "letters, digits, '_', '.' and '-' only"],
    ),
    (
        "bad version",
        {"s.yaml": "version: 2\n" + SPACE.split("\n", 1)[1]},
        "s.yaml",
        [],
        ["version:"],
    ),
    (
        "grace beyond budget",
        {"space.yaml": SPACE, "job.yaml": job(scheduler="{grace_period: 50000}")},
        "job.yaml",
        [],
        ["scheduler.grace_period:"],
    ),
    (
        "schedule horizon zero",
        {"space.yaml": "lr: 1e-3\nschedule: {cosine: {t_max: 0}}\n", "job.yaml": JOB},
        "job.yaml",
        [],
        ["space.schedule.cosine.t_max:"],
    ),
    (
        "unknown agent",
        {"space.yaml": SPACE, "job.yaml": job(agent="sacc")},
        "job.yaml",
        [],
        ["agent:", "unknown agent 'sacc'", "Did you mean 'sac'"],
    ),
    (
        "unknown optimizer role",
        {"job.yaml": job(agent="sac", space="", policy="{lr: 1e-3, roles: {critc: {lr: 1e-4}}}")},
        "job.yaml",
        [],
        ["policy.roles.critc:", "roles are actor, critic, alpha"],
    ),
    (
        "wrong type in a role",
        {"job.yaml": job(agent="sac", space="", policy="{lr: 1e-3, roles: {alpha: {lr: fast}}}")},
        "job.yaml",
        [],
        ["policy.roles.alpha.lr:", "number"],
    ),
    (
        "role rate owned by lrtune",
        {"job.yaml": job(agent="sac", space="", policy="{lr: 1e-3}", hyperparams="{alpha_lr: 1}")},
        "job.yaml",
        [],
        ["hyperparams.alpha_lr:", "role `alpha` in policy.roles"],
    ),
    ("not a mapping", {"s.yaml": "- a\n- b\n"}, "s.yaml", [], ["a search space is a mapping"]),
    ("no such file", {}, "absent.yaml", [], ["absent.yaml", "no such file"]),
]


@pytest.mark.parametrize(
    ("files", "target", "overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_file_exits_2_naming_the_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    files: dict[str, str],
    target: str,
    overrides: list[str],
    expected: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    argv = ["validate", target]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    err = out.err.strip()
    assert err.startswith("lrtune: error: ")
    assert "\n" not in err, "one paragraph"
    assert "Traceback" not in err and "internal error" not in err
    for part in expected:
        assert part in err, f"{part!r} not in: {err}"


def test_valid_and_invalid_files_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "job.yaml").write_text(JOB)
    (tmp_path / "bad.yaml").write_text("schedule: {cosin: {}}\n")
    assert main(["validate", "job.yaml", "bad.yaml", "space.yaml"]) == 2
    out = capsys.readouterr()
    assert out.out.splitlines() == ["ok  job.yaml (job)", "ok  space.yaml (space)"]
    assert out.err.count("lrtune: error:") == 1


def test_conditional_space_warns_for_cmaes_like_samplers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "space.yaml").write_text(SPACE)
    (tmp_path / "job.yaml").write_text(JOB)
    assert main(["validate", "job.yaml", "--set", "search.sampler=qmc"]) == 0
    assert "sampler qmc cannot model a conditional space" in capsys.readouterr().err


BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)
JUNK: dict[str, bytes] = {
    "alias bomb": BOMB.encode(),
    "self-referring alias": b"a: &a [*a]\n",
    "python tag": b"agent: !!python/object/apply:os.system ['echo hacked']\n",
    "custom tag": b"name: !Ref foo\n",
    "binary": bytes(range(256)) * 4,
    "NUL in text": b"name: x\x00\n",
    "deep nesting": b"[" * 500 + b"]" * 500,
    "deep mapping": b"{a: " * 300 + b"1" + b"}" * 300,
    "over 1 MiB": b"name: " + b"x" * (1 << 20) + b"\n",
    "two documents": b"a: 1\n---\nb: 2\n",
    "bad indentation": b"a:\n  b: 1\n c: 2\n",
    "job with alias bomb": b"agent: ppo\nname: x\n" + BOMB.encode(),
}


@pytest.mark.parametrize("name", list(JUNK))
def test_junk_refused_quickly_without_traceback(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "junk.yaml"
    path.write_bytes(JUNK[name])
    start = time.perf_counter()
    assert main(["validate", str(path)]) == 2
    assert time.perf_counter() - start < 2.0
    err = capsys.readouterr().err
    assert err.startswith("lrtune: error: ") and "Traceback" not in err
    assert "internal error" not in err
    assert "hacked" not in err
