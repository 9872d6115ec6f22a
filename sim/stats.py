"""Uncertainty for every reported metric: bootstrap confidence intervals, effect sizes and permutation tests (SciPy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

CONFIDENCE = 0.95
RESAMPLES = 2000
# Corpus statistics (distinct-n, kappa, a classifier's AUC) are recomputed per resample, so they get fewer.
CORPUS_RESAMPLES = 300
SEED = 0
# Resamples drawn at once: bounds memory to BATCH x n values for corpora of 100k annotations.
BATCH = 50
# Resampled numbers held at once where resamples are drawn as a (resamples x units) matrix: about 80 MB.
BATCH_CELLS = 10_000_000
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
    """Two independent groups compared: their means, the difference (other - reference) with a 95% interval,
    Cohen's d where the values are one per unit, and a two-sided p-value; `interval` and `test` name the methods."""

    n_reference: int
    n_other: int
    mean_reference: float
    mean_other: float
    difference: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    effect_size: Optional[float]
    p_value: Optional[float]
    # How the interval and the p-value were made (docs/statistics.md).
    interval: str = "bootstrap"
    test: str = "permutation"


def entropy_bits(weights: Sequence[float] | np.ndarray) -> float:
    """Shannon entropy in bits of a distribution given by non-negative weights (counts or probabilities);
    NumPy, because analyzers call it per item where SciPy's input checks would cost more than the sum."""
    array = np.asarray(weights, dtype=float)
    total = array.sum()
    if total <= 0:
        return 0.0
    probabilities = array[array > 0] / total
    return float(-(probabilities * np.log2(probabilities)).sum())


def expanded_confidence(n: int, confidence: float = CONFIDENCE) -> float:
    """The percentile level that makes a bootstrap interval of a mean over n independent units cover as a
    t-interval would (Hesterberg 2015, the expanded percentile interval): the bootstrap's spread is that of a
    variance divided by n instead of n - 1, and the normal quantile is narrower than t with n - 1 degrees of
    freedom. Without it a 95% interval over 20 conversations covers about 92% of the time."""
    if n < 2:
        return confidence
    scale = np.sqrt(n / (n - 1)) * stats.t.ppf((1 + confidence) / 2, n - 1)
    return float(1 - 2 * stats.norm.sf(scale))


def percentile_interval(draws: np.ndarray, confidence: float = CONFIDENCE, n: Optional[int] = None) -> tuple[float, float]:
    """The central `confidence` range of resampled values (the percentile bootstrap interval); expanded for a
    mean over `n` independent units where n is given (`expanded_confidence`)."""
    level = confidence if n is None else expanded_confidence(n, confidence)
    alpha = (1 - level) / 2
    low, high = np.quantile(draws, [alpha, 1 - alpha])
    return float(low), float(high)


def is_binary(values: np.ndarray) -> bool:
    """Whether every value is 0 or 1 (a flag), so that its mean is a rate."""
    return bool(np.isin(values, (0.0, 1.0)).all())


def estimate(values: Sequence[float], confidence: float = CONFIDENCE, seed: int = SEED) -> Estimate:
    """The mean of `values` (one per independent unit: an episode, an item) with a 95% interval: Wilson's for
    0/1 flags (`proportion`), the expanded percentile bootstrap for anything else, repeatable for a given seed."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("no values to estimate from")
    if is_binary(data):
        return proportion(int(data.sum()), int(data.size), confidence)
    mean = float(data.mean())
    if data.size < 2:
        return Estimate(int(data.size), mean, None, None)
    if np.all(data == data[0]):
        return Estimate(int(data.size), mean, mean, mean)  # every resample has the same mean
    distinct, counts = np.unique(data, return_counts=True)
    if distinct.size <= MULTINOMIAL_MAX_DISTINCT:
        # Resampling n values with replacement draws each distinct value's count from a multinomial, so the
        # bootstrap means come from (resamples x distinct values) numbers instead of (resamples x n): counts over
        # a million turns cost milliseconds, with the same distribution as resampling the values.
        draws = np.random.default_rng(seed).multinomial(data.size, counts / data.size, size=RESAMPLES) @ distinct / data.size
    else:
        rng = np.random.default_rng(seed)
        draws = np.concatenate([
            data[rng.integers(0, data.size, (size, data.size))].mean(axis=1) for size in batch_sizes(RESAMPLES, data.size)
        ])
    return Estimate(int(data.size), mean, *percentile_interval(draws, confidence, int(data.size)))


def batch_sizes(resamples: int, width: int) -> list[int]:
    """Resamples per batch so that a batch holds about BATCH_CELLS numbers (BATCH_CELLS / width rows, at least one)."""
    rows = max(1, BATCH_CELLS // max(width, 1))
    return [min(rows, resamples - start) for start in range(0, resamples, rows)]


def estimate_statistic(
    n: int, statistic: Callable[[np.ndarray], float], resamples: int = CORPUS_RESAMPLES, seed: int = SEED,
    clusters: Optional[Sequence[str]] = None,
) -> Estimate:
    """A statistic of a whole corpus of n items, `statistic(indices)`, with a percentile-bootstrap CI over
    resampled items, or over resampled clusters of items where `clusters` (one id per item) says which items are
    one unit (the judgments of one compared pair); resamples where the statistic is undefined (nan) are left out."""
    if n == 0:
        raise ValueError("no items to estimate from")
    value = float(statistic(np.arange(n)))
    if n < 2:
        return Estimate(n, value, None, None)
    rng = np.random.default_rng(seed)
    if clusters is None or len(set(clusters)) == n:
        draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)
        interval = "bootstrap"
    else:
        members = list(_members(clusters).values())
        draws = np.array([
            statistic(np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])) for _ in range(resamples)
        ], dtype=float)
        interval = "cluster bootstrap"
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return Estimate(n, value, None, None, interval=interval)
    return Estimate(n, value, *percentile_interval(draws), interval=interval)


def _members(clusters: Sequence[str]) -> dict[str, np.ndarray]:
    """The item indices of each cluster, in order of first appearance."""
    found: dict[str, list[int]] = {}
    for i, cluster in enumerate(clusters):
        found.setdefault(cluster, []).append(i)
    return {cluster: np.array(indices) for cluster, indices in found.items()}


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
        return Estimate(n, float(statistic(np.arange(n))), None, None, interval="subsample")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.choice(n, size, replace=False)) for _ in range(draws)], dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return Estimate(n, float("nan"), None, None, interval="subsample")
    return Estimate(n, float(values.mean()), *percentile_interval(values), interval="subsample")


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
    """Compare two independent samples (one value per unit) by the difference in means, other minus reference:
    for 0/1 flags Newcombe's interval of a difference of rates and Fisher's exact test; otherwise the expanded
    percentile bootstrap with a two-sided permutation test; Cohen's d either way."""
    ref, oth = np.asarray(reference, dtype=float), np.asarray(other, dtype=float)
    if ref.size == 0 or oth.size == 0:
        raise ValueError("both groups need values")
    difference = float(oth.mean() - ref.mean())
    if ref.size < 2 or oth.size < 2:
        return Difference(ref.size, oth.size, float(ref.mean()), float(oth.mean()), difference, None, None, None, None)
    if is_binary(ref) and is_binary(oth):
        return compare_rates(int(ref.sum()), ref.size, int(oth.sum()), oth.size, cohens_d(ref, oth))
    if np.ptp(np.concatenate([ref, oth])) == 0:
        return Difference(ref.size, oth.size, float(ref.mean()), float(oth.mean()), 0.0, 0.0, 0.0, None, 1.0)

    def mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(b, axis=axis) - np.mean(a, axis=axis)

    rng = np.random.default_rng(seed)
    draws = np.concatenate([
        oth[rng.integers(0, oth.size, (size, oth.size))].mean(axis=1) - ref[rng.integers(0, ref.size, (size, ref.size))].mean(axis=1)
        for size in batch_sizes(RESAMPLES, ref.size + oth.size)
    ])
    test = stats.permutation_test(
        (ref, oth), mean_difference, n_resamples=RESAMPLES, batch=BATCH, alternative="two-sided", rng=np.random.default_rng(seed)
    )
    return Difference(
        int(ref.size), int(oth.size), float(ref.mean()), float(oth.mean()), difference,
        *percentile_interval(draws, n=min(ref.size, oth.size)), cohens_d(ref, oth), float(test.pvalue),
        "bootstrap", "permutation",
    )


def compare_paired(first: Sequence[float], second: Sequence[float], seed: int = SEED) -> Difference:
    """Two measurements of the same units (two judges on the same pairs, two backends on the same tasks) compared
    by the mean of their differences, second minus first, with an expanded percentile interval from resampling
    units; the two-sided p-value of McNemar's exact test for 0/1 values (statsmodels), of Wilcoxon's signed-rank
    test otherwise (SciPy). Units missing a value on either side must be left out by the caller."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if a.size != b.size:
        raise ValueError("paired values need one value of each side per unit")
    if a.size == 0:
        raise ValueError("no pairs to compare")
    binary = is_binary(a) and is_binary(b)
    methods = ("paired bootstrap", "mcnemar exact" if binary else "wilcoxon signed-rank")
    differences = b - a
    mean = float(differences.mean())
    if a.size < 2:
        return Difference(1, 1, float(a.mean()), float(b.mean()), mean, None, None, None, None, *methods)
    if binary:
        both, only_first = int(((a == 1) & (b == 1)).sum()), int(((a == 1) & (b == 0)).sum())
        only_second, neither = int(((a == 0) & (b == 1)).sum()), int(((a == 0) & (b == 0)).sum())
        p_value = float(mcnemar([[both, only_first], [only_second, neither]], exact=True).pvalue)
    else:
        p_value = 1.0 if not differences.any() else float(stats.wilcoxon(a, b).pvalue)
    rng = np.random.default_rng(seed)
    draws = np.concatenate([
        differences[rng.integers(0, a.size, (size, a.size))].mean(axis=1) for size in batch_sizes(RESAMPLES, a.size)
    ])
    spread = differences.std(ddof=1)
    return Difference(
        int(a.size), int(b.size), float(a.mean()), float(b.mean()), mean, *percentile_interval(draws, n=int(a.size)),
        None if spread == 0 else float(mean / spread), p_value, *methods,
    )


def compare_rates(
    successes_ref: int, n_ref: int, successes_other: int, n_other: int, effect_size: Optional[float] = None
) -> Difference:
    """Two independent rates compared: the difference (other minus reference) with Newcombe's hybrid score
    interval (statsmodels), which stays inside [-1, 1] and keeps its coverage for rates near 0 or 1, and the
    two-sided p-value of Fisher's exact test (SciPy)."""
    low, high = confint_proportions_2indep(successes_other, n_other, successes_ref, n_ref, method="newcomb")
    table = [[successes_other, n_other - successes_other], [successes_ref, n_ref - successes_ref]]
    rate_ref, rate_other = successes_ref / n_ref, successes_other / n_other
    return Difference(
        n_ref, n_other, rate_ref, rate_other, rate_other - rate_ref, float(low), float(high), effect_size,
        float(stats.fisher_exact(table).pvalue), "newcombe", "fisher exact",
    )


def cluster_weights(n_clusters: int, resamples: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
    """How often each of `n_clusters` clusters (conversations) is drawn in each bootstrap resample, in batches of
    (resamples x n_clusters) multinomial counts: the weights that resampling whole clusters gives."""
    rng = np.random.default_rng(seed)
    uniform = np.full(n_clusters, 1.0 / n_clusters)
    for size in batch_sizes(resamples, n_clusters):
        yield rng.multinomial(n_clusters, uniform, size=size).astype(float)


def ratio_estimate(
    numerators: Sequence[float], denominators: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED
) -> Estimate:
    """sum(numerators) / sum(denominators) over clusters (one pair per conversation: the sum and the number of
    its turn values; its flagged and scored turns) with an expanded percentile interval from resampling whole
    clusters: the ratio estimator of a turn-level mean, whose uncertainty comes from the conversations, not from
    turns taken as independent. n counts the clusters; None when the denominator is 0."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    total = den.sum()
    if total <= 0:
        return Estimate(int(num.size), float("nan"), None, None, interval="cluster bootstrap")
    value = float(num.sum() / total)
    if num.size < 2:
        return Estimate(int(num.size), value, None, None, interval="cluster bootstrap")
    numerator_draws, denominator_draws = [], []
    for counts in cluster_weights(num.size, resamples, seed):
        numerator_draws.append(counts @ num)
        denominator_draws.append(counts @ den)
    drawn_num, drawn_den = np.concatenate(numerator_draws), np.concatenate(denominator_draws)
    kept = drawn_den > 0
    low, high = percentile_interval(drawn_num[kept] / drawn_den[kept], n=int(num.size))
    return Estimate(int(num.size), value, low, high, interval="cluster bootstrap")


def clustered_rate(successes: Sequence[float], trials: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """A rate of 0/1 turn values pooled over clusters (`successes[g]` of `trials[g]` turns of conversation g) with
    Korn & Graubard's (1998) interval: Clopper-Pearson at the effective sample size, the number of turns divided by
    the design effect (the cluster-robust variance of the pooled rate over the binomial one, kept between 1 and
    the mean cluster size) and shrunk for the degrees of freedom of few conversations. Where no or every turn is
    a success the design effect cannot be estimated, so the most conservative one is taken: as many independent
    trials as conversations. n counts the turns."""
    hits, sizes = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    n_turns, n_clusters = sizes.sum(), int((sizes > 0).sum())
    if n_turns <= 0:
        return Estimate(0, float("nan"), None, None, interval="clopper-pearson, design effect")
    rate = hits.sum() / n_turns
    max_effect = n_turns / max(n_clusters, 1)
    if 0 < rate < 1 and n_clusters > 1:
        residuals = hits - rate * sizes
        robust_variance = n_clusters / (n_clusters - 1) * (residuals**2).sum() / n_turns**2
        design_effect = min(max(robust_variance / (rate * (1 - rate) / n_turns), 1.0), max_effect)
    else:
        design_effect = max_effect
    # Korn & Graubard's degrees-of-freedom correction: with few conversations the variance is itself uncertain.
    effective = n_turns / design_effect * (stats.norm.ppf((1 + confidence) / 2) / stats.t.ppf((1 + confidence) / 2, max(n_clusters - 1, 1))) ** 2
    low, high = proportion_confint(rate * effective, effective, alpha=1 - confidence, method="beta")
    return Estimate(int(n_turns), float(rate), float(low), float(high), interval="clopper-pearson, design effect")


def compare_clustered(
    reference: tuple[Sequence[float], Sequence[float]], other: tuple[Sequence[float], Sequence[float]], seed: int = SEED
) -> Difference:
    """Two groups' pooled means compared, each given as (sum of values, number of values) per cluster (the turns
    of a conversation; the judgments of one compared pair): the difference of pooled means (other minus
    reference) with an expanded percentile interval from resampling clusters within each group, and the
    two-sided p-value of a permutation test that reassigns whole clusters between the groups. n counts clusters."""
    ref_num, ref_den = (np.asarray(part, dtype=float) for part in reference)
    oth_num, oth_den = (np.asarray(part, dtype=float) for part in other)
    mean_ref, mean_other = ref_num.sum() / ref_den.sum(), oth_num.sum() / oth_den.sum()
    difference = float(mean_other - mean_ref)
    n_ref, n_other = ref_num.size, oth_num.size
    if n_ref < 2 or n_other < 2:
        return Difference(n_ref, n_other, float(mean_ref), float(mean_other), difference, None, None, None, None,
                          "cluster bootstrap", "cluster permutation")
    # Each side's resampled means in full: the two sides come in batches of different sizes when their sizes differ.
    ref_means = np.concatenate([(a @ ref_num) / (a @ ref_den) for a in cluster_weights(n_ref, RESAMPLES, seed)])
    other_means = np.concatenate([(b @ oth_num) / (b @ oth_den) for b in cluster_weights(n_other, RESAMPLES, seed + 1)])
    low, high = percentile_interval(other_means - ref_means, n=min(n_ref, n_other))
    pooled_num, pooled_den = np.concatenate([ref_num, oth_num]), np.concatenate([ref_den, oth_den])
    rng = np.random.default_rng(seed)
    permuted = []
    for size in batch_sizes(RESAMPLES, n_ref + n_other):
        in_other = rng.permuted(np.tile(np.r_[np.ones(n_other), np.zeros(n_ref)], (size, 1)), axis=1)
        permuted.append((in_other @ pooled_num) / (in_other @ pooled_den) - ((1 - in_other) @ pooled_num) / ((1 - in_other) @ pooled_den))
    permuted = np.concatenate(permuted)
    # The observed split counts as one of the permutations, so p is never 0 (Phipson & Smyth 2010).
    p_value = (1 + np.sum(np.abs(permuted) >= abs(difference) - 1e-12)) / (RESAMPLES + 1)
    return Difference(n_ref, n_other, float(mean_ref), float(mean_other), difference, low, high, None, float(p_value),
                      "cluster bootstrap", "cluster permutation")


def q_values(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Benjamini-Hochberg q-values (statsmodels) of one family of tests, in order; None where p is None."""
    present = [i for i, p in enumerate(p_values) if p is not None and not np.isnan(p)]
    result: list[Optional[float]] = [None] * len(p_values)
    if present:
        adjusted = multipletests([p_values[i] for i in present], method="fdr_bh")[1]
        for i, q in zip(present, adjusted):
            result[i] = float(q)
    return result


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
        for batch in cluster_weights(n_clusters, resamples, seed)
        for counts in np.array_split(batch, max(1, batch.shape[0] // BATCH))
    ])
    draws = draws[~np.isnan(draws)]
    if not draws.size:
        return Estimate(n_clusters, value, None, None, interval="cluster bootstrap")
    return Estimate(n_clusters, value, *percentile_interval(draws, n=n_clusters), interval="cluster bootstrap")
