"""PersuasionForGood: human-human donation persuasion (CSV, one sentence per row)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from sim.importers.base import ImportProblem, Importer, Source, imported_episode, importers, read_csv
from sim.records import Episode

ROLES = {"0": "persuader", "1": "persuadee"}


@importers.register("persuasionforgood")
class PersuasionForGoodImporter(Importer):
    """Sentences of the same turn and speaker are joined into one utterance; `-o info=full_info.csv` adds donations."""

    description = "PersuasionForGood dialogues (human-human), full_dialog.csv (Unit, Turn, B4 role, B2 dialogue)"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per dialogue id (B2), in order of first appearance."""
        dialogues: dict[str, list[tuple[str, str, str]]] = {}
        last_key: dict[str, tuple[str, str]] = {}
        for line, row in read_csv(source.path, {"Unit", "Turn", "B4", "B2"}):
            role = ROLES.get(row["B4"].strip())
            if role is None:
                raise ImportProblem(source.path, line, f"B4 must be 0 (persuader) or 1 (persuadee), got {row['B4']!r}")
            dialogue = row["B2"]
            turns = dialogues.setdefault(dialogue, [])
            key = (row["Turn"], role)
            if turns and last_key.get(dialogue) == key:
                speaker, role, text = turns[-1]
                turns[-1] = (speaker, role, f"{text} {row['Unit'].strip()}")
            else:
                turns.append((role, role, row["Unit"].strip()))
            last_key[dialogue] = key
        donations = self._donations(Path(source.options["info"])) if "info" in source.options else {}
        for dialogue, turns in dialogues.items():
            meta = {"donations": donations.get(dialogue, {})}
            yield imported_episode(source, dialogue, "conversation", turns, "persuade the partner to donate to Save the Children", meta)

    @staticmethod
    def _donations(path: Path) -> dict[str, dict[str, float]]:
        donations: dict[str, dict[str, float]] = {}
        for line, row in read_csv(path, {"B2", "B4", "B6"}):
            try:
                amount = float(row["B6"]) if row["B6"].strip() else None
            except ValueError:
                raise ImportProblem(path, line, f"B6 (donation) is not a number: {row['B6']!r}") from None
            donations.setdefault(row["B2"], {})[ROLES.get(row["B4"].strip(), row["B4"])] = amount
        return donations
