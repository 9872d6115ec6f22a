"""Bootstrap confidence intervals behind every reported metric."""

import numpy as np
import pytest

from sim.analysis import summarize
from sim.records import Annotation
from sim.stats import estimate


def test_interval_brackets_the_mean_and_is_repeatable() -> None:
    values = np.random.default_rng(1).binomial(1, 0.3, size=400).tolist()
    first = estimate(values)
    assert first.n == 400 and first.ci_low < first.mean < first.ci_high
    assert estimate(values) == first
    # For a proportion the interval should be close to the normal approximation's.
    half_width = 1.96 * np.sqrt(first.mean * (1 - first.mean) / 400)
    assert abs((first.ci_high - first.ci_low) / 2 - half_width) < 0.01


def test_more_data_gives_a_narrower_interval() -> None:
    rng = np.random.default_rng(2)
    small, large = estimate(rng.normal(size=30).tolist()), estimate(rng.normal(size=3000).tolist())
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low) / 5


def test_degenerate_inputs() -> None:
    assert estimate([1.0, 1.0, 1.0]) == estimate([1.0, 1.0, 1.0]) and estimate([1.0] * 3).ci_low == 1.0
    one = estimate([4.0])
    assert (one.n, one.mean, one.ci_low, one.ci_high) == (1, 4.0, None, None)
    with pytest.raises(ValueError):
        estimate([])


def test_summaries_carry_n_and_interval() -> None:
    annotations = [Annotation("e", "flag", float(i % 4 == 0), turn_idx=i) for i in range(40)]
    annotations.append(Annotation("e", "any", 1.0))
    metrics = {(m.name, m.level): m for m in summarize(annotations)}
    flag = metrics[("flag", "turn")]
    assert (flag.n, flag.total, flag.mean) == (40, 10.0, 0.25) and flag.ci_low < 0.25 < flag.ci_high
    assert metrics[("any", "episode")].ci_low is None


def test_two_groups_compared_with_effect_size_and_permutation_p() -> None:
    from sim.stats import compare

    rng = np.random.default_rng(4)
    reference = rng.normal(0, 1, 300)
    shifted = reference + 0.5 * reference.std(ddof=1)  # same spread, half a standard deviation up: d is 0.5
    difference = compare(reference.tolist(), shifted.tolist())
    assert difference.effect_size == pytest.approx(0.5) and difference.p_value < 0.01
    assert difference.ci_low < difference.difference < difference.ci_high and difference.ci_low > 0
    same = compare(reference.tolist(), reference[::-1].tolist())  # the same values: no difference at all
    assert same.p_value > 0.9 and same.ci_low < 0 < same.ci_high
    assert compare([1.0, 1.0], [1.0, 1.0]).p_value == 1.0
    assert compare([1.0], [2.0, 3.0]).p_value is None


def test_correlation_and_corpus_statistics() -> None:
    from sim.stats import correlation, estimate_statistic

    x = np.arange(50, dtype=float)
    perfect = correlation(x, 2 * x + 1)
    assert perfect.mean == pytest.approx(1.0) and perfect.p_value < 1e-10
    assert np.isnan(correlation(x, np.ones(50)).mean)
    values = np.random.default_rng(5).normal(size=200)
    median = estimate_statistic(200, lambda idx: float(np.median(values[idx])))
    assert median.mean == pytest.approx(float(np.median(values))) and median.ci_low < median.mean < median.ci_high
