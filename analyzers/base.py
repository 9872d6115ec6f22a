"""What every analyzer provides: a name, a version, annotations for one stored episode, and how its results group."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Optional

from sim.records import Annotation, Episode, Turn
from sim.registry import Registry
from sim.stats import Estimate

if TYPE_CHECKING:
    from sim.compare import ReportView
    from sim.figures import Chart
    from sim.report import Tabular
    from sim.store import Store

# An episode with the annotations this analyzer gave it.
Scored = tuple[Episode, list[Annotation]]


@dataclass(frozen=True)
class Detector:
    """What a known-answer test (`sim validate`) reads of an analyzer for perturbations of one `kind`: the per-turn
    `score` (higher: more likely perturbed) and the turn `flag` set at the analyzer's default threshold (None where
    the analyzer gives a score only)."""

    kind: str
    score: str
    flag: Optional[str] = None


@dataclass(frozen=True)
class Ceiling:
    """How one LLM metric is read against people: `ceiling` names the human-vs-human value of the same measure (a
    `*` in both names stands for the same text, such as a judge or a feature set). Kind `level`: the value people
    reach among themselves (agreement, a leave-one-annotator-out match); kind `gap`: how far the metric moves
    between two random halves of the human set, to set beside the LLM-minus-human difference."""

    metric: str
    ceiling: str
    kind: str = "level"


@dataclass
class ReportFigures:
    """What an analyzer adds to its own `sim compare` section: tables, then figures (a None figure had nothing to
    draw and is left out)."""

    tables: list["Tabular"] = field(default_factory=list)
    charts: list[Optional["Chart"]] = field(default_factory=list)


UNITS = ("episode", "turn", "corpus")
# What a value can be: 0 or 1; a whole number; a share in [0, 1]; -1, 0 or +1 (which of two outputs); any real number.
LEVELS = ("binary", "count", "proportion", "choice", "score")
# Which way a value moves where the data shows more of the artifact (further from people's data, or a judge's bias).
DIRECTIONS = ("higher", "lower", "neutral")
# An upper-case word in a declared metric name stands for a part of the name the data fills in (a judge, a reason).
PLACEHOLDER = re.compile(r"[A-Z]+")


@dataclass(frozen=True)
class MetricInfo:
    """What one metric of an analyzer means: its definition, its unit (`episode`, `turn` or `corpus`), its level
    (one of LEVELS) and its direction (`higher` or `lower`: which values mean more artifact; `neutral`: neither,
    a description or a yardstick)."""

    definition: str
    unit: str
    level: str
    direction: str = "neutral"

    def __post_init__(self) -> None:
        for value, allowed in ((self.unit, UNITS), (self.level, LEVELS), (self.direction, DIRECTIONS)):
            if value not in allowed:
                raise ValueError(f"MetricInfo: {value!r} is not one of {', '.join(allowed)}")


def unanswered(unit: str) -> MetricInfo:
    """`unanswered_rate` of a judge that gives one verdict per `unit`."""
    return MetricInfo(f"1 where the judge's answer on the {unit} concluded neither yes nor no (never read as either)", unit, "binary")


@cache
def _pattern(declared: str) -> re.Pattern[str]:
    """A declared metric name as a regular expression: each placeholder matches any text."""
    parts = PLACEHOLDER.split(declared)
    return re.compile(".+".join(re.escape(part) for part in parts))


class Analyzer(ABC):
    """Scores one episode at a time; reads only what the store holds, so generated and imported data alike.

    Results are summarized per group (`group_of`: the dataset or run, by default) and, within a group, per side
    (`side_of`: e.g. human or llm); sides are compared metric by metric. Analyzers whose findings are properties
    of a whole set (diversity, agreement, a classifier's AUC) set `uses_corpus` and add `corpus_metrics`."""

    name: str  # set by the registry
    version: str = "1"
    checks_turns: bool = False  # True when `check_turn` can judge a turn on its own, so it can serve as a live guard
    uses_corpus: bool = False  # True when `corpus_metrics` or `compare_corpora` need the episodes of a group
    # True when turn-level annotations are flags written only where they fire: summaries then leave them out
    # (their mean would always be 1) and the analyzer reports rates from episode-level counts instead.
    sparse_turn_flags: bool = False
    # True when annotating learns from the corpus (a model cross-fitted over its conversations): `annotate_many`
    # then gets every applicable episode of the analysis at once, not batches.
    fits_corpus: bool = False
    # Turn-level annotations that mark a problem where their value is non-zero (what `sim show --flagged` shows).
    turn_flags: tuple[str, ...] = ()
    # The perturbations whose turns this analyzer claims to find, and by which score and flag (`sim validate`).
    detectors: tuple[Detector, ...] = ()
    # True when every setting asks an LLM judge, which must be named: such an analyzer has nothing of its own to
    # validate, so `sim validate` leaves it out unless named.
    always_judges: bool = False
    # The human yardstick of its LLM metrics, where the data holds one (reported beside them as `yardsticks`).
    ceilings: tuple[Ceiling, ...] = ()
    # Every metric it reports, by name (an upper-case word stands for what the data fills in: `choice[JUDGE]`);
    # `sim metrics` lists them.
    metrics: dict[str, MetricInfo] = {}
    # A digest of the settings it was built with (set by sim.analysis.build_analyzers), so that a validation
    # speaks for these settings only.
    settings_hash: str = "defaults"

    @classmethod
    def metric_info(cls, name: str) -> Optional[tuple[str, MetricInfo]]:
        """The declared metric that `name` (as the analyzer writes it: `choice[gpt-4]`) is, with its declared name."""
        if name in cls.metrics:
            return name, cls.metrics[name]
        matches = [(declared, info) for declared, info in cls.metrics.items() if _pattern(declared).fullmatch(name)]
        # The most specific declaration wins: `distinct_verb_objects@50` is not a `distinct_N@K`.
        return max(matches, key=lambda match: len(PLACEHOLDER.sub("", match[0])), default=None)

    @abstractmethod
    def applies_to(self, episode: Episode) -> bool:
        """Whether this analyzer has anything to say about `episode`."""

    @abstractmethod
    def annotate(self, episode: Episode) -> list[Annotation]:
        """Episode-level and turn-level values for one episode."""

    def annotate_many(self, episodes: list[Episode]) -> list[list[Annotation]]:
        """`annotate` for several episodes at once; analyzers that batch work (embeddings) override it."""
        return [self.annotate(episode) for episode in episodes]

    def use_requests(self, runner: Any) -> None:
        """Send any requests (a judge's) with the run's `runner` settings (retries, the cache, the most requests in
        flight); the default sends none."""

    def open(self, store: "Store") -> None:
        """Acquire what annotating needs beyond the episode (a judge backend); called before the first episode."""

    def close(self) -> None:
        """Release what `open` acquired; called after the last episode, also on failure."""

    def check_turn(self, turn: Turn) -> Optional[str]:
        """Why `turn` alone should be flagged, or None; only analyzers with `checks_turns` implement it."""
        raise NotImplementedError(f"analyzer {self.name!r} does not judge single turns")

    def group_of(self, episode: Episode) -> str:
        """The group `episode` is summarized in: its dataset, or else its run."""
        return episode.dataset or episode.run_id or "(none)"

    def cluster_of(self, episode: Episode) -> str:
        """The unit of independence `episode` belongs to: itself, unless several episodes hold measurements of one
        thing (judgments of one compared pair), whose values are then pooled before they are resampled."""
        return episode.id

    def side_of(self, episode: Episode) -> Optional[str]:
        """Which side of a within-group comparison `episode` is on (None: no comparison)."""
        return None

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """Statistics of a whole group (one side of it, where there are sides), by name."""
        return {}

    def notes(self, scored: list[Scored]) -> list[str]:
        """What a reader must know before reading the group's numbers (e.g. that a detector cannot work here)."""
        return []

    def compare_corpora(self, reference: list[Scored], other: list[Scored]) -> dict[str, Estimate]:
        """Statistics that need both sides at once (a two-sample test), by name."""
        return {}

    @classmethod
    def report_figures(cls, view: "ReportView") -> ReportFigures:
        """The analyzer's own tables and figures in `sim compare`, beyond the metrics every analyzer gets."""
        return ReportFigures()


analyzers: Registry[Analyzer] = Registry("analyzer")
