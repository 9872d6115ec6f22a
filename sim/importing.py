"""Load one reference file into the store: all of it in one transaction, and only once."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Iterator

from tqdm import tqdm

from sim.importers import ImportProblem, Skipped, Source, importers
from sim.records import Episode
from sim.store import Store


@dataclass
class ImportReport:
    """What one import did."""

    format: str
    dataset: str
    path: Path
    n_episodes: int = 0
    n_turns: int = 0
    # Turns by kind (utterance, or what an importer marks otherwise, such as a deal action).
    turn_kinds: Counter = field(default_factory=Counter)
    already_imported: bool = False
    skipped: list[Skipped] = field(default_factory=list)


def check_readable(path: Path, folders: bool = False) -> None:
    """A clear error for a path that cannot be imported at all (a folder, unless the format reads `folders`)."""
    if not path.exists():
        raise ImportProblem(path, None, "no such file or folder")
    if path.is_dir() and not folders:
        raise ImportProblem(path, None, "is a folder; this format reads one file")
    if path.is_file():
        try:
            with path.open("rb") as handle:
                if not handle.read(1):
                    raise ImportProblem(path, None, "the file is empty")
        except PermissionError:
            raise ImportProblem(path, None, "permission denied") from None


@dataclass
class _Reading:
    """An import whose file has passed every check that needs no store: its first record is read and held back."""

    format: str
    fingerprint: str
    report: ImportReport
    items: Iterator[Episode | Skipped]
    rest: Iterator[Episode | Skipped]

    @classmethod
    def start(cls, format_name: str, path: Path, dataset: str | None, options: dict[str, str] | None) -> "_Reading":
        """Check `path` and read its first record: a missing, unreadable or empty file, and one without the fields
        or columns the format needs, are refused here, before any database is opened."""
        importer = importers.get(format_name)()
        if importer.needs_file:
            check_readable(path, importer.reads_folders)
        dataset = dataset or path.stem or format_name
        source = Source(path=path, dataset=dataset, options=options or {})
        rest = iter(importer.episodes(source))
        try:
            first = next(rest, None)
            fingerprint = importer.fingerprint(source)
        except BaseException:
            _close(rest)
            raise
        items = rest if first is None else chain([first], rest)
        return cls(format_name, fingerprint, ImportReport(format_name, dataset, path), items, rest)

    def write(self, store: Store, progress: bool) -> ImportReport:
        """Store every record in one transaction, unless this file was imported as this dataset before."""
        report, path = self.report, self.report.path
        try:
            if store.find_import(self.fingerprint, self.format, report.dataset) is not None:
                report.already_imported = True
                return report
            bar = tqdm(desc=f"importing {path.name}", unit="ep", disable=None if progress else True)
            with store.db.atomic(), bar:
                for item in self.items:
                    if isinstance(item, Skipped):
                        report.skipped.append(item)
                        continue
                    try:
                        store.add_imported_episode(item)
                    except sqlite3.IntegrityError:
                        raise ImportProblem(
                            path, None, f"episode {item.id!r} already exists (an id repeated in this file, or dataset "
                            f"{report.dataset!r} imported from another file: choose another --dataset)"
                        ) from None
                    report.n_episodes += 1
                    report.n_turns += len(item.turns)
                    report.turn_kinds.update(turn.kind for turn in item.turns)
                    bar.update(1)
                store.record_import(
                    {"format": self.format, "dataset": report.dataset, "path": str(path), "sha256": self.fingerprint,
                     "n_episodes": report.n_episodes}
                )
        finally:
            _close(self.rest)
        return report


def _close(items: Iterator[object]) -> None:
    """Let an importer's generator close the file it reads now, not when it is collected."""
    close = getattr(items, "close", None)
    if close is not None:
        close()


def import_file(
    store: Store, format_name: str, path: Path, dataset: str | None = None, options: dict[str, str] | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import `path` with the named importer; nothing is written unless every record is good.

    The progress bar shows only on a terminal (tqdm's `disable=None`)."""
    return _Reading.start(format_name, path, dataset, options).write(store, progress)


def import_into(
    db: str | Path, format_name: str, path: Path, dataset: str | None = None, options: dict[str, str] | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import `path` into the database at `db`, which is opened (or created) only once the file has passed the
    checks of `_Reading.start`: a file that cannot be imported at all leaves no database behind."""
    reading = _Reading.start(format_name, path, dataset, options)
    try:
        store = Store.open(db, option="--db")
    except BaseException:
        _close(reading.rest)
        raise
    try:
        return reading.write(store, progress)
    finally:
        store.close()
