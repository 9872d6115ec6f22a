"""CaSiNo: human-human campsite negotiations (JSONL, one dialogue per line)."""

from __future__ import annotations

from typing import Iterator

from sim.importers.base import Importer, Source, field_of, imported_episode, importers, read_jsonl, speaker_turns
from sim.records import Episode


@importers.register("casino")
class CasinoImporter(Importer):
    """Turns keep the participant id as speaker and role; deal actions stay as their own turns."""

    description = "CaSiNo campsite negotiations (human-human), JSONL with chat_logs"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per dialogue."""
        for line, record in read_jsonl(source.path):
            turns = speaker_turns(field_of(record, "chat_logs", source.path, line), "id", "text", source.path, line)
            meta = {"split": record.get("split"), "participant_info": record.get("participant_info")}
            yield imported_episode(source, field_of(record, "dialogue_id", source.path, line), "conversation", turns, "campsite negotiation", meta)
