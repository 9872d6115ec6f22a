"""Solo-Performance-Prompting logs: one model voicing several personas, split back into persona turns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from sim.importers.base import ImportProblem, Importer, Skipped, Source, field_of, imported_episode, importers, read_jsonl
from sim.records import Episode
from sim.spp import split_transcript


@importers.register("spp")
class SPPImporter(Importer):
    """Keeps the puzzle's target and the logged correctness; `-o puzzles=PATH` takes targets from the puzzle file."""

    description = "Solo-Performance-Prompting logs (JSONL with raw_response, test_output_infos, task_data)"

    def episodes(self, source: Source) -> Iterator[Episode | Skipped]:
        """One episode per logged puzzle; records without a response are skipped."""
        targets = self._targets(Path(source.options["puzzles"])) if "puzzles" in source.options else None
        for line, record in read_jsonl(source.path):
            if isinstance(record, dict) and "raw_response" not in record and not record:
                yield Skipped(line, "empty record (no response logged)")
                continue
            content = self._content(field_of(record, "raw_response", source.path, line), source.path, line)
            personas, turns = split_transcript(content)
            if not turns:
                raise ImportProblem(source.path, line, "the response has no 'Participants:' line and persona turns")
            task_data = field_of(record, "task_data", source.path, line)
            idx = field_of(task_data, "idx", source.path, line)
            infos = record.get("test_output_infos") or [{}]
            answers = record.get("unwrapped_output") or [None]
            meta = {
                "idx": idx,
                "personas": personas,
                "target": (targets or {}).get(idx, task_data.get("targets")),
                "correct": infos[0].get("correct"),
                "final_answer": answers[0],
                "model": record.get("model"),
                "method": record.get("method"),
            }
            if targets is not None and idx not in targets:
                raise ImportProblem(source.path, line, f"puzzle idx {idx} is not in {source.options['puzzles']}")
            yield imported_episode(source, idx, "conversation", turns, task_data.get("inputs"), meta)

    @staticmethod
    def _content(raw: Any, path: Path, line: int) -> str:
        try:
            return str(raw[0]["choices"][0]["message"]["content"])
        except (TypeError, KeyError, IndexError):
            raise ImportProblem(path, line, "raw_response has no choices[0].message.content") from None

    @staticmethod
    def _targets(path: Path) -> dict[Any, Any]:
        return {field_of(p, "idx", path, line): field_of(p, "targets", path, line) for line, p in read_jsonl(path)}
