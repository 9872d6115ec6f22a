"""Conversation statistics: turn lengths, repetition and loops, how episodes ended, task accuracy where there is a
ground truth, and speaker-transition graph measures for conversations of three or more speakers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

import networkx as nx

from analyzers.base import Analyzer, Detector, Scored, MetricInfo, analyzers
from analyzers.text import words
from sim.graphs import transition_graph
from sim.errors import require_score
from sim.records import Annotation, Episode
from sim.stats import Estimate, entropy_bits, estimate

NGRAM = 3
# A turn whose loop score reaches this is flagged `looped`: a near copy of an earlier turn (one word dropped,
# doubled or moved in a turn of four words scores 0.75 and more) or a turn that mostly repeats itself. Chosen by
# the known-answer test in docs/validity.md (recall and false flags on PersuasionForGood).
LOOP_THRESHOLD = 0.75
# Shorter turns ("Yes.", "Thank you!") are said again in any conversation; they never count as loops.
LOOP_MIN_WORDS = 4
# "guard_stop: role_flip (role_flipped) at turn 3" and "done (guards: 1 guard_flag)" end as "guard_stop", "done".
REASON_HEAD = re.compile(r"^[^:(]*")


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    """The distinct n-grams of a token list."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def self_repetition(tokens: list[str]) -> float:
    """The share of a turn's word trigrams that repeat an earlier trigram of the same turn: 0 for prose, near 1 for
    "You bake the pizza." said thirty times."""
    positions = len(tokens) - NGRAM + 1
    return 1.0 - len(ngrams(tokens)) / positions if positions > 0 else 0.0


def copy_similarity(tokens: list[str], earlier: list[list[str]]) -> float:
    """How closely the turn copies its most similar earlier turn: the largest word-sequence similarity
    (difflib's ratio, 2 x matched words / all words) to any of them."""
    best = 0.0
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(tokens)
    for other in earlier:
        matcher.set_seq1(other)
        # quick_ratio bounds ratio from above: most pairs are dismissed without the full match.
        if matcher.real_quick_ratio() > best and matcher.quick_ratio() > best:
            best = max(best, matcher.ratio())
    return best


def loop_score(tokens: list[str], earlier: list[list[str]]) -> float:
    """A turn's loop score in [0, 1]: the larger of its copy of an earlier turn and its repetition of itself;
    0 for turns shorter than LOOP_MIN_WORDS."""
    if len(tokens) < LOOP_MIN_WORDS:
        return 0.0
    return max(copy_similarity(tokens, earlier), self_repetition(tokens))


def ending_of(episode: Episode) -> str:
    """The head of the termination reason (before any ':' or '('), or the status when there is none."""
    reason = (episode.termination_reason or "").strip()
    head = REASON_HEAD.match(reason).group(0).strip() if reason else ""
    return head or episode.status


@dataclass
class ConversationStatsConfig:
    """Schema of `analyzer.conversation_stats`: a turn is flagged `looped` when its loop score reaches
    `loop_threshold`."""

    _target_: str = "analyzers.conversation_stats.ConversationStatsAnalyzer"
    loop_threshold: float = LOOP_THRESHOLD


@analyzers.register("conversation_stats", config=ConversationStatsConfig)
class ConversationStatsAnalyzer(Analyzer):
    """Per turn: words, the share of its word trigrams said earlier in the episode, and `loop_score` (how closely
    it copies an earlier turn or repeats itself) with the flag `looped`; per episode: turns, mean turn length,
    repetition, loops (looped turns), the task's
    correctness where it has a ground truth, and for 3+ speakers the transition graph's density, reciprocity,
    self-loops and entropy of who speaks next; per group: the share of each way the conversations ended."""

    version = "2"
    metrics = {
        "turn_words": MetricInfo("words of the turn", "turn", "count"),
        "repeated_trigram_share": MetricInfo("share of the turn's word trigrams said earlier in the conversation", "turn", "proportion", "higher"),
        "loop_score": MetricInfo("how closely the turn (4+ words) copies an earlier turn or repeats itself, 0 to 1", "turn", "score", "higher"),
        "looped": MetricInfo("1 where loop_score reaches analyzer.conversation_stats.loop_threshold", "turn", "binary", "higher"),
        "n_turns": MetricInfo("turns of the conversation", "episode", "count"),
        "mean_turn_words": MetricInfo("mean words per turn", "episode", "score"),
        "mean_repeated_trigram_share": MetricInfo("mean repeated_trigram_share of the conversation's turns", "episode", "proportion", "higher"),
        "loop_turns": MetricInfo("looped turns of the conversation", "episode", "count", "higher"),
        "has_loop": MetricInfo("1 where any turn looped", "episode", "binary", "higher"),
        "correct": MetricInfo("1 where the task's answer matched its ground truth (meta.correct)", "episode", "binary"),
        "graph_density": MetricInfo("density of the who-speaks-after-whom graph (3+ speakers)", "episode", "score"),
        "graph_reciprocity": MetricInfo("reciprocity of the speaker-transition graph (3+ speakers)", "episode", "proportion"),
        "self_transition_share": MetricInfo("share of transitions where a speaker follows itself (3+ speakers)", "episode", "proportion"),
        "transition_entropy": MetricInfo("entropy in bits of the speaker transitions (3+ speakers)", "episode", "score"),
        "ended[REASON]": MetricInfo("share of the group's conversations that ended for REASON (termination_reason)", "corpus", "proportion"),
    }
    uses_corpus = True  # the share of each ending is a property of the group
    turn_flags = ("looped",)
    detectors = (Detector("loop", "loop_score", "looped"),)

    def __init__(self, loop_threshold: float) -> None:
        require_score("analyzer.conversation_stats.loop_threshold", loop_threshold)
        self.loop_threshold = loop_threshold

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """The share of conversations that ended each way (`ended[max_turns]`, `ended[task_done]`, ...)."""
        endings = [ending_of(episode) for episode, _ in scored]
        return {f"ended[{reason}]": estimate([float(e == reason) for e in endings]) for reason in sorted(set(endings))}

    def applies_to(self, episode: Episode) -> bool:
        """Conversations with at least one turn."""
        return episode.kind == "conversation" and bool(episode.turns)

    def annotate(self, episode: Episode) -> list[Annotation]:
        """Turn-level words and repetition, then the episode's statistics."""
        annotations: list[Annotation] = []
        seen_ngrams: set[tuple[str, ...]] = set()
        earlier: list[list[str]] = []
        lengths, repeated_shares, loops = [], [], 0
        for turn in episode.turns:
            tokens = words(turn.content)
            grams = ngrams(tokens)
            lengths.append(len(tokens))
            score = loop_score(tokens, earlier)
            looped = score >= self.loop_threshold
            loops += looped
            annotations += [
                Annotation(episode.id, "turn_words", float(len(tokens)), turn_idx=turn.idx),
                Annotation(episode.id, "loop_score", score, turn_idx=turn.idx),
                Annotation(episode.id, "looped", float(looped), turn_idx=turn.idx),
            ]
            if grams:
                share = len(grams & seen_ngrams) / len(grams)
                repeated_shares.append(share)
                annotations.append(Annotation(episode.id, "repeated_trigram_share", share, turn_idx=turn.idx))
            if len(tokens) >= LOOP_MIN_WORDS:
                earlier.append(tokens)
            seen_ngrams |= grams
        values = {
            "n_turns": float(len(episode.turns)),
            "mean_turn_words": sum(lengths) / len(lengths),
            "loop_turns": float(loops),
            "has_loop": float(loops > 0),
        }
        if repeated_shares:
            values["mean_repeated_trigram_share"] = sum(repeated_shares) / len(repeated_shares)
        if isinstance(episode.meta.get("correct"), bool):
            values["correct"] = float(episode.meta["correct"])
        speakers = {turn.speaker for turn in episode.turns}
        if len(speakers) >= 3:
            values.update(graph_measures(episode))
        return annotations + [Annotation(episode.id, name, value) for name, value in values.items()]


def graph_measures(episode: Episode) -> dict[str, float]:
    """Density, reciprocity, share of self-transitions and the entropy (bits) of next-speaker transitions."""
    graph = transition_graph(episode.turns)
    weights = [data["weight"] for _, _, data in graph.edges(data=True)]
    total = sum(weights)
    return {
        "graph_density": nx.density(graph),
        "graph_reciprocity": nx.overall_reciprocity(graph) if graph.number_of_edges() else 0.0,
        "self_transition_share": sum(d["weight"] for a, b, d in graph.edges(data=True) if a == b) / total if total else 0.0,
        "transition_entropy": entropy_bits(weights),
    }

