"""Judge agents: pick the better of two responses, or a tie."""

from __future__ import annotations

import re
from typing import Optional

from agents.agent import Agent

JUDGE_SYSTEM = "You are an impartial judge of response quality."
JUDGE_PROMPT = """{question}Which response is better?

Response A:
{a}

Response B:
{b}

Answer with A, B, or tie."""
# Capital A or B only: a lowercase "a" is the article in answers like "it's a tie".
CHOICE = re.compile(r"\b((?i:tie)|A|B)\b")


def judge(prompt: Optional[str], first: str, second: str) -> Agent:
    """A judge shown `first` as response A and `second` as response B."""
    question = f"Prompt: {prompt}\n\n" if prompt else ""
    return Agent(
        speaker="judge",
        role="judge",
        system_prompt=JUDGE_SYSTEM,
        opening=JUDGE_PROMPT.format(question=question, a=first, b=second),
    )


def parse_choice(answer: str) -> Optional[str]:
    """A, B or tie: the first one the answer names (A and B as capitals); None when it names none."""
    match = CHOICE.search(answer)
    if match is None:
        return None
    choice = match.group(1)
    return "tie" if choice.lower() == "tie" else choice.upper()
