"""Instruction datasets: instruction, optional input, output; human-written or LLM-generated."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from sim.importers.base import ImportProblem, Importer, Source, field_of, imported_episode, importers, read_json, read_jsonl
from sim.records import Episode

# Known corpora by file name, so their author type needs no option; -o author= overrides.
KNOWN_AUTHORS = {
    "seed_tasks": "human",
    "user_oriented_instructions": "human",
    "t0_train": "human",
    "roleplay-simple-deduped-roleplay-instruct": "llm",
    "codegen-instruct": "llm",
    "alpaca_data": "llm",
    "machine_generated_instructions": "llm",
    "all_generated_instances": "llm",
}


def author_of(source: Source) -> str:
    """human, llm, or what -o author= says."""
    if "author" in source.options:
        return source.options["author"]
    return next((author for prefix, author in KNOWN_AUTHORS.items() if source.path.stem.startswith(prefix)), "unknown")


def instruction_episode(source: Source, key: Any, author: str, instruction: str, input_text: str, output: str | None, meta: dict) -> Episode:
    """Turns: instruction, input (when not empty), output (when known)."""
    parts = (("instruction", instruction), ("input", input_text), ("output", output))
    turns = [(author, role, text) for role, text in parts if text]
    meta = {**meta, "author": author, "instruction": instruction, "input": input_text, "output": output}
    return imported_episode(source, key, "instruction", turns, instruction, meta)


@importers.register("instructions")
class InstructionsImporter(Importer):
    """Self-Instruct seeds and user-oriented tasks (instances), Alpaca/GPTeacher JSON lists, the T0 sample
    (prompt, completion), and Self-Instruct generations (instruction with or without input/output)."""

    description = "instruction triples: Self-Instruct JSONL, Alpaca/GPTeacher JSON, T0 sample, Self-Instruct reruns (-o author=)"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per instruction (per instance for tasks with several instances)."""
        author = author_of(source)
        records = self._records(source.path)
        for line, record in records:
            path = source.path
            if "instances" in record:
                for number, instance in enumerate(field_of(record, "instances", path, line)):
                    meta = {k: record.get(k) for k in ("id", "name", "motivation_app", "is_classification") if k in record}
                    yield instruction_episode(
                        source, f"{record.get('id', line)}-{number}", author, str(field_of(record, "instruction", path, line)),
                        str(instance.get("input") or ""), str(instance.get("output") or ""), meta,
                    )
            elif "prompt" in record and "completion" in record:
                yield instruction_episode(
                    source, line, author, str(record["prompt"]), "", str(record["completion"]), {"template": record.get("template")}
                )
            else:
                output = record.get("output", record.get("response"))
                meta = {k: record[k] for k in ("avg_similarity_score",) if k in record}
                yield instruction_episode(
                    source, line, author, str(field_of(record, "instruction", path, line)), str(record.get("input") or ""),
                    None if output is None else str(output), meta,
                )

    @staticmethod
    def _records(path: Path) -> list[tuple[int, dict[str, Any]]]:
        if path.suffix.lower() == ".json":
            document = read_json(path)
            if not isinstance(document, list):
                raise ImportProblem(path, 1, "expected a JSON list of {instruction, input, output|response}")
            records = list(enumerate(document, start=1))
        else:
            records = list(read_jsonl(path))
        for line, record in records:
            if not isinstance(record, dict):
                raise ImportProblem(path, line, f"expected an object, got {type(record).__name__}")
        return records
