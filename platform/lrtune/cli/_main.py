"""``lrtune`` sub-commands. Bad input prints one paragraph on stderr and exits with code 2."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from lrtune.cli._analysis import add_analysis_parsers
from lrtune.cli._args import CommandParser, configure_logging, positive_int
from lrtune.cli._baselines import add_baselines_parser
from lrtune.cli._cluster import add_cluster_parsers
from lrtune.cli._sync import add_sync_parser
from lrtune.cli._validate import add_validate_parser
from lrtune.registry import LRTuneError, agents

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = CommandParser(
        prog="lrtune",
        description="Find the best learning-rate policy for deep RL agents.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("plugins", help="list the registered plugins of a slot (or all)")
    p.add_argument(
        "slot",
        nargs="?",
        help="schedules, optimizers, gradients, feedback, populations, searchers, schedulers",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=_cmd_plugins)

    s = sub.add_parser("schedule", help="preview learning-rate policies")
    ssub = s.add_subparsers(dest="schedule_command", required=True, metavar="ACTION")
    show = ssub.add_parser("show", help="the LR a policy gives at evenly spaced env steps")
    show.add_argument("policy", help="a policy YAML file, or inline YAML ('lr: 1e-3')")
    show.add_argument("--steps", type=positive_int, required=True, help="last env step N")
    show.add_argument("--points", type=positive_int, default=11, help="how many points P")
    show.add_argument("--format", choices=("table", "json", "png"), default="table")
    show.add_argument("-o", "--output", help="where to write the png (default schedule.png)")
    show.set_defaults(func=_cmd_schedule_show)
    export = ssub.add_parser(
        "export", help="a population member's learned LR trajectory as an LR policy file"
    )
    export.add_argument("results", help="a population run's results folder (results/<name>)")
    export.add_argument("--trial", default="best", help="best (default) or a trial id")
    export.add_argument("-o", "--output", help="the file to write (default: standard output)")
    export.set_defaults(func=_cmd_schedule_export)

    r = sub.add_parser("run", help="run (or resume) a job: Tune trials, Optuna search, MLflow")
    r.add_argument("job", help="a job YAML file (jobs/*.yaml)")
    r.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field, e.g. --set budget.trial_env_steps=2e4 (repeatable)",
    )
    r.add_argument("--dry-run", action="store_true", help="print the resolved plan; start nothing")
    r.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: the job's tracking.uri, else $MLFLOW_TRACKING_URI, "
        "else sqlite:///<current folder>/mlflow.db)",
    )
    r.add_argument("--storage-path", help="Tune storage folder (default: the job's storage_path)")
    r.add_argument(
        "--restart",
        action="store_true",
        help="discard this experiment's earlier results and start over",
    )
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("train", help="train one trial under a policy, no search (quick look)")
    t.add_argument("policy", help="a policy YAML file, or inline YAML")
    t.add_argument("--agent", choices=agents.names(), default="ppo")
    t.add_argument("--env", default="CartPole-v1", help="gymnasium id (default CartPole-v1)")
    t.add_argument("--steps", type=positive_int, default=60_000, help="env-step budget")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--env-config", metavar="YAML", help=_ENV_CONFIG_HELP)
    t.set_defaults(func=_cmd_train)
    pr = sub.add_parser(
        "presets", help="the settings an agent runs with before a job overrides any, by source"
    )
    pr.add_argument("agent", choices=agents.names())
    pr.add_argument("--env", help="a gymnasium id: adds its action-space family and entry")
    pr.add_argument("--env-config", metavar="YAML", help=_ENV_CONFIG_HELP)
    pr.add_argument("--format", choices=("table", "json"), default="table")
    pr.set_defaults(func=_cmd_presets)
    add_validate_parser(sub)
    add_cluster_parsers(sub)
    add_analysis_parsers(sub)
    add_baselines_parser(sub)
    add_sync_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lrtune`` console script; returns the exit code."""
    from lrtune.registry._errors import DriverOSError

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", 0))
    _import_from_current_folder()
    try:
        code: int = args.func(args)
        return code
    except LRTuneError as exc:
        print(f"lrtune: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DriverOSError as exc:  # a full disk under the driver: not bad input, not a bug
        print(f"lrtune: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("lrtune: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lrtune … | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _import_from_current_folder() -> None:
    """Put the current folder on this process's import path, after the installed packages.

    Ray puts the folder a run starts in on every worker's path (``ray.init`` records it, as
    ``python -m`` does for its own process), but the console script leaves it off the
    driver's: a user's env module beside the job was imported by the trials and refused by
    the driver's checks as "no module on the import path"."""
    import os

    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.append(here)


def _version() -> str:
    from lrtune import __version__

    return f"lrtune {__version__}"


# --- plugins --------------------------------------------------------------------------------


def _cmd_plugins(args: argparse.Namespace) -> int:
    from lrtune.registry import SLOTS

    if args.slot is not None and args.slot not in SLOTS:
        raise _BadInput(
            f"unknown slot {args.slot!r}; slots are {', '.join(SLOTS)} (e.g. `lrtune plugins "
            "schedules`)."
        )
    slots = [args.slot] if args.slot else list(SLOTS)
    rows = [_describe_entry(entry) for slot in slots for entry in SLOTS[slot].entries()]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for slot in slots:
        entries = [r for r in rows if r["slot"] == slot]
        print(f"{slot} ({len(entries)})")
        for row in entries:
            print(f"  {row['name']:<18} {row['description']}")
            if "roles" in row:
                roles = ", ".join(f"{r} ({'+'.join(n)})" for r, n in row["roles"].items())
                print(f"      optimizer roles: {roles}; actions: {', '.join(row['actions'])}")
            for param in row["params"]:
                print(f"      {_param_line(param)}")
        print()
    return EXIT_OK


def _describe_entry(entry: Any) -> dict[str, Any]:
    schema = entry.params_model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        bounds = {
            key: prop[key]
            for key in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
            if key in prop
        }
        params.append(
            {
                "name": name,
                "type": _schema_type(prop),
                "default": prop.get("default"),
                "required": name in required,
                "bounds": bounds,
                "description": prop.get("description", ""),
            }
        )
    return {
        "slot": entry.slot,
        "name": entry.name,
        "description": entry.description,
        "params": params,
        "agents": "all" if entry.capabilities.agents is None else sorted(entry.capabilities.agents),
        "stateful": entry.capabilities.stateful,
        **_agent_facts(entry),
    }


def _agent_facts(entry: Any) -> dict[str, Any]:
    """An ``agents`` entry's optimizer roles (role -> RLlib optimizer names) and actions."""
    if entry.slot != "agents":
        return {}
    agent = entry.build({})
    return {
        "roles": {role: list(names) for role, names in agent.roles.items()},
        "actions": sorted(agent.action_spaces),
    }


def _schema_type(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    if "enum" in prop:
        return "|".join(map(str, prop["enum"]))
    options = prop.get("anyOf") or prop.get("oneOf") or []
    return "|".join(str(o.get("type", o.get("$ref", "?")).split("/")[-1]) for o in options) or "?"


def _param_line(param: dict[str, Any]) -> str:
    symbols = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    bounds = " ".join(f"{symbols[k]}{v}" for k, v in param["bounds"].items())
    default = "required" if param["required"] else f"default {param['default']!r}"
    text = f"{param['name']}: {param['type']}, {default}"
    if bounds:
        text += f", {bounds}"
    if param["description"]:
        text += f" — {param['description']}"
    return text


class _BadInput(LRTuneError):
    """Command-line input that cannot be used."""


# --- schedule show --------------------------------------------------------------------------


def _cmd_schedule_show(args: argparse.Namespace) -> int:
    from lrtune.specs import load_policy

    spec = load_policy(args.policy)
    try:
        policy = spec.build(budget=args.steps)
    except ValueError as exc:
        raise _BadInput(f"{args.policy}: {exc}") from None
    points = max(args.points, 1)
    if points == 1:
        steps = [0]
    else:
        steps = [round(i * args.steps / (points - 1)) for i in range(points)]
    rows = [{"step": step, "lr": policy.lr(step)} for step in steps]
    if args.format == "json":
        print(json.dumps(rows))
    elif args.format == "png":
        out = args.output or "schedule.png"
        _plot_schedule(spec.short(), policy, args.steps, out)
        print(out)
    else:
        print(f"{'env step':>12}  {'lr':>12}")
        for row in rows:
            print(f"{row['step']:>12}  {row['lr']:>12.4e}")
    return EXIT_OK


def _cmd_schedule_export(args: argparse.Namespace) -> int:
    from lrtune.running._lineage import export_schedule, load_lineage, policy_text
    from lrtune.specs import parse_policy

    lineage = load_lineage(args.results)
    trial = args.trial
    if trial == "best":
        trial = lineage.get("best")
        if not trial:
            raise _BadInput(
                f"{args.results}: the run has no best member (none finished); give --trial ID "
                f"(members: {', '.join(sorted(lineage.get('trials', {})))})."
            )
    policy, header = export_schedule(lineage, str(trial), source=str(args.results))
    parse_policy(policy, f"exported policy of {trial}")  # it must load back as written
    text = policy_text(policy, header)
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
        print(args.output)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _plot_schedule(title: str, policy: Any, last_step: int, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(last_step + 1, 2000)
    xs = [round(i * last_step / (n - 1)) for i in range(n)] if n > 1 else [0]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot(xs, [policy.lr(x) for x in xs], color="tab:blue")
    ax.set_xlabel("env steps")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


# --- train ----------------------------------------------------------------------------------


_ENV_CONFIG_HELP = (
    "the env's keyword arguments, as a job's env.config (inline YAML, e.g. "
    "'{continuous: true}'): some choose the env's kind of actions, and so its presets"
)


def _env_config(args: argparse.Namespace) -> dict[str, Any]:
    """``--env-config`` as a mapping ({} when not given); `SpecError` (exit 2) otherwise."""
    from lrtune.specs import SpecError
    from lrtune.specs._load import parse_override_value

    if args.env_config is None:
        return {}
    value = parse_override_value(args.env_config, "--env-config", args.env_config)
    if not isinstance(value, dict):
        raise SpecError(
            f"--env-config: {args.env_config!r} is not a mapping of keyword arguments; give "
            "one in YAML, e.g. --env-config '{continuous: true}'"
        )
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from lrtune.running import prepare_loopback_env

    prepare_loopback_env()
    from lrtune.agents import require_env_id
    from lrtune.learners import build_algorithm_config  # noqa: F401  (validates imports early)
    from lrtune.running import IterationRecord, train_single
    from lrtune.specs import load_policy

    spec = load_policy(args.policy)
    spec.check_agent(args.agent)
    env_config = _env_config(args)
    # Before the table's header: exit 2, nothing printed.
    require_env_id(args.env, args.agent, env_config=env_config)
    print(f"lrtune: {args.agent} on {args.env}, {args.steps} env steps, policy {spec.short()}")
    print(f"{'iter':>5} {'env steps':>10} {'lr':>11} {'return':>9} {'s':>6}")

    def show(r: IterationRecord) -> None:
        print(
            f"{r.iteration:>5} {r.env_steps:>10} {r.lr:>11.4e} {r.episode_return:>9.1f} "
            f"{r.seconds:>6.1f}",
            flush=True,
        )

    records = train_single(
        spec,
        agent=args.agent,
        env=args.env,
        env_config=env_config,
        env_steps=args.steps,
        seed=args.seed,
        on_iteration=show,
    )
    print(train_summary(records))
    return EXIT_OK


def train_summary(records: list[Any]) -> str:
    """`lrtune train`'s last line: the best mean return over the iterations where an episode
    had ended (an iteration before the first episode's end reports NaN, which ``max`` would
    return if it came first), or what to change when no episode ended."""
    returns = [r.episode_return for r in records if math.isfinite(r.episode_return)]
    if returns:
        return f"lrtune: done, best mean return {max(returns):.1f}"
    steps = records[-1].env_steps if records else 0
    return (
        f"lrtune: done, no episode ended in {steps} env steps (no return to report); give the "
        "env a time limit (--env-config '{max_episode_steps: N}') or raise --steps"
    )


# --- presets --------------------------------------------------------------------------------


def _cmd_presets(args: argparse.Namespace) -> int:
    from lrtune.learners._presets import has_continuous_actions, resolve_presets

    env_config = _env_config(args)
    rows = resolve_presets(args.agent, args.env, env_config)
    shown = [(row.key, _preset_value(row.value), row.source) for row in rows]
    if args.format == "json":
        print(json.dumps([{"key": k, "value": v, "source": src} for k, v, src in shown]))
        return EXIT_OK
    where = f" on {args.env}" if args.env else " (no --env: agent defaults only)"
    print(f"lrtune: {args.agent} presets{where}; a job's hyperparams and model override any")
    if args.env and has_continuous_actions(args.env, env_config) is None:
        print(
            f"lrtune: gymnasium cannot build {args.env!r} here, so its action-space family "
            "is unknown and not applied"
        )
    elif args.env:
        from lrtune.agents import env_problem

        _, problem = env_problem(args.env, args.agent, env_config, must_build=True)
        if problem is not None:  # the same check as where a run starts
            print(f"lrtune: warning: a run of {args.agent} on this env is refused: {problem}")
    width = max(len(k) for k, _, _ in shown)
    value_width = max(len(json.dumps(v)) for _, v, _ in shown)
    for key, value, source in shown:
        print(f"{key:<{width}}  {json.dumps(value):<{value_width}}  {source}")
    return EXIT_OK


def _preset_value(value: Any) -> Any:
    """A preset value as JSON shows it (a connector function by its name)."""
    if callable(value):
        return getattr(value, "__name__", repr(value))
    if isinstance(value, tuple):
        return [_preset_value(v) for v in value]
    if isinstance(value, list):
        return [_preset_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _preset_value(v) for k, v in value.items()}
    return value


# --- run ------------------------------------------------------------------------------------


def _cmd_run(args: argparse.Namespace) -> int:
    from lrtune.specs import load_job

    job = load_job(args.job, overrides=args.overrides)
    if args.dry_run:
        print(json.dumps(_plan(job, args), indent=2, default=str))
        return EXIT_OK
    from lrtune.running import run_job

    outcome = run_job(
        job, restart=args.restart, tracking_uri=args.tracking_uri, storage_path=args.storage_path
    )
    return outcome.exit_code


def _plan(job: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The resolved plan of a job, as --dry-run prints it (computed without starting Ray)."""
    from lrtune.running import experiment_paths, start_warnings
    from lrtune.tracking._redact import redact_uri

    experiment_dir, results_dir = experiment_paths(job, args.storage_path)
    plan: dict[str, Any] = {
        "name": job.name,
        "job_hash": job.resolved_hash(),
        "agent": job.agent,
        "env": job.env.id,
        "trials": job.trial_count,
        "max_concurrent": job.concurrent_trials,
        "trial_env_steps": job.budget.trial_env_steps,
        "seeds": list(job.seeds.tuning),
        "resources_per_trial": {"cpu": job.resources.cpus, "gpu": job.resources.gpus},
        "search": job.search.model_dump(mode="json")
        if job.space is not None
        else ("population" if job.population else "fixed policy"),
        "population": job.population.model_dump(mode="json") if job.population else None,
        "scheduler": job.scheduler.name,
        "metric": job.metric.model_dump(mode="json"),
        "tracking_uri": redact_uri(args.tracking_uri or job.tracking.resolved_uri),
        "mlflow_experiment": job.experiment_name,
        "experiment_dir": str(experiment_dir),
        "results_dir": str(results_dir),
        "resume": (experiment_dir / "tuner.pkl").exists(),
    }
    if job.space is not None:
        from lrtune.specs import compile_space

        compiled = compile_space(job)
        plan["space"] = " + ".join(job.space_files) or "inline"
        if job.search.algorithm == "optuna":
            plan["startup_trials"] = job.startup_trials
        plan["parameters"] = sorted(compiled.distributions())
        if job.search.algorithm == "grid":
            plan["grid_points"] = job.space.grid_size()
    else:
        plan["policy"] = job.policy.model_dump(mode="json") if job.policy else None
    plan["warnings"] = start_warnings(job)  # as the run prints them under its header
    return plan
