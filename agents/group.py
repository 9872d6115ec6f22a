"""Group discussions: persona agents talking about a topic, and a moderator that picks who speaks next."""

from __future__ import annotations

from typing import Optional

from agents.agent import Agent
from sim.records import Turn

PERSONA_PROMPT = """You are {name}, {description}. You are in a group discussion with {others}.
Topic: {topic}
Speak only as {name}, in two or three sentences, responding to what the others said."""
OPENING = "The discussion on '{topic}' begins. Please start."
MODERATOR_SYSTEM = "You moderate a group discussion and decide who speaks next."
MODERATOR_PROMPT = """Topic: {topic}
Participants: {names}

Discussion so far:
{transcript}

Who should speak next? Reply with one participant's name only, or END if the discussion has reached its goal."""
END = "END"


def members(topic: str, personas: dict[str, str]) -> list[Agent]:
    """One agent per persona (name to description), in the configured order."""
    agents = []
    for name, description in personas.items():
        others = ", ".join(n for n in personas if n != name)
        prompt = PERSONA_PROMPT.format(name=name, description=description, others=others, topic=topic)
        agents.append(Agent(speaker=name, role=name, system_prompt=prompt, opening=OPENING.format(topic=topic)))
    return agents


def moderator(topic: str, names: list[str], transcript: list[Turn]) -> Agent:
    """The moderator asked to pick the next speaker after `transcript`."""
    shown = "\n".join(f"{t.speaker}: {t.content}" for t in transcript) or "(nothing yet)"
    prompt = MODERATOR_PROMPT.format(topic=topic, names=", ".join(names), transcript=shown)
    return Agent(speaker="moderator", role="moderator", system_prompt=MODERATOR_SYSTEM, opening=prompt)


def parse_next_speaker(answer: str, names: list[str]) -> Optional[str]:
    """The participant named first in the answer, END, or None when it names nobody."""
    lowered = answer.lower()
    found = [(lowered.find(n.lower()), n) for n in [*names, END] if n.lower() in lowered]
    return min(found)[1] if found else None
