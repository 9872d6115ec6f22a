"""Uncertainty for every reported metric: bootstrap confidence intervals, effect sizes and permutation tests (SciPy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

CONFIDENCE = 0.95
RESAMPLES = 2000
# Corpus statistics (distinct-n, kappa, a classifier's AUC) are recomputed per resample, so they get fewer.
CORPUS_RESAMPLES = 300
SEED = 0
# Resamples drawn at once: bounds memory to BATCH x n values for corpora of 100k annotations.
BATCH = 50
# Up to this many distinct values (flags, counts, labels), the bootstrap draws counts instead of values.
MULTINOMIAL_MAX_DISTINCT = 256


@dataclass(frozen=True)
class Estimate:
    """A value (a mean, or a statistic of a whole corpus) over n items with a bootstrap confidence interval
    (None when n < 2), and a p-value where the value is a test statistic (a correlation)."""

    n: int
    mean: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    p_value: Optional[float] = None
    # How the interval was made: wilson, bootstrap, cluster bootstrap, subsample, split half (docs/statistics.md).
    interval: str = "bootstrap"


@dataclass(frozen=True)
class Difference:
    """Two independent groups compared: their means, the difference (other - reference) with a bootstrap CI,
    Cohen's d, and a two-sided permutation p-value."""

    n_reference: int
    n_other: int
    mean_reference: float
    mean_other: float
    difference: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    effect_size: Optional[float]
    p_value: Optional[float]


def entropy_bits(weights: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy in bits of a distribution given by non-negative weights (counts or probabilities);
    NumPy, because analyzers call it per item where SciPy's input checks would cost more than the sum."""
    array = np.asarray(weights, dtype=float)
    total = array.sum()
    if total <= 0:
        return 0.0
    probabilities = array[array > 0] / total
    return float(-(probabilities * np.log2(probabilities)).sum())


def percentile_interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The central `confidence` range of resampled values (the percentile bootstrap interval)."""
    alpha = (1 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(low), float(high)


def estimate(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = SEED) -> Estimate:
    """The mean of `values` with a percentile-bootstrap confidence interval, repeatable for a given seed."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to estimate from")
    mean = float(data.mean())
    if data.size < 2:
        return Estimate(int(data.size), mean, None, None)
    if np.all(data == data[0]):
        return Estimate(int(data.size), mean, mean, mean)  # every resample has the same mean
    distinct, counts = np.unique(data, return_counts=True)
    if distinct.size <= MULTINOMIAL_MAX_DISTINCT:
        # Resampling n values with replacement draws each distinct value's count from a multinomial, so the
        # bootstrap means come from (resamples x distinct values) numbers instead of (resamples x n): flags and
        # counts over a million turns cost milliseconds, with the same distribution as scipy's resampling.
        draws = np.random.default_rng(seed).multinomial(data.size, counts / data.size, size=RESAMPLES)
        return Estimate(int(data.size), mean, *percentile_interval(draws @ distinct / data.size, confidence))
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=RESAMPLES,
        method="percentile",
        batch=BATCH,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Estimate(int(data.size), mean, float(interval.low), float(interval.high))


def estimate_statistic(
    n: int, statistic: Callable[[np.ndarray], float], resamples: int = CORPUS_RESAMPLES, seed: int = SEED
) -> Estimate:
    """A statistic of a whole corpus of n items, `statistic(indices)`, with a percentile-bootstrap CI over
    resampled items; resamples where the statistic is undefined (nan) are left out."""
    if n == 0:
        raise ValueError("no items to estimate from")
    value = float(statistic(np.arange(n)))
    if n < 2:
        return Estimate(n, value, None, None)
    rng = np.random.default_rng(seed)
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return Estimate(n, value, None, None)
    return Estimate(n, value, *percentile_interval(draws))


def subsample_statistic(
    n: int, statistic: Callable[[np.ndarray], float], size: int, draws: int = CORPUS_RESAMPLES, seed: int = SEED
) -> Estimate:
    """A set statistic that grows or shrinks with corpus size (distinct n-grams, compressibility) taken at a fixed
    size: its mean over `draws` random subsets of `size` items drawn without replacement, with the 2.5-97.5
    percentile range of those subsets. Resampling with replacement would invent repeats; fixing the size keeps
    corpora of different sizes comparable. With n <= size the whole corpus is used once (no interval)."""
    if n == 0:
        raise ValueError("no items to estimate from")
    if n <= size:
        return Estimate(n, float(statistic(np.arange(n))), None, None)
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.choice(n, size, replace=False)) for _ in range(draws)], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Estimate(n, float("nan"), None, None)
    return Estimate(n, float(values.mean()), *percentile_interval(values))


def proportion(successes: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """A rate of `successes` in `n` independent trials with Wilson's score interval (statsmodels), which keeps
    its coverage near nominal for small n and rates near 0 or 1, where a bootstrap collapses (0/40 gives [0, 0])."""
    if n <= 0:
        raise ValueError("no trials to estimate a rate from")
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return Estimate(int(n), successes / n, float(low), float(high), interval="wilson")


def split_half_difference(
    n: int, statistic: Callable[[np.ndarray], float], draws: int = CORPUS_RESAMPLES, seed: int = SEED
) -> Estimate:
    """How far a set statistic moves between two random halves of one corpus (|statistic(A) - statistic(B)| over
    `draws` random splits of the n items): the mean gap with its 2.5-97.5 percentile range. Between two halves of
    a human corpus it is the human ceiling, the gap no other corpus can be expected to close. Splits where the
    statistic is undefined (nan) are left out."""
    if n < 2:
        raise ValueError("a split half needs at least two items")
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(draws):
        order = rng.permutation(n)
        gaps.append(abs(statistic(order[: n // 2]) - statistic(order[n // 2 : 2 * (n // 2)])))
    values = np.asarray(gaps, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Estimate(n, float("nan"), None, None, interval="split half")
    return Estimate(n, float(values.mean()), *percentile_interval(values), interval="split half")


def correlation(x: Sequence[float], y: Sequence[float], seed: int = SEED) -> Estimate:
    """Pearson's r with its two-sided p-value and a bootstrap 95% CI; nan when either side is constant."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.size < 3 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return Estimate(int(xs.size), float("nan"), None, None)
    result = stats.pearsonr(xs, ys)
    interval = result.confidence_interval(
        CONFIDENCE, method=stats.BootstrapMethod(method="percentile", n_resamples=RESAMPLES, rng=np.random.default_rng(seed))
    )
    return Estimate(int(xs.size), float(result.statistic), float(interval.low), float(interval.high), float(result.pvalue))


def cohens_d(reference: np.ndarray, other: np.ndarray) -> Optional[float]:
    """(mean other - mean reference) / pooled standard deviation; None when it is zero."""
    n_ref, n_other = reference.size, other.size
    pooled = ((n_ref - 1) * reference.var(ddof=1) + (n_other - 1) * other.var(ddof=1)) / (n_ref + n_other - 2)
    return None if pooled <= 0 else float((other.mean() - reference.mean()) / np.sqrt(pooled))


def compare(reference: Sequence[float], other: Sequence[float], seed: int = SEED) -> Difference:
    """Compare two independent samples: difference in means with a bootstrap CI, Cohen's d and a permutation p."""
    ref, oth = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    if ref.size == 0 or oth.size == 0:
        raise ValueError("both groups need values")
    difference = float(oth.mean() - ref.mean())
    if ref.size < 2 or oth.size < 2:
        return Difference(ref.size, oth.size, float(ref.mean()), float(oth.mean()), difference, None, None, None, None)

    def mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(b, axis=axis) - np.mean(a, axis=axis)

    if np.ptp(np.concatenate([ref, oth])) == 0:
        return Difference(ref.size, oth.size, float(ref.mean()), float(oth.mean()), 0.0, 0.0, 0.0, None, 1.0)
    interval = stats.bootstrap(
        (ref, oth), mean_difference, n_resamples=RESAMPLES, method="percentile", batch=BATCH, rng=np.random.default_rng(seed)
    ).confidence_interval
    test = stats.permutation_test(
        (ref, oth), mean_difference, n_resamples=RESAMPLES, batch=BATCH, alternative="two-sided", rng=np.random.default_rng(seed)
    )
    return Difference(
        int(ref.size), int(oth.size), float(ref.mean()), float(oth.mean()), difference,
        float(interval.low), float(interval.high), cohens_d(ref, oth), float(test.pvalue),
    )


def cluster_resamples(n_clusters: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """How often each of `n_clusters` clusters (conversations) is drawn in each bootstrap resample: a
    (resamples x n_clusters) matrix of multinomial counts, the weights that resampling whole clusters gives."""
    uniform = np.full(n_clusters, 1.0 / n_clusters)
    return np.random.default_rng(seed).multinomial(n_clusters, uniform, size=resamples).astype(float)


def ratio_estimate(
    numerators: Sequence[float], denominators: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED
) -> Estimate:
    """sum(numerators) / sum(denominators) over clusters (one pair per conversation: flagged and scored turns,
    true and all positives, ...) with a percentile interval from resampling whole clusters: the ratio estimator
    of a turn-level rate, whose uncertainty comes from the conversations, not from turns taken as independent.
    n counts the clusters; None when the denominator is 0."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    total = den.sum()
    if total <= 0:
        return Estimate(int(num.size), float("nan"), None, None)
    value = float(num.sum() / total)
    if num.size < 2:
        return Estimate(int(num.size), value, None, None)
    counts = cluster_resamples(num.size, resamples, seed)
    drawn_den = counts @ den
    kept = drawn_den > 0
    return Estimate(int(num.size), value, *percentile_interval((counts @ num)[kept] / drawn_den[kept]))


def weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The area under the ROC curve of `scores` for binary `labels`, for each row of `weights` (one weight per
    item; ties count one half), in one vectorized pass: the Mann-Whitney statistic with weighted items."""
    order = np.argsort(scores, kind="stable")
    ordered, positive = scores[order], labels[order].astype(bool)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first item of each distinct score
    rows = np.atleast_2d(weights)[:, order]
    pos = np.add.reduceat(rows * positive, starts, axis=1)
    neg = np.add.reduceat(rows * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins / (pos.sum(axis=1) * neg.sum(axis=1))


def cluster_auc(
    scores: Sequence[float], labels: Sequence[float], clusters: Sequence[int], resamples: int = CORPUS_RESAMPLES, seed: int = SEED
) -> Estimate:
    """AUC of per-item `scores` for binary `labels` with a percentile interval from resampling whole clusters
    (`clusters[i]` is item i's conversation, numbered 0..k-1): turns of one conversation are not independent.
    n counts the clusters; nan when one class is missing."""
    score, label = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    cluster = np.asarray(clusters, dtype=int)
    n_clusters = int(cluster.max()) + 1 if cluster.size else 0
    value = float(weighted_auc(score, label, np.ones(score.size))[0]) if score.size else float("nan")
    if n_clusters < 2 or np.isnan(value):
        return Estimate(n_clusters, value, None, None)
    draws = np.concatenate([
        weighted_auc(score, label, counts[:, cluster])
        for counts in np.array_split(cluster_resamples(n_clusters, resamples, seed), max(1, resamples // BATCH))
    ])
    draws = draws[~np.isnan(draws)]
    return Estimate(n_clusters, value, *percentile_interval(draws)) if draws.size else Estimate(n_clusters, value, None, None)
