"""Deal or No Deal: human-human item negotiations (JSONL, one dialogue per line, YOU/THEM turns)."""

from __future__ import annotations

from typing import Iterator

from sim.importers.base import Importer, Source, field_of, imported_episode, importers, read_jsonl, speaker_turns
from sim.records import Episode

META_FIELDS = ("item_counts", "you_values", "them_values", "you_selection", "you_reward", "outcome")


@importers.register("dealornodeal")
class DealOrNoDealImporter(Importer):
    """Speakers YOU and THEM; values, selection, reward and outcome go to the episode's meta."""

    description = "Deal or No Deal negotiations (human-human), JSONL with turns [{speaker, text}]"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per dialogue."""
        for line, record in read_jsonl(source.path):
            turns = speaker_turns(field_of(record, "turns", source.path, line), "speaker", "text", source.path, line)
            meta = {name: record.get(name) for name in META_FIELDS}
            yield imported_episode(source, field_of(record, "dialogue_idx", source.path, line), "conversation", turns, "item negotiation", meta)
