"""CaSiNo: human-human campsite negotiations (JSONL, one dialogue per line)."""

from __future__ import annotations

from typing import Any, Optional

from sim.importers.base import DialogueImporter, importers


@importers.register("casino")
class CasinoImporter(DialogueImporter):
    """Turns keep the participant id as speaker and role; the deal actions of CaSiNo's interface (a deal submitted,
    accepted or rejected, a walk-away) stay as their own turns, marked as actions."""

    description = "CaSiNo campsite negotiations (human-human), JSONL with chat_logs"
    key_field = "dialogue_id"
    turns_field = "chat_logs"
    speaker_field = "id"
    actions = frozenset({"Submit-Deal", "Accept-Deal", "Reject-Deal", "Walk-Away"})

    def task_of(self, record: dict[str, Any]) -> Optional[str]:
        """Every dialogue negotiates the same campsite packages."""
        return "campsite negotiation"

    def meta_of(self, record: dict[str, Any]) -> dict[str, Any]:
        """The split and the participants' priorities, arguments and outcomes."""
        return {"split": record.get("split"), "participant_info": record.get("participant_info")}
