"""What analyzers found, as `sim` reports it: metrics with intervals, comparisons between sides and groups, and
one analyzer's summary of them. Plain records: the analysis makes them, reports and figures read them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from sim.stats import Difference


@dataclass
class Metric:
    """One value of a group with its 95% interval: an annotation summarized over episodes (unit `episode`: n
    episode values) or over turns (unit `turn`: n turn values pooled over n_episodes conversations, the interval
    from resampling conversations), or a statistic of the whole group (unit `corpus`, no total; a p-value and a
    Benjamini-Hochberg q-value where it is a test). `interval` names how the interval was made."""

    name: str
    unit: str
    n: int
    total: Optional[float]
    mean: float
    ci_low: Optional[float]
    ci_high: Optional[float]
    group: str = ""
    p_value: Optional[float] = None
    q_value: Optional[float] = None
    n_episodes: int = 0
    n_turns: Optional[int] = None
    interval: str = ""


@dataclass(frozen=True, kw_only=True)
class Comparison(Difference):
    """One annotation compared between two sides of a group (e.g. llm against human) or two groups: an episode
    value (unit `episode`) or a turn value pooled per conversation (unit `turn`), with the q-value of its p among
    the analyzer's comparisons of the same group (Benjamini-Hochberg)."""

    name: str
    group: str
    reference: str
    other: str
    unit: str = "episode"
    q_value: Optional[float] = None


@dataclass(frozen=True, kw_only=True)
class PairedComparison(Comparison):
    """One annotation compared pair by pair between the baseline group and another group: the mean paired
    difference (other minus baseline) over the `n_pairs` items both measured, with `unpaired` items (measured by
    one side only) left out, and `unpaired_width`, the width of the interval the same values would get compared as
    independent groups, so that what pairing gains shows."""

    n_pairs: int = 0
    unpaired: int = 0
    unpaired_width: Optional[float] = None


@dataclass
class Yardstick:
    """An LLM value read against people: the value, the same metric on the group's human side (where it has
    one), and the human ceiling (`Ceiling`: a `level` people reach among themselves, or a `gap` between halves
    of the human set)."""

    name: str
    group: str
    kind: str
    llm: Metric
    ceiling: Metric
    human: Optional[Metric] = None


@dataclass
class AnalyzerSummary:
    """What one analyzer found over a set of episodes."""

    analyzer: str
    version: str
    n_episodes: int
    metrics: list[Metric] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    # Each group against a reference group (`sim compare`): `reference` and `other` name the groups.
    against_reference: list[Comparison] = field(default_factory=list)
    # The same, pair by pair (`sim compare --paired`).
    paired: list[PairedComparison] = field(default_factory=list)
    # What a reader must know before reading the numbers: the analyzer's caveats per group, its validity.
    notes: list[str] = field(default_factory=list)
    # LLM metrics beside their human values and human ceilings.
    yardsticks: list[Yardstick] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form; `against_reference` only where a reference group was given."""
        document = {
            "analyzer": self.analyzer,
            "version": self.version,
            "n_episodes": self.n_episodes,
            "metrics": [asdict(m) for m in self.metrics],
            "comparisons": [asdict(c) for c in self.comparisons],
            "notes": self.notes,
            "yardsticks": [asdict(y) for y in self.yardsticks],
        }
        if self.against_reference:
            document["against_reference"] = [asdict(c) for c in self.against_reference]
        if self.paired:
            document["paired"] = [asdict(c) for c in self.paired]
        return document
