"""`report`: one self-contained HTML file (or Markdown with PNG files beside it) about one or more
experiments: the comparison table, learning curves per group with interval bands, the learning
rate actually applied (the logged ``lr`` metric), distributions of final scores, parameter
importance, parallel coordinates of the search, the best configuration as a runnable job YAML,
and, for population runs, the best member's lineage (whom it descends from, when, and the
learning rate it trained with through its ancestry).

Every figure of the HTML file is embedded as a ``data:`` URI and the page has no script, style
sheet, font or link that points anywhere else: opening it makes no request. The report is logged
as an artifact (folder ``report``) of each experiment's parent run.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from lrtune.analysis import _plots
from lrtune.analysis._compare import Comparison, format_table, table_rows
from lrtune.analysis._records import (
    ExperimentData,
    RunRecord,
    metric_histories,
    read_artifact_text,
)
from lrtune.tracking import LINEAGE_FILE, ancestry_segments, ancestry_text, trajectory
from lrtune.tracking._redact import redact_uri
from lrtune.vocabulary import GROUPING_TAGS, POLICY_FIELD_GROUPINGS, TrialStatus

FORMATS = ("html", "md")
CURVE_METRIC = "episode_return_mean"

log = logging.getLogger("lrtune.analysis")


@dataclass
class Figure:
    """A figure of the report: a file name, a caption and its PNG bytes."""

    name: str
    caption: str
    png: bytes


@dataclass
class Section:
    """A titled part of the report: paragraphs, figures and pre-formatted blocks, in order."""

    title: str
    parts: list[tuple[str, Any]] = field(default_factory=list)

    def text(self, value: str) -> None:
        """Add a paragraph."""
        self.parts.append(("p", value))

    def figure(self, figure: Figure | None) -> None:
        """Add a figure (nothing when it is None)."""
        if figure is not None:
            self.parts.append(("figure", figure))

    def pre(self, value: str) -> None:
        """Add a pre-formatted block."""
        self.parts.append(("pre", value))

    def table(self, rows: list[dict[str, str]]) -> None:
        """Add a table (one dict per row)."""
        if rows:
            self.parts.append(("table", rows))


@dataclass
class Report:
    """What `build_report` wrote."""

    path: Path
    files: list[Path]
    sections: list[Section]


def _curves_by_group(
    comparison: Comparison,
    experiments: Sequence[ExperimentData],
    key: str,
    max_points: int,
    normalise: bool,
) -> dict[str, list[tuple[Any, Any]]]:
    by_exp: dict[str, list[str]] = {}
    for s in comparison.samples:
        if s.status == TrialStatus.COMPLETED:
            by_exp.setdefault(s.experiment, []).append(s.run_id)
    groups: dict[str, list[tuple[Any, Any]]] = {}
    group_of = {s.run_id: s.group for s in comparison.samples}
    task_of = {s.run_id: s.task for s in comparison.samples}
    for exp in experiments:
        ids = by_exp.get(exp.name, [])
        if not ids:
            continue
        histories = metric_histories(exp.tracking_uri, ids, key, max_points)
        for run_id, (steps, values) in histories.items():
            if normalise:
                a = comparison.anchors[task_of[run_id]]
                values = (values - a.random) / (a.reference - a.random)
            groups.setdefault(group_of[run_id], []).append((steps, values))
    return groups


def _parallel_rows(exp: ExperimentData) -> tuple[list[dict[str, Any]], list[str]]:
    runs: list[RunRecord] = [r for r in exp.trials() if r.score is not None]
    rows: list[dict[str, Any]] = []
    for r in runs:
        # Axes named as the policy's fields (schedule, gradients, ...), like its params.
        row: dict[str, Any] = {
            field: r.tags.get(GROUPING_TAGS[grouping], "?")
            for field, grouping in POLICY_FIELD_GROUPINGS.items()
        }
        row["score"] = r.score
        for k, v in r.params.items():
            if k.startswith("policy.") and k not in ("policy.version",):
                name = "lr" if k == "policy.lr" else k.removeprefix("policy.")
                try:
                    row[name] = float(v)
                except ValueError:
                    if not name.endswith(".name"):
                        row[name] = v
        rows.append(row)
    axes: list[str] = []
    extra = sorted({k for row in rows for k in row})
    for name in ["lr", *POLICY_FIELD_GROUPINGS, *extra]:
        if name in axes or name == "score":
            continue
        values = [row.get(name) for row in rows]
        if any(v is None for v in values) or len({str(v) for v in values}) < 2:
            continue
        axes.append(name)
    return rows, axes[:9]


def _best_yaml(exp: ExperimentData) -> str | None:
    client = MlflowClient(tracking_uri=exp.tracking_uri)
    text = read_artifact_text(client, exp.parent_run_id, "best.yaml")
    if text is None and exp.results_dir is not None and (exp.results_dir / "best.yaml").exists():
        text = (exp.results_dir / "best.yaml").read_text()
    return text


def read_lineage(exp: ExperimentData) -> dict[str, Any] | None:
    """A population run's ``lineage.json``: from its MLflow parent run, else its results folder."""
    client = MlflowClient(tracking_uri=exp.tracking_uri)
    text = read_artifact_text(client, exp.parent_run_id, LINEAGE_FILE)
    if text is None and exp.results_dir is not None and (exp.results_dir / LINEAGE_FILE).exists():
        text = (exp.results_dir / LINEAGE_FILE).read_text()
    if text is None:
        return None
    data = json.loads(text)
    return data if isinstance(data, dict) and data.get("trials") else None


def population_lineage(exp: ExperimentData) -> tuple[Figure | None, str]:
    """The lineage of a population run's best member: a figure of the learning rate it trained
    with through its ancestry (coloured by whose state it continued, exploits dashed) and a line
    of text naming its ancestry and exploits."""
    lineage = read_lineage(exp)
    if lineage is None:
        return None, f"{exp.name}: no lineage.json in MLflow or the results folder."
    best = lineage.get("best")
    if best is None or best not in lineage["trials"]:
        return None, f"{exp.name}: the population has no best member (no member completed)."
    points = [
        (int(p["env_steps"]), float(p["lr"]), str(p["trial_id"]))
        for p in trajectory(lineage, best)
        if p["lr"] is not None
    ]
    starts = [a for _, a, _ in ancestry_segments(lineage, best)][1:]
    exploits = [e for e in lineage.get("exploits", []) if e.get("trial") == best]
    png = _plots.lineage_trajectory(points, starts, f"{exp.name}: best member {best}")
    text = (
        f"{exp.name}: best member {best} descends from {ancestry_text(lineage, best)}; "
        f"{len(lineage.get('exploits', []))} exploits in the population, {len(exploits)} of "
        "them into this member."
    )
    figure = (
        Figure(f"lineage_{_slug(exp.name)}.png", f"{exp.name}: the best member's lineage", png)
        if png
        else None
    )
    return figure, text


def anchor_levels(comparison: Comparison, *, normalised: bool) -> dict[str, float]:
    """The reference lines of the report's score figures: random, reference and ceiling.

    Raw scores (one task): that task's anchors as they are. Normalised (several tasks): random
    0 and reference 1, and each task's ceiling (the recommender's oracle) at its normalised value.
    No lines where a task is compared in its own units (no anchors are known).
    """
    anchors = list(comparison.anchors.values())
    if not all(a.normalised for a in anchors):
        return {}  # a task without anchors (compare's note says why): no lines to draw
    if not normalised and len(anchors) == 1:
        a = anchors[0]
        levels = {"random": a.random, "reference": a.reference}
        if a.ceiling is not None:
            levels["ceiling"] = a.ceiling
        return levels
    levels = {"random": 0.0, "reference": 1.0}
    for a in anchors:
        if a.normalised_ceiling is not None:
            levels[f"ceiling {a.task}"] = a.normalised_ceiling
    return levels


def build_sections(
    experiments: Sequence[ExperimentData],
    comparison: Comparison,
    *,
    max_points: int = 200,
    seed: int = 0,
) -> list[Section]:
    """Every section of the report, figures rendered."""
    single_task = len(comparison.anchors) == 1
    by = ",".join(comparison.by)
    sections: list[Section] = []

    head = Section("Summary")
    names = ", ".join(e.name for e in experiments)
    head.text(
        f"Experiments: {names}. Grouped by {by}. Generated "
        f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC} by lrtune."
    )
    for e in experiments:
        finalists = e.finalists()
        head.text(
            f"{e.name}: {len(e.trials())} trial runs, {len(finalists)} finalist runs "
            f"(scores used: {comparison.sources.get(e.name, '?')}); env {e.env_id}; agent "
            f"{e.job.get('agent', e.parent_params.get('agent', '?'))}; trial budget "
            f"{e.trial_env_steps} env steps; tracking {redact_uri(e.tracking_uri)}."
        )
    sections.append(head)

    table = Section("Comparison")
    table.table(table_rows(comparison))
    table.pre(format_table(comparison).split("\n\n", 1)[-1])
    sections.append(table)

    curves = Section("Learning curves")
    ylabel = "episode return" if single_task else "normalised episode return"
    levels = anchor_levels(comparison, normalised=not single_task)
    groups = _curves_by_group(comparison, experiments, CURVE_METRIC, max_points, not single_task)
    png = _plots.learning_curves(
        groups, ylabel, f"{ylabel} by {by} (IQM, 95% CI band)", seed, levels=levels
    )
    curves.figure(Figure("curves.png", f"{ylabel} over env steps per group", png) if png else None)
    if not png:
        curves.text("No logged episode returns to draw.")
    sections.append(curves)

    lr = Section("Learning rate applied")
    lr_groups = _curves_by_group(comparison, experiments, "lr", max_points, False)
    png = _plots.lr_curves(lr_groups, f"learning rate read back from the optimizer, by {by}")
    lr.figure(
        Figure("lr.png", "the logged lr metric over env steps (median, min-max band)", png)
        if png
        else None
    )
    sections.append(lr)

    dist = Section("Final scores")
    values: dict[str, list[float]] = {}
    for s in comparison.samples:
        values.setdefault(s.group, []).append(s.raw if single_task else s.normalised)
    png = _plots.score_distributions(
        values, "final score" if single_task else "normalised", levels=levels
    )
    dist.figure(
        Figure("scores.png", "distribution of final scores per group", png) if png else None
    )
    sections.append(dist)

    imp = Section("Parameter importance")
    if not comparison.importances:
        imp.text("No importance: too few completed trials, or nothing varied.")
    for i in comparison.importances:
        png = _plots.importance_bars(i.values, f"{i.experiment}: {i.method} ({i.source})")
        imp.figure(
            Figure(f"importance_{_slug(i.experiment)}.png", i.experiment, png) if png else None
        )
    sections.append(imp)

    search = Section("The search (parallel coordinates)")
    for e in experiments:
        rows, axes = _parallel_rows(e)
        png = _plots.parallel_coordinates(rows, axes, "score", f"{e.name}: trials of the search")
        if png:
            search.figure(Figure(f"search_{_slug(e.name)}.png", f"{e.name}: every trial", png))
        else:
            search.text(f"{e.name}: fewer than two scored trials, or nothing varied.")
    sections.append(search)

    best = Section("Best configuration")
    for e in experiments:
        text = _best_yaml(e)
        if text:
            best.text(f"{e.name}: best.yaml (run it with `lrtune run best.yaml`):")
            best.pre(text)
        else:
            best.text(f"{e.name}: no best.yaml (the experiment has no completed trial yet).")
    sections.append(best)

    population = [e for e in experiments if e.population]
    if population:
        lineage = Section("Population lineage")
        for e in population:
            figure, text = population_lineage(e)
            lineage.text(text)
            lineage.figure(figure)
        sections.append(lineage)
    return sections


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:60]


# --- writers ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;white-space:nowrap}
th{background:#f4f4f4}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
"""


def render_html(title: str, sections: Sequence[Section]) -> str:
    """The HTML page: inline style, images as data: URIs, nothing fetched from elsewhere."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No request may leave the page, whatever its content says.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        out.append(f"<h2>{html.escape(section.title)}</h2>")
        for kind, value in section.parts:
            if kind == "p":
                out.append(f"<p>{html.escape(value)}</p>")
            elif kind == "pre":
                out.append(f"<pre>{html.escape(value)}</pre>")
            elif kind == "table":
                headers = list(value[0])
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers))
                for row in value:
                    out.append(
                        "<tr>"
                        + "".join(f"<td>{html.escape(row[h])}</td>" for h in headers)
                        + "</tr>"
                    )
                out.append("</table>")
            elif kind == "figure":
                data = base64.b64encode(value.png).decode("ascii")
                out.append(
                    f'<figure><img alt="{html.escape(value.caption)}" '
                    f'src="data:image/png;base64,{data}"><figcaption>'
                    f"{html.escape(value.caption)}</figcaption></figure>"
                )
    out.append("</body></html>")
    return "\n".join(out)


def _md_table(rows: list[dict[str, str]]) -> str:
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r[h].replace("|", "\\|") for h in headers) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(
    title: str, sections: Sequence[Section], figure_dir: str
) -> tuple[str, list[Figure]]:
    """Markdown text (figures referenced as ``figure_dir/name.png``) and the figures to write."""
    out = [f"# {title}", ""]
    figures: list[Figure] = []
    for section in sections:
        out += [f"## {section.title}", ""]
        for kind, value in section.parts:
            if kind == "p":
                out += [value, ""]
            elif kind == "pre":
                out += ["```", value.rstrip("\n"), "```", ""]
            elif kind == "table":
                out += [_md_table(value), ""]
            elif kind == "figure":
                figures.append(value)
                out += [f"![{value.caption}]({figure_dir}/{value.name})", ""]
    return "\n".join(out), figures


def build_report(
    experiments: Sequence[ExperimentData],
    comparison: Comparison,
    output: str | Path,
    *,
    fmt: str = "html",
    max_points: int = 200,
    seed: int = 0,
    log_to_mlflow: bool = True,
) -> Report:
    """Write the report (``html``: one file; ``md``: Markdown plus a folder of PNG files) and log
    it as an artifact of every experiment's parent run."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the report: learning curves, plots and tables")
    sections = build_sections(experiments, comparison, max_points=max_points, seed=seed)
    title = "lrtune report: " + ", ".join(e.name for e in experiments)
    files = [path]
    if fmt == "md":
        figure_dir = f"{path.stem}_files"
        text, figures = render_markdown(title, sections, figure_dir)
        (path.parent / figure_dir).mkdir(exist_ok=True)
        for f in figures:
            target = path.parent / figure_dir / f.name
            target.write_bytes(f.png)
            files.append(target)
        path.write_text(text)
    else:
        path.write_text(render_html(title, sections))
    if log_to_mlflow:
        log.info("logging the report to MLflow (the parent run of each experiment)")
        log_report(experiments, files, path.parent)
    return Report(path=path, files=files, sections=sections)


def log_report(experiments: Sequence[ExperimentData], files: Sequence[Path], root: Path) -> None:
    """Log the report's files under ``report/`` of each experiment's parent run."""
    for exp in experiments:
        client = MlflowClient(tracking_uri=exp.tracking_uri)
        for f in files:
            relative = f.parent.relative_to(root) if f.parent != root else Path()
            folder = "report" if str(relative) in ("", ".") else f"report/{relative.as_posix()}"
            try:
                client.log_artifact(exp.parent_run_id, str(f), folder)
            except Exception as exc:  # the report is written either way
                log.warning("could not log %s to run %s (%s)", f, exp.parent_run_id, exc)
