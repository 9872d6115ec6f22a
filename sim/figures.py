"""Figures for `sim compare`: matplotlib PNGs drawn off-screen from analyzer metrics and stored values."""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

# Figure objects are built directly (never pyplot), so no window or GUI backend is ever involved.
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.summary import Metric, PairedComparison

# Panels per figure at most, and their layout.
MAX_PANELS = 30
COLUMNS = 3
PANEL_INCHES = (4.2, 3.0)
DPI = 100
COLORS = [f"C{i}" for i in range(10)]


@dataclass(frozen=True)
class Chart:
    """One PNG figure with its file name, title and what it shows."""

    name: str
    title: str
    caption: str
    png: bytes


def _render(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _panels(n: int) -> tuple[Figure, list]:
    """A figure with `n` panels on a grid, and the panels."""
    columns = min(COLUMNS, n)
    rows = math.ceil(n / columns)
    figure = Figure(figsize=(PANEL_INCHES[0] * columns, PANEL_INCHES[1] * rows))
    axes = [figure.add_subplot(rows, columns, i + 1) for i in range(n)]
    return figure, axes


def _short(label: str, limit: int = 28) -> str:
    """A group label cut to fit under a bar."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def flat(values: Sequence[float], intervals: Sequence[tuple[Optional[float], Optional[float]]]) -> bool:
    """Whether a panel of metric bars would show nothing: every value 0, or every value the same with no
    uncertainty around it (a count fixed by the settings, such as the turns checked in conversations of a fixed
    length)."""
    if all(value == 0 for value in values):
        return True
    return len(set(values)) == 1 and all(low is None or low == high for low, high in intervals)


def metric_bars(
    name: str, title: str, caption: str, metrics: Iterable[Metric], names: Sequence[str],
    references: Optional[dict[str, float]] = None,
) -> Optional[Chart]:
    """One panel per metric name (at most MAX_PANELS), a bar per group: the mean with its 95% CI as an error bar;
    a dotted line at the panel's value in `references` (what an unbiased judge would score), where given. Metrics
    that are 0, or one constant, in every group get no panel; the caption names them."""
    by_name: dict[str, list[Metric]] = {}
    for metric in metrics:
        if metric.name in names:
            by_name.setdefault(metric.name, []).append(metric)
    present = [n for n in names if n in by_name]
    constant = [n for n in present if flat([m.mean for m in by_name[n]], [(m.ci_low, m.ci_high) for m in by_name[n]])]
    shown = [n for n in present if n not in constant][:MAX_PANELS]
    if not shown:
        return None
    if constant:
        caption += f" Not drawn, being 0 or one constant in every group: {', '.join(constant)}."
    figure, axes = _panels(len(shown))
    for axis, metric_name in zip(axes, shown):
        rows = by_name[metric_name]
        means = [m.mean for m in rows]
        low = [0.0 if m.ci_low is None else max(m.mean - m.ci_low, 0.0) for m in rows]
        high = [0.0 if m.ci_high is None else max(m.ci_high - m.mean, 0.0) for m in rows]
        positions = range(len(rows))
        axis.bar(positions, means, yerr=[low, high], capsize=4, color=[COLORS[i % len(COLORS)] for i in positions])
        axis.set_xticks(list(positions), [_short(m.group) for m in rows], rotation=30, ha="right", fontsize=8)
        axis.set_title(metric_name, fontsize=9)
        if references and metric_name in references:
            axis.axhline(references[metric_name], color="grey", linestyle=":", linewidth=1)
    return Chart(name, title, caption, _render(figure))


def paired_differences(name: str, title: str, caption: str, comparisons: Iterable[PairedComparison]) -> Optional[Chart]:
    """One panel per metric (at most MAX_PANELS), a point per compared group: its mean paired difference from the
    baseline with the paired 95% CI, beside it (lighter) the same difference with the width of the unpaired
    interval, and a line at no difference; metrics with no difference at all, in any pair, get no panel."""
    by_name: dict[str, list[PairedComparison]] = {}
    for comparison in comparisons:
        by_name.setdefault(comparison.name, []).append(comparison)
    # A difference of 0 with an interval around it is a finding, and so is one of 1 without any; only no
    # difference at all, in every pair, is left out.
    shown = [
        n for n, rows in by_name.items()
        if not all(c.difference == 0 and (c.ci_low is None or c.ci_low == c.ci_high) for c in rows)
    ]
    shown = shown[:MAX_PANELS]
    if not shown:
        return None
    figure, axes = _panels(len(shown))
    for axis, metric_name in zip(axes, shown):
        rows = by_name[metric_name]
        positions = list(range(len(rows)))
        for i, c in zip(positions, rows):
            if c.ci_low is not None and c.ci_high is not None:
                axis.errorbar(i - 0.1, c.difference, yerr=[[c.difference - c.ci_low], [c.ci_high - c.difference]], fmt="o",
                              color=COLORS[0], capsize=4, label="paired" if i == 0 else None)
            else:
                axis.plot(i - 0.1, c.difference, "o", color=COLORS[0])
            if c.unpaired_width is not None:
                axis.errorbar(i + 0.1, c.difference, yerr=c.unpaired_width / 2, fmt="none", color="grey", alpha=0.6, capsize=4,
                              label="unpaired width" if i == 0 else None)
        axis.axhline(0, color="grey", linestyle=":", linewidth=1)
        axis.set_xticks(positions, [_short(f"{c.other} vs {c.reference}") for c in rows], rotation=30, ha="right", fontsize=8)
        axis.set_xlim(-0.6, len(rows) - 0.4)
        axis.set_title(metric_name, fontsize=9)
    axes[0].legend(fontsize=7, loc="best")
    return Chart(name, title, caption, _render(figure))


def survival_curves(name: str, title: str, caption: str, curves: dict[str, dict[str, tuple[list[float], list[float]]]]) -> Optional[Chart]:
    """One panel per flag, a step curve per group: the share of conversations still without the flag after each
    number of turns (Kaplan-Meier: `curves[flag][group]` = turns, share)."""
    shown = list(curves)[:MAX_PANELS]
    if not shown:
        return None
    figure, axes = _panels(len(shown))
    for axis, flag in zip(axes, shown):
        for i, (group, (turns, share)) in enumerate(curves[flag].items()):
            axis.step(turns, share, where="post", color=COLORS[i % len(COLORS)], label=_short(group))
        axis.set_ylim(0, 1.05)
        axis.set_xlabel("turns", fontsize=8)
        axis.set_ylabel(f"share without {flag}", fontsize=8)
        axis.set_title(flag, fontsize=9)
        axis.legend(fontsize=7, loc="lower left")
    return Chart(name, title, caption, _render(figure))


def _grouped_bars(axis: Axes, ticks: list[str], series: dict[str, list[float]]) -> None:
    """At each tick, one bar per series side by side, the tick label under the middle of them."""
    width = 0.8 / max(len(series), 1)
    for i, (label, heights) in enumerate(series.items()):
        axis.bar([x + i * width for x in range(len(ticks))], heights, width, label=label, color=COLORS[i % len(COLORS)])
    axis.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(ticks))], ticks)


def turn_histogram(name: str, title: str, caption: str, turns: dict[str, list[int]], n_episodes: dict[str, int]) -> Optional[Chart]:
    """Grouped bars over turn indices: the share of each group's episodes with an event (a flip) at that turn."""
    if not any(turns.values()):
        return None
    indices = sorted({idx for values in turns.values() for idx in values})
    groups = [group for group in turns if n_episodes.get(group)]
    figure = Figure(figsize=(max(6.0, 0.5 * len(indices) * max(len(groups), 1)), 4.0))
    axis = figure.add_subplot()
    shares = {}
    for group in groups:
        counts = Counter(turns[group])
        shares[_short(group)] = [counts[idx] / n_episodes[group] for idx in indices]
    _grouped_bars(axis, [str(idx) for idx in indices], shares)
    axis.set_xlabel("turn index")
    axis.set_ylabel("share of episodes")
    axis.legend(fontsize=8)
    return Chart(name, title, caption, _render(figure))


def stacked_shares(name: str, title: str, caption: str, shares: dict[str, dict[str, float]]) -> Optional[Chart]:
    """A stacked bar per group: the share of its items in each category."""
    categories = sorted({category for parts in shares.values() for category in parts})
    if not categories:
        return None
    groups = list(shares)
    figure = Figure(figsize=(max(6.0, 1.2 * len(groups) + 4), 4.5))
    axis = figure.add_subplot()
    bottoms = [0.0] * len(groups)
    for i, category in enumerate(categories):
        heights = [shares[group].get(category, 0.0) for group in groups]
        axis.bar(range(len(groups)), heights, bottom=bottoms, label=category, color=COLORS[i % len(COLORS)])
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    axis.set_xticks(range(len(groups)), [_short(g) for g in groups], rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("share of judged episodes")
    axis.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    return Chart(name, title, caption, _render(figure))


def label_distributions(name: str, title: str, caption: str, labels: dict[str, dict[str, list[float]]]) -> Optional[Chart]:
    """A panel per group: how often each label value was given, by the human and by the model annotators."""
    groups = [group for group, sides in labels.items() if any(sides.values())][:MAX_PANELS]
    if not groups:
        return None
    figure, axes = _panels(len(groups))
    for axis, group in zip(axes, groups):
        sides = {side: values for side, values in labels[group].items() if values}
        support = sorted({value for values in sides.values() for value in values})
        shares = {}
        for side, values in sides.items():
            counts = Counter(values)
            shares[f"{side} (n={len(values)})"] = [counts[value] / len(values) for value in support]
        _grouped_bars(axis, [f"{v:g}" for v in support], shares)
        axis.set_title(_short(group, 40), fontsize=9)
        axis.set_xlabel("label")
        axis.set_ylabel("share of labels")
        axis.legend(fontsize=7)
    return Chart(name, title, caption, _render(figure))


def distributions(name: str, title: str, caption: str, values: dict[str, dict[str, list[float]]]) -> Optional[Chart]:
    """A panel per feature (at most MAX_PANELS), a box per group: the spread of its per-episode values; a feature
    with one value throughout gets no panel."""
    features = [feature for feature, groups in values.items() if len({v for vs in groups.values() for v in vs}) > 1][:MAX_PANELS]
    if not features:
        return None
    figure, axes = _panels(len(features))
    for axis, feature in zip(axes, features):
        groups = {group: vs for group, vs in values[feature].items() if vs}
        axis.boxplot(list(groups.values()), showfliers=False)
        axis.set_xticks(range(1, len(groups) + 1), [_short(g) for g in groups], rotation=30, ha="right", fontsize=8)
        axis.set_title(feature, fontsize=9)
    return Chart(name, title, caption, _render(figure))


def roc_curves(name: str, title: str, caption: str, curves: dict[str, dict[str, tuple[list[float], list[float]]]]) -> Optional[Chart]:
    """One panel per detector (analyzer), a ROC curve per perturbation kind, with the chance diagonal."""
    panels = {panel: kinds for panel, kinds in curves.items() if any(fpr for fpr, _ in kinds.values())}
    if not panels:
        return None
    figure, axes = _panels(len(panels))
    for axis, (panel, kinds) in zip(axes, panels.items()):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for color, (kind, (fpr, tpr)) in zip(COLORS, kinds.items()):
            if fpr:
                axis.plot(fpr, tpr, color=color, label=kind)
        axis.set_title(_short(panel, 40), fontsize=9)
        axis.set_xlabel("false positive rate")
        axis.set_ylabel("true positive rate")
        axis.legend(fontsize=8, loc="lower right")
    return Chart(name, title, caption, _render(figure))
