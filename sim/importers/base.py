"""What every importer provides, and strict readers that name the file and line of any bad input."""

from __future__ import annotations

import csv
import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator, Optional

from sim.errors import SimError
from sim.records import ACTION, UTTERANCE, Episode, Turn
from sim.registry import Registry


class ImportProblem(SimError):
    """Bad input in a reference file, located by file and line."""

    def __init__(self, path: Path, line: Optional[int], problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass
class Source:
    """One file to import, the dataset name its episodes get, and importer-specific options."""

    path: Path
    dataset: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A record that is well-formed but holds no data to import (reported, not an error)."""

    line: int
    reason: str


class Importer(ABC):
    """Turns one reference file into imported episodes; registered under its format name."""

    name: str  # set by the registry
    description: str = ""
    needs_file: bool = True
    reads_folders: bool = False

    def fingerprint(self, source: Source) -> str:
        """What makes a second import of the same data a no-op: by default the bytes of the file or folder."""
        return file_sha256(source.path)

    @abstractmethod
    def episodes(self, source: Source) -> Iterator[Episode | Skipped]:
        """The file's episodes in file order (or Skipped markers); raise ImportProblem on bad input."""


importers: Registry[Importer] = Registry("import format")


def parse_options(options: Iterable[str], where: str) -> dict[str, str]:
    """Importer options from `KEY=VALUE` strings; a SimError naming `where` for one without `=`."""
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise SimError(f"{where} {option!r}: expected KEY=VALUE")
        parsed[key] = value
    return parsed


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file or, for a folder, of its files' names and bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportProblem(path, line, f"not valid UTF-8 (byte {exc.start})") from None


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, parsed object) for every non-blank line; each line must hold one JSON object (a record)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            text = _decode(raw, path, number).strip()
            if not text:
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ImportProblem(path, number, f"malformed JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, dict):
                raise ImportProblem(path, number, f"expected a JSON object, got {type(record).__name__}")
            yield number, record


def first_line(path: Path) -> str:
    """The first line of a file (a CSV header to sniff the file's layout from), bad UTF-8 replaced."""
    with path.open("rb") as handle:
        return handle.readline().decode("utf-8", "replace")


def read_json(path: Path) -> Any:
    """A whole JSON document."""
    text = _decode(path.read_bytes(), path, 1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportProblem(path, exc.lineno, f"malformed JSON ({exc.msg} at column {exc.colno})") from None


def read_csv(path: Path, required: set[str], delimiter: str = ",") -> Iterator[tuple[int, dict[str, str]]]:
    """(line number where the record starts, row) for every record; the header must name every required column."""
    text = _decode(path.read_bytes(), path, 1)
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    missing = required - set(reader.fieldnames or [])
    if missing:
        raise ImportProblem(path, 1, f"missing column(s) {', '.join(sorted(missing))}; found {', '.join(reader.fieldnames or [])}")
    start = reader.line_num + 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ImportProblem(path, reader.line_num, f"malformed CSV ({exc})") from None


def field_of(record: Any, key: str, path: Path, line: int) -> Any:
    """`record[key]`, or an ImportProblem naming the missing field."""
    if not isinstance(record, dict):
        raise ImportProblem(path, line, f"expected an object, got {type(record).__name__}")
    if key not in record:
        raise ImportProblem(path, line, f"missing field {key!r}")
    return record[key]


def speaker_turns(entries: Any, speaker_key: str, text_key: str, path: Path, line: int) -> list[tuple[str, str, str]]:
    """(speaker, role, text) triples from a list of records; in human corpora the speaker id is also the role."""
    if not isinstance(entries, list):
        raise ImportProblem(path, line, f"expected a list of turns, got {type(entries).__name__}")
    turns = []
    for entry in entries:
        speaker = str(field_of(entry, speaker_key, path, line))
        turns.append((speaker, speaker, str(field_of(entry, text_key, path, line))))
    return turns


def imported_episode(
    source: Source,
    key: Any,
    kind: str,
    turns: list[tuple[str, str, str]],
    task: Optional[str] = None,
    meta: Optional[dict[str, Any]] = None,
    roles: Optional[dict[str, str]] = None,
    termination_reason: str = "imported",
    actions: Collection[str] = (),
) -> Episode:
    """An imported episode from (speaker, role, text) triples; `roles` defaults to each role's last speaker; a turn
    whose whole text is one of `actions` (a corpus's markers of a non-utterance, such as a deal submitted) is an
    action, not an utterance."""
    return Episode(
        id=f"{source.dataset}-{key}",
        run_id=None,
        source="imported",
        kind=kind,
        task=task,
        roles=roles if roles is not None else {role: speaker for speaker, role, _ in turns},
        status="done",
        termination_reason=termination_reason,
        dataset=source.dataset,
        meta=meta or {},
        turns=[
            Turn(idx=i, speaker=speaker, role=role, content=text, kind=ACTION if text in actions else UTTERANCE)
            for i, (speaker, role, text) in enumerate(turns)
        ],
    )


class DialogueImporter(Importer):
    """A JSONL corpus of one human-human dialogue per line, its turns a list of {speaker, text} records: the speaker
    id is also the role; subclasses name the fields and say what goes to the episode's task and meta."""

    key_field = "dialogue_idx"
    turns_field = "turns"
    speaker_field = "speaker"
    text_field = "text"
    # Whole turn texts that record an action in the corpus's interface rather than something said.
    actions: frozenset[str] = frozenset()

    def task_of(self, record: dict[str, Any]) -> Optional[str]:
        """The episode's task."""
        return None

    def meta_of(self, record: dict[str, Any]) -> dict[str, Any]:
        """What of the record goes to the episode's meta."""
        return {}

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per dialogue."""
        for line, record in read_jsonl(source.path):
            entries = field_of(record, self.turns_field, source.path, line)
            turns = speaker_turns(entries, self.speaker_field, self.text_field, source.path, line)
            key = field_of(record, self.key_field, source.path, line)
            yield imported_episode(
                source, key, "conversation", turns, self.task_of(record), self.meta_of(record), actions=self.actions
            )
