"""Run analyzers over stored episodes, store their annotations, and summarize them per group with uncertainty."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from contextlib import ExitStack
from itertools import chain, islice
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Optional

from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from analyzers import Analyzer, analyzers
from analyzers.base import Scored
from sim.config import build
from sim.records import Annotation, Episode
from sim.stats import Difference, Estimate, compare, estimate
from sim.store import Store

# Analyzers get this many episodes per call (embedding analyzers embed them in one pass).
ANNOTATE_BATCH = 64
# Annotations are written in batches of this many episodes: one transaction each.
WRITE_BATCH = 2000
# The side every other side is compared against, when a group has it.
REFERENCE_SIDE = "human"

# Which stored episodes to read: those of a run and of a dataset (None: any).
Scope = tuple[Optional[str], Optional[str]]
GroupOf = Callable[[Episode], str]


@dataclass
class Metric:
    """One value of a group: an annotation name summarized over episodes or turns (n values, total, mean and
    bootstrap 95% CI), or a corpus statistic (level `corpus`, no total; a p-value where it is a test)."""

    name: str
    level: str
    n: int
    total: Optional[float]
    mean: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    group: str = ""
    p_value: Optional[float] = None


@dataclass(frozen=True)
class Comparison(Difference):
    """One episode-level annotation compared between two sides of a group (e.g. llm against human)."""

    name: str
    group: str
    reference: str
    other: str


@dataclass
class AnalyzerSummary:
    """What one analyzer found over a set of episodes."""

    analyzer: str
    version: str
    n_episodes: int
    metrics: list[Metric] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    # Each group against a reference group (`sim compare`): `reference` and `other` name the groups.
    against_reference: list[Comparison] = field(default_factory=list)
    # What a reader must know before reading the numbers: the analyzer's caveats per group, its validity.
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form; `against_reference` only where a reference group was given."""
        document = {
            "analyzer": self.analyzer,
            "version": self.version,
            "n_episodes": self.n_episodes,
            "metrics": [asdict(m) for m in self.metrics],
            "comparisons": [asdict(c) for c in self.comparisons],
            "notes": self.notes,
        }
        if self.against_reference:
            document["against_reference"] = [asdict(c) for c in self.against_reference]
        return document


def summarize(annotations: Iterable[Annotation], group: str = "") -> list[Metric]:
    """n, total, mean and bootstrap CI of every annotation name, episode-level and turn-level apart."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for annotation in annotations:
        level = "episode" if annotation.turn_idx is None else "turn"
        values[(annotation.name, level)].append(annotation.value)
    metrics = []
    for (name, level), vs in sorted(values.items(), key=lambda item: (item[0][1], item[0][0])):
        est = estimate(vs)
        metrics.append(Metric(name, level, est.n, float(sum(vs)), est.mean, est.ci_low, est.ci_high, group))
    return metrics


def corpus_metric(name: str, value: Estimate, group: str) -> Metric:
    """A corpus statistic as a metric row."""
    return Metric(name, "corpus", value.n, None, value.mean, value.ci_low, value.ci_high, group, value.p_value)


@dataclass
class Side:
    """The episodes of one side of one group, as far as the summary needs them."""

    annotations: list[list[Annotation]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)

    def scored(self) -> list[Scored]:
        """Each kept episode with its annotations."""
        return list(zip(self.episodes, self.annotations))

    def episode_values(self) -> dict[str, list[float]]:
        """Episode-level annotation values by name."""
        values: dict[str, list[float]] = defaultdict(list)
        for episode_annotations in self.annotations:
            for annotation in episode_annotations:
                if annotation.turn_idx is None:
                    values[annotation.name].append(annotation.value)
        return values


def side_label(group: str, side: Optional[str]) -> str:
    """How a group's side is named in metric rows: `group / side`, or the group alone."""
    return group if side is None else f"{group} / {side}"


def compare_values(reference: Side, other: Side, group: str, reference_label: str, other_label: str) -> list[Comparison]:
    """Every episode-level annotation both sides have, compared (other minus reference)."""
    reference_values, other_values = reference.episode_values(), other.episode_values()
    return [
        Comparison(**asdict(compare(reference_values[metric], other_values[metric])), name=metric, group=group,
                   reference=reference_label, other=other_label)
        for metric in sorted(set(reference_values) & set(other_values))
    ]


class AnalyzerRun:
    """One analyzer over a stream of episodes: annotates, writes in batches, and keeps what its summary needs.

    Episodes are grouped by `group_of` (default: the analyzer's own `group_of`); with a `reference` group, every
    other group's episode-level values are also compared against it, side by side."""

    def __init__(
        self, analyzer: Analyzer, store: Store, group_of: Optional[GroupOf] = None, reference: Optional[str] = None
    ) -> None:
        self.analyzer = analyzer
        self.store = store
        self.group_of = group_of or analyzer.group_of
        self.reference = reference
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
                dense = not self.analyzer.sparse_turn_flags
                values = (a for episode in side.annotations for a in episode if dense or a.turn_idx is None)
                result.metrics += summarize(values, label)
                if self.analyzer.uses_corpus:
                    for name, value in self.analyzer.corpus_metrics(side.scored()).items():
                        result.metrics.append(corpus_metric(name, value, label))
                    result.notes += [f"{label}: {note}" for note in self.analyzer.notes(side.scored())]
            self._compare_sides(group, sides, result)
        self._compare_with_reference(result)
        return result

    def _compare_with_reference(self, result: AnalyzerSummary) -> None:
        """Each side of each other group against the reference group's side of the same name (else its human
        side, else its only, side-less values)."""
        reference = self.groups.get(self.reference) if self.reference is not None else None
        if not reference:
            return
        for group, sides in self.groups.items():
            if group == self.reference:
                continue
            for side_name, side in sorted(sides.items(), key=lambda item: side_order(item[0])):
                matches = [name for name in (side_name, REFERENCE_SIDE, None) if name in reference]
                if matches:
                    result.against_reference += compare_values(
                        reference[matches[0]], side, group, side_label(self.reference, matches[0]), side_label(group, side_name)
                    )

    def _compare_sides(self, group: str, sides: dict[Optional[str], Side], result: AnalyzerSummary) -> None:
        names = sorted((name for name in sides if name is not None), key=side_order)
        if len(names) < 2:
            return
        reference, others = names[0], names[1:]
        for other in others:
            result.comparisons += compare_values(sides[reference], sides[other], group, reference, other)
            if self.analyzer.uses_corpus:
                label = f"{group}: {other} vs {reference}"
                for name, value in self.analyzer.compare_corpora(sides[reference].scored(), sides[other].scored()).items():
                    result.metrics.append(corpus_metric(name, value, label))


def side_order(side: Optional[str]) -> tuple[int, str]:
    """Human first, then the others by name."""
    return (0 if side == REFERENCE_SIDE else 1, side or "")


def count_episodes(store: Store, scopes: list[Scope]) -> int:
    """How many stored episodes the scopes hold, for the progress bar."""
    total = 0
    for run_id, dataset in scopes:
        clauses = [(column, value) for column, value in (("run_id", run_id), ("dataset", dataset)) if value is not None]
        where = " and ".join(f"{column} = ?" for column, _ in clauses) or None
        total += store.db["episodes"].count_where(where, [value for _, value in clauses])
    return total


def analyze(
    store: Store,
    selected: list[Analyzer],
    run_id: Optional[str] = None,
    dataset: Optional[str] = None,
    *,
    scopes: Optional[list[Scope]] = None,
    group_of: Optional[GroupOf] = None,
    reference: Optional[str] = None,
    progress: bool = True,
) -> list[AnalyzerSummary]:
    """Annotate every episode (of `run_id` and `dataset`, if given; or of each of `scopes` in turn) with each
    analyzer and summarize the results per group: the analyzer's own groups, or `group_of`'s, with every group
    compared against the `reference` group where one is named. A progress bar (on a terminal) counts episodes."""
    scopes = scopes if scopes is not None else [(run_id, dataset)]
    runs = [AnalyzerRun(analyzer, store, group_of, reference) for analyzer in selected]
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


def build_analyzers(settings: Optional[DictConfig], names: Iterable[str]) -> list[Analyzer]:
    """The named analyzers, each built from its settings under `analyzer.NAME` (conf/analyzer/NAME.yaml), or with
    its defaults where it has none; an unknown name fails with the list of known ones."""
    built = []
    for name in dict.fromkeys(names):  # each once: two runs of one analyzer would write its annotations twice
        cls = analyzers.get(name)
        node = settings.get(name) if settings is not None else None
        analyzer = cls() if node is None else build(node, f"analyzer {name}")
        if node is not None:
            analyzer.settings_hash = settings_digest(node)
        built.append(analyzer)
    return built


def settings_digest(node: DictConfig) -> str:
    """A short digest of an analyzer's resolved settings (its judge's included): equal settings, equal digest."""
    resolved = OmegaConf.to_container(node, resolve=True)
    if isinstance(resolved, dict) and resolved.get("mode", "judge") != "judge":
        resolved.pop("judge", None)  # a judge that is not asked changes nothing the analyzer measures
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:12]
