"""Write the measured-coverage table of docs/statistics.md: simulated data with a known truth, the estimators
`sim` reports (sim/stats.py, sim.analysis.summarize), and how often their nominal 95% intervals cover the truth
and their tests reject a true null at 0.05, beside the turn resampling that `sim` used before.

    python docs/make_statistics.py [--replicates 1000] [--out docs/statistics.md]

Deterministic (fixed seeds): rerunning it rewrites the same table (tests/test_docs.py checks the committed one).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.analysis import summarize  # noqa: E402
from sim.records import Annotation  # noqa: E402
from sim.stats import clustered_rate, compare, compare_clustered, estimate  # noqa: E402

DOCS = Path(__file__).resolve().parent
BLOCK = "coverage"
MEAN = 10.0


@dataclass
class Outcome:
    """What one replicate gave: whether the interval covered the truth, and (tests) whether the null was rejected."""

    covered: bool
    rejected: Optional[bool] = None


@dataclass
class Scenario:
    """One simulated setting: what it is, the method under test, the method `sim` used before (if any), and a
    replicate function of a random generator that returns the outcomes of the two."""

    quantity: str
    data: str
    method: str
    replicate: Callable[[np.random.Generator], tuple[Outcome, Optional[Outcome]]]
    before: str = "—"


def conversations(rng: np.random.Generator, n: int, icc: float = 0.4, skewed: bool = False) -> list[np.ndarray]:
    """Turn values of n conversations of 4-12 turns with intra-conversation correlation `icc` and mean MEAN
    (log-normal with the same mean where `skewed`)."""
    sizes = rng.integers(4, 13, n)
    levels = rng.normal(0, np.sqrt(icc), n)
    values = [levels[g] + rng.normal(0, np.sqrt(1 - icc), size) for g, size in enumerate(sizes)]
    if skewed:
        return [MEAN * np.exp(v - 0.5) for v in values]  # E[exp(N(0, 1))] = exp(0.5)
    return [MEAN + 3 * v for v in values]


def covers(low: Optional[float], high: Optional[float], truth: float) -> bool:
    """Whether an interval holds the truth."""
    return low is not None and high is not None and low <= truth <= high


def turn_mean(n: int, skewed: bool) -> Callable[[np.random.Generator], tuple[Outcome, Optional[Outcome]]]:
    """A turn-level mean over n conversations: `summarize` against resampling turns."""

    def replicate(rng: np.random.Generator) -> tuple[Outcome, Optional[Outcome]]:
        values = conversations(rng, n, skewed=skewed)
        annotations = [[Annotation(f"e{g}", "x", float(v), turn_idx=i) for i, v in enumerate(c)] for g, c in enumerate(values)]
        metric = summarize(annotations)[0]
        old = estimate(np.concatenate(values))
        return Outcome(covers(metric.ci_low, metric.ci_high, MEAN)), Outcome(covers(old.ci_low, old.ci_high, MEAN))

    return replicate


def episode_rate(n: int, rate: float) -> Callable[[np.random.Generator], tuple[Outcome, Optional[Outcome]]]:
    """A rate of n independent 0/1 episode values: Wilson against the percentile bootstrap."""

    def replicate(rng: np.random.Generator) -> tuple[Outcome, Optional[Outcome]]:
        flags = rng.binomial(1, rate, n).astype(float)
        wilson = estimate(flags)
        draws = rng.binomial(n, flags.mean(), 2000) / n  # resampling n 0/1 values: a binomial count
        return Outcome(covers(wilson.ci_low, wilson.ci_high, rate)), Outcome(covers(*np.quantile(draws, [0.025, 0.975]), rate))

    return replicate


def turn_flags(n: int, rate: float, icc: float) -> Callable[[np.random.Generator], tuple[Outcome, Optional[Outcome]]]:
    """A rate of 0/1 turn flags over n conversations whose rates differ (beta-binomial): the design-effect
    interval against the percentile bootstrap over turns taken as independent."""
    a, b = rate * (1 / icc - 1), (1 - rate) * (1 / icc - 1)

    def replicate(rng: np.random.Generator) -> tuple[Outcome, Optional[Outcome]]:
        sizes = rng.integers(4, 13, n)
        hits = rng.binomial(sizes, rng.beta(a, b, n))
        clustered = clustered_rate(hits, sizes)
        draws = rng.binomial(sizes.sum(), hits.sum() / sizes.sum(), 2000) / sizes.sum()
        return Outcome(covers(clustered.ci_low, clustered.ci_high, rate)), Outcome(covers(*np.quantile(draws, [0.025, 0.975]), rate))

    return replicate


def null_episode_difference(rng: np.random.Generator) -> tuple[Outcome, Optional[Outcome]]:
    """Two groups of 30 episode values drawn alike: `compare`."""
    difference = compare(rng.normal(size=30), rng.normal(size=30))
    return Outcome(covers(difference.ci_low, difference.ci_high, 0.0), difference.p_value < 0.05), None


def null_rate_difference(rng: np.random.Generator) -> tuple[Outcome, Optional[Outcome]]:
    """Two groups of 40 episode flags at a rate of 0.1: Newcombe's interval and Fisher's exact test."""
    difference = compare(rng.binomial(1, 0.1, 40).astype(float), rng.binomial(1, 0.1, 40).astype(float))
    return Outcome(covers(difference.ci_low, difference.ci_high, 0.0), difference.p_value < 0.05), None


def null_turn_difference(rng: np.random.Generator) -> tuple[Outcome, Optional[Outcome]]:
    """Two groups of 20 and 25 conversations drawn alike: `compare_clustered` against comparing turns."""
    first, second = conversations(rng, 20), conversations(rng, 25)
    clustered = compare_clustered(([c.sum() for c in first], [c.size for c in first]), ([c.sum() for c in second], [c.size for c in second]))
    turns = compare(np.concatenate(first), np.concatenate(second))
    return (
        Outcome(covers(clustered.ci_low, clustered.ci_high, 0.0), clustered.p_value < 0.05),
        Outcome(covers(turns.ci_low, turns.ci_high, 0.0), turns.p_value < 0.05),
    )


TURNS = "bootstrap over turns"
FLAGS = "percentile bootstrap"
SCENARIOS = [
    Scenario("turn mean", "20 conversations of 4-12 turns, intra-conversation correlation 0.4", "cluster bootstrap", turn_mean(20, False), TURNS),
    Scenario("turn mean", "80 conversations, as above", "cluster bootstrap", turn_mean(80, False), TURNS),
    Scenario("turn mean", "20 conversations, log-normal (skewed) turn values", "cluster bootstrap", turn_mean(20, True), TURNS),
    Scenario("turn mean", "80 conversations, log-normal turn values", "cluster bootstrap", turn_mean(80, True), TURNS),
    Scenario("episode rate", "40 episodes, rate 0.03", "wilson", episode_rate(40, 0.03), FLAGS),
    Scenario("episode rate", "20 episodes, rate 0.05", "wilson", episode_rate(20, 0.05), FLAGS),
    Scenario("episode rate", "200 episodes, rate 0.3", "wilson", episode_rate(200, 0.3), FLAGS),
    Scenario("turn rate", "30 conversations, rate 0.1, correlation 0.3", "clopper-pearson, design effect", turn_flags(30, 0.1, 0.3), TURNS),
    Scenario("turn rate", "40 conversations, rate 0.03, correlation 0.3", "clopper-pearson, design effect", turn_flags(40, 0.03, 0.3), TURNS),
    Scenario("turn rate", "60 conversations, rate 0.3, correlation 0.05", "clopper-pearson, design effect", turn_flags(60, 0.3, 0.05), TURNS),
    Scenario("difference of episode means, null", "30 against 30 episodes, normal", "bootstrap, permutation", null_episode_difference),
    Scenario("difference of episode rates, null", "40 against 40 episodes, rate 0.1", "newcombe, fisher exact", null_rate_difference),
    Scenario("difference of turn means, null", "20 against 25 conversations, correlation 0.4", "cluster bootstrap, cluster permutation",
             null_turn_difference, "bootstrap and permutation over turns"),
]


def share(outcomes: list[Optional[bool]]) -> str:
    """A share of replicates as a percentage, or a dash where the scenario has no such outcome."""
    present = [value for value in outcomes if value is not None]
    return f"{100 * np.mean(present):.1f}%" if present else "—"


def run(scenario: Scenario, replicates: int, seed: int) -> list[str]:
    """A table row: the scenario, the method's coverage and null rejections, and those of the method before it."""
    rng = np.random.default_rng(seed)
    results = [scenario.replicate(rng) for _ in range(replicates)]
    new, old = [result[0] for result in results], [result[1] for result in results]
    old_cells = ["—", "—"] if old[0] is None else [share([o.covered for o in old]), share([o.rejected for o in old])]
    return [
        scenario.quantity, scenario.data, scenario.method, share([o.covered for o in new]), share([o.rejected for o in new]),
        scenario.before, *old_cells,
    ]


def table(replicates: int) -> str:
    """The coverage table as Markdown, with the command that wrote it above."""
    header = ["quantity", "simulated data", "interval, test", "covers", "rejects", "before", "covered", "rejected"]
    rows = [run(scenario, replicates, seed) for seed, scenario in enumerate(SCENARIOS)]
    lines = [
        f"`python docs/make_statistics.py --replicates {replicates}` ({replicates} replicates per row. Covers: the share of nominal 95%"
        " intervals that hold the truth; rejects: the share of tests of a true null with p < 0.05 (nominal 5%); before: the"
        f" method `sim` used until this table was made, on the same data. A share of {replicates} replicates is itself uncertain"
        f" by about ±{100 * 1.96 * np.sqrt(0.05 * 0.95 / replicates):.1f} points at 95%.)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def replace_block(text: str, name: str, content: str) -> str:
    """`text` with the generated block `name` (between its markers) replaced by `content`."""
    start, end = f"<!-- generated: {name} -->", "<!-- end generated -->"
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise SystemExit(f"no '{start}' ... '{end}' block to replace")
    return f"{head}{start}\n{content}\n{end}{rest.split(end, 1)[1]}"


def main() -> None:
    """Compute the table and write it into the document's generated block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000, help="simulated data sets per row")
    parser.add_argument("--out", type=Path, default=DOCS / "statistics.md", help="the document holding the block")
    args = parser.parse_args()
    args.out.write_text(replace_block(args.out.read_text(encoding="utf-8"), BLOCK, table(args.replicates)), encoding="utf-8")


if __name__ == "__main__":
    main()
