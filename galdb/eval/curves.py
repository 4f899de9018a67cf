"""Few-shot learning curves: score against number of labels, per method, and what they mean.

``galdb eval fewshot`` measures each method (``head``, ``propagation``, ``head+reviewer``, the
from-scratch ``resnet18_scratch`` baseline) at several label counts, several repeats each.
This module stores those points as CSV, summarises them (mean and std over repeats), plots
them, and turns them into the paper's headline number: how many times more labels the
baseline needs to reach the score a method gets with ``n`` labels.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

METRIC_NAMES = {"auc": "AUC", "r2": "R²"}
CSV_FIELDS = ("method", "n_labels", "repeat", "metric", "value")


@dataclass(frozen=True)
class CurvePoint:
    """One measured score: ``method`` trained on ``n_labels`` labels, repeat ``repeat``."""

    method: str
    n_labels: int
    repeat: int
    metric: str  # "auc" or "r2"
    value: float


@dataclass(frozen=True)
class Summary:
    """Mean and (population) std of a method's score over its repeats at ``n_labels``."""

    method: str
    n_labels: int
    mean: float
    std: float
    repeats: int


@dataclass(frozen=True)
class Ratio:
    """Labels the baseline needs to match ``method`` at ``n_labels``, and that over ``n``.

    ``baseline_labels`` and ``ratio`` are ``None`` when the baseline never reaches ``value``
    within the label counts it was measured at.
    """

    method: str
    n_labels: int
    value: float
    baseline_labels: float | None
    ratio: float | None


def write_csv(points: Iterable[CurvePoint], path: str | Path) -> None:
    """Write points with the header ``method,n_labels,repeat,metric,value``."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for p in points:
            writer.writerow([p.method, p.n_labels, p.repeat, p.metric, repr(float(p.value))])


def read_csv(path: str | Path) -> list[CurvePoint]:
    """Read points written by :func:`write_csv`."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != CSV_FIELDS:
            raise ValueError(f"{path}: expected the header {','.join(CSV_FIELDS)}")
        return [
            CurvePoint(
                row["method"],
                int(row["n_labels"]),
                int(row["repeat"]),
                row["metric"],
                float(row["value"]),
            )
            for row in reader
        ]


def summarize(points: Iterable[CurvePoint]) -> list[Summary]:
    """Mean and std over repeats per (method, n_labels), sorted by method then n_labels."""
    points = list(points)
    _metric(points)
    groups: dict[tuple[str, int], list[float]] = {}
    for p in points:
        groups.setdefault((p.method, p.n_labels), []).append(p.value)
    return [
        Summary(method, n, float(np.mean(values)), float(np.std(values)), len(values))
        for (method, n), values in sorted(groups.items())
    ]


def label_ratios(
    points: Iterable[CurvePoint], *, baseline: str = "resnet18_scratch"
) -> list[Ratio]:
    """For each method but the baseline and each ``n``: the labels the baseline needs.

    The baseline's mean curve is interpolated linearly in (log n, value) between its measured
    points and the first crossing of the method's mean is taken. A baseline already at or
    above it at its smallest ``n`` is credited with that ``n`` (it may need fewer). Empty when
    there are no baseline points.
    """
    summaries = summarize(points)
    curve = [(s.n_labels, s.mean) for s in summaries if s.method == baseline]
    if not curve:
        return []
    ratios = []
    for s in summaries:
        if s.method == baseline:
            continue
        needed = _labels_to_reach(curve, s.mean)
        ratio = None if needed is None else needed / s.n_labels
        ratios.append(Ratio(s.method, s.n_labels, s.mean, needed, ratio))
    return ratios


def markdown_table(points: Iterable[CurvePoint], *, baseline: str = "resnet18_scratch") -> str:
    """A Markdown table: one row per label count, "mean ± std" per method, then label ratios.

    A ratio "×12" means the baseline needs 12 times as many labels to match the method's mean;
    "> ×k" that it never does within its largest label count (``k`` = that count / ``n``).
    """
    points = list(points)
    metric = _metric_name(points)
    methods = _methods(points)
    cells = {(s.method, s.n_labels): f"{s.mean:.3f} ± {s.std:.3f}" for s in summarize(points)}
    base_counts = [p.n_labels for p in points if p.method == baseline]
    compared = [m for m in methods if m != baseline] if base_counts else []
    ratios = {(r.method, r.n_labels): r for r in label_ratios(points, baseline=baseline)}

    def ratio_cell(method: str, n: int) -> str:
        r = ratios.get((method, n))
        if r is None:
            return "–"
        if r.ratio is None:
            return f"> {_times(max(base_counts) / n)}"
        return _times(r.ratio)

    header = ["labels", *methods, *(f"{m} label ratio" for m in compared)]
    lines = [_row(header), _row(["---:"] + ["---"] * (len(header) - 1))]
    for n in sorted({p.n_labels for p in points}):
        row = [str(n), *(cells.get((m, n), "–") for m in methods)]
        lines.append(_row(row + [ratio_cell(m, n) for m in compared]))
    lines.append("")
    lines.append(f"{metric}, mean ± std over repeats.")
    if compared:
        lines[-1] += (
            f" Label ratio ×k: {baseline} needs k times as many labels to reach the same mean."
        )
    return "\n".join(lines) + "\n"


def plot(
    points: Iterable[CurvePoint],
    path: str | Path,
    *,
    title: str,
    baseline: str = "resnet18_scratch",
) -> None:
    """Save a PNG of mean ± std against the number of labels (log axis), baseline dashed."""
    points = list(points)
    metric = _metric_name(points)
    summaries = summarize(points)
    fig = Figure(figsize=(6.4, 4.0))
    FigureCanvasAgg(fig)  # render off-screen, whatever backend pyplot may have chosen
    ax = fig.add_subplot()
    for method in _methods(points):
        rows = [s for s in summaries if s.method == method]
        n = np.array([s.n_labels for s in rows])
        mean = np.array([s.mean for s in rows])
        std = np.array([s.std for s in rows])
        style = {"linestyle": "--", "color": "0.25"} if method == baseline else {}
        (line,) = ax.plot(n, mean, marker="o", markersize=4, label=method, **style)
        ax.fill_between(n, mean - std, mean + std, color=line.get_color(), alpha=0.2, lw=0)
    counts = sorted({p.n_labels for p in points})
    ax.set_xscale("log")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("number of labels")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=150, format="png")


def _labels_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """First ``n`` at which the piecewise log-linear ``curve`` (sorted by n) reaches ``target``."""
    if math.isnan(target):
        return None
    if curve[0][1] >= target:
        return float(curve[0][0])
    for (n_lo, v_lo), (n_hi, v_hi) in pairwise(curve):
        if v_lo < target <= v_hi:
            fraction = (target - v_lo) / (v_hi - v_lo)
            return math.exp(math.log(n_lo) + fraction * (math.log(n_hi) - math.log(n_lo)))
    return None


def _metric(points: list[CurvePoint]) -> str | None:
    """The one metric of ``points``; a curve mixing AUC and R² is a caller's mistake."""
    metrics = {p.metric for p in points}
    if len(metrics) > 1:
        raise ValueError(f"points mix metrics {sorted(metrics)}; give one task at a time")
    return metrics.pop() if metrics else None


def _metric_name(points: list[CurvePoint]) -> str:
    """The display name of the points' one metric ("AUC", "R²"); there must be points."""
    metric = _metric(points)
    if metric is None:
        raise ValueError("no curve points")
    return METRIC_NAMES.get(metric, metric)


def _methods(points: list[CurvePoint]) -> list[str]:
    """Methods in the order they first appear."""
    return list(dict.fromkeys(p.method for p in points))


def _times(ratio: float) -> str:
    if ratio >= 10:
        return f"×{ratio:.0f}"
    return f"×{ratio:.1f}" if ratio >= 1 else f"×{ratio:.2g}"  # below 1: the baseline is ahead


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"
