"""What every analyzer provides: a name, a version, and annotations for one stored episode."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Optional

from sim.records import Annotation, Episode, Turn
from sim.registry import Registry


class Analyzer(ABC):
    """Scores one episode at a time; reads only what the store holds, so generated and imported data alike."""

    name: str  # set by the registry
    version: str = "1"
    checks_turns: bool = False  # True when `check_turn` can judge a turn on its own, so it can serve as a live guard

    @abstractmethod
    def applies_to(self, episode: Episode) -> bool:
        """Whether this analyzer has anything to say about `episode`."""

    @abstractmethod
    def annotate(self, episode: Episode) -> list[Annotation]:
        """Episode-level and turn-level values for one episode."""

    def check_turn(self, turn: Turn) -> Optional[str]:
        """Why `turn` alone should be flagged, or None; only analyzers with `checks_turns` implement it."""
        raise NotImplementedError(f"analyzer {self.name!r} does not judge single turns")


analyzers: Registry[Analyzer] = Registry("analyzer")
