"""Task labels: do model annotators keep the human majority, and do they ever voice a human minority view?

Majority and minority follow the published definitions (Das et al. 2024): labels of -1 are dropped; the
majority is the most frequent label or labels, none when all labels are distinct; the minority is the least
frequent label or labels, none when all counts are equal; a match is a non-empty intersection of the human
and the model set, and a set that is none matches nothing."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np
from analyzers.base import Analyzer, analyzers
from sim.records import Annotation, Episode
from sim.stats import entropy_bits

MISSING_LABEL = -1.0


def clean_labels(values: Optional[Iterable[Any]]) -> list[float]:
    """Present labels as floats: None and -1 (no annotation) dropped."""
    return [float(v) for v in values or [] if v is not None and float(v) != MISSING_LABEL]


def majority_set(labels: list[float]) -> Optional[frozenset[float]]:
    """The most frequent label or labels; None when all labels are distinct (or there are none)."""
    counts = Counter(labels)
    if not counts or max(counts.values()) == 1:
        return None
    top = max(counts.values())
    return frozenset(label for label, count in counts.items() if count == top)


def minority_set(labels: list[float]) -> Optional[frozenset[float]]:
    """The least frequent label or labels; None when all counts are equal (a single label included)."""
    counts = Counter(labels)
    if len(set(counts.values())) < 2:
        return None
    low = min(counts.values())
    return frozenset(label for label, count in counts.items() if count == low)


def sets_match(first: Optional[frozenset[float]], second: Optional[frozenset[float]]) -> bool:
    """Whether two label sets share a label; a None set matches nothing."""
    return first is not None and second is not None and bool(first & second)


# Items hold a handful of labels each, and a corpus tens of thousands of items: SciPy's per-call checks cost
# more than the arithmetic here, so entropy, Jensen-Shannon and Wasserstein distances are computed with NumPy on
# the label support (tests check them against scipy.stats and scipy.spatial).


def distribution(labels: list[float], support: list[float]) -> np.ndarray:
    """Relative frequency of each label of `support`."""
    counts = Counter(labels)
    return np.array([counts[label] for label in support], dtype=float) / len(labels)


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance in bits (the square root of the divergence), between 0 and 1."""
    middle = (p + q) / 2
    divergence = entropy_bits(middle) - (entropy_bits(p) + entropy_bits(q)) / 2
    return float(np.sqrt(max(divergence, 0.0)))  # rounding can leave a tiny negative divergence


def wasserstein(p: np.ndarray, q: np.ndarray, support: list[float]) -> float:
    """Earth mover's distance between two distributions over the sorted numeric `support`."""
    return float(np.sum(np.abs(np.cumsum(p - q))[:-1] * np.diff(support)))


def spread(labels: list[float]) -> tuple[float, float]:
    """(Shannon entropy in bits, sample standard deviation) of one item's labels; the deviation is the published
    `human_variation` / `model_variation` of the paper's mismatch files, and 0 for a single label."""
    counts = np.array(list(Counter(labels).values()), dtype=float)
    n = len(labels)
    mean = sum(labels) / n
    deviation = math.sqrt(sum((label - mean) ** 2 for label in labels) / (n - 1)) if n > 1 else 0.0
    return entropy_bits(counts), deviation


@dataclass
class TaskLabelsConfig:
    """Schema of `analyzer.task_labels`; the definitions have no settings."""

    _target_: str = "analyzers.task_labels.TaskLabelsAnalyzer"


@analyzers.register("task_labels", config=TaskLabelsConfig)
class TaskLabelsAnalyzer(Analyzer):
    """Per item: human and model label sets (majority and minority matches), distances between the two label
    distributions, each side's entropy and spread, and whether the model voices the human minority."""

    version = "1"

    def applies_to(self, episode: Episode) -> bool:
        """Labeled items with at least one model label."""
        return episode.kind == "task_label" and bool(clean_labels(episode.meta.get("model_labels")))

    def group_of(self, episode: Episode) -> str:
        """The dataset (or run) and the model that labeled it."""
        base = super().group_of(episode)
        model = episode.meta.get("model")
        return f"{base} / {model}" if model else base

    def annotate(self, episode: Episode) -> list[Annotation]:
        """Model-side values always; comparisons with humans where the item has human labels."""
        model = clean_labels(episode.meta.get("model_labels"))
        human = clean_labels(episode.meta.get("human_labels"))
        values: dict[str, float] = {}
        values["model_entropy"], values["model_std"] = spread(model)
        values["model_unanimous"] = float(len(set(model)) == 1)
        if human:
            support = sorted(set(human) | set(model))
            values["human_entropy"], values["human_std"] = spread(human)
            values["human_unanimous"] = float(len(set(human)) == 1)
            values["majority_match"] = float(sets_match(majority_set(human), majority_set(model)))
            values["minority_match"] = float(sets_match(minority_set(human), minority_set(model)))
            human_p, model_p = distribution(human, support), distribution(model, support)
            values["js_distance"] = js_distance(human_p, model_p)
            values["wasserstein"] = wasserstein(human_p, model_p, support)
            human_minority = minority_set(human)
            if human_minority is not None:
                values["voices_human_minority"] = float(bool(human_minority & set(model)))
        return [Annotation(episode.id, name, value) for name, value in values.items()]
