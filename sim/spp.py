"""Solo-Performance-Prompting transcripts: split one response into persona turns and read its final answer.
Shared by the SPP importer, the `spp` scenario and the analyzers."""

from __future__ import annotations

import re
from typing import Any, Optional

PARTICIPANTS = "Participants:"
FINISH = "Finish collaboration!"
FINAL_ANSWER = "Final answer:"
FIRST_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def split_transcript(text: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The personas named on the `Participants:` line and the (speaker, role, text) turns that follow."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(PARTICIPANTS)), None)
    if start is None:
        return [], []
    header = lines[start].strip()
    personas = [name.strip() for name in header[len(PARTICIPANTS):].split(";") if name.strip()]
    narrator = next((p for p in personas if p.endswith("(you)")), personas[0] if personas else "narrator")
    by_length = sorted(personas, key=len, reverse=True)
    turns: list[tuple[str, str, str]] = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if not stripped or stripped == FINISH:
            continue
        if stripped.startswith(FINAL_ANSWER):
            turns.append((narrator, "final_answer", stripped[len(FINAL_ANSWER):].strip()))
            continue
        speaker = next((p for p in by_length if stripped.startswith(f"{p}:")), None)
        if speaker is not None:
            turns.append((speaker, speaker, stripped[len(speaker) + 1 :].strip()))
        elif turns:
            who, role, said = turns[-1]
            turns[-1] = (who, role, f"{said}\n{stripped}")
    return personas, turns


def final_answer(text: str) -> Optional[str]:
    """What follows the last `Final answer:` in `text`, or None."""
    position = text.rfind(FINAL_ANSWER)
    if position < 0:
        return None
    answer = text[position + len(FINAL_ANSWER):].strip().splitlines()
    return answer[0].strip() if answer else None


def is_correct(answer: Optional[str], targets: Any) -> Optional[bool]:
    """Whether the first number of `answer` is one of the puzzle's targets; None without a target."""
    if targets in (None, [], ""):
        return None
    wanted = {str(t).strip() for t in (targets if isinstance(targets, list) else [targets])}
    number = FIRST_NUMBER.search(answer or "")
    return bool(number) and number.group(0) in wanted
