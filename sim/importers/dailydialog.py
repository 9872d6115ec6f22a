"""DailyDialog: human-written everyday dialogues (JSONL, one dialogue per line, A/B turns)."""

from __future__ import annotations

from typing import Any, Optional

from sim.importers.base import DialogueImporter, importers


@importers.register("dailydialog")
class DailyDialogImporter(DialogueImporter):
    """Speakers A and B; the topic becomes the episode's task."""

    description = "DailyDialog everyday dialogues (human), JSONL with topic and turns [{speaker, text}]"

    def task_of(self, record: dict[str, Any]) -> Optional[str]:
        """The dialogue's topic."""
        return record.get("topic")

    def meta_of(self, record: dict[str, Any]) -> dict[str, Any]:
        """The topic's number."""
        return {"topic_id": record.get("topic_id")}
