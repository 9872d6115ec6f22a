"""Any CSV, TSV or JSONL table, mapped to episodes by column names given as options."""

from __future__ import annotations

from typing import Any, Iterator

from sim.importers.base import ImportProblem, Importer, Source, importers, read_csv, read_jsonl
from sim.records import Episode, Turn

KINDS = ("conversation", "task_label", "preference", "instruction", "free_text")


@importers.register("table")
class TableImporter(Importer):
    """Options: text=COL (required), kind=, id=COL, conversation=COL (rows with one value form one episode),
    speaker=COL, role=COL, task=COL, meta=COL1,COL2."""

    description = "generic CSV/TSV/JSONL; map columns with -o text=COL [-o conversation=COL -o speaker=COL ...]"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per row, or per value of the `conversation` column."""
        options = source.options
        if "text" not in options:
            raise ImportProblem(source.path, None, "the table format needs -o text=COLUMN")
        kind = options.get("kind", "conversation" if "conversation" in options else "free_text")
        if kind not in KINDS:
            raise ImportProblem(source.path, None, f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        columns = [options[key] for key in ("text", "id", "conversation", "speaker", "role", "task") if key in options]
        meta_columns = [c for c in options.get("meta", "").split(",") if c]
        episodes: dict[str, Episode] = {}
        for line, row in self._rows(source, set(columns + meta_columns)):
            key = str(row[options["conversation"]] if "conversation" in options else row.get(options.get("id", ""), line))
            episode = episodes.get(key)
            if episode is None:
                episode = episodes[key] = Episode(
                    id=f"{source.dataset}-{key}",
                    run_id=None,
                    source="imported",
                    kind=kind,
                    task=str(row[options["task"]]) if "task" in options else None,
                    roles={},
                    status="done",
                    termination_reason="imported",
                    dataset=source.dataset,
                    meta={"line": line, **{c: row[c] for c in meta_columns}},
                )
            speaker = str(row[options["speaker"]]) if "speaker" in options else "author"
            role = str(row[options["role"]]) if "role" in options else speaker
            episode.roles.setdefault(role, speaker)
            episode.turns.append(Turn(idx=len(episode.turns), speaker=speaker, role=role, content=str(row[options["text"]])))
        yield from episodes.values()

    @staticmethod
    def _rows(source: Source, required: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        suffix = source.path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            yield from read_csv(source.path, required, delimiter="\t" if suffix == ".tsv" else ",")
            return
        if suffix not in (".jsonl", ".ndjson"):
            raise ImportProblem(source.path, None, f"the table format reads .csv, .tsv and .jsonl files, not {suffix or 'no extension'}")
        for line, record in read_jsonl(source.path):
            if not isinstance(record, dict):
                raise ImportProblem(source.path, line, f"expected a JSON object, got {type(record).__name__}")
            missing = required - set(record)
            if missing:
                raise ImportProblem(source.path, line, f"missing field(s) {', '.join(sorted(missing))}")
            yield line, record
