"""Plain-text helpers shared by the text analyzers: one tokenizer and one sentence splitter, so that every
length, overlap and diversity figure counts words the same way."""

from __future__ import annotations

import re

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# Sentences end at end punctuation followed by space, and at blank lines; a single line break is not an end,
# because hard-wrapped text (arXiv abstracts) breaks lines inside sentences.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def words(text: str) -> list[str]:
    """Lower-cased word tokens (letters and digits, inner apostrophes kept)."""
    return WORD.findall(text.lower())


def sentences(text: str) -> list[str]:
    """Sentences split at end punctuation followed by space, and at blank lines; pieces without a word dropped."""
    return [piece for piece in (p.strip() for p in SENTENCE_END.split(text)) if WORD.search(piece)]


def overlap(text: str, other: str) -> float:
    """Jaccard overlap of the two texts' word sets (0 when both are empty)."""
    first, second = set(words(text)), set(words(other))
    union = first | second
    return len(first & second) / len(union) if union else 0.0
