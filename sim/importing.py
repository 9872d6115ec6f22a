"""Load one reference file into the store: all of it in one transaction, and only once."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from sim.importers import ImportProblem, Skipped, Source, importers
from sim.store import Store


@dataclass
class ImportReport:
    """What one import did."""

    format: str
    dataset: str
    path: Path
    n_episodes: int = 0
    n_turns: int = 0
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


def import_file(
    store: Store, format_name: str, path: Path, dataset: str | None = None, options: dict[str, str] | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import `path` with the named importer; nothing is written unless every record is good.

    The progress bar shows only on a terminal (tqdm's `disable=None`)."""
    importer = importers.get(format_name)()
    if importer.needs_file:
        check_readable(path, importer.reads_folders)
    dataset = dataset or path.stem or format_name
    report = ImportReport(format_name, dataset, path)
    source = Source(path=path, dataset=dataset, options=options or {})
    sha256 = importer.fingerprint(source)
    if store.find_import(sha256, format_name, dataset) is not None:
        report.already_imported = True
        return report
    with store.db.atomic(), tqdm(desc=f"importing {path.name}", unit="ep", disable=None if progress else True) as bar:
        for item in importer.episodes(source):
            if isinstance(item, Skipped):
                report.skipped.append(item)
                continue
            try:
                store.add_imported_episode(item)
            except sqlite3.IntegrityError:
                raise ImportProblem(
                    path, None, f"episode {item.id!r} already exists (an id repeated in this file, or dataset "
                    f"{dataset!r} imported from another file: choose another --dataset)"
                ) from None
            report.n_episodes += 1
            report.n_turns += len(item.turns)
            bar.update(1)
        store.record_import(
            {"format": format_name, "dataset": dataset, "path": str(path), "sha256": sha256, "n_episodes": report.n_episodes}
        )
    return report
