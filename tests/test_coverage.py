"""Coverage is tested, not assumed: simulated data with a known truth, the estimators `sim` reports, and the share
of nominal 95% intervals that cover the truth (93-97%) or of null tests that reject at 0.05 (3-7%)."""

import numpy as np
import pytest
from scipy import stats

from sim.analysis import summarize
from sim.records import Annotation
from sim.stats import clustered_rate, compare, compare_clustered, estimate, proportion

TRUE_MEAN = 10.0
NOMINAL = (0.93, 0.97)
NULL_REJECTIONS = (0.03, 0.07)


def clustered_conversations(rng: np.random.Generator, n: int, icc: float = 0.4) -> list[np.ndarray]:
    """Turn values of n conversations of 4-12 turns whose intra-conversation correlation is `icc`."""
    sizes = rng.integers(4, 13, n)
    levels = rng.normal(0, np.sqrt(icc), n)
    return [TRUE_MEAN + 3 * (levels[g] + rng.normal(0, np.sqrt(1 - icc), size)) for g, size in enumerate(sizes)]


def as_annotations(conversations: list[np.ndarray]) -> list[list[Annotation]]:
    """One turn annotation per value, a list per conversation, as analyzers store them."""
    return [[Annotation(f"e{g}", "words", float(v), turn_idx=i) for i, v in enumerate(values)] for g, values in enumerate(conversations)]


def covers(low: float, high: float, truth: float) -> bool:
    """Whether an interval holds the truth."""
    return low <= truth <= high


@pytest.mark.slow
def test_turn_means_cover_under_clustering_where_turn_resampling_does_not() -> None:
    rng = np.random.default_rng(11)
    replicates = [clustered_conversations(rng, 20) for _ in range(300)]
    by_conversation = np.mean([covers(m.ci_low, m.ci_high, TRUE_MEAN) for m in (summarize(as_annotations(r))[0] for r in replicates)])
    by_turn = np.mean([covers(*(lambda e: (e.ci_low, e.ci_high))(estimate(np.concatenate(r))), TRUE_MEAN) for r in replicates])
    assert NOMINAL[0] <= by_conversation <= NOMINAL[1]
    assert by_turn < 0.8  # what resampling turns as if independent gave: the bug this replaced


def test_rare_rate_covers() -> None:
    # p = 0.03 over 40 episodes: the exact coverage of the interval, summed over every possible count, must be
    # nominal; 2000 simulated samples through `estimate` must agree with it within three standard errors (at 96.9%
    # exact, simulation noise alone would carry a sample past 97% about a third of the time).
    n, p = 40, 0.03
    exact = sum(stats.binom.pmf(k, n, p) for k in range(n + 1) if covers(proportion(k, n).ci_low, proportion(k, n).ci_high, p))
    rng = np.random.default_rng(12)
    simulated = np.mean([covers((e := estimate(rng.binomial(1, p, n).astype(float))).ci_low, e.ci_high, p) for _ in range(2000)])
    assert NOMINAL[0] <= exact <= NOMINAL[1]
    assert abs(simulated - exact) < 3 * np.sqrt(exact * (1 - exact) / 2000)


def test_clustered_turn_flags_cover() -> None:
    # Turn flags at a rate of 0.1 whose conversations differ (beta-binomial, intra-conversation correlation 0.3).
    rng = np.random.default_rng(13)
    rate, icc, hits = 0.1, 0.3, []
    for _ in range(1000):
        sizes = rng.integers(4, 13, 30)
        flagged = rng.binomial(sizes, rng.beta(rate * (1 / icc - 1), (1 - rate) * (1 / icc - 1), 30))
        estimate_ = clustered_rate(flagged, sizes)
        hits.append(covers(estimate_.ci_low, estimate_.ci_high, rate))
    assert NOMINAL[0] <= np.mean(hits) <= NOMINAL[1]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["episode values", "turn values"])
def test_two_groups_under_the_null(kind: str) -> None:
    # Two groups drawn alike: the test must reject about 5% of the time and the interval of the difference cover 0.
    rng = np.random.default_rng(14)
    rejected, covered = [], []
    for _ in range(300):
        if kind == "episode values":
            difference = compare(rng.normal(size=30), rng.normal(size=30))
        else:
            first, second = clustered_conversations(rng, 20), clustered_conversations(rng, 25)
            difference = compare_clustered(
                ([c.sum() for c in first], [c.size for c in first]), ([c.sum() for c in second], [c.size for c in second])
            )
        rejected.append(difference.p_value < 0.05)
        covered.append(covers(difference.ci_low, difference.ci_high, 0.0))
    assert NULL_REJECTIONS[0] <= np.mean(rejected) <= NULL_REJECTIONS[1]
    assert NOMINAL[0] <= np.mean(covered) <= NOMINAL[1]
