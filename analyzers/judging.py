"""LLM judges for the analyzers: short questions about stored data, asked of any configured backend through the
request executor (so answers are cached in the store and retried like a run's), and their answers parsed."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import OmegaConf

from analyzers import embeddings as sentence_embeddings
from sim.backends import Backend, ChatMessage, SamplingParams
from sim.config import build
from sim.errors import SimError, require_positive

if TYPE_CHECKING:
    from sim.records import Episode
    from sim.requests import RequestExecutor
    from sim.store import Store

YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
NUMBER = re.compile(r"\b([1-9])\b")
# Only the opening of an answer counts: a model that argues both ways later should not be read as deciding.
ANSWER_WINDOW = 80


def parse_yes_no(text: str) -> Optional[bool]:
    """True for yes, False for no, from the first yes or no near the start of an answer; None when there is none."""
    match = YES_NO.search(text[:ANSWER_WINDOW])
    return None if match is None else match.group(1).lower() == "yes"


def parse_number(text: str, highest: int) -> Optional[int]:
    """The first number from 1 to `highest` near the start of an answer, or None."""
    match = NUMBER.search(text[:ANSWER_WINDOW])
    return int(match.group(1)) if match and 1 <= int(match.group(1)) <= highest else None


class Judge:
    """A backend that answers the analyzers' questions: built from a backend config when the analysis starts,
    asked through a request executor with the store's cache, closed when the analysis ends."""

    def __init__(self, backend: Any, max_tokens: int = 48) -> None:
        self.backend_config = OmegaConf.to_container(backend, resolve=True) if OmegaConf.is_config(backend) else dict(backend)
        self.params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_tokens, seed=0)
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.backend: Optional[Backend] = None
        self.executor: Optional["RequestExecutor"] = None

    def open(self, store: "Store") -> None:
        """Build the backend and its executor (one event loop for the whole analysis, as backends keep clients)."""
        from sim.requests import RequestExecutor, RetryPolicy

        self.loop = asyncio.new_event_loop()
        self.backend = build(OmegaConf.create(self.backend_config), "judge backend")
        self.executor = RequestExecutor(store, self.backend, RetryPolicy(), use_cache=True)

    def ask(self, prompts: list[str], system: Optional[str] = None) -> list[str]:
        """The backend's answers to several independent one-turn prompts, asked concurrently."""
        if self.loop is None or self.executor is None:
            raise RuntimeError("Judge.open(store) must come first")

        async def one(prompt: str) -> str:
            messages = ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", prompt)]
            result = await self.executor.complete(messages, self.params, 0)
            return result.completion.text

        async def every() -> list[str]:
            return list(await asyncio.gather(*(one(prompt) for prompt in prompts)))

        return self.loop.run_until_complete(every())

    def close(self) -> None:
        """Release the backend and the event loop."""
        if self.loop is None:
            return
        if self.backend is not None:
            self.loop.run_until_complete(self.backend.aclose())
        self.loop.close()
        self.loop = self.backend = self.executor = None


MODES = ("embedding", "judge")


def judge_for_mode(mode: str, judge: Any, analyzer: str, max_tokens: int) -> Optional[Judge]:
    """Check an analyzer's `mode`: the Judge for `judge` mode, None for `embedding` mode, which needs the
    embeddings extra installed."""
    if mode not in MODES:
        raise SimError(f"analyzer.{analyzer}.mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "embedding":
        sentence_embeddings.wanted("true", f"analyzer.{analyzer}.mode=embedding")
        return None
    return Judge(judge or {}, max_tokens=max_tokens)


class UsesJudge:
    """`open` and `close` for analyzers with an optional `judge` (None when they run without one)."""

    judge: Optional[Judge] = None

    def open(self, store: "Store") -> None:
        """Build the judge backend, if there is a judge."""
        if self.judge is not None:
            self.judge.open(store)

    def close(self) -> None:
        """Release the judge backend."""
        if self.judge is not None:
            self.judge.close()


def transcript_limits(analyzer: str, max_turns: int, max_chars: int) -> tuple[int, int]:
    """`max_turns` and `max_chars` of an analyzer that shows transcripts to a judge, refused unless positive:
    a negative cut would silently slice from the end (`turns[:-1]`) and zero would show the judge nothing."""
    require_positive(f"analyzer.{analyzer}.max_turns", max_turns)
    require_positive(f"analyzer.{analyzer}.max_chars", max_chars)
    return max_turns, max_chars


def transcript(episode: "Episode", max_turns: int, max_chars: int) -> str:
    """The episode's turns as `speaker (role): text` lines, its first `max_turns` turns cut to `max_chars` in all."""
    lines = [f"{turn.speaker} ({turn.role}): {turn.content.strip()}" for turn in episode.turns[:max_turns]]
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[:max_chars] + " [...]"
