"""Any CSV, TSV, JSONL or Parquet table, mapped to episodes by column names given as options."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from sim.importers.base import ImportProblem, Importer, Source, imported_episode, importers, read_csv, read_jsonl
from sim.records import Episode

KINDS = ("conversation", "task_label", "preference", "instruction", "free_text")


def episodes_from_rows(source: Source, rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[Episode]:
    """Map rows to episodes by the column options: text=COL (required), kind=, id=COL, conversation=COL
    (rows sharing its value form one episode, in file order), speaker=COL, role=COL, task=COL, meta=COL1,COL2."""
    options = source.options
    kind = options.get("kind", "conversation" if "conversation" in options else "free_text")
    if kind not in KINDS:
        raise ImportProblem(source.path, None, f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    meta_columns = [c for c in options.get("meta", "").split(",") if c]
    groups: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        key = str(row[options["conversation"]] if "conversation" in options else row.get(options.get("id", ""), line))
        group = groups.get(key)
        if group is None:
            group = groups[key] = {
                "task": str(row[options["task"]]) if "task" in options else None,
                "meta": {"line": line, **{c: row[c] for c in meta_columns}},
                "turns": [],
                "roles": {},
            }
        speaker = str(row[options["speaker"]]) if "speaker" in options else "author"
        role = str(row[options["role"]]) if "role" in options else speaker
        group["roles"].setdefault(role, speaker)
        group["turns"].append((speaker, role, str(row[options["text"]])))
    for key, group in groups.items():
        yield imported_episode(source, key, kind, group["turns"], group["task"], group["meta"], roles=group["roles"])


def mapped_columns(source: Source) -> set[str]:
    """The columns the options name; `text` must be one of them."""
    if "text" not in source.options:
        raise ImportProblem(source.path, None, "the table and hf: formats need -o text=COLUMN (the text column)")
    keys = ("text", "id", "conversation", "speaker", "role", "task")
    return {source.options[k] for k in keys if k in source.options} | {c for c in source.options.get("meta", "").split(",") if c}


def check_columns(source: Source, line: int, columns: Iterable[str], required: set[str]) -> None:
    """An ImportProblem naming the mapped columns a record lacks."""
    missing = required - set(columns)
    if missing:
        raise ImportProblem(source.path, line, f"missing column(s) {', '.join(sorted(missing))}")


@importers.register("table")
class TableImporter(Importer):
    """CSV, TSV, JSONL or Parquet rows mapped to episodes by column options (see `episodes_from_rows`)."""

    description = "generic CSV/TSV/JSONL/Parquet; map columns with -o text=COL [-o conversation=COL -o speaker=COL ...]"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per row, or per value of the `conversation` column."""
        required = mapped_columns(source)
        yield from episodes_from_rows(source, self._rows(source, required))

    @staticmethod
    def _rows(source: Source, required: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
        suffix = source.path.suffix.lower()
        if suffix in (".csv", ".tsv"):
            yield from read_csv(source.path, required, delimiter="\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".ndjson"):
            for line, record in read_jsonl(source.path):
                check_columns(source, line, record, required)
                yield line, record
        elif suffix == ".parquet":
            yield from read_parquet(source, required)
        else:
            raise ImportProblem(source.path, None, f"the table format reads .csv, .tsv, .jsonl and .parquet files, not {suffix or 'no extension'}")


def read_parquet(source: Source, required: set[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) from a Parquet file, through pyarrow (extra `[datasets]`)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportProblem(source.path, None, "reading Parquet needs pyarrow: pip install 'artifact-sim[datasets]'") from None
    try:
        table = pq.read_table(source.path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family for unreadable files
        raise ImportProblem(source.path, None, f"not a readable Parquet file ({exc})") from None
    check_columns(source, 1, table.column_names, required)
    for number, row in enumerate(table.to_pylist(), start=1):
        yield number, row
