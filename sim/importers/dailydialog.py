"""DailyDialog: human-written everyday dialogues (JSONL, one dialogue per line, A/B turns)."""

from __future__ import annotations

from typing import Iterator

from sim.importers.base import Importer, Source, field_of, imported_episode, importers, read_jsonl, speaker_turns
from sim.records import Episode


@importers.register("dailydialog")
class DailyDialogImporter(Importer):
    """Speakers A and B; the topic becomes the episode's task."""

    description = "DailyDialog everyday dialogues (human), JSONL with topic and turns [{speaker, text}]"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per dialogue."""
        for line, record in read_jsonl(source.path):
            turns = speaker_turns(field_of(record, "turns", source.path, line), "speaker", "text", source.path, line)
            topic = record.get("topic")
            yield imported_episode(
                source, field_of(record, "dialogue_idx", source.path, line), "conversation", turns, topic, {"topic_id": record.get("topic_id")}
            )
