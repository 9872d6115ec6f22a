"""Instructions: how diverse and how repetitive a set of instructions is — distinct n-grams, compressibility,
pairwise ROUGE-L, embedding dispersion, duplicates, the spread of verb-object roots, and lengths.

Human ceiling: on a human side, `X@k_human_split_gap` is how far X@k moves between two random halves of the human
set (`sim.stats.split_half_difference`, SPLIT_DRAWS splits): the gap between an LLM set's X@k and the human X@k
means little unless it is wider than this. Both halves are the same size (n // 2), and within each half X is taken
exactly as it is reported, at k = `subset_size` items (the mean over HALF_DRAWS random k-subsets of the half), so
size-dependent statistics compare at equal size; the gap is left out where a half holds fewer than k items. A half
draws its subsets from half as many instructions as the whole set, so the gap is on the generous side.
`pairwise_rouge_l_human_split_gap` reuses the scored ROUGE pairs: each half's mean is over the pairs with both
instructions in it (about a quarter of them). `duplicate_rate` grows with set size and has no fixed-size form
here, so it has no split gap."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Optional

import numpy as np

from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, Ceiling, Scored, MetricInfo, analyzers
from analyzers.text import words
from sim.errors import require_at_least
from sim.records import Annotation, Episode
from sim.stats import Estimate, entropy_bits, estimate, split_half_difference, subsample_statistic

HUMAN = "human"
# A statistic of the items at the given indices.
SetStatistic = Callable[[np.ndarray], float]
# Sampled ROUGE-L pairs: first and second instruction of each pair, and its score.
RougePairs = tuple[np.ndarray, np.ndarray, np.ndarray]
# Human split-half gaps: random splits, and random subsets of `subset_size` within each half per split (the gap
# compares two half-set means, so fewer draws than a reported mean needs).
SPLIT_DRAWS = 100
HALF_DRAWS = 20

# Lead-in clauses that come before the imperative verb ("Given a list of numbers, sort them").
LEAD_IN = re.compile(r"^(?:given|in this task|for|if|using|based on|according to|as|with|from|after|when)\b[^,:]*[,:]\s*", re.I)
# "You need to ...", "Your task is to ...": the verb comes after the addressee.
ADDRESSEE = re.compile(r"^(?:your task is to|you\s+(?:are\s+)?(?:need|have|asked|required|should|must|will|can|may)\w*(?:\s+to)?)\s+", re.I)
# Instructions that open like a question have no imperative verb to take as the root.
QUESTION_OPENERS = frozenset(
    "what how why who whom whose when where which is are was were do does did can could would should will shall may might have has".split()
)
# Words skipped between the verb and its object: determiners, quantifiers and common modifiers.
NON_OBJECTS = frozenset(
    "a an the me us some any each every all my your our their his its one two three four five six seven eight nine ten "
    "few several more most short brief new simple following given good detailed creative".split()
)
# A preposition or conjunction after the verb means the verb has no direct object there.
NO_OBJECT = frozenset("in on at to for from with about by of into over as and or if that whether how what why".split())


def verb_object(instruction: str) -> Optional[tuple[str, Optional[str]]]:
    """(root verb, its object) read from the imperative opening of an instruction, or None for a question.

    A heuristic stand-in for a dependency parse (no parser model can be installed offline): the verb is the
    first word after any lead-in clause or addressee ("Given ..., ", "You need to"), the object the next word
    that is not a determiner, number or common modifier, and none where a preposition comes first."""
    text = instruction.strip()
    for _ in range(2):
        text = ADDRESSEE.sub("", LEAD_IN.sub("", text, count=1), count=1)
    tokens = [token for token in words(text) if token != "please"]
    if not tokens or tokens[0] in QUESTION_OPENERS or tokens[0] in NO_OBJECT or not tokens[0].isalpha():
        return None
    obj = next((token for token in tokens[1:] if token not in NON_OBJECTS and not token.isdigit()), None)
    return tokens[0], None if obj in NO_OBJECT else obj


def normalized(text: str) -> str:
    """Lower case with runs of white space collapsed, for finding exact duplicates."""
    return " ".join(text.lower().split())


def distinct_n(tokenized: list[list[str]], n: int) -> float:
    """Distinct n-grams over all n-grams of a set of texts; nan when the texts hold no n-gram."""
    return distinct_share(ngram_ids(tokenized, n), range(len(tokenized)))


def ngram_ids(tokenized: list[list[str]], n: int) -> list[list[int]]:
    """Each text's n-grams as integers (one integer per distinct n-gram of all the texts)."""
    # Statistics on subsets count the same texts' n-grams thousands of times: integers, built once, count faster
    # than slicing and hashing tuples of words on every call.
    index: dict[tuple[str, ...], int] = {}
    return [[index.setdefault(tuple(tokens[i : i + n]), len(index)) for i in range(len(tokens) - n + 1)] for tokens in tokenized]


def distinct_share(ids: list[list[int]], items: Iterable[int]) -> float:
    """Distinct n-grams over all n-grams of the texts `items`, given as `ngram_ids`; nan when they hold none."""
    grams = [gram for i in items for gram in ids[i]]
    return len(set(grams)) / len(grams) if grams else float("nan")


def compression_ratio(texts: list[str]) -> float:
    """Compressed size over raw size of the texts joined by newlines (lower: more repetitive)."""
    raw = "\n".join(texts).encode("utf-8")
    return len(zlib.compress(raw, 9)) / len(raw) if raw else float("nan")


@dataclass
class InstructionsConfig:
    """Schema of `analyzer.instructions`: set statistics (distinct-n, compression, root spread, dispersion) are
    taken on random subsets of `subset_size` instructions, so that sets of different sizes compare; ROUGE-L is
    averaged over `rouge_pairs` random pairs; `embeddings` (auto, true, false) adds the embedding dispersion;
    `max_texts` caps the texts embedded per group. Sampling is seeded by `seed`."""

    _target_: str = "analyzers.instructions.InstructionsAnalyzer"
    subset_size: int = 50
    rouge_pairs: int = 2000
    embeddings: Any = "auto"
    max_texts: int = 5000
    seed: int = 0


@analyzers.register("instructions", config=InstructionsConfig)
class InstructionsAnalyzer(Analyzer):
    """Per instruction: lengths, whether it repeats an earlier one of its group, and its verb-object root;
    per group: distinct-1/2/3, compression ratio, mean pairwise ROUGE-L, embedding dispersion, root spread."""

    version = "1"
    metrics = {
        "instruction_words": MetricInfo("words of the instruction", "episode", "count"),
        "input_words": MetricInfo("words of the input, where there is one", "episode", "count"),
        "output_words": MetricInfo("words of the output, where there is one", "episode", "count"),
        "has_verb_root": MetricInfo("1 where the instruction opens with a verb and its object (heuristic)", "episode", "binary"),
        "distinct_N@K": MetricInfo("distinct word N-grams / all N-grams, mean over random subsets of K instructions", "corpus", "proportion", "lower"),
        "compression_ratio@K": MetricInfo("zlib-compressed / raw size of K random instructions (lower: more repetitive)", "corpus", "score", "lower"),
        "duplicate_rate": MetricInfo("share of instructions that repeat an earlier one of the group", "corpus", "proportion", "higher"),
        "pairwise_rouge_l": MetricInfo("mean ROUGE-L F1 of random pairs of different instructions", "corpus", "score", "higher"),
        "root_verb_entropy@K": MetricInfo("entropy in bits of the root verbs of K random instructions", "corpus", "score", "lower"),
        "distinct_verb_objects@K": MetricInfo("distinct verb-object roots / roots among K random instructions", "corpus", "proportion", "lower"),
        "top_verb_share@K": MetricInfo("share of the most frequent root verb among K random instructions", "corpus", "proportion", "higher"),
        "embedding_dispersion@K": MetricInfo("mean cosine distance between the sentence embeddings of pairs of K random instructions", "corpus", "score", "lower"),
        "STATISTIC@K_human_split_gap": MetricInfo("ceiling: how far STATISTIC@K moves between two random halves of the human set", "corpus", "score"),
        "pairwise_rouge_l_human_split_gap": MetricInfo("ceiling: how far pairwise_rouge_l moves between two random halves of the human set", "corpus", "score"),
    }
    uses_corpus = True
    # Every set statistic of an LLM side against how far it moves between two halves of the human side.
    ceilings = (Ceiling("*", "*_human_split_gap", "gap"),)

    def __init__(self, subset_size: int, rouge_pairs: int, embeddings: Any, max_texts: int, seed: int) -> None:
        for key, value in (("subset_size", subset_size), ("rouge_pairs", rouge_pairs), ("max_texts", max_texts)):
            require_at_least(f"analyzer.instructions.{key}", value, 2)
        require_at_least("analyzer.instructions.seed", seed, 0)  # numpy refuses negative seeds
        self.subset_size, self.rouge_pairs, self.max_texts, self.seed = subset_size, rouge_pairs, max_texts, seed
        self.use_embeddings = sentence_embeddings.wanted(embeddings, "analyzer.instructions.embeddings")

    def applies_to(self, episode: Episode) -> bool:
        """Instruction episodes that hold an instruction."""
        return episode.kind == "instruction" and bool(instruction_of(episode))

    def side_of(self, episode: Episode) -> Optional[str]:
        """Who wrote it (human, llm), where the data says."""
        return episode.meta.get("author")

    def annotate(self, episode: Episode) -> list[Annotation]:
        """Word counts of instruction, input and output, and the verb-object root (in the annotation's detail)."""
        instruction = instruction_of(episode)
        values = [Annotation(episode.id, "instruction_words", float(len(words(instruction))))]
        for part in ("input", "output"):
            text = episode.content_of(part)
            if text:
                values.append(Annotation(episode.id, f"{part}_words", float(len(words(text)))))
        root = verb_object(instruction)
        detail = {"verb": root[0], "object": root[1]} if root else {}
        values.append(Annotation(episode.id, "has_verb_root", float(root is not None), detail=detail))
        return values

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """Diversity of the set: statistics that depend on set size are taken on random subsets of `subset_size`
        instructions (name suffix `@size`); ROUGE-L has a bootstrap CI over sampled pairs. On a human side, each
        also gets its human ceiling, the gap between two random halves of the set (`_human_split_gap`)."""
        texts = [instruction_of(episode) for episode, _ in scored]
        n, k = len(texts), self.subset_size
        rng = np.random.default_rng(self.seed)
        statistics = self._set_statistics(scored, texts)
        rouge = self._pairwise_rouge(texts, rng) if n >= 2 else None
        if self.use_embeddings and n >= 2:
            sample = texts if n <= self.max_texts else [texts[i] for i in rng.choice(n, self.max_texts, replace=False)]
            vectors = sentence_embeddings.embed(sample)
            statistics["embedding_dispersion"] = (lambda idx: dispersion(vectors[idx]), len(sample))
        result = {f"{name}@{k}": subsample_statistic(items, stat, k, seed=self.seed) for name, (stat, items) in statistics.items()}
        result["duplicate_rate"] = estimate(repeat_flags(texts))
        if rouge is not None:
            result["pairwise_rouge_l"] = estimate(rouge[2])
        if scored and self.side_of(scored[0][0]) == HUMAN:
            result.update(self._human_split_gaps(statistics, rouge, n))
        return result

    def _set_statistics(self, scored: list[Scored], texts: list[str]) -> dict[str, tuple[SetStatistic, int]]:
        """Each statistic that depends on set size, as a function of item indices, with the number of its items."""
        tokenized = [words(text) for text in texts]
        ids = {g: ngram_ids(tokenized, g) for g in (1, 2, 3)}
        statistics: dict[str, tuple[SetStatistic, int]] = {
            f"distinct_{g}": (lambda idx, g=g: distinct_share(ids[g], idx), len(texts)) for g in (1, 2, 3)
        }
        statistics["compression_ratio"] = (lambda idx: compression_ratio([texts[i] for i in idx]), len(texts))
        roots = [a.detail for _, annotations in scored for a in annotations if a.name == "has_verb_root" and a.detail]
        if roots:
            verbs = [root["verb"] for root in roots]
            pairs = [f"{root['verb']} {root['object']}" for root in roots]
            statistics["root_verb_entropy"] = (lambda idx: entropy_bits(list(Counter(verbs[i] for i in idx).values())), len(verbs))
            statistics["distinct_verb_objects"] = (lambda idx: len({pairs[i] for i in idx}) / len(idx), len(pairs))
            statistics["top_verb_share"] = (lambda idx: Counter(verbs[i] for i in idx).most_common(1)[0][1] / len(idx), len(verbs))
        return statistics

    def _human_split_gaps(
        self, statistics: dict[str, tuple[SetStatistic, int]], rouge: Optional[RougePairs], n: int
    ) -> dict[str, Estimate]:
        """The split-half gap of each statistic at `subset_size` (where both halves hold that many) and of ROUGE-L."""
        k = self.subset_size
        result = {
            f"{name}@{k}_human_split_gap": self._split_gap(stat, items)
            for name, (stat, items) in statistics.items()
            if items // 2 >= k
        }
        if rouge is not None:
            result["pairwise_rouge_l_human_split_gap"] = split_half_difference(n, partial(rouge_within, rouge, n=n), seed=self.seed)
        return result

    def _split_gap(self, statistic: SetStatistic, items: int) -> Estimate:
        """|statistic@subset_size of one random half - that of the other half|, over random splits."""

        def at_size(half: np.ndarray) -> float:
            return subsample_statistic(len(half), lambda idx: statistic(half[idx]), self.subset_size, HALF_DRAWS, self.seed).mean

        return split_half_difference(items, at_size, SPLIT_DRAWS, self.seed)

    def _pairwise_rouge(self, texts: list[str], rng: np.random.Generator) -> RougePairs:
        """ROUGE-L F1 of up to `rouge_pairs` random pairs of different instructions: (firsts, seconds, scores)."""
        from rouge_score import rouge_scorer  # loaded only where instructions are analyzed

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        n = len(texts)
        firsts = rng.integers(0, n, self.rouge_pairs)
        seconds = (firsts + rng.integers(1, n, self.rouge_pairs)) % n  # never the same instruction twice
        scores = np.array([scorer.score(texts[a], texts[b])["rougeL"].fmeasure for a, b in zip(firsts, seconds)])
        return firsts, seconds, scores


def repeat_flags(texts: list[str]) -> list[float]:
    """1 for each text that repeats an earlier one (case and white space aside), else 0."""
    seen: set[str] = set()
    flags = []
    for text in texts:
        key = normalized(text)
        flags.append(float(key in seen))
        seen.add(key)
    return flags


def rouge_within(rouge: RougePairs, half: np.ndarray, n: int) -> float:
    """Mean ROUGE-L of the scored pairs whose two instructions both lie in `half`; nan when none does."""
    firsts, seconds, scores = rouge
    inside = np.zeros(n, dtype=bool)
    inside[half] = True
    kept = inside[firsts] & inside[seconds]
    return float(scores[kept].mean()) if kept.any() else float("nan")


def instruction_of(episode: Episode) -> str:
    """The instruction text: the `instruction` turn, or the instruction kept in meta."""
    return episode.content_of("instruction") or episode.meta.get("instruction") or ""


def dispersion(vectors: np.ndarray) -> float:
    """Mean cosine distance between all pairs of unit vectors (0: all the same)."""
    n = len(vectors)
    if n < 2:
        return float("nan")
    total = vectors.sum(axis=0)
    mean_similarity = (float(total @ total) - n) / (n * (n - 1))  # sum over i != j of v_i . v_j, from |sum v|^2 - n
    return 1.0 - mean_similarity

