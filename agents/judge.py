"""Judge agents: pick the better of two responses, or a tie, ending with a verdict line (agents.verdicts)."""

from __future__ import annotations

from typing import Optional

from agents.agent import Agent
from agents.verdicts import CHOICE_VERDICT

JUDGE_SYSTEM = "You are an impartial judge of response quality."
JUDGE_PROMPT = """{question}Which response is better?

Response A:
{a}

Response B:
{b}

""" + CHOICE_VERDICT


def judge(prompt: Optional[str], first: str, second: str) -> Agent:
    """A judge shown `first` as response A and `second` as response B."""
    question = f"Prompt: {prompt}\n\n" if prompt else ""
    return Agent(
        speaker="judge",
        role="judge",
        system_prompt=JUDGE_SYSTEM,
        opening=JUDGE_PROMPT.format(question=question, a=first, b=second),
    )

