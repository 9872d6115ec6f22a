"""What an agent sends a backend: chat messages and sampling settings, plain types that load no backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt, as the backend sees it."""

    role: Role
    content: str


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion; `seed` makes it repeatable on backends that honor seeds."""

    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 128
    seed: int = 0
    logprobs: bool = False
