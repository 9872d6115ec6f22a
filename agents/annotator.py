"""Annotator agents: label one text under a label scheme, optionally speaking as a persona."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Optional

from agents.agent import Agent

ANNOTATOR_SYSTEM = "You are a careful data annotator."
PERSONA_SYSTEM = "You are {persona}. You are annotating data, and you answer as yourself."
ANNOTATION_PROMPT = """{instruction}

Labels:
{labels}

Text: {text}

Answer with the label number only."""
# What may follow a label value: not a word character, nor a decimal point with digits (2.5 is no label), while a
# full stop ends a sentence ("The label is 2.").
NOT_DECIMAL_AFTER = r"(?!\w|\.\d)"


def annotator(speaker: str, persona: Optional[str], instruction: str, labels: dict[str, str], text: str) -> Agent:
    """An annotator asked for one label of `text`; `labels` maps each label value to its meaning."""
    system = PERSONA_SYSTEM.format(persona=persona) if persona else ANNOTATOR_SYSTEM
    listing = "\n".join(f"{value}: {meaning}" for value, meaning in labels.items())
    prompt = ANNOTATION_PROMPT.format(instruction=instruction, labels=listing, text=text)
    return Agent(speaker=speaker, role="model_annotator", system_prompt=system, opening=prompt)


@dataclass(frozen=True)
class LabelMention:
    """Where an answer names a label: the label value and the characters [start, end) that name it."""

    value: str
    start: int
    end: int


def find_label(answer: str, labels: dict[str, str]) -> Optional[LabelMention]:
    """The label an answer names: the first label value standing alone, else the first meaning it mentions, else
    the first whole number standing alone (a value outside the scheme, kept so that it counts as invalid rather
    than as no answer); None when it names none."""
    values = sorted(labels, key=len, reverse=True)
    match = re.search(r"(?<![\w.])(" + "|".join(re.escape(v) for v in values) + r")" + NOT_DECIMAL_AFTER, answer)
    if match:
        return LabelMention(match.group(1), match.start(1), match.end(1))
    found = [
        (match.start(), value, match.end())
        for value, meaning in labels.items()
        if (match := re.search(re.escape(meaning), answer, re.IGNORECASE))
    ]
    if found:
        start, value, end = min(found)
        return LabelMention(value, start, end)
    match = re.search(r"(?<![\w.])\d+" + NOT_DECIMAL_AFTER, answer)
    return LabelMention(match.group(), match.start(), match.end()) if match else None


def parse_label(answer: str, labels: dict[str, str]) -> Optional[str]:
    """The label value an answer names (see `find_label`); None when it names none."""
    mention = find_label(answer, labels)
    return None if mention is None else mention.value


def label_probability(tokens: list[tuple[str, float]], labels: dict[str, str], value: str) -> Optional[float]:
    """The probability of the tokens that spell the label `value` in an answer given as (token, log-probability)
    pairs: exp of the summed log-probabilities of the tokens that overlap the characters naming it. None when the
    tokens, joined, do not name `value` (their text differs from the parsed answer's)."""
    mention = find_label("".join(token for token, _ in tokens), labels)
    if mention is None or mention.value != value:
        return None
    total, start = 0.0, 0
    for token, logprob in tokens:
        end = start + len(token)
        if start < mention.end and end > mention.start:
            total += logprob
        start = end
    return math.exp(total)
