"""Grouping, sides and comparisons shared by every analyzer, checked with a tiny analyzer defined here."""

from typing import Optional

import pytest

from analyzers.base import Analyzer
from sim.analysis import analyze, build_analyzers
from sim.errors import SimError
from sim.records import Annotation, Episode, Turn
from sim.stats import Estimate


class LengthAnalyzer(Analyzer):
    """Characters of the first turn, per author; the corpus statistic is the number of distinct texts."""

    name = "length"
    uses_corpus = True

    def applies_to(self, episode: Episode) -> bool:
        return bool(episode.turns)

    def side_of(self, episode: Episode) -> Optional[str]:
        return episode.meta.get("author")

    def annotate(self, episode: Episode) -> list[Annotation]:
        return [Annotation(episode.id, "chars", float(len(episode.turns[0].content)))]

    def corpus_metrics(self, scored) -> dict[str, Estimate]:
        return {"distinct": Estimate(len(scored), float(len({e.turns[0].content for e, _ in scored})), None, None)}


def add(store, number: int, dataset: str, author: str, content: str) -> None:
    episode = Episode(f"e{number}", None, "import", "free_text", None, {}, "done", None, dataset, {"author": author}, [Turn(0, author, "text", content)])
    store.add_imported_episode(episode)


def test_metrics_per_group_and_side_with_llm_compared_against_human(store) -> None:
    for i in range(6):
        add(store, i, "a", "llm", "x" * (10 + i))
        add(store, 10 + i, "a", "human", "y" * (2 + i % 2))
    add(store, 20, "b", "human", "zz")
    (summary,) = analyze(store, [LengthAnalyzer()])
    metrics = {(m.group, m.name): m for m in summary.metrics}
    assert set(metrics) == {(g, n) for g in ("a / human", "a / llm", "b / human") for n in ("chars", "distinct")}
    assert metrics[("a / human", "distinct")].mean == 2 and metrics[("a / llm", "chars")].mean == 12.5
    (comparison,) = summary.comparisons  # group b has one side only
    assert (comparison.group, comparison.reference, comparison.other) == ("a", "human", "llm")
    assert comparison.difference == pytest.approx(12.5 - 2.5) and comparison.p_value < 0.05
    annotations = store.db.execute("SELECT count(*) FROM annotations WHERE analyzer = 'length'").fetchone()
    assert annotations == (13,)
    assert len(analyze(store, [LengthAnalyzer()], dataset="b")[0].metrics) == 2


def test_unknown_analyzer_names_the_known_ones() -> None:
    with pytest.raises(SimError, match="unknown analyzer 'nope'.*free_text.*role_flip"):
        build_analyzers(None, ["nope"])


def test_analyzing_again_replaces_and_naming_twice_runs_once(store) -> None:
    from analyzers.role_flip import RoleFlipAnalyzer

    for number in range(3):
        store.add_imported_episode(
            Episode(f"r{number}", None, "import", "conversation", "t", {"user": "U", "assistant": "A"}, "done", None, "d", {},
                    [Turn(0, "U", "user", "Solution: x"), Turn(1, "A", "assistant", "Solution: y")])
        )
    assert len(build_analyzers(None, ["role_flip", "role_flip"])) == 1
    counts = []
    for _ in range(2):
        analyze(store, [RoleFlipAnalyzer()])
        counts.append(store.db.execute("SELECT count(*) FROM annotations WHERE analyzer = 'role_flip'").fetchone()[0])
    assert counts[0] == counts[1] == 3 * (1 + 6)  # one flipped user turn and six episode values each
