"""The report's figures (matplotlib, Agg backend), each returned as PNG bytes."""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lrtune.analysis._stats import curve_band

Curve = tuple[np.ndarray, np.ndarray]
GRID_POINTS = 60


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _colors(n: int) -> list[Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _on_grid(curves: Sequence[Curve], points: int = GRID_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Curves interpolated onto a shared env-step grid, up to where every curve has data."""
    usable = [(s, v) for s, v in curves if len(s) >= 1]
    end = min(float(s[-1]) for s, _ in usable)
    start = max(float(s[0]) for s, _ in usable)
    if end <= start:
        grid = np.array([end])
    else:
        grid = np.linspace(start, end, points)
    values = np.vstack([np.interp(grid, s.astype(float), v) for s, v in usable])
    return grid, values


def _levels(ax: Any, levels: Mapping[str, float] | None, low: float, high: float) -> bool:
    """Dashed horizontal lines at named scores (random, best observable baseline, ceiling).

    A level far above the data (the oracle's ceiling, ~15 on the normalised scale) would squash
    the curves into one band, so it is written in the corner with its value instead of drawn.
    Returns whether a line was drawn (a legend entry exists).
    """
    if not levels:
        return False
    drawn = False
    span = max(high - low, 1e-9)
    off_axis: list[str] = []
    for (name, value), style in zip(levels.items(), ("--", "-.", ":", "--"), strict=False):
        if not math.isfinite(value):
            continue
        if value > high + 2 * span or value < low - 2 * span:
            off_axis.append(f"{name}: {value:.3g} (off the axis)")
            continue
        ax.axhline(value, color="0.35", linestyle=style, linewidth=1.0, label=f"{name} {value:.3g}")
        drawn = True
    if off_axis:
        ax.text(
            0.01, 0.99, "\n".join(off_axis), transform=ax.transAxes, va="top", ha="left",
            fontsize=8, color="0.25",
        )  # fmt: skip
    return drawn


def learning_curves(
    groups: Mapping[str, Sequence[Curve]],
    ylabel: str,
    title: str,
    seed: int = 0,
    levels: Mapping[str, float] | None = None,
) -> bytes | None:
    """Per group: the IQM over runs at each env step, with a 95 % bootstrap band.

    ``levels`` names reference scores drawn as dashed lines (see :func:`_levels`).
    """
    groups = {g: [c for c in cs if len(c[0])] for g, cs in groups.items()}
    groups = {g: cs for g, cs in groups.items() if cs}
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    lows, highs = [], []
    for color, (group, curves) in zip(_colors(len(groups)), sorted(groups.items()), strict=True):
        grid, values = _on_grid(curves)
        centre, low, high = curve_band(values, seed=seed)
        ax.plot(grid, centre, color=color, label=f"{group} (n={len(curves)})")
        ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        lows.append(float(np.nanmin(low)))
        highs.append(float(np.nanmax(high)))
    _levels(ax, levels, min(lows), max(highs))
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def lr_curves(groups: Mapping[str, Sequence[Curve]], title: str) -> bytes | None:
    """Per group: the applied learning rate over env steps (median, min-max band), log scale."""
    groups = {g: [c for c in cs if len(c[0])] for g, cs in groups.items()}
    groups = {g: cs for g, cs in groups.items() if cs}
    if not groups:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    log = all(bool(np.all(c[1] >= 0) and np.any(c[1] > 0)) for cs in groups.values() for c in cs)
    for color, (group, curves) in zip(_colors(len(groups)), sorted(groups.items()), strict=True):
        grid, values = _on_grid(curves)
        if log:  # a schedule that decays to 0 has no place on a log axis at its end
            values = np.where(values > 0, values, np.nan)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            median = np.nanmedian(values, axis=0)
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        ax.plot(grid, median, color=color, label=f"{group} (n={len(curves)})")
        ax.fill_between(grid, low, high, color=color, alpha=0.15, linewidth=0)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("env steps")
    ax.set_ylabel("learning rate applied")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def score_distributions(
    groups: Mapping[str, Sequence[float]],
    ylabel: str,
    levels: Mapping[str, float] | None = None,
) -> bytes | None:
    """Per group: a box plot of final scores with every run as a point (``levels``: dashed
    reference lines, see :func:`_levels`)."""
    names = [g for g in groups if len(groups[g])]
    if not names:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.9 * len(names)), 4.2))
    data = [np.asarray(groups[g], dtype=float) for g in names]
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, values in enumerate(data, start=1):
        ax.scatter(
            i + rng.uniform(-0.15, 0.15, size=len(values)), values, s=14, alpha=0.7, color="k"
        )
    every = np.concatenate(data)
    if _levels(ax, levels, float(every.min()), float(every.max())):
        ax.legend(fontsize=8, loc="best")
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title("final scores per group")
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def importance_bars(values: Mapping[str, float], title: str) -> bytes | None:
    """Horizontal bars of parameter importances."""
    if not values:
        return None
    plt = _pyplot()
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.4 * len(items)))
    ax.barh([k for k, _ in items], [v for _, v in items], color="tab:blue")
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def parallel_coordinates(
    rows: Sequence[Mapping[str, Any]], axes: Sequence[str], score_key: str, title: str
) -> bytes | None:
    """One line per trial across its parameters and its score (colour: the score).

    Numeric axes are scaled to [0, 1] (``lr`` on a log scale); categorical axes place their
    values evenly. Rows without a score are left out.
    """
    rows = [r for r in rows if isinstance(r.get(score_key), (int, float))]
    if len(rows) < 2 or not axes:
        return None
    plt = _pyplot()
    columns = [*axes, score_key]
    scaled = np.zeros((len(rows), len(columns)))
    ticks: dict[int, tuple[list[float], list[str]]] = {}
    for j, column in enumerate(columns):
        raw = [r.get(column) for r in rows]
        numeric = all(isinstance(v, (int, float)) and math.isfinite(v) for v in raw)
        if numeric:
            values = np.asarray(raw, dtype=float)
            label_values = values
            if column == "lr" and np.all(values > 0):
                values = np.log10(values)
            low, high = float(values.min()), float(values.max())
            span = high - low or 1.0
            scaled[:, j] = (values - low) / span
            ticks[j] = (
                [0.0, 1.0],
                [f"{float(np.min(label_values)):.3g}", f"{float(np.max(label_values)):.3g}"],
            )
        else:
            labels = sorted({str(v) for v in raw})
            position = {
                v: (i / (len(labels) - 1) if len(labels) > 1 else 0.5) for i, v in enumerate(labels)
            }
            scaled[:, j] = [position[str(v)] for v in raw]
            ticks[j] = ([position[v] for v in labels], labels)
    scores = np.asarray([float(r[score_key]) for r in rows])
    norm = plt.Normalize(float(scores.min()), float(scores.max()) or 1.0)
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(columns)), 4.5))
    for i in np.argsort(scores):
        ax.plot(range(len(columns)), scaled[i], color=cmap(norm(scores[i])), alpha=0.7, lw=1.2)
    for j in range(len(columns)):
        ax.axvline(j, color="0.6", lw=0.8)
        for y, text in zip(*ticks[j], strict=True):
            ax.text(j + 0.03, y, text, fontsize=7, va="center")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(columns) - 0.6)
    ax.set_title(title)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, label=score_key)
    return _png(fig)


def lineage_trajectory(
    points: Sequence[tuple[int, float, str]], exploits: Sequence[int], title: str
) -> bytes | None:
    """A population member's applied learning rate over env steps, coloured by the member whose
    state it continued (its ancestry), with a dashed line at every exploit."""
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    sources = list(dict.fromkeys(source for _, _, source in points))
    color_of = dict(zip(sources, _colors(len(sources)), strict=True))
    runs: list[list[tuple[int, float, str]]] = []
    for point in points:
        if runs and runs[-1][-1][2] == point[2]:
            runs[-1].append(point)
        else:
            runs.append([point])
    labelled: set[str] = set()
    previous: tuple[int, float, str] | None = None
    for run in runs:
        source = run[0][2]
        chain = ([previous] if previous else []) + run  # join each segment to the one before
        ax.plot(
            [p[0] for p in chain],
            [p[1] for p in chain],
            color=color_of[source],
            marker=".",
            label=None if source in labelled else source,
        )
        labelled.add(source)
        previous = run[-1]
    for step in exploits:
        ax.axvline(step, color="#555", linestyle="--", linewidth=0.8)
    if all(p[1] > 0 for p in points):
        ax.set_yscale("log")
    ax.set_xlabel("env steps")
    ax.set_ylabel("learning rate applied")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="state of member", fontsize=8, loc="best")
    return _png(fig)
