"""Free text: style features of each text (length, sentence-length variance, lexical diversity, readability,
sentiment, emotion words), effect sizes between human and LLM texts, and how well a classifier tells them apart.

Human ceiling of the classifier: `classifier_auc[FEATURES]_human_split` is the out-of-fold AUC of the same
classifier, on the same features, telling two random halves of the human texts apart (SPLIT_DRAWS splits; the mean
with the 2.5-97.5 percentile range). The halves come from one population, so it is what the AUC reads when there is
nothing to find (about 0.5; cross-validated AUCs under no difference scatter around it), and the LLM-vs-human AUC
means little unless it clears this range. The classifier AUC is a statistic of two sets, not of one, so it is taken
between the halves rather than as `sim.stats.split_half_difference`'s gap between a statistic of each half. The
halves are equal (n // 2 texts each, of the same capped sample the LLM-vs-human classifier sees), so each class
has half the texts it has there; under no difference the AUC centres on 0.5 whatever the size, but fewer texts
scatter more, so the range is on the generous side. The per-text features have no ceiling of their own: their human-vs-LLM comparisons already carry intervals and tests."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pyphen
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, Ceiling, ReportFigures, Scored, MetricInfo, analyzers
from analyzers.text import sentences, words
from sim.errors import SimError, require_at_least
from sim.records import Annotation, Episode
from sim.stats import Estimate, estimate_statistic, percentile_interval

if TYPE_CHECKING:
    from sim.compare import ReportView

MTLD_THRESHOLD = 0.72  # the factor size of McCarthy and Jarvis (2010)
NRC_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "negative", "positive", "sadness", "surprise", "trust")
FOLDS = 5
HUMAN = "human"
# Random splits of the human texts for the classifier's human ceiling: each split fits FOLDS classifiers (about
# 2 s on 2,000 embedded texts), so few; the percentile range of ten values is close to their full range.
SPLIT_DRAWS = 10


@lru_cache(maxsize=1)
def nrc_lexicon() -> dict[str, tuple[str, ...]]:
    """The NRC emotion lexicon (word -> emotions) as shipped in the `nrclex` wheel; read as data without importing
    the package, whose own code tokenizes with TextBlob, which needs NLTK corpora downloaded at run time."""
    spec = find_spec("nrclex")
    if spec is None or not spec.submodule_search_locations:
        raise SimError("the NRC emotion lexicon comes with the nrclex package: pip install nrclex")
    text = (Path(spec.submodule_search_locations[0]) / "data" / "nrc_en.json").read_text(encoding="utf-8")
    return {word: tuple(emotions) for word, emotions in json.loads(text).items()}


@lru_cache(maxsize=1)
def vader() -> SentimentIntensityAnalyzer:
    """VADER with its bundled lexicon."""
    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def hyphenator() -> pyphen.Pyphen:
    """US English hyphenation patterns, bundled with pyphen."""
    return pyphen.Pyphen(lang="en_US")


@lru_cache(maxsize=200_000)
def syllables(word: str) -> int:
    """Syllables of one word, counted as hyphenation points plus one."""
    return len(hyphenator().positions(word)) + 1


def mtld_pass(tokens: list[str]) -> Optional[float]:
    """One directional MTLD pass: tokens per factor, a factor ending where the running TTR falls to the threshold."""
    factors, types, count = 0.0, set(), 0
    for token in tokens:
        types.add(token)
        count += 1
        if len(types) / count <= MTLD_THRESHOLD:
            factors, types, count = factors + 1, set(), 0
    if count:
        factors += (1 - len(types) / count) / (1 - MTLD_THRESHOLD)
    return len(tokens) / factors if factors else None


def mtld(tokens: list[str]) -> Optional[float]:
    """Measure of textual lexical diversity: the mean of a forward and a backward pass (None when no factor forms)."""
    forward, backward = mtld_pass(tokens), mtld_pass(tokens[::-1])
    return None if forward is None or backward is None else (forward + backward) / 2


def flesch_reading_ease(tokens: list[str], n_sentences: int) -> float:
    """Flesch reading ease: 206.835 - 1.015 words per sentence - 84.6 syllables per word."""
    n_syllables = sum(syllables(token) for token in tokens)
    return 206.835 - 1.015 * len(tokens) / max(n_sentences, 1) - 84.6 * n_syllables / len(tokens)


def style_features(text: str) -> dict[str, float]:
    """Every style feature of one text that has at least one word."""
    tokens = words(text)
    pieces = sentences(text) or [text]
    sentence_lengths = [len(words(sentence)) for sentence in pieces]
    features = {
        "words": float(len(tokens)),
        "mean_sentence_words": float(np.mean(sentence_lengths)),
        "sentence_words_var": float(np.var(sentence_lengths)),
        "type_token_ratio": len(set(tokens)) / len(tokens),
        "flesch_reading_ease": flesch_reading_ease(tokens, len(sentence_lengths)),
        # VADER is made for sentences; its authors average sentence scores for longer texts (and whole-text
        # scoring slows down with the square of the text's length).
        "vader_compound": float(np.mean([vader().polarity_scores(sentence)["compound"] for sentence in pieces])),
    }
    diversity = mtld(tokens)
    if diversity is not None:
        features["mtld"] = diversity
    lexicon = nrc_lexicon()
    emotions = Counter(emotion for token in tokens for emotion in lexicon.get(token, ()))
    for emotion in NRC_EMOTIONS:
        features[f"nrc_{emotion}"] = emotions[emotion] / len(tokens)
    return features


def text_of(episode: Episode) -> str:
    """The written text: the `text` turn of an imported or generated free-text episode."""
    return episode.content_of("text") or ""


@dataclass
class FreeTextConfig:
    """Schema of `analyzer.free_text`: `embeddings` (auto, true, false) adds a classifier two-sample test on
    sentence embeddings; `max_texts` caps the texts per side that the classifiers see (a seeded sample)."""

    _target_: str = "analyzers.free_text.FreeTextAnalyzer"
    embeddings: Any = "auto"
    max_texts: int = 2000
    seed: int = 0


@analyzers.register("free_text", config=FreeTextConfig)
class FreeTextAnalyzer(Analyzer):
    """Per text: style features; per group: human against LLM texts, feature by feature (Cohen's d, permutation
    p), and the cross-validated AUC of a classifier telling the two apart (0.5: indistinguishable)."""

    version = "1"
    metrics = {
        "words": MetricInfo("words of the text", "episode", "count"),
        "mean_sentence_words": MetricInfo("mean words per sentence", "episode", "score"),
        "sentence_words_var": MetricInfo("variance of words per sentence", "episode", "score", "lower"),
        "type_token_ratio": MetricInfo("distinct words / words", "episode", "proportion"),
        "mtld": MetricInfo("measure of textual lexical diversity (threshold 0.72, both directions)", "episode", "score", "lower"),
        "flesch_reading_ease": MetricInfo("Flesch reading ease (syllables from pyphen)", "episode", "score"),
        "vader_compound": MetricInfo("VADER compound sentiment, mean over sentences", "episode", "score"),
        "nrc_EMOTION": MetricInfo("share of words the NRC lexicon files under EMOTION (10 categories)", "episode", "proportion"),
        "classifier_auc[FEATURES]": MetricInfo("cross-validated AUC of a classifier telling human from LLM texts by FEATURES (0.5: indistinguishable)", "corpus", "score", "higher"),
        "classifier_auc[FEATURES]_human_split": MetricInfo("ceiling: the same classifier's AUC between two random halves of the human texts", "corpus", "score"),
    }
    uses_corpus = True
    # The classifier between two halves of the human texts: the AUC that only chance and topic leave.
    ceilings = (Ceiling("classifier_auc[*]", "classifier_auc[*]_human_split"),)

    def __init__(self, embeddings: Any, max_texts: int, seed: int) -> None:
        # Fewer texts per side than cross-validation folds would leave the classifiers out without a word.
        require_at_least("analyzer.free_text.max_texts", max_texts, FOLDS)
        require_at_least("analyzer.free_text.seed", seed, 0)  # numpy and scikit-learn refuse negative seeds
        self.use_embeddings = sentence_embeddings.wanted(embeddings, "analyzer.free_text.embeddings")
        self.max_texts, self.seed = max_texts, seed

    def applies_to(self, episode: Episode) -> bool:
        """Free-text episodes whose text has a word."""
        return episode.kind == "free_text" and bool(words(text_of(episode)))

    def side_of(self, episode: Episode) -> Optional[str]:
        """human or llm."""
        return episode.meta.get("author")

    def annotate(self, episode: Episode) -> list[Annotation]:
        """The style features of the text."""
        return [Annotation(episode.id, name, value) for name, value in style_features(text_of(episode)).items()]

    def compare_corpora(self, reference: list[Scored], other: list[Scored]) -> dict[str, Estimate]:
        """Classifier two-sample tests: AUC of telling the sides apart by style features, and by embeddings; beside
        each, where the reference side is human, the same classifier's AUC between two halves of the human texts."""
        rng = np.random.default_rng(self.seed)
        sample = [self._sample(side, rng) for side in (reference, other)]
        labels = np.array([0] * len(sample[0]) + [1] * len(sample[1]))
        if min(len(sample[0]), len(sample[1])) < FOLDS:
            return {}
        scored = sample[0] + sample[1]
        names = sorted({a.name for _, annotations in scored for a in annotations} - {"mtld"})  # mtld is absent on short texts
        style = np.array([[{a.name: a.value for a in annotations}.get(name, 0.0) for name in names] for _, annotations in scored])
        # Texts written for the same prompt (`meta.pair`) stay in one fold: a classifier that saw one of a pair
        # in training would otherwise be scored on its near-twin.
        groups = np.array([str(episode.meta.get("pair", episode.id)) for episode, _ in scored])
        humans = len(sample[0])
        split = self.side_of(reference[0][0]) == HUMAN and humans // 2 >= FOLDS  # each half needs a text per fold
        tables = {"style": style}
        if self.use_embeddings:
            tables["embeddings"] = sentence_embeddings.embed([text_of(e) for e, _ in scored])
        result = {}
        for name, features in tables.items():
            result[f"classifier_auc[{name}]"] = self._auc(features, labels, groups)
            if split:
                result[f"classifier_auc[{name}]_human_split"] = self._split_auc(features[:humans], groups[:humans])
        return result

    def _sample(self, side: list[Scored], rng: np.random.Generator) -> list[Scored]:
        if len(side) <= self.max_texts:
            return side
        return [side[i] for i in sorted(rng.choice(len(side), self.max_texts, replace=False))]

    def _auc(self, features: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> Estimate:
        """Out-of-fold AUC of a logistic regression (folds keep each group together), with a bootstrap CI over texts."""
        from sklearn.metrics import roc_auc_score

        scores = self._out_of_fold(features, labels, groups)

        def auc(idx: np.ndarray) -> float:
            return float(roc_auc_score(labels[idx], scores[idx])) if len(np.unique(labels[idx])) == 2 else float("nan")

        return estimate_statistic(len(labels), auc)

    def _split_auc(self, features: np.ndarray, groups: np.ndarray) -> Estimate:
        """Out-of-fold AUC of the same classifier telling two random halves of one side's texts apart, over SPLIT_DRAWS
        splits: the mean and the 2.5-97.5 percentile range."""
        from sklearn.metrics import roc_auc_score

        rng = np.random.default_rng(self.seed)
        half = len(features) // 2
        labels = np.repeat([0, 1], half)
        # Where no two texts share a group, plain stratified folds split as the group-aware ones would, without
        # their per-group bookkeeping (longer than the fits themselves on 2,000 texts).
        shared = len(set(groups)) < len(groups)
        values = []
        for _ in range(SPLIT_DRAWS):
            order = rng.permutation(len(features))[: 2 * half]
            scores = self._out_of_fold(features[order], labels, groups[order] if shared else None)
            values.append(roc_auc_score(labels, scores))
        return Estimate(len(features), float(np.mean(values)), *percentile_interval(np.array(values)), interval="split half")

    def _out_of_fold(self, features: np.ndarray, labels: np.ndarray, groups: Optional[np.ndarray]) -> np.ndarray:
        """Each text's probability of label 1 from a logistic regression fitted on the other folds (stratified folds
        that keep each group whole; plain stratified folds when `groups` is None)."""
        # scikit-learn loads only where texts are compared: importing it costs every `sim` command half a second.
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        splitter = StratifiedKFold if groups is None else StratifiedGroupKFold
        folds = splitter(FOLDS, shuffle=True, random_state=self.seed)
        return cross_val_predict(model, features, labels, groups=groups, cv=folds, method="predict_proba")[:, 1]

    @classmethod
    def report_figures(cls, view: "ReportView") -> ReportFigures:
        """Style-feature distributions per group and side (human, llm)."""
        # Imported here: the figures import sim.analysis, which imports every analyzer.
        from sim.figures import distributions

        values: dict[str, dict[tuple[str, Optional[str]], list[float]]] = {name: {} for name in view.episode_metric_names()}
        for group, author, _, name, value in view.annotations(episode_level=True):
            if name in values:
                values[name].setdefault((group, author), []).append(value)
        return ReportFigures(charts=[distributions(
            "free_text_styles", "Style-feature distributions",
            "Per style feature, the spread of its per-text values in each group and side (boxes: quartiles; whiskers: 1.5 IQR).",
            {name: view.ordered(by_side) for name, by_side in values.items()},
        )])
