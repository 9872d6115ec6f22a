"""What every scenario provides: a plan of episodes and a way to play one through an episode context."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from sim.backends import ChatMessage, SamplingParams
from sim.errors import SimError
from sim.records import Turn
from sim.registry import Registry


@dataclass
class ScenarioConfig:
    """Settings shared by every scenario; each scenario's schema extends this."""

    n_episodes: int = 3
    max_turns: int = 6
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 160


@dataclass
class EpisodePlan:
    """What one episode is about, known before it is played."""

    index: int
    task: Optional[str]
    roles: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """How an episode ended: `status` is done or failed, `termination_reason` says why."""

    status: str
    termination_reason: str


class EpisodeContext(Protocol):
    """What the runner lends a scenario while it plays one episode."""

    async def generate_turn(
        self, idx: int, speaker: str, role: str, messages: list[ChatMessage], sampling: SamplingParams
    ) -> Turn:
        """Turn `idx`: stored at once when new, or the stored one when a run is resumed."""

    async def generate_text(self, key: str, messages: list[ChatMessage], sampling: SamplingParams) -> str:
        """Ask the backend for text that is not a turn (e.g. a specified task)."""

    def update_episode(self, task: Optional[str] = None, meta: Optional[dict[str, Any]] = None) -> None:
        """Record a task, and merge metadata, decided while playing."""


class Scenario(ABC):
    """A generator of one kind of synthetic data."""

    name: str  # set by the registry
    kind: str = "conversation"

    def __init__(
        self,
        n_episodes: int = 3,
        max_turns: int = 6,
        temperature: float = 0.7,
        top_p: float = 0.95,
        max_tokens: int = 160,
    ) -> None:
        for key, value in {"n_episodes": n_episodes, "max_turns": max_turns, "max_tokens": max_tokens}.items():
            if value <= 0:
                raise SimError(f"scenario.{key} must be a positive integer, got {value}")
        if temperature < 0:
            raise SimError(f"scenario.temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise SimError(f"scenario.top_p must be in (0, 1], got {top_p}")
        self.n_episodes = n_episodes
        self.max_turns = max_turns
        self.sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)

    @abstractmethod
    def plan(self) -> list[EpisodePlan]:
        """The episodes this scenario will play, in order."""

    @abstractmethod
    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Play one episode; turns are stored through `ctx` as they are generated."""


scenarios: Registry[Scenario] = Registry("scenario")
