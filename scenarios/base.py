"""What every scenario provides: a plan of episodes and a way to play one through an episode context."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Optional, Protocol, TypeVar

from omegaconf import MISSING

from sim.errors import SimError, require_at_least, require_positive, require_score
from sim.messages import ChatMessage, SamplingParams
from sim.records import Episode, Turn
from sim.references import load_reference
from sim.registry import Registry


@dataclass
class GuardConfig:
    """One entry of `scenario.guards`: a per-turn analyzer and what to do with a turn it flags
    (`flag` it, `stop` the episode, or `regenerate` it up to `max_tries` times in all)."""

    analyzer: str = MISSING
    action: str = "flag"
    max_tries: int = 3


@dataclass
class ScenarioConfig:
    """Settings shared by every scenario; each scenario's schema extends this."""

    n_episodes: Optional[int] = 3
    max_turns: int = 6
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 160
    guards: list[GuardConfig] = field(default_factory=list)


@dataclass
class ReferenceConfig(ScenarioConfig):
    """Settings of scenarios that work through reference items: built-in ones, or `reference` (a file read with
    the importer `reference_format` and its `reference_options`, or a dataset imported with `sim import`).
    The options default to null so that `scenario.reference_options={judge: human}` can set them in one override."""

    reference: Optional[str] = None
    reference_format: Optional[str] = None
    reference_options: Any = None  # a {KEY: VALUE} dict; Any, because OmegaConf cannot merge a dict into a typed null


@dataclass
class EpisodePlan:
    """What one episode is about, known before it is played; it starts after the episodes in `depends_on` end."""

    index: int
    task: Optional[str]
    roles: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict)
    depends_on: list[int] = field(default_factory=list)


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

    def token_logprobs(self, idx: int) -> Optional[list[tuple[str, float]]]:
        """Each token of turn `idx` with its log-probability, where the backend gave them."""

    def record_turn(self, idx: int, speaker: str, role: str, content: str) -> Turn:
        """Store a turn that needs no request of its own (e.g. one persona's part of a longer response)."""

    def update_episode(self, task: Optional[str] = None, meta: Optional[dict[str, Any]] = None) -> None:
        """Record a task, and merge metadata, decided while playing."""

    def earlier_episode(self, index: int) -> Episode:
        """A finished episode of this run that this one depends on."""

    def rng(self) -> random.Random:
        """A random generator for this episode, repeatable for the same run seed."""


class Scenario(ABC):
    """A generator of one kind of synthetic data."""

    name: str  # set by the registry
    kind: str = "conversation"
    # Whether an episode can be replayed from turn K on (`sim replay --fork-at`): its turns come one request each.
    forkable: bool = False

    def __init__(
        self,
        n_episodes: Optional[int],
        max_turns: int,
        temperature: float,
        top_p: float,
        max_tokens: int,
        guards: list[dict[str, Any]],
    ) -> None:
        require_positive("scenario.n_episodes", n_episodes, null_means="all items")
        require_positive("scenario.max_turns", max_turns)
        require_positive("scenario.max_tokens", max_tokens)
        require_at_least("scenario.temperature", temperature, 0)
        require_score("scenario.top_p", top_p)
        self.n_episodes = n_episodes
        self.max_turns = max_turns
        self.sampling = SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens)
        self.guards = list(guards)

    def prepare(self, store_path: Path) -> None:
        """Load what the episodes are about before anything is stored (datasets come from the database at
        `store_path`); the default needs nothing."""

    @abstractmethod
    def plan(self) -> list[EpisodePlan]:
        """The episodes this scenario will play, in order."""

    @abstractmethod
    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Play one episode; turns are stored through `ctx` as they are generated."""


Item = TypeVar("Item")


class ReferenceScenario(Scenario, Generic[Item]):
    """A scenario over reference items: the built-in ones from its config, or those of `scenario.reference`.
    Where each item is one episode (`caps_items`), `n_episodes` caps the number of items (null: all of them)."""

    reference_format: str  # the importer that reads a reference file for this scenario
    caps_items: bool = True
    configured_items: list[Item]  # the built-in items of conf/scenario/<name>.yaml, set by each subclass

    def __init__(
        self,
        reference: Optional[str],
        reference_format: Optional[str],
        reference_options: Optional[dict[str, str]],
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.reference = reference
        self.reference_format_override = reference_format
        self.reference_options = {str(k): str(v) for k, v in (reference_options or {}).items()}
        self.items: list[Item] = []

    def prepare(self, store_path: Path) -> None:
        """Read the reference (or take the built-in items); keep the first `n_episodes` when `caps_items`."""
        if self.reference is None:
            items = self.configured_items
            origin = f"the built-in items of scenario={self.name}"
        else:
            fmt = self.reference_format_override or self.reference_format
            items = self.items_from_reference(load_reference(self.reference, fmt, self.reference_options, store_path))
            origin = f"scenario.reference {self.reference!r}"
        if not items:
            raise SimError(f"{origin} holds no usable items for scenario={self.name}")
        self.items = items[: self.n_episodes] if self.caps_items and self.n_episodes is not None else items

    @abstractmethod
    def items_from_reference(self, episodes: list[Episode]) -> list[Item]:
        """Items from reference episodes in the importers' shape for this kind; unusable episodes are left out."""


scenarios: Registry[Scenario] = Registry("scenario")
