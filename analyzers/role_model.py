"""A role model learned from a corpus's own turns: which role would say this? Logistic regression on a turn's
words (TF-IDF of word uni- and bigrams) and its sentence embedding with a few cheap features (length, questions,
exclamations, digits), cross-fitted by conversation: every turn is scored by a model fitted on the other
conversations only, and never on a turn with the same text (a turn copied from elsewhere in the corpus would
otherwise be recognized, not judged)."""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
from scipy import sparse

FOLDS = 5
# Regularization of the logistic regression (inverse strength), chosen on PersuasionForGood (docs/validity.md).
C = 1.0
SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")

# fit(training rows, validation rows) -> probabilities of each role for the validation rows
Fitter = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cheap_features(text: str) -> list[float]:
    """log(1 + words), has a question mark, question marks, has an exclamation mark, sentences, has a digit."""
    return [
        float(np.log1p(len(text.split()))), float("?" in text), float(text.count("?")), float("!" in text),
        float(len(SENTENCE_END.findall(text)) + 1), float(bool(re.search(r"\d", text))),
    ]


def cross_fit(conversations: Sequence[int], texts: Sequence[str], fit: Fitter, folds: int = FOLDS) -> np.ndarray:
    """Out-of-fold predictions: conversations are split into `folds` groups; each group's rows are predicted by
    `fit` trained on the rows of the other groups, less any row whose text also occurs in the predicted group."""
    from sklearn.model_selection import GroupKFold

    conversation = np.asarray(conversations)
    rows = np.arange(conversation.size)
    predictions: list[tuple[np.ndarray, np.ndarray]] = []
    for train, held in GroupKFold(n_splits=min(folds, len(set(conversation.tolist())))).split(rows, groups=conversation):
        held_texts = {texts[i] for i in held}
        train = np.array([i for i in train if texts[i] not in held_texts], dtype=int)
        predictions.append((held, fit(train, held)))
    width = predictions[0][1].shape[1]
    result = np.zeros((conversation.size, width))
    for held, predicted in predictions:
        result[held] = predicted
    return result


def role_probabilities(
    texts: Sequence[str], vectors: np.ndarray, labels: Sequence[int], conversations: Sequence[int], n_roles: int
) -> np.ndarray:
    """P(role | turn) for every turn (a row per turn, a column per role numbered 0..n_roles-1), cross-fitted."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    label = np.asarray(labels)
    dense = np.hstack([vectors, np.array([cheap_features(text) for text in texts])])

    def fit(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        scale = StandardScaler().fit(dense[train])

        def features(rows: np.ndarray, fitting: bool = False) -> sparse.csr_matrix:
            chosen = [texts[i] for i in rows]
            tfidf = words.fit_transform(chosen) if fitting else words.transform(chosen)
            # Scaled dense columns shrunk so that the sentence embedding weighs about as much as the words.
            return sparse.hstack([tfidf, sparse.csr_matrix(scale.transform(dense[rows]) / np.sqrt(dense.shape[1]))]).tocsr()

        model = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(features(train, fitting=True), label[train])
        probabilities = np.zeros((held.size, n_roles))
        probabilities[:, model.classes_] = model.predict_proba(features(held))
        return probabilities

    return cross_fit(conversations, texts, fit)
