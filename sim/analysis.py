"""Run analyzers over stored episodes, store their annotations, and summarize them per group with uncertainty."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from contextlib import ExitStack
from itertools import chain, islice
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterable, Optional, TypeVar

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from analyzers import Analyzer, analyzers
from analyzers.base import Ceiling, Scored
from sim.config import build
from sim.records import Annotation, Episode
from sim.stats import (
    Estimate, clustered_rate, compare, compare_clustered, compare_paired, estimate, q_values, ratio_estimate,
)
from sim.store import Store
from sim.summary import AnalyzerSummary, Comparison, Metric, PairedComparison, Yardstick

# Analyzers get this many episodes per call (embedding analyzers embed them in one pass).
ANNOTATE_BATCH = 64
# Annotations are written in batches of this many episodes: one transaction each.
WRITE_BATCH = 2000
# The side every other side is compared against, when a group has it.
REFERENCE_SIDE = "human"

# Which stored episodes to read: those of a run and of a dataset (None: any).
Scope = tuple[Optional[str], Optional[str]]
GroupOf = Callable[[Episode], str]
# What an episode is paired by across groups (`sim compare --paired`): episodes of equal keys measured the same item.
PairOf = Callable[[Episode], str]


def summarize(annotations: list[list[Annotation]], group: str = "", turns: bool = True, clusters: Optional[list[str]] = None) -> list[Metric]:
    """Every annotation name of a group's episodes (a list of annotations per episode) with its 95% interval:
    episode values as one value per episode (`estimate`), or pooled per cluster where episodes share one (`clusters`:
    each episode's unit of independence, such as the compared pair of several judgments); turn values (unless
    `turns` is False) pooled per conversation, so that their interval resamples conversations, not turns
    (`clustered_rate` for 0/1 flags, `ratio_estimate` otherwise)."""
    values = GroupValues.of(annotations, turns, clusters)
    metrics = []
    for name, episode_values in sorted(values.episodes.items()):
        pooled = values.pooled_episodes(name)
        if pooled is None:
            est = estimate(episode_values)
        else:
            sums, counts = pooled
            est = ratio_estimate(sums, counts) if name in values.non_binary else clustered_rate(sums, counts)
        metrics.append(Metric(name, "episode", len(episode_values), float(sum(episode_values)), est.mean, est.ci_low, est.ci_high,
                              group, n_episodes=len(episode_values), interval=est.interval))
    for name, per_episode in sorted(values.turns.items()):
        sums, counts = (np.array(column, dtype=float) for column in zip(*per_episode))
        est = ratio_estimate(sums, counts) if name in values.non_binary else clustered_rate(sums, counts)
        metrics.append(Metric(name, "turn", int(counts.sum()), float(sums.sum()), est.mean, est.ci_low, est.ci_high, group,
                              n_episodes=len(per_episode), n_turns=int(counts.sum()), interval=est.interval))
    return metrics


@dataclass
class GroupValues:
    """A group's annotation values by name: one value per episode (with the episode's cluster, where episodes are
    not their own unit of independence), and per conversation the sum and number of its turn values (the unit a
    turn-level interval resamples); `non_binary` names values that are not 0/1 flags."""

    episodes: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    episode_clusters: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    turns: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))
    non_binary: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, annotations: list[list[Annotation]], turns: bool = True, clusters: Optional[list[str]] = None) -> "GroupValues":
        """The values of episodes given as a list of annotations each (and, optionally, each episode's cluster);
        turn values left out unless `turns`."""
        values = cls()
        for i, episode in enumerate(annotations):
            pooled: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
            for annotation in episode:
                if annotation.value not in (0.0, 1.0):
                    values.non_binary.add(annotation.name)
                if annotation.turn_idx is None:
                    values.episodes[annotation.name].append(annotation.value)
                    if clusters is not None:
                        values.episode_clusters[annotation.name].append(clusters[i])
                elif turns:
                    pooled[annotation.name][0] += annotation.value
                    pooled[annotation.name][1] += 1
            for name, (total, count) in pooled.items():
                values.turns[name].append((total, int(count)))
        return values

    def pooled_episodes(self, name: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """Per cluster, the sum and number of an episode value, where some episodes share a cluster; else None
        (each episode is its own unit)."""
        ids = self.episode_clusters.get(name)
        if not ids or len(set(ids)) == len(ids):
            return None
        index = {cluster: i for i, cluster in enumerate(dict.fromkeys(ids))}
        positions = np.array([index[cluster] for cluster in ids])
        sums = np.bincount(positions, weights=self.episodes[name], minlength=len(index))
        return sums, np.bincount(positions, minlength=len(index)).astype(float)


def corpus_metric(name: str, value: Estimate, group: str, n_episodes: int) -> Metric:
    """A corpus statistic of a group of `n_episodes` episodes as a metric row."""
    return Metric(name, "corpus", value.n, None, value.mean, value.ci_low, value.ci_high, group, value.p_value,
                  n_episodes=n_episodes, interval=value.interval)


@dataclass
class Side:
    """The episodes of one side of one group, as far as the summary needs them."""

    annotations: list[list[Annotation]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    clusters: list[str] = field(default_factory=list)  # each episode's unit of independence (Analyzer.cluster_of)
    keys: list[str] = field(default_factory=list)  # each episode's pairing key, where episodes are paired (PairOf)

    def scored(self) -> list[Scored]:
        """Each kept episode with its annotations."""
        return list(zip(self.episodes, self.annotations))

    def values(self, turns: bool) -> GroupValues:
        """This side's annotation values by name (turn values left out unless `turns`)."""
        return GroupValues.of(self.annotations, turns, self.clusters)


def side_label(group: str, side: Optional[str]) -> str:
    """How a group's side is named in metric rows: `group / side`, or the group alone."""
    return group if side is None else f"{group} / {side}"


def compare_values(
    reference: Side, other: Side, group: str, reference_label: str, other_label: str, turns: bool = True
) -> list[Comparison]:
    """Every annotation both sides have, compared (other minus reference): episode values unit by unit (`compare`;
    `compare_clustered` over clusters where episodes share one), turn values (unless `turns` is False) conversation
    by conversation (`compare_clustered`)."""
    first, second = reference.values(turns), other.values(turns)
    labels = dict(group=group, reference=reference_label, other=other_label)
    comparisons = []
    for name in sorted(set(first.episodes) & set(second.episodes)):
        pooled = first.pooled_episodes(name), second.pooled_episodes(name)
        if all(values is None for values in pooled):
            difference = compare(first.episodes[name], second.episodes[name])
        else:  # some episodes share a unit: compare units, each side's episodes pooled per cluster
            difference = compare_clustered(*(
                values if values is not None else (np.asarray(side.episodes[name]), np.ones(len(side.episodes[name])))
                for values, side in zip(pooled, (first, second))
            ))
        comparisons.append(Comparison(**asdict(difference), name=name, **labels))
    comparisons += [
        Comparison(**asdict(compare_clustered(tuple(zip(*first.turns[name])), tuple(zip(*second.turns[name])))),
                   name=name, unit="turn", **labels)
        for name in sorted(set(first.turns) & set(second.turns))
    ]
    return comparisons


def paired_values(side: Side, turns: bool = True) -> dict[tuple[str, str], dict[str, float]]:
    """Per (annotation name, unit), each pairing key's value: the episode value, or for turn values the
    conversation's mean (unless `turns` is False); the episodes of one key in a group (runs pooled in one group that
    played the same items) give their mean."""
    totals: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for key, annotations in zip(side.keys, side.annotations):
        turn_totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for annotation in annotations:
            if annotation.turn_idx is None:
                cell = totals[(annotation.name, "episode")][key]
                cell[0], cell[1] = cell[0] + annotation.value, cell[1] + 1
            elif turns:
                turn_totals[annotation.name][0] += annotation.value
                turn_totals[annotation.name][1] += 1
        for name, (total, count) in turn_totals.items():
            cell = totals[(name, "turn")][key]
            cell[0], cell[1] = cell[0] + total / count, cell[1] + 1
    return {named: {key: total / count for key, (total, count) in by_key.items()} for named, by_key in totals.items()}


def compare_pairs(
    reference: Side, other: Side, group: str, reference_label: str, other_label: str, turns: bool = True
) -> list[PairedComparison]:
    """Every annotation both sides have, compared pair by pair over the keys both measured (`compare_paired`:
    a paired bootstrap interval, McNemar's exact test for 0/1 values, Wilcoxon's signed-rank test otherwise),
    beside the width of the unpaired interval (`compare`) on the same values."""
    first, second = paired_values(reference, turns), paired_values(other, turns)
    comparisons = []
    for name, unit in sorted(set(first) & set(second)):
        ours, theirs = first[(name, unit)], second[(name, unit)]
        common = sorted(set(ours) & set(theirs))
        if not common:
            continue
        a, b = [ours[key] for key in common], [theirs[key] for key in common]
        independent = compare(a, b)
        comparisons.append(PairedComparison(
            **asdict(compare_paired(a, b)), name=name, group=group, reference=reference_label, other=other_label, unit=unit,
            n_pairs=len(common), unpaired=len(set(ours) ^ set(theirs)),
            unpaired_width=None if independent.ci_low is None else independent.ci_high - independent.ci_low,
        ))
    return comparisons


Compared = TypeVar("Compared", bound=Comparison)


def with_q_values(comparisons: list[Compared]) -> list[Compared]:
    """The comparisons with Benjamini-Hochberg q-values, each group's comparisons one family."""
    families: dict[str, list[int]] = defaultdict(list)
    for i, comparison in enumerate(comparisons):
        families[comparison.group].append(i)
    result = list(comparisons)
    for members in families.values():
        for i, q in zip(members, q_values([comparisons[i].p_value for i in members])):
            result[i] = replace(comparisons[i], q_value=q)
    return result


def set_metric_q_values(metrics: list[Metric]) -> None:
    """Benjamini-Hochberg q-values for the metrics that are tests (a p-value), each group's tests one family."""
    families: dict[str, list[Metric]] = defaultdict(list)
    for metric in metrics:
        if metric.p_value is not None:
            families[metric.group].append(metric)
    for members in families.values():
        for metric, q in zip(members, q_values([metric.p_value for metric in members])):
            metric.q_value = q


class AnalyzerRun:
    """One analyzer over a stream of episodes: annotates, writes in batches, and keeps what its summary needs.

    Episodes are grouped by `group_of` (default: the analyzer's own `group_of`); with a `baseline` group (the
    `reference`, unless another is named), every other group's values are also compared against it, side by side.
    The `reference` is also where humans' values are looked up for the yardsticks. With `pair_of`, each other group
    is also compared against the baseline pair by pair (`compare_pairs`)."""

    def __init__(
        self, analyzer: Analyzer, store: Store, group_of: Optional[GroupOf] = None, reference: Optional[str] = None,
        baseline: Optional[str] = None, pair_of: Optional[PairOf] = None,
    ) -> None:
        self.analyzer = analyzer
        self.store = store
        self.group_of = group_of or analyzer.group_of
        self.reference = reference
        self.baseline = baseline if baseline is not None else reference
        self.pair_of = pair_of
        self.pending: dict[str, list[Annotation]] = {}
        self.held: list[Episode] = []  # episodes kept for an analyzer that fits the corpus, annotated at the end
        self.groups: dict[str, dict[Optional[str], Side]] = defaultdict(lambda: defaultdict(Side))
        self.n_episodes = 0
        # On a store this analyzer never annotated there is nothing to replace: writes are inserts only.
        self.first_time = not store.has_annotations(analyzer.name)

    def add(self, episodes: list[Episode]) -> None:
        """Annotate the episodes the analyzer applies to, in one call so that it can batch its work."""
        applicable = [episode for episode in episodes if self.analyzer.applies_to(episode)]
        if self.analyzer.fits_corpus:
            self.held += applicable
        elif applicable:
            self._keep(applicable, self.analyzer.annotate_many(applicable))

    def _keep(self, applicable: list[Episode], annotated: list[list[Annotation]]) -> None:
        """Queue the annotations for writing and keep what the summary needs."""
        for episode, values in zip(applicable, annotated):
            self.pending[episode.id] = values
            side = self.groups[self.group_of(episode)][self.analyzer.side_of(episode)]
            side.annotations.append(values)
            side.clusters.append(self.analyzer.cluster_of(episode))
            if self.pair_of is not None:
                side.keys.append(self.pair_of(episode))
            if self.analyzer.uses_corpus:
                side.episodes.append(episode)
            self.n_episodes += 1
        if len(self.pending) >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the pending annotations."""
        if self.pending:
            self.store.replace_annotations_of(self.analyzer.name, self.analyzer.version, self.pending, self.first_time)
            self.pending = {}

    def summary(self) -> AnalyzerSummary:
        """Metrics per group and side, and comparisons of each side against the reference side."""
        if self.held:
            held, self.held = self.held, []
            self._keep(held, self.analyzer.annotate_many(held))
        self.flush()
        result = AnalyzerSummary(self.analyzer.name, self.analyzer.version, self.n_episodes)
        for group, sides in self.groups.items():
            for side_name, side in sorted(sides.items(), key=lambda item: side_order(item[0])):
                label = side_label(group, side_name)
                result.metrics += summarize(side.annotations, label, self.dense, side.clusters)
                if self.analyzer.uses_corpus:
                    for name, value in self.analyzer.corpus_metrics(side.scored()).items():
                        result.metrics.append(corpus_metric(name, value, label, len(side.annotations)))
                    result.notes += [f"{label}: {note}" for note in self.analyzer.notes(side.scored())]
            self._compare_sides(group, sides, result)
        result.against_reference = with_q_values(self._against_baseline(compare_values))
        if self.pair_of is not None:
            result.paired = with_q_values(self._against_baseline(compare_pairs))
        result.comparisons = with_q_values(result.comparisons)
        set_metric_q_values(result.metrics)
        result.yardsticks = yardsticks(result.metrics, self.analyzer.ceilings, self.reference)
        return result

    @property
    def dense(self) -> bool:
        """Whether turn annotations are values of every turn, to be summarized (not flags written where they fire)."""
        return not self.analyzer.sparse_turn_flags

    def _against_baseline(self, compare_sides: Callable[..., list[Compared]]) -> list[Compared]:
        """Each side of each other group compared (`compare_sides`) with the baseline group's side of the same name
        (else its human side, else its only, side-less values)."""
        baseline = self.groups.get(self.baseline) if self.baseline is not None else None
        if not baseline:
            return []
        found: list[Compared] = []
        for group, sides in self.groups.items():
            if group == self.baseline:
                continue
            for side_name, side in sorted(sides.items(), key=lambda item: side_order(item[0])):
                matches = [name for name in (side_name, REFERENCE_SIDE, None) if name in baseline]
                if matches:
                    found += compare_sides(
                        baseline[matches[0]], side, group, side_label(str(self.baseline), matches[0]), side_label(group, side_name),
                        self.dense,
                    )
        return found

    def _compare_sides(self, group: str, sides: dict[Optional[str], Side], result: AnalyzerSummary) -> None:
        names = sorted((name for name in sides if name is not None), key=side_order)
        if len(names) < 2:
            return
        reference, others = names[0], names[1:]
        for other in others:
            result.comparisons += compare_values(sides[reference], sides[other], group, reference, other, self.dense)
            if self.analyzer.uses_corpus:
                label = f"{group}: {other} vs {reference}"
                n_episodes = len(sides[reference].annotations) + len(sides[other].annotations)
                for name, value in self.analyzer.compare_corpora(sides[reference].scored(), sides[other].scored()).items():
                    result.metrics.append(corpus_metric(name, value, label, n_episodes))


def yardsticks(metrics: list[Metric], ceilings: Iterable[Ceiling], reference: Optional[str] = None) -> list[Yardstick]:
    """Each metric that has a human ceiling beside it and beside the same metric's human value: both looked up in
    its own group, then on its group's human side, then (with a `reference` group, as in `sim compare`) on the
    reference's human side and in the reference itself. Metrics of a human side are the yardstick, not read
    against it."""
    by_name = {(metric.group, metric.name): metric for metric in metrics}
    found = []
    for ceiling in ceilings:
        pattern = re.compile("^" + re.escape(ceiling.metric).replace(r"\*", "(.+)") + "$")
        for metric in metrics:
            match = pattern.match(metric.name)
            base, _, side = metric.group.rpartition(" / ")
            if not match or side == REFERENCE_SIDE or reference in (metric.group, base):
                continue  # people, and the reference group, are what the others are read against
            humans = [side_label(base, REFERENCE_SIDE)] if base else []
            if reference is not None:
                humans += [side_label(reference, REFERENCE_SIDE), reference]
            name = ceiling.ceiling.replace("*", match.group(1)) if match.groups() else ceiling.ceiling
            value = next((by_name[(group, name)] for group in [metric.group, *humans] if (group, name) in by_name), None)
            if value is not None:
                human = next((by_name[(group, metric.name)] for group in humans if (group, metric.name) in by_name), None)
                found.append(Yardstick(metric.name, metric.group, ceiling.kind, metric, value, human))
    return found


def side_order(side: Optional[str]) -> tuple[int, str]:
    """Human first, then the others by name."""
    return (0 if side == REFERENCE_SIDE else 1, side or "")


def count_episodes(store: Store, scopes: list[Scope]) -> int:
    """How many stored episodes the scopes hold, for the progress bar."""
    return sum(store.count_episodes(run_id, dataset) for run_id, dataset in scopes)


def analyze(
    store: Store,
    selected: list[Analyzer],
    run_id: Optional[str] = None,
    dataset: Optional[str] = None,
    *,
    scopes: Optional[list[Scope]] = None,
    group_of: Optional[GroupOf] = None,
    reference: Optional[str] = None,
    baseline: Optional[str] = None,
    pair_of: Optional[PairOf] = None,
    progress: bool = True,
) -> list[AnalyzerSummary]:
    """Annotate every episode (of `run_id` and `dataset`, if given; or of each of `scopes` in turn) with each
    analyzer and summarize the results per group: the analyzer's own groups, or `group_of`'s, with every group
    compared against the `baseline` group (default: the `reference` group) where one is named, and pair by pair
    where episodes are paired (`pair_of`). A progress bar (on a terminal) counts episodes."""
    scopes = scopes if scopes is not None else [(run_id, dataset)]
    runs = [AnalyzerRun(analyzer, store, group_of, reference, baseline, pair_of) for analyzer in selected]
    with ExitStack() as cleanup:
        for analyzer in selected:
            analyzer.open(store)
            cleanup.callback(analyzer.close)
        bar = cleanup.enter_context(
            tqdm(total=count_episodes(store, scopes), desc="analyzing", unit="ep", disable=None if progress else True, leave=False)
        )
        episodes = chain.from_iterable(store.episodes(run_id=r, dataset=d, text_only=True) for r, d in scopes)
        while batch := list(islice(episodes, ANNOTATE_BATCH)):
            for run in runs:
                run.add(batch)
            bar.update(len(batch))
    return [run.summary() for run in runs]


def build_analyzers(settings: Optional[DictConfig], names: Iterable[str], runner: Optional[DictConfig] = None) -> list[Analyzer]:
    """The named analyzers, each built from its settings under `analyzer.NAME` (conf/analyzer/NAME.yaml), or with
    its defaults where it has none, sending any requests (judges') with the `runner` settings' retries, cache and concurrency;
    an unknown name fails with the list of known ones."""
    built = []
    for name in dict.fromkeys(names):  # each once: two runs of one analyzer would write its annotations twice
        analyzers.get(name)  # an unknown name fails with the list of known ones, even where settings name it
        node = settings.get(name) if settings is not None else None
        analyzer = analyzers.create(name) if node is None else build(node, f"analyzer {name}")
        if node is not None:
            analyzer.settings_hash = settings_digest(node)
        if runner is not None:
            analyzer.use_requests(runner)
        built.append(analyzer)
    return built


def settings_digest(node: DictConfig) -> str:
    """A short digest of an analyzer's resolved settings (its judge's included): equal settings, equal digest."""
    resolved = OmegaConf.to_container(node, resolve=True)
    if isinstance(resolved, dict) and resolved.get("mode", "judge") != "judge":
        resolved.pop("judge", None)  # a judge that is not asked changes nothing the analyzer measures
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:12]
