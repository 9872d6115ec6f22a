"""Plain records read from and written to the store; shared by runner, scenarios and analyzers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

# The finish_reason of a turn cut at max_tokens (OpenAI's word, which every backend reports).
TRUNCATED = "length"

def utc_now() -> str:
    """The current UTC time as an ISO-8601 string."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# What a turn is: said in the conversation, or a non-utterance an importer marks (a negotiation's deal action, a
# game's final selection), which analyzers of language never score.
UTTERANCE = "utterance"
ACTION = "action"


@dataclass(slots=True)
class Turn:
    """One turn of an episode, by default an utterance (slots: a corpus holds millions)."""

    idx: int
    speaker: str
    role: str
    content: str
    kind: str = UTTERANCE
    prompt_tokens: Optional[int] = None
    completion_tokens: Optional[int] = None
    latency_ms: Optional[float] = None
    finish_reason: Optional[str] = None
    request_hash: Optional[str] = None
    cache_hit: Optional[int] = None
    retries: Optional[int] = None
    logprob: Optional[float] = None
    # The run revision (run_revisions) the turn was generated under; 0: the run's config as it started.
    revision: int = 0


@dataclass
class Episode:
    """One generated or imported data item (a conversation, a label, a preference, ...) with its turns."""

    id: str
    run_id: Optional[str]
    source: str
    kind: str
    task: Optional[str]
    roles: dict[str, str]
    status: str
    termination_reason: Optional[str]
    dataset: Optional[str] = None
    meta: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    # A fork (`sim replay --fork-at`) keeps its parent's turns before `fork_turn` and regenerates the rest.
    parent_id: Optional[str] = None
    fork_turn: Optional[int] = None

    def content_of(self, role: str) -> Optional[str]:
        """The content of the first turn with `role`, or None."""
        return next((turn.content for turn in self.turns if turn.role == role), None)

    @classmethod
    def from_row(cls, row: dict[str, Any], turns: list[Turn]) -> "Episode":
        """Build an episode from its `episodes` row and its turns."""
        return cls(
            id=row["id"],
            run_id=row["run_id"],
            source=row["source"],
            kind=row["kind"],
            task=row["task"],
            roles=json.loads(row["roles_json"] or "{}"),
            status=row["status"],
            termination_reason=row["termination_reason"],
            dataset=row["dataset"],
            meta=json.loads(row["meta_json"] or "{}"),
            turns=turns,
            parent_id=row.get("parent_id"),
            fork_turn=row.get("fork_turn"),
        )


@dataclass(slots=True)
class Annotation:
    """One analyzer value for an episode (`turn_idx` None) or for one of its turns."""

    episode_id: str
    name: str
    value: float
    turn_idx: Optional[int] = None
    detail: dict[str, Any] = field(default_factory=dict)
