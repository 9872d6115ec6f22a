"""Known-answer tests of detectors: perturb a stored corpus in a scratch store (sim/perturbation.py), run each
analyzer that claims to find that kind of perturbation, and measure how well its per-turn score and flag find the
replaced turns: AUC, precision, recall, F1 and the false-flag rate on untouched conversations, each with a 95%
interval from resampling conversations. The user's database only gains the summary rows (`validations`)."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from analyzers.base import Analyzer, Detector
from sim.analysis import analyze
from sim.perturbation import KINDS, OFF_TASK, Perturbed, applicable, perturb
from sim.records import Episode, utc_now
from sim.stats import Estimate, cluster_auc, clustered_rate, ratio_estimate
from sim.store import Store

# Fewer conversations than this leave the intervals too wide to say anything, and cross-fitted models unfit.
MIN_CONVERSATIONS = 20
# Distractor turns shorter than this are greetings and acknowledgements, on topic anywhere.
MIN_DISTRACTOR_WORDS = 4


@dataclass
class KindResult:
    """How one analyzer's detector did on one kind of perturbation: counts, AUC of its score, and its flag's
    precision, recall, F1 and false-flag rate (None where it has no flag), each over turns with the interval
    from resampling conversations. `coverage` is the share of replaced turns the detector scored at all."""

    kind: str
    score: str
    flag: Optional[str]
    n_conversations: int
    n_perturbed_conversations: int
    n_untouched_conversations: int
    n_turns: int
    n_replaced: int
    coverage: float
    auc: Estimate
    precision: Optional[Estimate] = None
    recall: Optional[Estimate] = None
    f1: Optional[Estimate] = None
    false_flag_rate: Optional[Estimate] = None
    # Points of the ROC curve (false and true positive rates), for the figure; not stored.
    roc: tuple[list[float], list[float]] = field(default=([], []), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, without the ROC points."""
        document = asdict(self)
        document.pop("roc")
        return document


@dataclass
class ValidityCard:
    """One analyzer's known-answer results on one corpus, for the settings it was built with."""

    analyzer: str
    version: str
    settings_hash: str
    dataset: str
    rate: float
    seed: int
    results: list[KindResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "analyzer": self.analyzer, "version": self.version, "settings_hash": self.settings_hash, "dataset": self.dataset,
            "rate": self.rate, "seed": self.seed, "results": [r.as_dict() for r in self.results], "notes": self.notes,
        }


def detector_for(analyzer: Analyzer, kind: str) -> Optional[Detector]:
    """The analyzer's detector for `kind`, if it has one."""
    return next((d for d in analyzer.detectors if d.kind == kind), None)


def distractor_texts(store: Store, dataset: str) -> list[str]:
    """The turns of an imported corpus long enough to be off-task talk rather than an acknowledgement."""
    texts = [
        turn.content for episode in store.episodes(dataset=dataset, text_only=True) for turn in episode.turns
        if len(turn.content.split()) >= MIN_DISTRACTOR_WORDS
    ]
    return list(dict.fromkeys(texts))


def scratch_copy(perturbed: Perturbed, path: Path, name: str) -> Store:
    """A new store at `path` holding the perturbed episodes as dataset `name` (runs' episodes included)."""
    store = Store.open(path)
    with store.db.atomic():
        for episode in perturbed.episodes:
            episode.run_id, episode.dataset, episode.source = None, name, "imported"
            store.add_imported_episode(episode)
    return store


def turn_values(store: Store, analyzer: str, names: Sequence[str]) -> dict[str, dict[int, dict[str, float]]]:
    """Per episode and turn, the values of the named turn annotations the analyzer stored."""
    found: dict[str, dict[int, dict[str, float]]] = defaultdict(lambda: defaultdict(dict))
    for episode_id, _, _, _, turn_idx, name, value in store.annotation_values(analyzer, names=names, level="turn"):
        found[episode_id][turn_idx][name] = value
    return found


def annotated_episodes(store: Store, analyzer: str) -> set[str]:
    """The episodes the analyzer applied to (it stored something for them)."""
    return {row[0] for row in store.annotated_episodes(analyzer)}


def measure(perturbed: Perturbed, detector: Detector, analyzer: Analyzer, store: Store) -> KindResult:
    """Score the analyzer's stored values against the known replacements."""
    values = turn_values(store, analyzer.name, [name for name in (detector.score, detector.flag) if name])
    # Every perturbed conversation counts (a dense score that is missing leaves its turns unscored); flags stored
    # only where they fire count on the conversations the analyzer applied to.
    annotated = annotated_episodes(store, analyzer.name) if analyzer.sparse_turn_flags else None
    scored_episodes = [episode for episode in perturbed.episodes if annotated is None or episode.id in annotated]
    scores, labels, clusters = [], [], []
    # Per conversation: true positives, false positives, false negatives, flagged and scored turns, untouched.
    counts = np.zeros((len(scored_episodes), 6))
    n_replaced = n_replaced_scored = 0
    for cluster, episode in enumerate(scored_episodes):
        replaced, stored = perturbed.replaced.get(episode.id, set()), values.get(episode.id, {})
        n_replaced += len(replaced)
        for turn in episode.turns:
            turn_scores = stored.get(turn.idx, {})
            if detector.score not in turn_scores and not analyzer.sparse_turn_flags:
                continue  # a dense score the detector did not give this turn
            truth, flag = turn.idx in replaced, bool(detector.flag and turn_scores.get(detector.flag, 0.0))
            scores.append(turn_scores.get(detector.score, 0.0))
            labels.append(truth)
            clusters.append(cluster)
            counts[cluster, :5] += (flag and truth, flag and not truth, truth and not flag, flag, 1)
            n_replaced_scored += truth
        counts[cluster, 5] = episode.id not in perturbed.chosen
    tp, fp, fn, flagged, scored, untouched = counts.T
    result = KindResult(
        kind=perturbed.kind, score=detector.score, flag=detector.flag, n_conversations=len(scored_episodes),
        n_perturbed_conversations=int((untouched == 0).sum()), n_untouched_conversations=int(untouched.sum()),
        n_turns=len(scores), n_replaced=n_replaced, coverage=n_replaced_scored / n_replaced if n_replaced else float("nan"),
        auc=cluster_auc(scores, labels, clusters) if scores else Estimate(0, float("nan"), None, None),
        roc=roc_points(scores, labels),
    )
    if detector.flag:
        keep = untouched == 1
        # Precision, recall and the false-flag rate are rates of turns pooled over conversations: clustered_rate
        # keeps a bound where none or all turns hit (0 false flags is not a rate of 0). F1 is not a rate of turns.
        result.precision = clustered_rate(tp, tp + fp)
        result.recall = clustered_rate(tp, tp + fn)
        result.f1 = ratio_estimate(2 * tp, 2 * tp + fp + fn)
        result.false_flag_rate = clustered_rate(flagged[keep], scored[keep])
    return result


def roc_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[list[float], list[float]]:
    """The ROC curve's points, for the figure; empty when one class is missing."""
    if len(set(labels)) < 2:
        return [], []
    from sklearn.metrics import roc_curve  # scikit-learn loads only where a curve is drawn

    fpr, tpr, _ = roc_curve(np.asarray(labels), np.asarray(scores))
    return fpr.tolist(), tpr.tolist()


def validate(
    corpus: list[Episode],
    name: str,
    selected: list[Analyzer],
    kinds: Sequence[str],
    rate: float = 0.2,
    seed: int = 0,
    distractors: Sequence[str] = OFF_TASK,
    progress: bool = False,
) -> list[ValidityCard]:
    """Perturb `corpus` (called `name`) once per kind, run each selected analyzer that detects that kind on the
    perturbed copy in a scratch store, and measure what it found: one card per analyzer."""
    cards = {a.name: ValidityCard(a.name, a.version, a.settings_hash, name, rate, seed) for a in selected}
    with tempfile.TemporaryDirectory(prefix="sim-validate-") as scratch:
        for kind in kinds:
            detecting = [a for a in selected if detector_for(a, kind)]
            perturbed = perturb(corpus, kind, rate, seed, distractors)
            if not perturbed.replaced:
                for analyzer in detecting:
                    cards[analyzer.name].notes.append(f"{kind}: no turn of {name} could be perturbed this way")
                continue
            copy = scratch_copy(perturbed, Path(scratch) / f"{kind}.db", name)
            try:
                summaries = analyze(copy, detecting, dataset=name, progress=progress)
                for analyzer, summary in zip(detecting, summaries):
                    cards[analyzer.name].results.append(measure(perturbed, detector_for(analyzer, kind), analyzer, copy))
                    cards[analyzer.name].notes += [f"{kind}: {note}" for note in summary.notes]
            finally:
                copy.close()
    return [card for card in cards.values() if card.results or card.notes]


def sampled(corpus: list[Episode], size: Optional[int], seed: int) -> list[Episode]:
    """`size` conversations of `corpus` drawn without replacement for `seed`, in corpus order (all when None or more)."""
    if size is None or size >= len(corpus):
        return corpus
    keep = set(np.random.default_rng(seed).choice(len(corpus), size=size, replace=False).tolist())
    return [episode for i, episode in enumerate(corpus) if i in keep]


def kinds_to_run(corpus: list[Episode], selected: list[Analyzer], wanted: Optional[Sequence[str]]) -> list[str]:
    """The kinds to test: those asked for, else every kind a selected analyzer detects that fits the corpus."""
    detected = [kind for kind in KINDS if any(detector_for(a, kind) for a in selected)]
    if wanted:
        return list(wanted)
    return [kind for kind in detected if any(applicable(kind, episode) for episode in corpus)]


def record(store: Store, cards: list[ValidityCard]) -> None:
    """Store each card's results, a row per analyzer and kind, in one transaction."""
    now = utc_now()
    rows = [
        {
            "analyzer": card.analyzer, "analyzer_version": card.version, "settings_hash": card.settings_hash,
            "dataset": card.dataset, "kind": result.kind, "rate": card.rate, "seed": card.seed,
            "metrics_json": json.dumps(result.as_dict()), "created_at": now,
        }
        for card in cards for result in card.results
    ]
    store.add_validations(rows)


def latest_validations(store: Store, analyzer: Analyzer) -> list[dict[str, Any]]:
    """The newest stored validation of each kind for this analyzer's version and settings."""
    newest: dict[str, dict[str, Any]] = {}
    for row in store.validations(analyzer.name, analyzer.version, analyzer.settings_hash):
        newest.setdefault(row["kind"], {"kind": row["kind"], "dataset": row["dataset"], "created_at": row["created_at"],
                                        **json.loads(row["metrics_json"])})
    return list(newest.values())
