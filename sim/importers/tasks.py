"""Tasks with a ground truth (BIG-bench style `inputs` and `targets`), e.g. the logic grid puzzles used with SPP."""

from __future__ import annotations

from typing import Iterator

from sim.importers.base import Importer, Source, field_of, imported_episode, importers, read_jsonl
from sim.records import Episode


@importers.register("tasks")
class TasksImporter(Importer):
    """JSONL with `inputs` (the question) and `targets` (the answers), and optionally `idx`."""

    description = "tasks with answers: BIG-bench JSONL (inputs, targets[, idx]), e.g. logic_grid_puzzle_200.jsonl"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per task: the question as its only turn, the targets in meta."""
        for line, record in read_jsonl(source.path):
            question = str(field_of(record, "inputs", source.path, line))
            targets = field_of(record, "targets", source.path, line)
            key = record.get("idx", line)
            meta = {"idx": key, "target": targets, "choices": record.get("multiple_choice_targets")}
            yield imported_episode(source, key, "task", [("task", "question", question)], question, meta)
