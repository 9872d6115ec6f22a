"""What every analyzer provides: a name, a version, and annotations for one stored episode."""

from __future__ import annotations

from abc import ABC, abstractmethod

from sim.records import Annotation, Episode
from sim.registry import Registry


class Analyzer(ABC):
    """Scores one episode at a time; reads only what the store holds, so generated and imported data alike."""

    name: str  # set by the registry
    version: str = "1"

    @abstractmethod
    def applies_to(self, episode: Episode) -> bool:
        """Whether this analyzer has anything to say about `episode`."""

    @abstractmethod
    def annotate(self, episode: Episode) -> list[Annotation]:
        """Episode-level and turn-level values for one episode."""


analyzers: Registry[Analyzer] = Registry("analyzer")
