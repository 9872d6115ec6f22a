"""The Python API for notebooks: a store's runs, episodes, turns, annotations and data items as pandas DataFrames.

    from sim.api import open_results
    results = open_results("runs/sim.db")
    labels = results.task_labels()          # one row per labeled item, human and model label lists decoded
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from sim.store import Store

# Columns of the kind views that hold JSON text; they come back decoded.
JSON_COLUMNS = ("human_labels", "model_labels", "model_confidences", "judgments", "swapped_judgments", "parents", "target")


class Results:
    """Read-only DataFrame views of one artifact-sim database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _frame(self, view: str, run_id: Optional[str], dataset: Optional[str]) -> pd.DataFrame:
        """Rows of `view` (or of `episodes`) in the order their episodes were stored, JSON columns decoded."""
        frame = frame_of(self.store.view_rows(view, run_id, dataset))
        for column in frame.columns:
            if column in JSON_COLUMNS or column.endswith("_json"):
                frame[column] = frame[column].map(_decode)
        return frame

    def runs(self, sweep_id: Optional[str] = None) -> pd.DataFrame:
        """One row per run (of one sweep, if given), with its config, model, status and totals."""
        return frame_of(self.store.run_rows(sweep_id))

    def episodes(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """One row per episode (generated or imported), optionally of one run or dataset."""
        return self._frame("episodes", run_id, dataset)

    def turns(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """One row per turn, with its episode's run, dataset and kind (`kind`); the turn's own kind (utterance or
        action) is `turn_kind`."""
        return frame_of(self.store.turn_rows(run_id, dataset))

    def annotations(
        self, analyzer: Optional[str] = None, run_id: Optional[str] = None, dataset: Optional[str] = None
    ) -> pd.DataFrame:
        """One row per stored analyzer value (live guards' under analyzer `guard`), with its episode's run and dataset."""
        frame = frame_of(self.store.annotation_rows(analyzer, run_id, dataset))
        frame["detail_json"] = frame["detail_json"].map(_decode)
        return frame

    def conversations(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """Conversation episodes with their final answer and correctness where the task has a ground truth."""
        return self._frame("v_conversation", run_id, dataset)

    def task_labels(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """Labeled items: text, human labels, model labels and confidences."""
        return self._frame("v_task_label", run_id, dataset)

    def preferences(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """Compared pairs: prompt, both outputs, each judge's choice, the choice with the order swapped."""
        return self._frame("v_preference", run_id, dataset)

    def instructions(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """Instruction triples with author, filter outcome (termination_reason), ROUGE-L and lineage."""
        return self._frame("v_instruction", run_id, dataset)

    def free_text(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """Texts with their prompt, author (human or llm) and writer."""
        return self._frame("v_free_text", run_id, dataset)

    def close(self) -> None:
        """Close the database."""
        self.store.close()


def open_results(path: str | Path = "runs/sim.db") -> Results:
    """Open an existing database for reading as DataFrames."""
    return Results(Store.open(path, create=False))


def frame_of(rows: sqlite3.Cursor) -> pd.DataFrame:
    """The rows of a query as a DataFrame with the query's column names (none when it found nothing)."""
    return pd.DataFrame.from_records(list(rows), columns=[column[0] for column in rows.description])


def _decode(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
