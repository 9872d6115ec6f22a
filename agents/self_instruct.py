"""Self-Instruct agents (Wang et al. 2023): propose a new task from examples, then write an instance of it."""

from __future__ import annotations

import re
from typing import Optional

from agents.agent import Agent

GENERATOR_SYSTEM = "You invent new, diverse tasks for training an AI assistant."
GENERATION_PROMPT = """Come up with a new task. Here are some example tasks:
{examples}

Write one new task instruction that is different from these. Reply with the instruction only."""
INSTANCE_SYSTEM = "You write an example input and the correct output for a task."
INSTANCE_PROMPT = """Task: {instruction}

Write an example for this task in exactly this form (write "Input: None" if the task needs no input):
Input: <the input>
Output: <the output>"""
TASK_PREFIX = re.compile(r"^\s*(?:task\s*\d*\s*[:.)-]|\d+\s*[:.)-]|instruction\s*:)\s*", re.IGNORECASE)
FIELD = re.compile(r"^\s*(input|output)\s*:\s*", re.IGNORECASE | re.MULTILINE)


def generator(examples: list[str]) -> Agent:
    """The agent that proposes one new instruction after seeing `examples`."""
    listing = "\n".join(f"{number}. {text}" for number, text in enumerate(examples, start=1))
    return Agent("generator", "instruction_generation", GENERATOR_SYSTEM, GENERATION_PROMPT.format(examples=listing))


def instance_writer(instruction: str) -> Agent:
    """The agent that writes an input and an output for `instruction`."""
    return Agent("generator", "instance_generation", INSTANCE_SYSTEM, INSTANCE_PROMPT.format(instruction=instruction))


def parse_instruction(answer: str) -> str:
    """The first non-empty line of an answer, without a leading `Task 3:` or `1.`."""
    for line in answer.splitlines():
        text = TASK_PREFIX.sub("", line).strip().strip('"')
        if text:
            return text
    return ""


def parse_instance(answer: str) -> tuple[str, Optional[str]]:
    """(input, output) from an `Input: ... Output: ...` answer; input "" for None, output None when absent."""
    parts = FIELD.split(answer)
    fields: dict[str, str] = {}
    for name, value in zip(parts[1::2], parts[2::2]):
        fields.setdefault(name.lower(), value.strip())
    given = fields.get("input", "")
    return ("" if given.lower() in ("none", "<none>", "n/a") else given), fields.get("output") or None
