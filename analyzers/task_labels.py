"""Task labels: do model annotators keep the human majority, and do they ever voice a human minority view?

Majority and minority follow the published definitions (Das et al. 2024): labels of -1 are dropped; the
majority is the most frequent label or labels, none when all labels are distinct; the minority is the least
frequent label or labels, none when all counts are equal; a match is a non-empty intersection of the human
and the model set, and a set that is none matches nothing.

Human ceilings (leave one annotator out), on items with at least three human labels: each human label h_i in
turn is held out, and the one-label set {h_i} is matched against the majority (minority) set of the remaining
human labels; the item's `human_majority_match` (`human_minority_match`) is the mean over its humans. They are the
human yardstick of `majority_match` and `minority_match`. Human labels are stored without annotator identity
(the artifacts-llmgendata files keep a list per item), so they are treated as exchangeable annotators: each
label is one annotator, whoever gave it.

Why a like-for-like model value as well: `majority_match` sets the model's majority of several sampled labels
against the majority of all n humans, while the held-out human is one label against n - 1 humans. Both
differences favour the model (an aggregate of several draws is less noisy than one label, and on three-label
items two remaining humans have a majority only when they agree, so a 2-1 item scores 0 for every human), so the
gap between `majority_match` and `human_majority_match` is not the model's alone. `model_label_majority_match`
(`model_label_minority_match`) puts one model label in the held-out human's seat: the mean, over the model's labels
and the same n leave-one-out references, of whether the one-label set matches; compare it with the human value.
The minority values need at least four human labels: the two labels left of a three-label item never have a
minority set (equal counts), so there the ceiling would be 0 by construction, not a finding.

Invalid labels: a model label outside the item's label scheme (a 7 on a binary hate-speech scheme) is no category.
It is counted in `invalid_label_rate` (per item: the share of its present model labels that are invalid; summarized
over items, with Wilson's interval where every item has one model label) and left out of everything else: the
majority and minority sets, the distributions and distances, entropy, spread and the leave-one-out values. An item
whose model labels are all invalid has `invalid_label_rate` only. The scheme is the one the item declares
(`label_scheme` in its meta: generated items carry the scenario's `scenario.labels` from `scenario.first_label` on);
an imported dataset declares none, so its scheme is the set of labels its human annotators used anywhere in the
dataset (read from the store when the analysis opens; a value no human ever gave counts as outside the scheme).
Where neither is known (a dataset without human labels) every present label counts as valid and no
`invalid_label_rate` is given. An item that carries its label scale (`label_scale`, [lowest, highest], which the
importer sets for the artifacts-llmgendata tasks) takes the whole numbers of that range as its scheme.

Label scales: `wasserstein`, `human_std` and `model_std` are measured in label units, so a distance of 1 on a 0-1
scale is not one on a 0-4 scale. A dataset whose items come on several scales (`mismatch_gpt3.csv` mixes the 0-1,
0-2 and 0-4 tasks) gets these three per scale, never pooled: named `wasserstein[0-2]` and so on after the item's
scale (`[unknown scale]` for an item that declares none); a dataset of one scale keeps the plain names. The scale
of an item is its `label_scale`, else the range of its declared `label_scheme`; other metrics (matches, entropy,
Jensen-Shannon) compare label categories, not distances, and stay pooled."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import numpy as np
from analyzers.base import Analyzer, Ceiling, MetricInfo, ReportFigures, analyzers
from sim.records import Annotation, Episode
from sim.stats import entropy_bits

if TYPE_CHECKING:
    from sim.compare import ReportView
    from sim.store import Store

MISSING_LABEL = -1.0
# Fewest human labels for a leave-one-out majority (minority) ceiling; see the module docstring.
CEILING_MIN_HUMANS = 3
MINORITY_CEILING_MIN_HUMANS = 4


def clean_labels(values: Optional[Iterable[Any]]) -> list[float]:
    """Present labels as floats: None and -1 (no annotation) dropped."""
    return [float(v) for v in values or [] if v is not None and float(v) != MISSING_LABEL]


LabelScheme = frozenset[float]


def dataset_schemes(store: "Store") -> dict[str, LabelScheme]:
    """Each stored dataset's label scheme where its items declare none: the labels its human annotators used."""
    schemes: dict[str, set[float]] = defaultdict(set)
    for _, dataset, meta in store.episode_meta("task_label"):
        labels = meta.get("human_labels")
        if dataset is not None and meta.get("label_scheme") is None:
            schemes[dataset].update(clean_labels(labels if isinstance(labels, list) else [labels]))
    return {dataset: frozenset(labels) for dataset, labels in schemes.items() if labels}


def scheme_of(meta: dict[str, Any], dataset: Optional[str], schemes: dict[str, LabelScheme]) -> Optional[LabelScheme]:
    """The label values valid for one item: those it declares (`label_scheme`, value -> meaning), else the whole
    numbers of its `label_scale`, else its dataset's from `dataset_schemes`; None when none is known."""
    declared = meta.get("label_scheme")
    if declared:
        return frozenset(float(value) for value in declared)
    if meta.get("label_scale"):
        low, high = meta["label_scale"]
        return frozenset(float(value) for value in range(int(low), int(high) + 1))
    return schemes.get(dataset) if dataset is not None else None


# Values measured in label units, given per scale in a dataset of several scales (see the module docstring).
SCALE_DEPENDENT = ("wasserstein", "human_std", "model_std")


def scale_name(meta: dict[str, Any]) -> str:
    """An item's label scale as `lowest-highest`: its `label_scale`, else its declared scheme's range."""
    scale = meta.get("label_scale") or sorted(float(value) for value in meta.get("label_scheme") or ())
    return f"{scale[0]:g}-{scale[-1]:g}" if scale else "unknown scale"


def mixed_scale_datasets(store: "Store") -> set[str]:
    """The stored datasets whose task-label items come on more than one label scale (or some on none)."""
    scales: dict[str, set[str]] = defaultdict(set)
    for _, dataset, meta in store.episode_meta("task_label"):
        if dataset is not None:
            scales[dataset].add(json.dumps(meta.get("label_scale")))
    return {dataset for dataset, found in scales.items() if len(found) > 1}


def valid_labels(labels: list[float], scheme: Optional[LabelScheme]) -> list[float]:
    """The labels inside `scheme`; all of them where the scheme is unknown (None)."""
    return labels if scheme is None else [label for label in labels if label in scheme]


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


LabelSet = Callable[[list[float]], Optional[frozenset[float]]]


def leave_one_out(labels: list[float]) -> list[tuple[float, list[float]]]:
    """Each label with the labels of the other annotators."""
    return [(label, labels[:i] + labels[i + 1 :]) for i, label in enumerate(labels)]


def human_ceiling(human: list[float], reference: LabelSet) -> float:
    """Mean over held-out humans of whether their label lies in `reference` (majority_set or minority_set) of the rest."""
    return float(np.mean([sets_match(frozenset({label}), reference(rest)) for label, rest in leave_one_out(human)]))


def model_label_match(model: list[float], human: list[float], reference: LabelSet) -> float:
    """One model label in a held-out human's seat: mean over model labels and leave-one-out references of a match."""
    references = [reference(rest) for _, rest in leave_one_out(human)]
    return float(np.mean([sets_match(frozenset({label}), ref) for ref in references for label in model]))


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
    distributions, each side's entropy and spread, whether the model voices the human minority, and the human
    ceilings of the majority and minority matches (leave one annotator out) with their like-for-like model values."""

    version = "4"
    metrics = {
        "majority_match": MetricInfo("1 where the human and model majority label sets intersect", "episode", "binary", "lower"),
        "minority_match": MetricInfo("1 where the human and model minority label sets intersect", "episode", "binary", "lower"),
        "voices_human_minority": MetricInfo("where the humans have a minority: 1 where a model label falls in it", "episode", "binary", "lower"),
        "js_distance": MetricInfo("Jensen-Shannon distance between the human and model label distributions", "episode", "score", "higher"),
        "wasserstein": MetricInfo("Wasserstein distance between the human and model label distributions", "episode", "score", "higher"),
        "human_entropy": MetricInfo("entropy of the human labels", "episode", "score"),
        "model_entropy": MetricInfo("entropy of the model labels", "episode", "score", "lower"),
        "human_std": MetricInfo("sample standard deviation of the human labels", "episode", "score"),
        "model_std": MetricInfo("sample standard deviation of the model labels", "episode", "score", "lower"),
        "wasserstein[SCALE]": MetricInfo("wasserstein of the items on one label scale, in a dataset that mixes scales", "episode", "score", "higher"),
        "human_std[SCALE]": MetricInfo("human_std of the items on one label scale, in a dataset that mixes scales", "episode", "score"),
        "model_std[SCALE]": MetricInfo("model_std of the items on one label scale, in a dataset that mixes scales", "episode", "score", "lower"),
        "human_unanimous": MetricInfo("1 where every human gave the same label", "episode", "binary"),
        "model_unanimous": MetricInfo("1 where every model label is the same", "episode", "binary", "higher"),
        "invalid_label_rate": MetricInfo("share of model labels outside the item's label scheme (left out of every other value)", "episode", "proportion", "higher"),
        "human_majority_match": MetricInfo("ceiling: each human against the others' majority, leave one annotator out", "episode", "proportion"),
        "human_minority_match": MetricInfo("ceiling: each human against the others' minority, leave one annotator out", "episode", "proportion"),
        "model_label_majority_match": MetricInfo("one model label in the held-out human's place, against the others' majority", "episode", "proportion", "lower"),
        "model_label_minority_match": MetricInfo("one model label in the held-out human's place, against the others' minority", "episode", "proportion", "lower"),
    }
    ceilings = (
        Ceiling("model_label_majority_match", "human_majority_match"),
        Ceiling("model_label_minority_match", "human_minority_match"),
    )

    def __init__(self) -> None:
        self.schemes: dict[str, LabelScheme] = {}
        self.mixed_scales: set[str] = set()

    def open(self, store: "Store") -> None:
        """Read the label scheme of each imported dataset (the labels its humans used), and which datasets mix label
        scales, before the first item."""
        self.schemes = dataset_schemes(store)
        self.mixed_scales = mixed_scale_datasets(store)

    def applies_to(self, episode: Episode) -> bool:
        """Labeled items with at least one model label, valid or not."""
        return episode.kind == "task_label" and bool(clean_labels(episode.meta.get("model_labels")))

    def group_of(self, episode: Episode) -> str:
        """The dataset (or run) and the model that labeled it."""
        base = super().group_of(episode)
        model = episode.meta.get("model")
        return f"{base} / {model}" if model else base

    def annotate(self, episode: Episode) -> list[Annotation]:
        """The share of invalid model labels where the scheme is known; model-side values of the valid labels;
        comparisons with humans where the item has human labels."""
        present = clean_labels(episode.meta.get("model_labels"))
        scheme = scheme_of(episode.meta, episode.dataset, self.schemes)
        model = valid_labels(present, scheme)
        values: dict[str, float] = {}
        if scheme is not None:
            values["invalid_label_rate"] = (len(present) - len(model)) / len(present)
        if model:
            values.update(label_values(model, clean_labels(episode.meta.get("human_labels"))))
        if episode.dataset in self.mixed_scales:
            scale = scale_name(episode.meta)
            values = {f"{name}[{scale}]" if name in SCALE_DEPENDENT else name: value for name, value in values.items()}
        return [Annotation(episode.id, name, value) for name, value in values.items()]

    @classmethod
    def report_figures(cls, view: "ReportView") -> ReportFigures:
        """Human against model label distributions per group."""
        # Imported here: the figures import sim.analysis, which imports every analyzer.
        from sim.figures import label_distributions

        return ReportFigures(charts=[label_distributions(
            "task_label_distributions", "Human and model label distributions",
            "For each group, the share of its human and of its model labels that take each value (an item labeled by"
            " several models counts its human labels once; model labels outside the item's label scheme are left out and"
            " counted by invalid_label_rate).", task_label_values(view),
        )])


def label_values(model: list[float], human: list[float]) -> dict[str, float]:
    """One item's values from its (valid) model labels, and against its human labels where it has any."""
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
        values.update(ceilings(human, model))
    return values


def ceilings(human: list[float], model: list[float]) -> dict[str, float]:
    """Leave-one-annotator-out human values and their one-model-label counterparts, where the item has enough humans."""
    values: dict[str, float] = {}
    kinds = (("majority", majority_set, CEILING_MIN_HUMANS), ("minority", minority_set, MINORITY_CEILING_MIN_HUMANS))
    for kind, reference, fewest in kinds:
        if len(human) >= fewest:
            values[f"human_{kind}_match"] = human_ceiling(human, reference)
            values[f"model_label_{kind}_match"] = model_label_match(model, human, reference)
    return values


def task_label_values(view: "ReportView") -> dict[str, dict[str, list[float]]]:
    """Per group, every human label (once per item) and every valid model label of the selected items."""
    schemes = dataset_schemes(view.store)
    labels: dict[tuple[str, Optional[str]], dict[str, list[float]]] = {}
    items_seen: set[tuple[str, Any]] = set()
    for group, dataset, meta in view.episode_meta("task_label", ["item_id", "human_labels", "model_labels", "label_scheme"]):
        sides = labels.setdefault((group, None), {"human": [], "model": []})
        item_id = meta.get("item_id")
        if item_id is None or (group, item_id) not in items_seen:
            sides["human"] += clean_labels(meta.get("human_labels") or [])
            items_seen.add((group, item_id))
        sides["model"] += valid_labels(clean_labels(meta.get("model_labels") or []), scheme_of(meta, dataset, schemes))
    return view.ordered(labels)
