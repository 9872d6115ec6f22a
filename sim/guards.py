"""Live guards: a per-turn analyzer watching turns as they are generated, and what to do when it flags one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import DictConfig

from analyzers import Analyzer, analyzers
from sim.analysis import build_analyzers
from sim.errors import SimError, require_at_least, require_one_of
from sim.records import Annotation, Turn

ACTIONS = ("flag", "stop", "regenerate")
# What a guard writes on a turn it acted on: `guard_flag`, `guard_stop`, `guard_regenerate`.
GUARD_FLAGS = tuple(f"guard_{action}" for action in ACTIONS)
# Guard annotations are stored under this analyzer name, apart from the analyzer's own post-run annotations.
GUARD_ANALYZER = "guard"


class GuardStop(Exception):
    """A guard with action `stop` flagged a turn: the episode ends after storing it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Guard:
    """A built guard: its analyzer, action and retry limit, checked when the run starts."""

    analyzer: Analyzer
    action: str
    max_tries: int

    def flags(self, turn: Turn) -> Optional[str]:
        """The analyzer's reason for flagging `turn`, or None."""
        return self.analyzer.check_turn(turn)

    def annotation(self, episode_id: str, turn: Turn, reason: str, tries: int) -> Annotation:
        """What this guard did to turn `turn.idx` (after `tries` generations), for the annotations table."""
        detail: dict[str, Any] = {"analyzer": self.analyzer.name, "reason": reason, "tries": tries}
        return Annotation(episode_id, f"guard_{self.action}", 1.0, turn_idx=turn.idx, detail=detail)


def build_guards(configs: list[dict[str, Any]], analyzer_settings: Optional[DictConfig] = None) -> list[Guard]:
    """Guards from `scenario.guards` (schema: scenarios.base.GuardConfig), their analyzers built from
    `analyzer_settings`; a SimError for an unknown analyzer or action, or one that cannot judge a turn."""
    guards = []
    for position, config in enumerate(configs):
        where = f"scenario.guards[{position}]"
        (analyzer,) = build_analyzers(analyzer_settings, [str(config.get("analyzer"))])
        if not analyzer.checks_turns:
            per_turn = ", ".join(n for n in analyzers.names() if analyzers.get(n).checks_turns)
            raise SimError(f"{where}: analyzer {analyzer.name!r} cannot judge single turns (per-turn analyzers: {per_turn})")
        action = str(config.get("action", "flag"))
        require_one_of(f"{where}.action", action, ACTIONS)
        max_tries = int(config.get("max_tries", 3))
        require_at_least(f"{where}.max_tries", max_tries, 1)
        guards.append(Guard(analyzer, action, max_tries))
    return guards
