"""Writer agents: answer a human prompt with free text."""

from __future__ import annotations

from agents.agent import Agent

WRITER_SYSTEM = "You are a helpful assistant who writes clear, natural text."


def writer(system_prompt: str, prompt: str) -> Agent:
    """A writer asked to respond to `prompt`."""
    return Agent(speaker="writer", role="text", system_prompt=system_prompt, opening=prompt)
