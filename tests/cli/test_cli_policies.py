"""`lrtune plugins` and `lrtune schedule show`, through the real entry point."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from lrtune.cli import main
from lrtune.registry import SLOTS

ROOT = Path(__file__).resolve().parents[2]
LRTUNE = [sys.executable, "-m", "lrtune"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LRTUNE, *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_console_script_runs() -> None:
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("lrtune ")


def test_plugins_json_lists_every_entry_with_params(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = {(slot, name) for slot, reg in SLOTS.items() for name in reg.names()}
    assert {(r["slot"], r["name"]) for r in rows} == expected
    for row in rows:
        assert set(row) >= {"slot", "name", "description", "params"}
        assert row["description"], row["name"]
    cosine = next(r for r in rows if r["name"] == "cosine")
    by_name = {p["name"]: p for p in cosine["params"]}
    assert by_name["min_factor"]["default"] == 0.0
    assert by_name["min_factor"]["bounds"] == {"minimum": 0.0, "exclusiveMaximum": 1.0}
    sac = next(r for r in rows if (r["slot"], r["name"]) == ("agents", "sac"))
    assert sac["roles"] == {"actor": ["policy"], "critic": ["qf", "qf_twin"], "alpha": ["alpha"]}
    assert sac["actions"] == ["continuous"]
    kl = next(r for r in rows if r["name"] == "kl_adaptive")
    assert kl["agents"] == ["ppo"] and cosine["agents"] == "all"


def test_plugins_table_of_one_slot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "optimizers"]) == 0
    out = capsys.readouterr().out
    for name in SLOTS["optimizers"].names():
        assert f"  {name} " in out


def test_plugins_unknown_slot_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "schedule"]) == 2
    assert "unknown slot" in capsys.readouterr().err


def _warmup_cosine(
    step: int, lr: float, warm: int, start: float, total: int, floor: float
) -> float:
    if step < warm:
        return lr * (start + (1 - start) * step / warm)
    t = min(step - warm, total - warm)
    return lr * (floor + (1 - floor) * (1 + math.cos(math.pi * t / (total - warm))) / 2)


def test_schedule_show_json_follows_the_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    policy = ROOT / "jobs" / "policies" / "warmup_cosine.yaml"
    assert (
        main(
            [
                "schedule",
                "show",
                str(policy),
                "--steps",
                "40960",
                "--points",
                "11",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in rows] == [4096 * i for i in range(11)]
    for row in rows:
        expected = _warmup_cosine(row["step"], 1e-3, 4096, 0.1, 40960, 0.05)
        assert row["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_schedule_show_inline_yaml_table(capsys: pytest.CaptureFixture[str]) -> None:
    text = "lr: 1e-2\nschedule: {name: step, params: {step_size: 50, gamma: 0.5}}"
    assert main(["schedule", "show", text, "--steps", "100", "--points", "3"]) == 0
    out = capsys.readouterr().out
    assert "1.0000e-02" in out and "5.0000e-03" in out and "2.5000e-03" in out


def test_schedule_show_png(tmp_path: Path) -> None:
    out_png = tmp_path / "lr.png"
    out = run_cli(
        "schedule",
        "show",
        "lr: 3e-4\nschedule: cosine",
        "--steps",
        "1000",
        "--format",
        "png",
        "-o",
        str(out_png),
    )
    assert out.returncode == 0, out.stderr
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out_png.stat().st_size > 5000


@pytest.mark.parametrize(
    ("policy", "needle"),
    [
        ("lr: 1e-3\nschedule: cosin", "Did you mean 'cosine'"),
        ("lr: 1e-3\noptimizer: {name: adam, params: {beta1: 3}}", "optimizer.params.beta1"),
        ("lr: 1e-3\noptimizer: {name: adam, params: {betta1: 0.9}}", "optimizer.params.betta1"),
        ("lr: fast", "lr:"),
        ("lr: 1e-3\nlearning_rate: 2", "learning_rate: unknown key"),
        ("lr: 1e-3\nschedule: {name: warmup, params: {steps: 10, then: {name: nope}}}", "nope"),
        ("- just\n- a list", "an LR policy is a mapping"),
        ("lr: !!python/object/apply:os.system ['echo pwned']", "not valid YAML"),
        ("lr: [1e-3", "not valid YAML"),
    ],
)
def test_bad_policies_exit_2_naming_the_field(
    policy: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedule", "show", policy, "--steps", "10"]) == 2
    out = capsys.readouterr()
    assert needle in out.err
    assert "pwned" not in out.out
    assert out.err.count("\n") == 1  # one paragraph


def test_bad_policy_through_the_console_script_has_no_traceback() -> None:
    out = run_cli("schedule", "show", "lr: 1e-3\nschedule: cosin", "--steps", "10")
    assert out.returncode == 2
    assert "Did you mean 'cosine'" in out.stderr and "Traceback" not in out.stderr


def test_deeply_nested_and_huge_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("lr: " + "[" * 500 + "]" * 500)
    assert main(["schedule", "show", str(deep), "--steps", "10"]) == 2
    big = tmp_path / "big.yaml"
    big.write_text("lr: 1e-3\n#" + "x" * (1 << 20))
    assert main(["schedule", "show", str(big), "--steps", "10"]) == 2
    err = capsys.readouterr().err
    assert "nested deeper" in err and "1 MiB" in err
