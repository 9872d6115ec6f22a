"""A model stand-in that answers from a script: deterministic, instant, nothing loaded. For tests and docs of what
surrounds a model (the runner, the store, the commands), never for findings about a model."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from sim.backends.base import Backend, BackendConfig, Completion, backends
from sim.messages import ChatMessage, SamplingParams

SCRIPTED_CAVEAT = "backend=scripted answers from a fixed script, not a model: its data shows the pipeline, nothing of any model."
# A token is a word with the whitespace after it, so that the tokens of a reply joined are the reply.
TOKEN_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


@dataclass
class ScriptedConfig(BackendConfig):
    """Schema of `backend=scripted`: `replies` in order, each agent's n-th reply the n-th (from the first again
    past the last); none: each reply echoes the request's last message."""

    _target_: str = "sim.backends.scripted.ScriptedBackend"
    replies: list[str] = field(default_factory=list)
    model: str = "scripted"


def tokens(text: str) -> list[str]:
    """`text` cut into word tokens, each with the whitespace that follows it."""
    return [token for token in TOKEN_BOUNDARY.split(text) if token]


@backends.register("scripted", config=ScriptedConfig)
class ScriptedBackend(Backend):
    """Answers each request from the script, as a model would: cut at `max_tokens` (a token a word), with token
    counts, and with log-probabilities when asked (0 for every token: the script is certain)."""

    caveat = SCRIPTED_CAVEAT
    # Answers take no time and hold nothing, so concurrency is the runner's alone to limit.
    max_concurrency = 1024

    def __init__(self, replies: list[str], model: str) -> None:
        self.replies = list(replies)
        self._model = model

    @property
    def model(self) -> str:
        """The name the script goes by."""
        return self._model

    @property
    def identity(self) -> str:
        """Name and script: another script gives other answers to the same request."""
        return f"{self._model}|{json.dumps(self.replies, ensure_ascii=False)}"

    def reply(self, messages: list[ChatMessage]) -> str:
        """The scripted text for `messages`: the reply numbered by the agent's own turns so far, or an echo."""
        if not self.replies:
            return messages[-1].content if messages else ""
        turns_so_far = sum(message.role == "assistant" for message in messages)
        return self.replies[turns_so_far % len(self.replies)]

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """The scripted reply, cut at `params.max_tokens` tokens."""
        cut = tokens(self.reply(messages))
        finish_reason = "stop"
        if len(cut) > params.max_tokens:
            cut, finish_reason = cut[: params.max_tokens], "length"
        return Completion(
            text="".join(cut),
            finish_reason=finish_reason,
            prompt_tokens=sum(len(tokens(message.content)) for message in messages),
            completion_tokens=len(cut),
            latency_ms=0.0,
            token_logprobs=[(token, 0.0) for token in cut] if params.logprobs else None,
        )
