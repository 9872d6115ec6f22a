"""Hugging Face `datasets`: `sim import hf:NAME [DATA_FILES]`, mapped to episodes like the table format."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Optional

from sim.errors import one_line
from sim.importers.base import ImportProblem, Importer, Source, importers
from sim.importers.table import episodes_from_rows, mapped_columns
from sim.records import Episode

FILE_BUILDERS = ("json", "csv", "parquet", "text", "arrow")


@importers.register("hf")
class HFDatasetsImporter(Importer):
    """`hf:json|csv|parquet FILE` loads local files, `hf:disk DIR` a dataset saved with `save_to_disk`, and
    `hf:OWNER/NAME` a dataset from the hub (or its local cache; needs network unless cached). Options: split
    (default train), config, and the column mapping of the table format (-o text=COL ...)."""

    description = "Hugging Face datasets: hf:json|csv|parquet FILE, hf:disk DIR, hf:OWNER/NAME; -o split= -o text=COL ..."
    needs_file = False

    def __init__(self) -> None:
        self._loaded: dict[tuple, Any] = {}

    def fingerprint(self, source: Source) -> str:
        """The dataset's own fingerprint (content-based for local files)."""
        return f"hf:{self._dataset(source)._fingerprint}"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per row, or per value of the `conversation` column."""
        dataset = self._dataset(source)
        required = mapped_columns(source)
        missing = required - set(dataset.column_names)
        if missing:
            raise ImportProblem(source.path, None, f"missing column(s) {', '.join(sorted(missing))}; found {', '.join(dataset.column_names)}")
        yield from episodes_from_rows(source, enumerate(dataset, start=1))

    def _dataset(self, source: Source) -> Any:
        builder = source.options.get("builder", "")
        split = source.options.get("split", "train")
        key = (builder, str(source.path), split, source.options.get("config"))
        if key not in self._loaded:
            self._loaded[key] = self._load(builder, source.path if str(source.path) not in ("", ".") else None, split, source.options.get("config"), source)
        return self._loaded[key]

    @staticmethod
    def _load(builder: str, path: Optional[Path], split: str, config: Optional[str], source: Source) -> Any:
        try:
            import datasets
        except ImportError:
            raise ImportProblem(source.path, None, "hf: imports need the datasets package: pip install 'artifact-sim[datasets]'") from None
        datasets.disable_progress_bars()
        try:
            if builder == "disk":
                loaded = datasets.load_from_disk(str(path))
                return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
            if builder in FILE_BUILDERS:
                if path is None:
                    raise ImportProblem(Path(f"hf:{builder}"), None, "needs a data file: sim import hf:json FILE ...")
                return datasets.load_dataset(builder, data_files=str(path), split=split)
            return datasets.load_dataset(builder, config, split=split, data_files=str(path) if path else None)
        except ImportProblem:
            raise
        except Exception as exc:  # datasets raises many types (ConnectionError, FileNotFoundError, ValueError, ...)
            raise ImportProblem(Path(f"hf:{builder}"), None, f"cannot load: {one_line(str(exc), 200)}") from None
