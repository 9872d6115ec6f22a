"""Conversation statistics: turn lengths, repetition and loops, how episodes ended, task accuracy where there is a
ground truth, and speaker-transition graph measures for conversations of three or more speakers."""

from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx

from analyzers.base import Analyzer, Scored, analyzers
from analyzers.text import words
from sim.graphs import transition_graph
from sim.records import Annotation, Episode
from sim.stats import Estimate, entropy_bits, estimate

NGRAM = 3
# Two turns whose word sets overlap this much (Jaccard) are the same turn said again: a loop.
LOOP_OVERLAP = 0.9
LOOP_MIN_WORDS = 3
# "guard_stop: role_flip (role_flipped) at turn 3" and "done (guards: 1 guard_flag)" end as "guard_stop", "done".
REASON_HEAD = re.compile(r"^[^:(]*")


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    """The distinct n-grams of a token list."""
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def ending_of(episode: Episode) -> str:
    """The head of the termination reason (before any ':' or '('), or the status when there is none."""
    reason = (episode.termination_reason or "").strip()
    head = REASON_HEAD.match(reason).group(0).strip() if reason else ""
    return head or episode.status


@dataclass
class ConversationStatsConfig:
    """Schema of `analyzer.conversation_stats`; the definitions have no settings."""

    _target_: str = "analyzers.conversation_stats.ConversationStatsAnalyzer"


@analyzers.register("conversation_stats", config=ConversationStatsConfig)
class ConversationStatsAnalyzer(Analyzer):
    """Per turn: words and the share of its word trigrams said earlier in the episode; per episode: turns, mean
    turn length, repetition, loops (a turn that repeats an earlier one almost word for word), the task's
    correctness where it has a ground truth, and for 3+ speakers the transition graph's density, reciprocity,
    self-loops and entropy of who speaks next; per group: the share of each way the conversations ended."""

    version = "1"
    uses_corpus = True  # the share of each ending is a property of the group

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
        earlier: list[set[str]] = []
        lengths, repeated_shares, loops = [], [], 0
        for turn in episode.turns:
            tokens = words(turn.content)
            grams = ngrams(tokens)
            lengths.append(len(tokens))
            annotations.append(Annotation(episode.id, "turn_words", float(len(tokens)), turn_idx=turn.idx))
            if grams:
                share = len(grams & seen_ngrams) / len(grams)
                repeated_shares.append(share)
                annotations.append(Annotation(episode.id, "repeated_trigram_share", share, turn_idx=turn.idx))
            vocabulary = set(tokens)
            if len(tokens) >= LOOP_MIN_WORDS and any(
                len(vocabulary & other) / len(vocabulary | other) >= LOOP_OVERLAP for other in earlier
            ):
                loops += 1
            earlier.append(vocabulary)
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

