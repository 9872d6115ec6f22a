"""Run analyzers over stored episodes, store their annotations, and summarize them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from analyzers import analyzers
from sim.records import Annotation
from sim.stats import estimate
from sim.store import Store


@dataclass
class Metric:
    """One annotation name summarized over episodes or turns: n values, their total, mean and bootstrap 95% CI."""

    name: str
    level: str
    n: int
    total: float
    mean: float
    ci_low: Optional[float]
    ci_high: Optional[float]


@dataclass
class AnalyzerSummary:
    """What one analyzer found over a set of episodes."""

    analyzer: str
    version: str
    n_episodes: int
    metrics: list[Metric] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "analyzer": self.analyzer,
            "version": self.version,
            "n_episodes": self.n_episodes,
            "metrics": [vars(m) for m in self.metrics],
        }


def summarize(annotations: Iterable[Annotation]) -> list[Metric]:
    """n, total, mean and bootstrap CI of every annotation name, episode-level and turn-level apart."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    for annotation in annotations:
        level = "episode" if annotation.turn_idx is None else "turn"
        values[(annotation.name, level)].append(annotation.value)
    metrics = []
    for (name, level), vs in sorted(values.items(), key=lambda item: (item[0][1], item[0][0])):
        est = estimate(vs)
        metrics.append(Metric(name, level, est.n, float(sum(vs)), est.mean, est.ci_low, est.ci_high))
    return metrics


def analyze(store: Store, names: list[str], run_id: Optional[str] = None) -> list[AnalyzerSummary]:
    """Annotate every episode (of `run_id`, if given) with each named analyzer and summarize the results."""
    instances = [analyzers.get(name)() for name in names]
    collected: dict[str, list[Annotation]] = {a.name: [] for a in instances}
    counts: dict[str, int] = {a.name: 0 for a in instances}
    for episode in store.episodes(run_id=run_id):
        for analyzer in instances:
            if not analyzer.applies_to(episode):
                continue
            annotations = analyzer.annotate(episode)
            store.replace_annotations(analyzer.name, analyzer.version, episode.id, annotations)
            collected[analyzer.name].extend(annotations)
            counts[analyzer.name] += 1
    return [
        AnalyzerSummary(a.name, a.version, counts[a.name], summarize(collected[a.name])) for a in instances
    ]
