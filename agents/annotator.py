"""Annotator agents: label one text under a label scheme, optionally speaking as a persona."""

from __future__ import annotations

import re
from typing import Optional

from agents.agent import Agent

ANNOTATOR_SYSTEM = "You are a careful data annotator."
PERSONA_SYSTEM = "You are {persona}. You are annotating data, and you answer as yourself."
ANNOTATION_PROMPT = """{instruction}

Labels:
{labels}

Text: {text}

Answer with the label number only."""


def annotator(speaker: str, persona: Optional[str], instruction: str, labels: dict[str, str], text: str) -> Agent:
    """An annotator asked for one label of `text`; `labels` maps each label value to its meaning."""
    system = PERSONA_SYSTEM.format(persona=persona) if persona else ANNOTATOR_SYSTEM
    listing = "\n".join(f"{value}: {meaning}" for value, meaning in labels.items())
    prompt = ANNOTATION_PROMPT.format(instruction=instruction, labels=listing, text=text)
    return Agent(speaker=speaker, role="model_annotator", system_prompt=system, opening=prompt)


def parse_label(answer: str, labels: dict[str, str]) -> Optional[str]:
    """The label value an answer names: the first label value standing alone, else the first meaning it
    mentions; None when it names none."""
    values = sorted(labels, key=len, reverse=True)
    match = re.search(r"(?<![\w.])(" + "|".join(re.escape(v) for v in values) + r")(?![\w.])", answer)
    if match:
        return match.group(1)
    lowered = answer.lower()
    found = [(lowered.find(meaning.lower()), value) for value, meaning in labels.items() if meaning.lower() in lowered]
    return min(found)[1] if found else None
