"""Instructions: how diverse and how repetitive a set of instructions is — distinct n-grams, compressibility,
pairwise ROUGE-L, embedding dispersion, duplicates, the spread of verb-object roots, and lengths."""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, Scored, analyzers
from analyzers.text import words
from sim.errors import require_at_least
from sim.records import Annotation, Episode
from sim.stats import Estimate, entropy_bits, estimate, subsample_statistic

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
    grams = [tuple(tokens[i : i + n]) for tokens in tokenized for i in range(len(tokens) - n + 1)]
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
    uses_corpus = True

    def __init__(
        self, subset_size: int = 50, rouge_pairs: int = 2000, embeddings: Any = "auto", max_texts: int = 5000, seed: int = 0
    ) -> None:
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
    instructions (name suffix `@size`); ROUGE-L has a bootstrap CI over sampled pairs."""
        texts = [instruction_of(episode) for episode, _ in scored]
        tokenized = [words(text) for text in texts]
        n, k = len(texts), self.subset_size

        def at_size(statistic: Callable[[np.ndarray], float], items: int = n) -> Estimate:
            return subsample_statistic(items, statistic, k, seed=self.seed)

        result = {f"distinct_{g}@{k}": at_size(lambda idx, g=g: distinct_n([tokenized[i] for i in idx], g)) for g in (1, 2, 3)}
        result[f"compression_ratio@{k}"] = at_size(lambda idx: compression_ratio([texts[i] for i in idx]))
        seen: set[str] = set()
        repeats = []
        for text in texts:
            key = normalized(text)
            repeats.append(float(key in seen))
            seen.add(key)
        result["duplicate_rate"] = estimate(repeats)
        roots = [a.detail for _, annotations in scored for a in annotations if a.name == "has_verb_root" and a.detail]
        if roots:
            verbs = [root["verb"] for root in roots]
            pairs = [f"{root['verb']} {root['object']}" for root in roots]
            result[f"root_verb_entropy@{k}"] = at_size(lambda idx: entropy_bits(list(Counter(verbs[i] for i in idx).values())), len(verbs))
            result[f"distinct_verb_objects@{k}"] = at_size(lambda idx: len({pairs[i] for i in idx}) / len(idx), len(pairs))
            result[f"top_verb_share@{k}"] = at_size(lambda idx: Counter(verbs[i] for i in idx).most_common(1)[0][1] / len(idx), len(verbs))
        rng = np.random.default_rng(self.seed)
        if n >= 2:
            result["pairwise_rouge_l"] = estimate(self._pairwise_rouge(texts, rng))
        if self.use_embeddings and n >= 2:
            sample = texts if n <= self.max_texts else [texts[i] for i in rng.choice(n, self.max_texts, replace=False)]
            vectors = sentence_embeddings.embed(sample)
            result[f"embedding_dispersion@{k}"] = at_size(lambda idx: dispersion(vectors[idx]), len(sample))
        return result

    def _pairwise_rouge(self, texts: list[str], rng: np.random.Generator) -> list[float]:
        """ROUGE-L F1 of up to `rouge_pairs` random pairs of different instructions."""
        from rouge_score import rouge_scorer  # loaded only where instructions are analyzed

        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
        n = len(texts)
        firsts = rng.integers(0, n, self.rouge_pairs)
        seconds = (firsts + rng.integers(1, n, self.rouge_pairs)) % n  # never the same instruction twice
        return [scorer.score(texts[a], texts[b])["rougeL"].fmeasure for a, b in zip(firsts, seconds)]


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

