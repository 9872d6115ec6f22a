"""`sim compare`: analyzer metrics per group of runs (by a runs column or a config key) with 95% CIs, each group
against a reference (an imported dataset or a run), figures, and a report as Markdown and self-contained HTML."""

from __future__ import annotations

import base64
import html
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from omegaconf import OmegaConf
from statsmodels.duration.survfunc import SurvfuncRight

from analyzers import analyzers
from sim.analysis import PairOf, Scope, analyze, build_analyzers, count_episodes, side_label, side_order
from sim.compose import analysis_settings
from sim.errors import SimError
from sim.figures import Chart, metric_bars, paired_differences, survival_curves
from sim.ids import episode_index_of
from sim.records import Episode
from sim.report import (
    SIGNIFICANT_Q, YARDSTICK_COLUMNS, Tabular, difference_cell, html_table, interval, markdown_table, metric_size, significance,
    yardstick_rows,
)
from sim.stats import clustered_rate, compare_clustered, q_values
from sim.store import Store
from sim.summary import AnalyzerSummary, Comparison, Metric, PairedComparison

# `--by` names a column of `runs` (these names) or a key of the runs' resolved config.
RUN_COLUMNS = {"run": "id", "backend": "backend", "model": "model", "seed": "seed", "scenario": "scenario"}
DEFAULT_OUT = Path("runs") / "compare"
LATEST = "latest"
_MISSING = object()


@dataclass
class Group:
    """One compared group: its runs, or the imported dataset it is, and how many episodes it holds."""

    name: str
    runs: list[str] = field(default_factory=list)
    dataset: Optional[str] = None
    n_episodes: int = 0
    reference: bool = False

    def scopes(self) -> list[Scope]:
        """What to read from the store for this group."""
        return [(run, None) for run in self.runs] if self.dataset is None else [(None, self.dataset)]


@dataclass
class Selection:
    """The groups to compare, in report order (the reference first), and what they were chosen and grouped by."""

    groups: list[Group]
    by: str
    described: str
    # What the report warns of: groups that pool runs differing in more than the `by` key.
    warnings: list[str] = field(default_factory=list)
    group_of_run: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.group_of_run = {run: group.name for group in self.groups for run in group.runs}

    @property
    def reference(self) -> Optional[str]:
        """The reference group's name, if there is one."""
        return next((group.name for group in self.groups if group.reference), None)

    @property
    def baseline(self) -> Optional[str]:
        """The group every other one is compared against: the reference, else the first of two or more groups."""
        if self.reference is not None:
            return self.reference
        return self.groups[0].name if len(self.groups) > 1 else None

    @property
    def against(self) -> str:
        """How the comparisons against the baseline are titled."""
        return "the reference" if self.reference is not None else f"the first group, {self.baseline}"

    def ordered(self, keyed: dict[tuple[str, Optional[str]], Any]) -> dict[str, Any]:
        """Values keyed by (group, side) in report order (groups as selected, human side first), keyed by label."""
        position = {group.name: i for i, group in enumerate(self.groups)}
        keys = sorted(keyed, key=lambda key: (position.get(key[0], len(position)), side_order(key[1])))
        return {side_label(*key): keyed[key] for key in keys}

    def scopes(self) -> list[Scope]:
        """What to read from the store, group by group."""
        return [scope for group in self.groups for scope in group.scopes()]

    def label(self, run_id: Optional[str], dataset: Optional[str]) -> str:
        """The group of an episode of this run (or, imported, of this dataset)."""
        return self.group_of_run[run_id] if run_id in self.group_of_run else str(dataset)

    def group_of(self, episode: Episode) -> str:
        """The group `episode` is summarized in."""
        return self.label(episode.run_id, episode.dataset)

    def members(self) -> tuple[list[str], list[str]]:
        """The selected runs and imported datasets."""
        return [run for group in self.groups for run in group.runs], [group.dataset for group in self.groups if group.dataset is not None]


def selected_runs(store: Store, sweep: Optional[str], run_ids: Sequence[str], datasets: Sequence[str]) -> list[dict[str, Any]]:
    """The runs of a sweep (`latest`: of the newest sweep with more than one run), the listed runs, or, when neither
    and no dataset is named, every run in the store."""
    if sweep is not None and run_ids:
        raise SimError("give --sweep or --run, not both")
    if sweep == LATEST:
        sweep = latest_sweep(store)
    if sweep is not None:
        runs = store.runs(sweep)
        if not runs:
            raise SimError(f"no sweep {sweep!r} in {store.path} (sweeps: {', '.join(store.sweep_ids()) or 'none'})")
        return runs
    if run_ids:
        return [store.run(run_id) for run_id in dict.fromkeys(run_ids)]
    return [] if datasets else store.runs()


def latest_sweep(store: Store) -> str:
    """The newest sweep with more than one run: a sweep of one run (a single `sim run` given a sweep id, a resumed
    job) has nothing to compare."""
    sweep = store.latest_sweep(min_runs=2)
    if sweep is None:
        raise SimError(f"--sweep latest: no sweep in {store.path} has more than one run (start one with `sim run -m ...`)")
    return sweep


def flat_config(config_yaml: Optional[str]) -> dict[str, str]:
    """A run's resolved config as dotted key -> value (as JSON text, so that lists and nulls compare too)."""
    flat: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = json.dumps(node, sort_keys=True, default=str)

    walk(OmegaConf.to_container(OmegaConf.create(config_yaml or "{}")), "")
    return flat


def pooling_warning(runs: list[dict[str, Any]], groups: list[Group], by: str) -> Optional[str]:
    """One line naming each group that pools runs differing in config keys other than `by` (and the run's own
    `run.*` keys), or None when no group does."""
    configs = {run["id"]: flat_config(run["config_yaml"]) for run in runs}
    pooled = []
    for group in groups:
        members = [configs[run] for run in group.runs if run in configs]
        keys = sorted({key for config in members for key in config})
        differing = [
            key for key in keys
            if len({config.get(key) for config in members}) > 1 and key != by and not key.startswith((f"{by}.", "run."))
        ]
        if differing:
            pooled.append(f"{group.name} pools {len(members)} runs that differ in {', '.join(differing)}")
    if not pooled:
        return None
    return f"{'; '.join(pooled)} (compare them apart with another --by or --run)"


def field_values(runs: list[dict[str, Any]], by: str) -> list[Any]:
    """Each run's value of `by`: a runs column, or a config key read from its resolved config (None where unset)."""
    if by in RUN_COLUMNS:
        return [run[RUN_COLUMNS[by]] for run in runs]
    values = [OmegaConf.select(OmegaConf.create(run["config_yaml"] or "{}"), by, default=_MISSING) for run in runs]
    if all(value is _MISSING for value in values):
        raise SimError(
            f"--by {by!r} is neither a runs column ({', '.join(RUN_COLUMNS)}) nor a config key of the selected runs"
            " (e.g. scenario.temperature)"
        )
    return [None if value is _MISSING else value for value in values]


def group_runs(runs: list[dict[str, Any]], by: str) -> list[Group]:
    """The runs grouped by their value of `by`: runs in the order they were made, other fields by value."""
    groups: dict[Any, Group] = {}
    for run, value in zip(runs, field_values(runs, by)):
        key = json.dumps(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value, sort_keys=True, default=str)
        name = run["id"] if by == "run" else f"{by}={value if isinstance(value, str) else key}"
        groups.setdefault(key, Group(name)).runs.append(run["id"])
    if by == "run":
        return list(groups.values())
    return [groups[key] for key in sorted(groups, key=value_order)]


def value_order(key: str) -> tuple[int, float, str]:
    """Numbers by value first, then everything else by its text."""
    value = json.loads(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, key)


def select(
    store: Store,
    sweep: Optional[str] = None,
    run_ids: Sequence[str] = (),
    datasets: Sequence[str] = (),
    by: str = "run",
    reference: Optional[str] = None,
) -> Selection:
    """The groups to compare: the chosen runs grouped `by` a field, each chosen dataset as a group of its own, and
    the reference (a dataset or a run) as one more group; a SimError for anything that does not exist."""
    runs = selected_runs(store, sweep, run_ids, datasets)
    datasets = list(dict.fromkeys(datasets))
    for dataset in datasets:
        if not count_episodes(store, [(None, dataset)]):
            raise SimError(f"no imported dataset {dataset!r} in {store.path}")
    if not runs and by != "run":
        raise SimError(f"--by {by!r} groups runs, and none are selected (each imported dataset is a group of its own)")
    reference_group = None
    if reference is not None:
        if count_episodes(store, [(None, reference)]):
            reference_group = Group(reference, dataset=reference, reference=True)
            datasets = [d for d in datasets if d != reference]
        elif store.find_run(reference) is not None:
            reference_group = Group(reference, runs=[reference], reference=True)
            runs = [run for run in runs if run["id"] != reference]
        else:
            raise SimError(f"--reference {reference!r}: no imported dataset or run of that name in {store.path}")
    groups = (group_runs(runs, by) if runs else []) + [Group(dataset, dataset=dataset) for dataset in datasets]
    if not groups:
        raise SimError(
            f"nothing to compare: no runs or datasets selected in {store.path} besides the reference (every run is taken by"
            " default; --dataset adds an imported dataset)"
        )
    if reference_group is not None:
        if any(group.name == reference_group.name for group in groups):
            raise SimError(f"--reference {reference!r} has the name of a compared group; choose --by or the reference apart")
        groups.insert(0, reference_group)
    for group in groups:
        group.n_episodes = count_episodes(store, group.scopes())
    if not any(group.n_episodes for group in groups):
        raise SimError(f"the selected runs hold no episodes in {store.path}")
    described = f"sweep {runs[0]['sweep_id']}" if sweep else f"runs {', '.join(run_ids)}" if run_ids else "every run" if runs else "datasets"
    if datasets and (sweep or run_ids or runs):
        described += f" and datasets {', '.join(datasets)}"
    elif datasets:
        described = f"datasets {', '.join(datasets)}"
    warning = pooling_warning(runs, groups, by) if runs else None
    return Selection(groups, by, described, [warning] if warning else [])


def check_out(out: Optional[Path]) -> Path:
    """The report folder (default runs/compare/<UTC time>), checked before the analysis starts: it must be a
    folder, or one that can be made inside the nearest existing folder above it."""
    out = out or DEFAULT_OUT / datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    existing = next(path for path in (out.absolute(), *out.absolute().parents) if path.exists())
    if not existing.is_dir():
        raise SimError(f"--out: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SimError(f"--out: cannot write into {existing}")
    return out


# Report contents


@dataclass
class Section:
    """A heading with its tables and figures."""

    title: str
    tables: list[Tabular] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Report:
    """What `sim compare` prints and writes; `warnings` are said before the tables."""

    facts: list[tuple[str, str]]
    sections: list[Section]
    warnings: list[str] = field(default_factory=list)
    truncation: list[dict[str, Any]] = field(default_factory=list)
    cost: list[dict[str, Any]] = field(default_factory=list)

    @property
    def charts(self) -> list[Chart]:
        """Every figure, in report order."""
        return [chart for section in self.sections for chart in section.charts]


def groups_table(selection: Selection) -> Tabular:
    """One row per group: whether it is the reference, its runs (or that it is an imported dataset), its episodes."""
    rows = [
        [group.name, "reference" if group.reference else "compared", ", ".join(group.runs) or "(imported dataset)", str(group.n_episodes)]
        for group in selection.groups
    ]
    return Tabular(f"Groups (by {selection.by})", ["group", "role", "runs", "episodes"], rows)


def truncation_by_group(store: Store, selection: Selection) -> list[dict[str, Any]]:
    """Each group's share of turns cut at max_tokens (`truncated_turn_share`, its interval from the turns'
    conversations), and its difference from the baseline with a cluster permutation test's p and q-value."""
    counts: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for run_id, dataset, n_turns, n_cut in store.truncated_turns(*selection.members()):
        counts[selection.label(run_id, dataset)].append((n_cut, n_turns))
    rows = []
    for group in selection.groups:
        cut, turns = (np.array(column, dtype=float) for column in zip(*counts[group.name])) if counts[group.name] else ([], [])
        share = clustered_rate(cut, turns)
        rows.append({"group": group.name, "n_turns": int(np.sum(turns)), "truncated_turns": int(np.sum(cut)),
                     "truncated_turn_share": share.mean, "ci_low": share.ci_low, "ci_high": share.ci_high, "p_value": None})
    baseline = next((row for row in rows if row["group"] == selection.baseline), None)
    if baseline is not None and counts[baseline["group"]] and any(row["truncated_turns"] for row in rows):
        for row in rows:
            if row is not baseline and counts[row["group"]]:
                row["p_value"] = compare_clustered(tuple(zip(*counts[baseline["group"]])), tuple(zip(*counts[row["group"]]))).p_value
    for row, q_value in zip(rows, q_values([row["p_value"] for row in rows])):
        row["q_value"] = q_value
    return rows


def truncation_table(rows: list[dict[str, Any]]) -> Tabular:
    """The groups' shares of turns cut at max_tokens."""
    body = [
        [row["group"], str(row["n_turns"]), str(row["truncated_turns"]),
         f"{row['truncated_turn_share']:.3f} {interval(row['ci_low'], row['ci_high'])}", significance(row["p_value"], row["q_value"])]
        for row in rows
    ]
    return Tabular("Turns cut at max_tokens (truncated_turn_share)", ["group", "turns", "cut", "share [95% CI]", "vs baseline"], body)


def truncation_warning(rows: list[dict[str, Any]]) -> Optional[str]:
    """A warning where groups differ in their share of turns cut at max_tokens: length metrics then measure the cap."""
    differing = [row for row in rows if row["q_value"] is not None and row["q_value"] < SIGNIFICANT_Q]
    if not differing:
        return None
    shares = ", ".join(f"{row['group']} {row['truncated_turn_share']:.0%}" for row in rows)
    return (f"groups differ in truncated_turn_share ({shares}; q < {SIGNIFICANT_Q} against the baseline): turns cut at "
            "max_tokens confound lengths and anything read from a turn's end; raise scenario.max_tokens or compare "
            "uncut turns only")


def cost_by_group(store: Store, selection: Selection, summaries: list[AnalyzerSummary]) -> list[dict[str, Any]]:
    """Per group of runs whose every generation request was priced: what generating it cost (judges left out), USD
    per episode, and USD per episode that shows each artifact (an analyzer's episode-level 0/1 flag, where it
    fired)."""
    rows = []
    for group in selection.groups:
        ledgers = [row for run_id in group.runs for row in store.ledger(run_id) if row["kind"] != "judge"]
        if not ledgers or not group.n_episodes or any(row["cost_usd"] is None for row in ledgers):
            continue
        cost = sum(row["cost_usd"] for row in ledgers)
        flagged = {
            f"{summary.analyzer}.{metric.name}": int(metric.total)
            for summary in summaries for metric in summary.metrics
            if metric.group == group.name and metric.unit == "episode" and metric.interval == "wilson" and metric.total
        }
        rows.append({
            "group": group.name, "cost_usd": round(cost, 6), "n_episodes": group.n_episodes,
            "usd_per_episode": round(cost / group.n_episodes, 6),
            "artifacts": [{"artifact": name, "n_episodes": n, "usd_per_episode": round(cost / n, 6)} for name, n in flagged.items()],
        })
    return rows


def cost_table(rows: list[dict[str, Any]]) -> Tabular:
    """What each priced group cost per episode, and per episode showing each artifact."""
    lines = [
        [row["group"], f"${row['cost_usd']:.4f}", str(row["n_episodes"]), f"${row['usd_per_episode']:.4f}", artifact["artifact"],
         str(artifact["n_episodes"]), f"${artifact['usd_per_episode']:.4f}"]
        for row in rows for artifact in row["artifacts"] or [{"artifact": "(none flagged)", "n_episodes": 0, "usd_per_episode": 0.0}]
    ]
    return Tabular("Cost per artifact (generation requests of priced runs)",
                   ["group", "cost", "episodes", "per episode", "artifact", "episodes with it", "per episode with it"], lines)


def metric_cell(metric: Metric) -> str:
    """Mean, 95% CI and what it rests on (and p with its q-value where the metric is a test) in one cell."""
    p = "" if metric.p_value is None else f" p={significance(metric.p_value, metric.q_value)}"
    return f"{metric.mean:.3f}{interval(metric.ci_low, metric.ci_high)}\nn={metric_size(metric)}{p}"


def metrics_table(summary: AnalyzerSummary) -> Tabular:
    """A row per metric and a column per group (or group / side): mean [95% CI] and n."""
    labels = list(dict.fromkeys(metric.group for metric in summary.metrics))
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for metric in summary.metrics:
        cells.setdefault((metric.name, metric.unit), {})[metric.group] = metric_cell(metric)
    rows = [
        [name if unit == "episode" else f"{name} ({unit})", *(values.get(label, "") for label in labels)]
        for (name, unit), values in cells.items()
    ]
    return Tabular(f"{summary.analyzer}: metrics per group, mean [95% CI]", ["metric", *labels], rows)


def comparisons_table(title: str, comparisons: Iterable[Comparison], within_groups: bool) -> Tabular:
    """A row per compared metric: the two means, the difference (other minus reference) with its 95% CI, Cohen's d,
    and p with its Benjamini-Hochberg q-value. Sides compared `within_groups` are named with their group."""

    def label(c: Comparison, side: str) -> str:
        return side_label(c.group, side) if within_groups else side

    rows = [
        [
            f"{label(c, c.other)} vs {label(c, c.reference)}", c.name if c.unit == "episode" else f"{c.name} ({c.unit})",
            f"{c.mean_reference:.3g} → {c.mean_other:.3g}", difference_cell(c),
            "" if c.effect_size is None else f"{c.effect_size:.2f}", significance(c.p_value, c.q_value),
        ]
        for c in comparisons
    ]
    return Tabular(title, ["compared", "metric", "reference → other", "difference [95% CI]", "d", "p (q)"], rows, keys=2)


def paired_table(title: str, comparisons: Iterable[PairedComparison]) -> Tabular:
    """A row per metric compared pair by pair: the pairs (and the items only one side measured, left out), the two
    means over the pairs, the mean paired difference with its 95% CI beside the width the unpaired interval would
    have, and p (q) with the test that gave it."""
    rows = [
        [
            f"{c.other} vs {c.reference}", c.name if c.unit == "episode" else f"{c.name} (turn, mean per conversation)",
            f"{c.n_pairs} ({c.unpaired})", f"{c.mean_reference:.3g} → {c.mean_other:.3g}", difference_cell(c),
            "" if c.unpaired_width is None else f"{c.unpaired_width:.3g}", f"{significance(c.p_value, c.q_value)} {c.test}".strip(),
        ]
        for c in comparisons
    ]
    columns = ["compared", "metric", "pairs (left out)", "baseline → other", "paired difference [95% CI]", "unpaired CI width", "p (q), test"]
    return Tabular(title, columns, rows)


def episode_metric_names(summary: AnalyzerSummary) -> list[str]:
    """The episode-level metric names of a summary, in order."""
    return list(dict.fromkeys(metric.name for metric in summary.metrics if metric.unit == "episode"))


@dataclass(frozen=True)
class ReportView:
    """What an analyzer's `report_figures` reads, read-only: its summary, the groups in report order and the stored
    values of the selected episodes (the SQL stays here, so analyzers only call these methods)."""

    store: Store
    selection: Selection
    summary: AnalyzerSummary

    @property
    def groups(self) -> list[str]:
        """The selected groups' names, in report order."""
        return [group.name for group in self.selection.groups]

    def ordered(self, keyed: dict[tuple[str, Optional[str]], Any]) -> dict[str, Any]:
        """Values keyed by (group, side) in report order, keyed by label (see `Selection.ordered`)."""
        return self.selection.ordered(keyed)

    def episode_metric_names(self) -> list[str]:
        """The summary's episode-level metric names, in order."""
        return episode_metric_names(self.summary)

    def annotations(self, name: Optional[str] = None, episode_level: bool = False) -> list[tuple]:
        """(group, author, turn index, name, value) of the analyzer's stored annotations of the selected episodes;
        only those called `name` where given, only episode-level ones (no turn) with `episode_level`."""
        run_ids, datasets = self.selection.members()
        rows = self.store.annotation_values(
            self.summary.analyzer, self.summary.version, names=None if name is None else [name], run_ids=run_ids,
            datasets=datasets, level="episode" if episode_level else None,
        )
        return [(self.selection.label(run_id, dataset), author, *rest) for _, run_id, dataset, author, *rest in rows]

    def episode_meta(self, kind: str, keys: Sequence[str]) -> list[tuple[str, Optional[str], dict[str, Any]]]:
        """(group, dataset, the `keys` of its meta that it holds) of every selected episode of this `kind`."""
        run_ids, datasets = self.selection.members()
        return [
            (self.selection.label(run_id, dataset), dataset, {key: meta[key] for key in keys if key in meta})
            for run_id, dataset, meta in self.store.episode_meta(kind, run_ids, datasets)
        ]


@dataclass
class FlaggedEpisode:
    """An episode as turn flags see it: its group, length, the episode it was forked from and where, and the turns
    each flag fired on."""

    group: str
    n_turns: int
    parent_id: Optional[str]
    fork_turn: Optional[int]
    flagged: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))


def flagged_episodes(store: Store, selection: Selection, summary: AnalyzerSummary, flags: Sequence[str]) -> dict[str, FlaggedEpisode]:
    """The selected episodes the analyzer annotated, by id, with the turns each of `flags` fired on."""
    run_ids, datasets = selection.members()
    episodes = {
        episode_id: FlaggedEpisode(selection.label(run_id, dataset), n_turns, parent_id, fork_turn)
        for episode_id, run_id, dataset, n_turns, parent_id, fork_turn in store.annotated_episodes(
            summary.analyzer, summary.version, run_ids, datasets
        )
    }
    flagged = store.annotation_values(
        summary.analyzer, summary.version, names=flags, run_ids=run_ids, datasets=datasets, level="turn", nonzero=True
    )
    for episode_id, _, _, _, turn, flag, _ in flagged:
        episodes[episode_id].flagged[flag].add(turn)
    return episodes


def first_flag_curves(episodes: dict[str, FlaggedEpisode], flags: Sequence[str]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Per flag that fired at all, per group, the Kaplan-Meier curve of turns until the flag first fires (statsmodels
    `SurvfuncRight`): a conversation that never shows it is censored at its length."""
    curves: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for flag in flags:
        if not any(episode.flagged.get(flag) for episode in episodes.values()):
            continue
        by_group: dict[str, tuple[list[float], list[int]]] = defaultdict(lambda: ([], []))
        for episode in episodes.values():
            fired = episode.flagged.get(flag)
            if episode.n_turns:
                durations, events = by_group[episode.group]
                durations.append(min(fired) + 1 if fired else episode.n_turns)
                events.append(1 if fired else 0)
        curves[flag] = {}
        for group, (durations, events) in by_group.items():
            if any(events):
                fit = SurvfuncRight(np.asarray(durations, dtype=float), np.asarray(events))
                curves[flag][group] = ([0.0, *fit.surv_times.tolist()], [1.0, *fit.surv_prob.tolist()])
            else:
                curves[flag][group] = ([0.0, float(max(durations))], [1.0, 1.0])
    return curves


def fork_divergence(episodes: dict[str, FlaggedEpisode], flags: Sequence[str], analyzer: str) -> Optional[Tabular]:
    """Per group of forks whose parents are selected too: how many forks part from their parent in a flag, and the
    first turn (from the fork on) where the two differ in any of `flags`; None without such forks."""
    parted: dict[str, list[Optional[int]]] = defaultdict(list)
    for episode in episodes.values():
        parent = episodes.get(episode.parent_id or "")
        if parent is None or episode.fork_turn is None:
            continue
        differing = [turn for flag in flags for turn in episode.flagged.get(flag, set()) ^ parent.flagged.get(flag, set())
                     if turn >= episode.fork_turn]
        parted[episode.group].append(min(differing) if differing else None)
    if not parted:
        return None
    rows = []
    for group, firsts in parted.items():
        found = sorted(turn for turn in firsts if turn is not None)
        spread = f"{np.median(found):g} [{found[0]}, {found[-1]}]" if found else "—"
        rows.append([group, str(len(firsts)), str(len(found)), spread])
    return Tabular(f"{analyzer}: where forks part from their parents in {', '.join(flags)}",
                   ["forks' group", "forks", "forks that differ in a flag", "first differing turn: median [min, max]"], rows)


def turn_flag_views(store: Store, selection: Selection, summary: AnalyzerSummary) -> tuple[Optional[Tabular], Optional[Chart]]:
    """For an analyzer with turn flags: where forks part from their parents, and turns-to-first-flag curves."""
    flags = analyzers.get(summary.analyzer).turn_flags
    if not flags:
        return None, None
    episodes = flagged_episodes(store, selection, summary, flags)
    curves = survival_curves(
        f"{summary.analyzer}_first_flag", f"{summary.analyzer}: turns until a flag first fires",
        "Per flag, the share of each group's conversations that have not shown it yet after each number of turns"
        " (Kaplan-Meier; a conversation that never shows it counts until its last turn).",
        first_flag_curves(episodes, flags),
    )
    return fork_divergence(episodes, flags, summary.analyzer), curves


def analyzer_section(store: Store, selection: Selection, summary: AnalyzerSummary) -> Section:
    """An analyzer's tables (metrics per group, differences against the reference, sides within groups) and figures."""
    section = Section(f"{summary.analyzer} (v{summary.version}, {summary.n_episodes} episodes)", [metrics_table(summary)])
    if summary.against_reference:
        section.tables.append(comparisons_table(f"{summary.analyzer}: each group against {selection.against}", summary.against_reference, False))
    if summary.paired:
        section.tables.append(paired_table(f"{summary.analyzer}: each group against {selection.against}, pair by pair", summary.paired))
    if summary.comparisons:
        section.tables.append(comparisons_table(f"{summary.analyzer}: sides within each group", summary.comparisons, True))
    if summary.yardsticks:
        section.tables.append(Tabular(f"{summary.analyzer}: LLM value, human value, human ceiling", YARDSTICK_COLUMNS, yardstick_rows(summary)))
    charts: list[Optional[Chart]] = [metric_bars(
        f"{summary.analyzer}_metrics", f"{summary.analyzer}: episode-level metrics per group",
        "Mean of each episode-level value (a rate for 0/1 flags) per group, with 95% CIs as error bars (Wilson for"
        " rates, the expanded percentile bootstrap otherwise).",
        summary.metrics, [name for name in episode_metric_names(summary) if not name.startswith("category[")],
    )]
    own = analyzers.get(summary.analyzer).report_figures(ReportView(store, selection, summary))
    section.tables += own.tables
    charts += own.charts
    divergence, first_flags = turn_flag_views(store, selection, summary)
    if divergence is not None:
        section.tables.append(divergence)
    charts.append(first_flags)
    if summary.paired:
        charts.append(paired_differences(
            f"{summary.analyzer}_paired", f"{summary.analyzer}: paired differences from the baseline",
            "Per metric, each group's mean paired difference from the baseline group (other minus baseline) with its"
            " paired 95% CI; in grey, the width the interval would have if the same values were compared as"
            " independent groups. The dotted line is no difference.",
            [c for c in summary.paired if c.unit == "episode"],
        ))
    section.charts = [chart for chart in charts if chart is not None]
    return section


def build_report(store: Store, selection: Selection, summaries: list[AnalyzerSummary], paired: bool = False) -> Report:
    """The groups table, then a section per analyzer that applied to the selected episodes; `paired` when groups
    were also compared pair by pair."""
    applied = [summary for summary in summaries if summary.n_episodes]
    idle = [summary.analyzer for summary in summaries if not summary.n_episodes]
    facts = [
        ("database", str(store.path)),
        ("selection", selection.described),
        ("grouped by", selection.by),
        ("reference", selection.reference or (f"none: each group is compared with the first, {selection.baseline}" if selection.baseline else "none")),
        ("analyzers", ", ".join(summary.analyzer for summary in applied) or "none applied"),
        ("made", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    if idle:
        facts.append(("not applicable", ", ".join(idle)))
    if paired:
        facts.append(("paired", PAIRED_BY))
    truncation = truncation_by_group(store, selection)
    groups = Section("Groups", [groups_table(selection)])
    if any(row["truncated_turns"] for row in truncation):
        groups.tables.append(truncation_table(truncation))
    cost = cost_by_group(store, selection, applied)
    if cost:
        groups.tables.append(cost_table(cost))
    sections = [groups, *(analyzer_section(store, selection, summary) for summary in applied)]
    warnings = [*selection.warnings, *filter(None, [truncation_warning(truncation)])]
    return Report(facts, sections, warnings, truncation, cost)


# Writing


def to_markdown(report: Report) -> str:
    """The report as Markdown, figures linked beside it."""
    parts = ["# Comparison report", "", *(f"- {name}: `{value}`" for name, value in report.facts), ""]
    parts += [*(f"> **Warning:** {warning}" for warning in report.warnings), ""] if report.warnings else []
    for section in report.sections:
        parts += [f"## {section.title}", ""]
        parts += [markdown_table(table) for table in section.tables]
        for chart in section.charts:
            parts += [f"![{chart.title}]({chart.name}.png)", "", f"*{chart.title}.* {chart.caption}", ""]
    return "\n".join(parts)


STYLE = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.5em;text-align:right}th:first-child,td:first-child{text-align:left}"
    "caption{font-weight:bold;text-align:left;padding:0.3em 0}img{max-width:100%}figcaption{font-size:0.9em;color:#444}"
)


def to_html(report: Report) -> str:
    """The report as one HTML file: tables as HTML, figures embedded as data URIs, no outside resources."""
    facts = "".join(f"<li>{html.escape(name)}: <code>{html.escape(value)}</code></li>" for name, value in report.facts)
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Comparison report</title><style>{STYLE}</style></head><body>",
        f"<h1>Comparison report</h1><ul>{facts}</ul>",
        *(f"<p><b>Warning:</b> {html.escape(warning)}</p>" for warning in report.warnings),
    ]
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [html_table(table) for table in section.tables]
        for chart in section.charts:
            data = base64.b64encode(chart.png).decode("ascii")
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(chart.title)}'>"
                f"<figcaption><b>{html.escape(chart.title)}.</b> {html.escape(chart.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(report: Report, out: Path) -> None:
    """The PNGs, report.md and report.html into `out` (made if missing)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for chart in report.charts:
            (out / f"{chart.name}.png").write_bytes(chart.png)
        (out / "report.md").write_text(to_markdown(report), encoding="utf-8")
        (out / "report.html").write_text(to_html(report), encoding="utf-8")
    except OSError as exc:
        raise SimError(f"--out: cannot write the report into {out}: {exc.strerror}") from None


PAIRED_BY = ("forks with the episodes they were forked from, runs' episodes by their place in the run (the same item);"
             " items measured by one side only are left out and counted")


def pairing(store: Store, selection: Selection) -> PairOf:
    """How `--paired` matches episodes across groups: a fork with the episode it was forked from; otherwise a run's
    episodes by their index in the run (the same item, as runs of one scenario play their items in order). Imported episodes pair only with themselves, so they pair with nothing in another group."""
    parents = store.parent_ids(*selection.members())

    def key(episode: Episode) -> str:
        if episode.parent_id is not None:
            return f"episode {episode.parent_id}"
        if episode.id in parents or episode.run_id is None:
            return f"episode {episode.id}"
        return f"item {episode_index_of(episode.id)}"

    return key


@dataclass
class ComparisonRun:
    """A finished comparison: the groups as selected, each analyzer's summary, the report and where it was written."""

    selection: Selection
    summaries: list[AnalyzerSummary]
    report: Report
    folder: Path

    def results(self) -> list[dict[str, Any]]:
        """Every comparison of a group with the baseline, unpaired and paired, as one flat list of records."""
        found = []
        for summary in self.summaries:
            for comparison in [*summary.against_reference, *summary.paired]:
                is_paired = isinstance(comparison, PairedComparison)
                found.append({
                    "analyzer": summary.analyzer, "metric": comparison.name, "unit": comparison.unit,
                    "groups": [comparison.reference, comparison.other], "paired": is_paired,
                    "n_pairs": comparison.n_pairs if is_paired else None, "difference": comparison.difference,
                    "ci_low": comparison.ci_low, "ci_high": comparison.ci_high, "p_value": comparison.p_value,
                    "q_value": comparison.q_value, "test": comparison.test,
                })
        return found

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (`sim compare --json`): the groups, each analyzer's metrics and comparisons (within groups,
        and against the reference group where there is one), and the files written."""
        return {
            "by": self.selection.by,
            "reference": self.selection.reference,
            "baseline": self.selection.baseline,  # what `against_reference` compares with: the reference, else the first group
            "groups": [
                {"name": g.name, "runs": g.runs, "dataset": g.dataset, "n_episodes": g.n_episodes, "reference": g.reference}
                for g in self.selection.groups
            ],
            "analyzers": [summary.as_dict() for summary in self.summaries],
            "results": self.results(),
            "truncation": self.report.truncation,
            "cost": self.report.cost,
            "warnings": self.report.warnings,
            "report": [str(self.folder / name) for name in ("report.md", "report.html")],
            "figures": [str(self.folder / f"{chart.name}.png") for chart in self.report.charts],
        }


def run_comparison(
    db: str,
    sweep: Optional[str],
    run_ids: Sequence[str],
    datasets: Sequence[str],
    by: str,
    reference: Optional[str],
    names: Sequence[str],
    out: Optional[Path],
    overrides: Sequence[str],
    paired: bool = False,
) -> ComparisonRun:
    """Select and group, check the report folder, analyze (writing annotations, as `sim analyze` does; with `paired`,
    comparing groups pair by pair as well), build the report and write it."""
    cfg = analysis_settings(list(overrides), "sim compare")
    selected = build_analyzers(cfg.analyzer, list(names) or list(cfg.runner.analyze), cfg.runner)
    store = Store.open(db, create=False, writable=True, option="--db")  # analyzing writes annotations
    try:
        selection = select(store, sweep, run_ids, datasets, by, reference)
        if paired and selection.baseline is None:
            raise SimError(f"--paired needs two or more groups to pair; {selection.described} gives one ({selection.groups[0].name})")
        folder = check_out(out)
        summaries = analyze(
            store, selected, scopes=selection.scopes(), group_of=selection.group_of, reference=selection.reference,
            baseline=selection.baseline, pair_of=pairing(store, selection) if paired else None,
        )
        report = build_report(store, selection, summaries, paired)
    finally:
        store.close()
    write_report(report, folder)
    return ComparisonRun(selection, summaries, report, folder)
