"""Human-likeness: an LLM judge reads a conversation and answers whether it resembles a dialogue between people."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analyzers.base import Analyzer, analyzers
from analyzers.judging import Judge, UsesJudge, parse_yes_no, transcript, transcript_limits
from sim.records import Annotation, Episode

QUESTION = (
    "Here is a conversation.\n\n{transcript}\n\n"
    "Does this conversation resemble a dialogue between people? Answer yes or no, then give one sentence why."
)


@dataclass
class HumanLikenessConfig:
    """Schema of `analyzer.human_likeness`: `judge` is a backend config (by default the composed `backend`, so
    `backend=openai backend.model=gpt-4o` picks the judge); transcripts are cut to `max_turns` and `max_chars`."""

    _target_: str = "analyzers.human_likeness.HumanLikenessAnalyzer"
    _recursive_: bool = False  # the judge's backend is built when the analysis starts, not with the analyzer
    judge: Any = None
    max_turns: int = 40
    max_chars: int = 6000


@analyzers.register("human_likeness", config=HumanLikenessConfig)
class HumanLikenessAnalyzer(UsesJudge, Analyzer):
    """Per conversation: `human_like` (1 yes, 0 no) with the judge's answer as its rationale, and
    `judge_answered` (0 when the answer held neither yes nor no)."""

    version = "1"

    def __init__(self, judge: Any = None, max_turns: int = 40, max_chars: int = 6000) -> None:
        self.max_turns, self.max_chars = transcript_limits("human_likeness", max_turns, max_chars)
        self.judge = Judge(judge or {}, max_tokens=64)

    def applies_to(self, episode: Episode) -> bool:
        """Conversations of two turns or more."""
        return episode.kind == "conversation" and len(episode.turns) >= 2

    def annotate(self, episode: Episode) -> list[Annotation]:
        """The judge's verdict on the whole conversation."""
        (answer,) = self.judge.ask([QUESTION.format(transcript=transcript(episode, self.max_turns, self.max_chars))])
        verdict = parse_yes_no(answer)
        if verdict is None:
            return [Annotation(episode.id, "judge_answered", 0.0, detail={"answer": answer})]
        return [Annotation(episode.id, "judge_answered", 1.0), Annotation(episode.id, "human_like", float(verdict), detail={"rationale": answer})]
