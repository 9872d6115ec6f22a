"""The intervals and tests behind every reported metric, checked against published examples and definitions."""

import numpy as np
import pytest
from scipy import stats

from sim.analysis import summarize
from sim.records import Annotation
from sim.stats import (
    clustered_rate, compare, compare_clustered, compare_paired, compare_rates, estimate, proportion, q_values,
)


def test_continuous_interval_brackets_the_mean_and_is_repeatable() -> None:
    values = np.random.default_rng(1).normal(10, 2, size=400).tolist()
    first = estimate(values)
    assert first.n == 400 and first.ci_low < first.mean < first.ci_high and first.interval == "bootstrap"
    assert estimate(values) == first
    # With 400 values the expanded bootstrap interval is close to the t-interval.
    half_width = stats.t.ppf(0.975, 399) * np.std(values, ddof=1) / np.sqrt(400)
    assert (first.ci_high - first.ci_low) / 2 == pytest.approx(half_width, rel=0.08)


def test_more_data_gives_a_narrower_interval() -> None:
    rng = np.random.default_rng(2)
    small, large = estimate(rng.normal(size=30).tolist()), estimate(rng.normal(size=3000).tolist())
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low) / 5


def test_rates_get_wilson_intervals_matching_the_published_example() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, Table I: 81 of 263 gives 0.2553 to 0.3662.
    rate = proportion(81, 263)
    assert (round(rate.ci_low, 4), round(rate.ci_high, 4)) == (0.2553, 0.3662) and rate.interval == "wilson"
    # 0 of 40 flags: not [0, 0] as a bootstrap gives, but an upper bound near 9%.
    none = estimate([0.0] * 40)
    assert none.ci_low == 0.0 and 0.05 <= none.ci_high <= 0.1 and none.interval == "wilson"
    assert estimate([1.0] * 4).ci_low < 0.6  # 4 of 4 is no proof of a rate of 1


def test_degenerate_inputs() -> None:
    assert estimate([2.0, 2.0, 2.0]) == estimate([2.0, 2.0, 2.0]) and estimate([2.0] * 3).ci_low == 2.0
    one = estimate([4.0])
    assert (one.n, one.mean, one.ci_low, one.ci_high) == (1, 4.0, None, None)
    with pytest.raises(ValueError):
        estimate([])


def test_turn_values_are_pooled_per_conversation() -> None:
    # Four conversations whose turns share a level: the interval of the turn mean must come from 4 units, not 40.
    annotations = [
        [Annotation(f"e{g}", "words", float(10 * g + i % 2), turn_idx=i) for i in range(10)] + [Annotation(f"e{g}", "any", 1.0)]
        for g in range(4)
    ]
    metrics = {(m.name, m.unit): m for m in summarize(annotations)}
    words = metrics[("words", "turn")]
    assert (words.n, words.n_turns, words.n_episodes, words.total) == (40, 40, 4, sum(10 * g * 10 + 5 for g in range(4)))
    assert words.interval == "cluster bootstrap" and words.ci_low < words.mean < words.ci_high
    turn_resampled = estimate([a.value for episode in annotations for a in episode if a.turn_idx is not None])
    assert words.ci_high - words.ci_low > 3 * (turn_resampled.ci_high - turn_resampled.ci_low)
    flag = metrics[("any", "episode")]
    assert (flag.n_episodes, flag.n_turns, flag.interval) == (4, None, "wilson")
    assert summarize(annotations, turns=False) == [flag]


def test_episodes_that_share_a_unit_are_pooled_before_resampling() -> None:
    # 60 judgments of 12 compared pairs (5 each) that copy one verdict per pair: 12 units, not 60.
    verdicts = np.random.default_rng(8).binomial(1, 0.5, 12).astype(float)
    annotations = [[Annotation(f"e{i}", "agrees", verdicts[i // 5])] for i in range(60)]
    clusters = [f"pair{i // 5}" for i in range(60)]
    (pooled,) = summarize(annotations, clusters=clusters)
    (independent,) = summarize(annotations)
    assert pooled.mean == independent.mean and pooled.n == pooled.n_episodes == 60
    assert pooled.interval == "clopper-pearson, design effect" and independent.interval == "wilson"
    assert pooled.ci_high - pooled.ci_low > 1.8 * (independent.ci_high - independent.ci_low)
    # Every episode its own unit: the clusters change nothing.
    assert summarize(annotations, clusters=[f"e{i}" for i in range(60)]) == [independent]


def test_corpus_statistics_resample_clusters_where_items_share_one() -> None:
    from sim.stats import estimate_statistic

    # 40 distinct values, each copied five times: the mean of 200 items rests on 40 units.
    values = np.repeat(np.random.default_rng(9).normal(size=40), 5)
    clusters = [f"u{i // 5}" for i in range(200)]
    by_item = estimate_statistic(200, lambda idx: float(np.mean(values[idx])))
    by_unit = estimate_statistic(200, lambda idx: float(np.mean(values[idx])), clusters=clusters)
    assert by_unit.mean == by_item.mean and (by_item.interval, by_unit.interval) == ("bootstrap", "cluster bootstrap")
    assert by_unit.ci_high - by_unit.ci_low > 1.8 * (by_item.ci_high - by_item.ci_low)  # about the square root of 5


def test_clustered_flags_count_conversations_not_turns() -> None:
    # Flags that come in whole conversations: 3 of 30 conversations flag every one of their 10 turns.
    hits, sizes = np.array([10] * 3 + [0] * 27), np.full(30, 10)
    clustered = clustered_rate(hits, sizes)
    assert clustered.mean == pytest.approx(0.1) and clustered.n == 300
    independent = proportion(30, 300)
    assert (clustered.ci_high - clustered.ci_low) > 2 * (independent.ci_high - independent.ci_low)
    # Flags spread evenly over conversations behave like independent turns (the design effect stays near 1).
    even = clustered_rate(np.full(30, 1), sizes)
    assert (even.ci_high - even.ci_low) == pytest.approx(independent.ci_high - independent.ci_low, rel=0.15)
    # None flagged: the bound counts conversations, the most careful reading of clustered turns (Clopper-Pearson
    # for 0 of 30 trials is 0.116), not turns (0.012 for 300).
    assert 0.116 <= clustered_rate(np.zeros(30), sizes).ci_high < 0.15


def test_two_groups_compared_with_effect_size_and_permutation_p() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(0, 1, 300)
    shifted = reference + 0.5 * reference.std(ddof=1)  # same spread, half a standard deviation up: d is 0.5
    difference = compare(reference.tolist(), shifted.tolist())
    assert difference.effect_size == pytest.approx(0.5) and difference.p_value < 0.01
    assert difference.ci_low < difference.difference < difference.ci_high and difference.ci_low > 0
    assert (difference.interval, difference.test) == ("bootstrap", "permutation")
    same = compare(reference.tolist(), reference[::-1].tolist())  # the same values: no difference at all
    assert same.p_value > 0.9 and same.ci_low < 0 < same.ci_high
    assert compare([2.0, 2.0], [2.0, 2.0]).p_value == 1.0
    assert compare([1.0], [2.0, 3.0]).p_value is None


def test_rates_compared_by_newcombe_and_fisher_as_published() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, Table II, example (a): 56/70 against 48/80 gives a
    # difference of 0.2 with the hybrid score interval 0.0524 to 0.3339.
    rates = compare([1.0] * 48 + [0.0] * 32, [1.0] * 56 + [0.0] * 14)
    assert rates.difference == pytest.approx(0.2) and (rates.interval, rates.test) == ("newcombe", "fisher exact")
    assert (round(rates.ci_low, 4), round(rates.ci_high, 4)) == (0.0524, 0.3339)
    assert rates.p_value == pytest.approx(stats.fisher_exact([[56, 14], [48, 32]]).pvalue)
    # Fisher's tea-tasting table: 3 of 4 against 1 of 4 gives a two-sided p of 17/35.
    assert compare_rates(1, 4, 3, 4).p_value == pytest.approx(17 / 35)


def test_turn_means_compared_conversation_by_conversation() -> None:
    rng = np.random.default_rng(6)
    levels = rng.normal(0, 3, 60)  # each conversation's own level; turns add little noise
    sums, counts = levels * 8 + rng.normal(0, 1, 60), np.full(60, 8.0)
    null = compare_clustered((sums[:30], counts[:30]), (sums[30:], counts[30:]))
    shifted = compare_clustered((sums[:30], counts[:30]), (sums[30:] + 8 * 4.0, counts[30:]))
    assert null.ci_low < null.difference < null.ci_high and null.p_value > 0.05
    assert shifted.p_value < 0.01 and shifted.ci_low > 0 and shifted.test == "cluster permutation"
    # An interval over turns as if independent (480 values) would be several times narrower.
    assert shifted.ci_high - shifted.ci_low > 2.5 * 2 * 1.96 * 3 / 8 / np.sqrt(240)


def test_paired_designs_get_paired_tests() -> None:
    # Agresti (2002), Table 10.1: approval of the same 1600 people at two surveys (794 both, 150 first only, 86
    # second only, 570 neither): a drop of 0.04, Wald interval -0.059 to -0.021; McNemar's exact p is the
    # binomial test of 86 against 150 discordant pairs.
    first = np.r_[np.ones(794 + 150), np.zeros(86 + 570)]
    second = np.r_[np.ones(794), np.zeros(150), np.ones(86), np.zeros(570)]
    paired = compare_paired(first, second)
    assert paired.difference == pytest.approx(-0.04) and paired.test == "mcnemar exact"
    assert paired.ci_low == pytest.approx(-0.059, abs=0.003) and paired.ci_high == pytest.approx(-0.021, abs=0.003)
    assert paired.p_value == pytest.approx(stats.binomtest(86, 236, 0.5).pvalue)
    # Continuous values: Wilcoxon's signed-rank test, as SciPy computes it.
    rng = np.random.default_rng(7)
    before = rng.normal(size=40)
    after = before + 0.2 + rng.normal(0, 0.3, 40)
    continuous = compare_paired(before, after)
    assert continuous.test == "wilcoxon signed-rank" and continuous.p_value == pytest.approx(stats.wilcoxon(before, after).pvalue)
    assert continuous.ci_low < continuous.difference < continuous.ci_high
    # The pairing is the point: the same shift between independent samples is lost in their spread.
    assert continuous.p_value < 0.01 < compare(before, after).p_value
    with pytest.raises(ValueError):
        compare_paired([1.0, 2.0], [1.0])


def test_q_values_match_the_benjamini_hochberg_definition() -> None:
    p = [0.01, 0.04, None, 0.03, 0.005]
    # Sorted: 0.005, 0.01, 0.03, 0.04 of four tests; q = min over later ranks of p * 4 / rank.
    assert q_values(p) == pytest.approx([0.02, 0.04, None, 0.04, 0.02])
    assert q_values([None]) == [None] and q_values([]) == []


def test_correlation_and_corpus_statistics() -> None:
    from sim.stats import correlation, estimate_statistic

    x = np.arange(50, dtype=float)
    perfect = correlation(x, 2 * x + 1)
    assert perfect.mean == pytest.approx(1.0) and perfect.p_value < 1e-10
    assert np.isnan(correlation(x, np.ones(50)).mean)
    values = np.random.default_rng(5).normal(size=200)
    median = estimate_statistic(200, lambda idx: float(np.median(values[idx])))
    assert median.mean == pytest.approx(float(np.median(values))) and median.ci_low < median.mean < median.ci_high


def test_clustered_comparison_of_groups_large_enough_to_be_resampled_in_batches() -> None:
    # Resampling comes in batches whose size depends on the number of clusters: two groups of very different
    # sizes must still give one draw per resample each.
    rng = np.random.default_rng(5)
    big = (rng.binomial(6, 0.3, 3000).astype(float), np.full(3000, 6.0))
    small = (rng.binomial(6, 0.6, 120).astype(float), np.full(120, 6.0))
    difference = compare_clustered(big, small)
    assert difference.difference == pytest.approx(small[0].sum() / 720 - big[0].sum() / 18000)
    assert difference.ci_low < difference.difference < difference.ci_high and difference.p_value < 0.01
