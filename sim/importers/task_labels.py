"""Multi-annotator task labels, human and model, one item per episode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from sim.importers.base import (
    ImportProblem, Importer, Source, field_of, first_line, imported_episode, importers, read_csv, read_jsonl,
)
from sim.records import Episode

DEMOGRAPHICS = ("gender", "race", "age", "occupation", "education")
# The label scale (lowest, highest label) of each artifacts-llmgendata task, as the release documents them: Social
# Bias Frames offensiveness 0-2, Gab Hate Corpus hate 0/1, Social-Chemistry-101 agreement and age-term sentiment 0-4.
TASK_SCALES = {"SBIC": (0, 2), "ghc": (0, 1), "SChem5Labels": (0, 4), "Sentiment": (0, 4)}
# The per-task files of the release, whose items name their task; a mismatch file's items are looked up in them.
TASK_FILES = "*_intermodel.jsonl"


def item_key(text: str) -> str:
    """An item's text with its whitespace normalized: the release's files space some texts differently."""
    return " ".join(text.split())


def tasks_by_text(folder: Path) -> dict[str, str]:
    """The task of each item text in the release's per-task files in `folder` (none there: an empty map)."""
    tasks = {}
    for path in sorted(folder.glob(TASK_FILES)):
        for line, record in read_jsonl(path):
            tasks[item_key(str(field_of(record, "text", path, line)))] = str(field_of(record, "dataset", path, line))
    return tasks


def scale_meta(task: Optional[str]) -> dict[str, Any]:
    """`label_scale` [lowest, highest] for a task of known scale; nothing for any other."""
    return {"label_scale": list(TASK_SCALES[task])} if task in TASK_SCALES else {}


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
    and per-rater CSVs (instance_id, user_id, text, a label column given by -o label=COL, demographics).

    Items of a task of known scale (TASK_SCALES) get `label_scale` in their meta. A mismatch file mixes the tasks'
    items without naming them: each item's task is looked up by its text in the release's `*_intermodel.jsonl`
    files beside it (where they are), and becomes the item's `task` unless -o task= names one."""

    description = "multi-annotator labels: *_intermodel/_intramodel.jsonl, mismatch_*.csv, per-rater CSV (-o label=COL)"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per item (per item and model for the inter/intra-model files)."""
        if source.path.suffix.lower() == ".jsonl":
            yield from self._paired_jsonl(source)
            return
        header = first_line(source.path)
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
                **scale_meta(record.get("dataset")),
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
        tasks = tasks_by_text(source.path.parent)
        for line, row in read_csv(source.path, {"text", "human_annots", "model_annots"}):
            human = labels_of(row["human_annots"], source.path, line, "human_annots")
            predicted = labels_of(row["model_annots"], source.path, line, "model_annots")
            found = tasks.get(item_key(row["text"]))
            meta = {"task": source.options.get("task", found), **scale_meta(found)}
            yield label_episode(source, line, row["text"], human, predicted, model, meta)

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
