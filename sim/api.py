"""The Python API for notebooks: a store's runs, episodes, turns, annotations and data items as pandas DataFrames.

    from sim.api import open_results
    results = open_results("runs/sim.db")
    labels = results.task_labels()          # one row per labeled item, human and model label lists decoded
"""

from __future__ import annotations

import json
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
        key = "id" if view == "episodes" else "episode_id"
        query = (
            f"SELECT v.* FROM [{view}] v JOIN episodes e ON e.id = v.{key}"
            " WHERE (? IS NULL OR e.run_id = ?) AND (? IS NULL OR e.dataset = ?) ORDER BY e.rowid"
        )
        frame = pd.read_sql_query(query, self.store.db.conn, params=[run_id, run_id, dataset, dataset])
        for column in frame.columns:
            if column in JSON_COLUMNS or column.endswith("_json"):
                frame[column] = frame[column].map(_decode)
        return frame

    def runs(self, sweep_id: Optional[str] = None) -> pd.DataFrame:
        """One row per run (of one sweep, if given), with its config, model, status and totals."""
        query = "SELECT * FROM runs WHERE ? IS NULL OR sweep_id = ? ORDER BY created_at"
        return pd.read_sql_query(query, self.store.db.conn, params=[sweep_id, sweep_id])

    def episodes(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """One row per episode (generated or imported), optionally of one run or dataset."""
        return self._frame("episodes", run_id, dataset)

    def turns(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> pd.DataFrame:
        """One row per turn, with its episode's run, dataset and kind (`kind`); the turn's own kind (utterance or
        action) is `turn_kind`."""
        columns = ", ".join(f"t.[{name}]" for name in self.store.db["turns"].columns_dict if name != "kind")
        query = (
            f"SELECT {columns}, t.kind AS turn_kind, e.run_id, e.dataset, e.kind FROM turns t JOIN episodes e ON e.id = t.episode_id"
            " WHERE (? IS NULL OR e.run_id = ?) AND (? IS NULL OR e.dataset = ?) ORDER BY e.rowid, t.idx"
        )
        return pd.read_sql_query(query, self.store.db.conn, params=[run_id, run_id, dataset, dataset])

    def annotations(
        self, analyzer: Optional[str] = None, run_id: Optional[str] = None, dataset: Optional[str] = None
    ) -> pd.DataFrame:
        """One row per stored analyzer value (live guards' under analyzer `guard`), with its episode's run and dataset."""
        query = (
            "SELECT a.*, e.run_id, e.dataset FROM annotations a JOIN episodes e ON e.id = a.episode_id"
            " WHERE (? IS NULL OR a.analyzer = ?) AND (? IS NULL OR e.run_id = ?) AND (? IS NULL OR e.dataset = ?)"
            " ORDER BY a.id"
        )
        params = [analyzer, analyzer, run_id, run_id, dataset, dataset]
        frame = pd.read_sql_query(query, self.store.db.conn, params=params)
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


def _decode(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
