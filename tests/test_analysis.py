"""Grouping, sides and comparisons shared by every analyzer, checked with a tiny analyzer defined here."""

from typing import Optional

import pytest

from analyzers.base import Analyzer
from sim.analysis import analyze, build_analyzers
from sim.errors import SimError
from sim.records import Annotation, Episode
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


def test_metrics_per_group_and_side_with_llm_compared_against_human(store, episode) -> None:
    def add(number: int, dataset: str, author: str, content: str) -> None:
        store.add_imported_episode(
            episode(f"e{number}", [(author, "text", content)], kind="free_text", dataset=dataset, meta={"author": author})
        )

    for i in range(6):
        add(i, "a", "llm", "x" * (10 + i))
        add(10 + i, "a", "human", "y" * (2 + i % 2))
    add(20, "b", "human", "zz")
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


def test_analyzing_again_replaces_and_naming_twice_runs_once(store, episode) -> None:
    from analyzers.role_flip import RoleFlipAnalyzer

    for number in range(3):
        store.add_imported_episode(
            episode(f"r{number}", [("U", "user", "Solution: x"), ("A", "assistant", "Solution: y")], task="t",
                    roles={"user": "U", "assistant": "A"})
        )
    assert len(build_analyzers(None, ["role_flip", "role_flip"])) == 1
    counts = []
    for _ in range(2):
        analyze(store, [RoleFlipAnalyzer()])
        counts.append(store.db.execute("SELECT count(*) FROM annotations WHERE analyzer = 'role_flip'").fetchone()[0])
    assert counts[0] == counts[1] == 3 * (1 + 6)  # one flipped user turn and six episode values each


def test_turn_metrics_resample_conversations_end_to_end(sim, episode, tmp_path) -> None:
    """`sim analyze --json` on 40 conversations whose turn lengths cluster strongly by conversation: the interval of
    the mean turn length is as wide as a bootstrap over conversations, and 0 role flips in 40 is no proof of 0."""
    import json

    import numpy as np

    from sim.store import Store

    rng = np.random.default_rng(3)
    lengths = [np.clip(rng.normal(level, 1.5, 8).round(), 1, None).astype(int) for level in rng.uniform(3, 40, 40)]
    store = Store.open(tmp_path / "clustered.db")
    with store.db.atomic():
        for g, conversation in enumerate(lengths):
            roles = ["user" if i % 2 == 0 else "assistant" for i in range(conversation.size)]
            turns = [(role, " ".join(["word"] * n)) for role, n in zip(roles, conversation)]
            store.add_imported_episode(episode(f"c{g}", turns, dataset="clustered"))
    store.close()
    result = sim("analyze", "--db", str(tmp_path / "clustered.db"), "--analyzer", "conversation_stats", "--analyzer", "role_flip", "--json")
    assert result.returncode == 0, result.stderr
    metrics = {(s["analyzer"], m["name"], m["unit"]): m for s in json.loads(result.stdout)["analyzers"] for m in s["metrics"]}
    words = metrics[("conversation_stats", "turn_words", "turn")]
    assert (words["n_episodes"], words["n_turns"], words["interval"]) == (40, 320, "cluster bootstrap")
    sums, counts = np.array([c.sum() for c in lengths], float), np.array([c.size for c in lengths], float)
    draws = rng.multinomial(40, np.full(40, 1 / 40), size=4000)
    by_conversation = np.subtract(*np.quantile((draws @ sums) / (draws @ counts), [0.975, 0.025]))
    assert 0.75 * by_conversation <= words["ci_high"] - words["ci_low"] <= 1.5 * by_conversation
    flips = metrics[("role_flip", "role_flipping_happens", "episode")]
    assert (flips["mean"], flips["n"], flips["interval"]) == (0.0, 40, "wilson") and flips["ci_high"] >= 0.05


def test_llm_metrics_are_read_against_human_ceilings() -> None:
    from analyzers.base import Ceiling
    from sim.analysis import yardsticks
    from sim.summary import Metric

    def metric(group: str, name: str, mean: float) -> Metric:
        return Metric(name, "corpus", 10, None, mean, mean - 0.1, mean + 0.1, group)

    metrics = [
        metric("mt", "judge_agreement[gpt4]", 0.66), metric("mt", "human_human_agreement", 0.63),
        metric("set / llm", "distinct", 0.6), metric("set / human", "distinct", 0.8), metric("set / human", "distinct_split_gap", 0.05),
        metric("other", "judge_agreement[gpt4]", 0.5),  # no ceiling in this group: no yardstick
    ]
    found = yardsticks(metrics, [Ceiling("judge_agreement[*]", "human_human_agreement"), Ceiling("distinct", "distinct_split_gap", "gap")])
    assert [(y.group, y.name, y.kind, y.ceiling.mean, y.human and y.human.mean) for y in found] == [
        ("mt", "judge_agreement[gpt4]", "level", 0.63, None),
        ("set / llm", "distinct", "gap", 0.05, 0.8),  # the human side is the yardstick, not read against itself
    ]
    # sim compare: a group without people of its own is read against the reference's human side.
    across = [metric("llm_set / llm", "distinct", 0.6), metric("seeds / human", "distinct", 0.8), metric("seeds / human", "distinct_split_gap", 0.05)]
    (read,) = yardsticks(across, [Ceiling("distinct", "distinct_split_gap", "gap")], reference="seeds")
    assert (read.group, read.human.mean, read.ceiling.mean) == ("llm_set / llm", 0.8, 0.05)
    assert yardsticks(across, [Ceiling("distinct", "distinct_split_gap", "gap")]) == []
    with_judge = yardsticks([metric("g", "kappa[a]", 0.2), metric("g", "kappa_ceiling[a]", 0.4)], [Ceiling("kappa[*]", "kappa_ceiling[*]")])
    assert [y.ceiling.name for y in with_judge] == ["kappa_ceiling[a]"]
