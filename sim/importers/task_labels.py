"""Multi-annotator task labels, human and model, one item per episode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from sim.importers.base import ImportProblem, Importer, Source, field_of, imported_episode, importers, read_csv, read_jsonl
from sim.records import Episode

DEMOGRAPHICS = ("gender", "race", "age", "occupation", "education")


def labels_of(value: Any, path: Path, line: int, column: str) -> list[Optional[float]]:
    """A label list given as a JSON list or its string form; null stays None (a missing annotation)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ImportProblem(path, line, f"{column} is not a list of labels: {value[:60]!r}") from None
    if not isinstance(value, list) or not all(v is None or isinstance(v, (int, float)) for v in value):
        raise ImportProblem(path, line, f"{column} must be a list of numbers or nulls")
    return [None if v is None else float(v) for v in value]


def label_episode(
    source: Source, key: Any, text: str, human: list[Optional[float]], model: list[Optional[float]], model_name: Optional[str], meta: dict[str, Any]
) -> Episode:
    """An item with its text as turn 0 and one turn per present label, human first; the label lists go to meta."""
    turns = [("item", "item", text)]
    for who, role, labels in (("human", "human_annotator", human), (model_name or "model", "model_annotator", model)):
        turns += [(f"{who}_{i}", role, f"{label:g}") for i, label in enumerate(labels) if label is not None]
    return imported_episode(
        source,
        key,
        "task_label",
        turns,
        meta.get("task"),
        {**meta, "human_labels": human, "model_labels": model, "model": model_name},
        roles={"item": "item", "human_annotator": "human", "model_annotator": model_name or "model"},
    )


@importers.register("task_labels")
class TaskLabelsImporter(Importer):
    """artifacts-llmgendata *_intermodel/_intramodel JSONL, mismatch CSVs (text, human_annots, model_annots),
    and per-rater CSVs (instance_id, user_id, text, a label column given by -o label=COL, demographics)."""

    description = "multi-annotator labels: *_intermodel/_intramodel.jsonl, mismatch_*.csv, per-rater CSV (-o label=COL)"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per item (per item and model for the inter/intra-model files)."""
        if source.path.suffix.lower() == ".jsonl":
            yield from self._paired_jsonl(source)
            return
        header = source.path.open("rb").readline().decode("utf-8", "replace")
        if "user_id" in header and "instance_id" in header:
            yield from self._per_rater(source)
        else:
            yield from self._mismatch(source)

    def _paired_jsonl(self, source: Source) -> Iterator[Episode]:
        for line, record in read_jsonl(source.path):
            path = source.path
            params = record.get("params") if isinstance(record, dict) else None
            model = record.get("model_name") if isinstance(record, dict) else None
            meta = {
                "task": record.get("dataset"),
                "item_id": field_of(record, "text_ind", path, line),
                "split": record.get("split"),
                "params": params,
            }
            yield label_episode(
                source,
                line,
                str(field_of(record, "text", path, line)),
                labels_of(field_of(record, "human_annots", path, line), path, line, "human_annots"),
                labels_of(field_of(record, "model_annots", path, line), path, line, "model_annots"),
                model or (f"params={params}" if params is not None else None),
                meta,
            )

    def _mismatch(self, source: Source) -> Iterator[Episode]:
        model = source.options.get("model", source.path.stem.rsplit("_", 1)[-1])
        for line, row in read_csv(source.path, {"text", "human_annots", "model_annots"}):
            human = labels_of(row["human_annots"], source.path, line, "human_annots")
            predicted = labels_of(row["model_annots"], source.path, line, "model_annots")
            yield label_episode(source, line, row["text"], human, predicted, model, {"task": source.options.get("task")})

    def _per_rater(self, source: Source) -> Iterator[Episode]:
        label_column = source.options.get("label")
        if not label_column:
            raise ImportProblem(source.path, None, "a per-rater CSV needs -o label=COLUMN (e.g. -o label=offensiveness)")
        items: dict[str, dict[str, Any]] = {}
        for line, row in read_csv(source.path, {"instance_id", "user_id", "text", label_column}):
            try:
                label = float(row[label_column]) if row[label_column].strip() else None
            except ValueError:
                raise ImportProblem(source.path, line, f"{label_column} is not a number: {row[label_column]!r}") from None
            item = items.setdefault(row["instance_id"], {"text": row["text"], "labels": [], "raters": []})
            item["labels"].append(label)
            item["raters"].append({"user_id": row["user_id"], **{k: row.get(k) or None for k in DEMOGRAPHICS}})
        for key, item in items.items():
            meta = {"task": source.options.get("task", label_column), "item_id": key, "raters": item["raters"]}
            yield label_episode(source, key, item["text"], item["labels"], [], None, meta)
