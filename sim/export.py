"""`sim export`: stored episodes as one record each (turns as chat messages, per-turn fields, the episode's
analyzer values and where it came from), written as JSON Lines, CSV, Parquet or a Hugging Face `datasets` folder."""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from sim.errors import SimError
from sim.records import Episode, Turn
from sim.store import EPISODE_CHUNK, Store

# The chat role of a stored turn role that is not one already: what was given (a prompt, an item to label, an
# instruction) is the user's; what sets a conversation up is the system's; what a model or writer produced is the
# assistant's. Any other role (a human corpus names its speakers) is the user's where it speaks first, else the assistant's.
CHAT_ROLES = {
    **dict.fromkeys(("system", "task_specifier", "moderator"), "system"),
    **dict.fromkeys(("user", "prompt", "instruction", "input", "item"), "user"),
    **dict.fromkeys(("assistant", "output", "output_1", "output_2", "text", "spp_response", "model_annotator", "judge"), "assistant"),
}
# Fields whose keys differ from episode to episode: JSON text in the tabular formats, so every row has one schema.
VARYING = ("roles", "meta", "annotations")
# Fields that are lists of records: native lists in Parquet and `datasets`, JSON text in CSV.
NESTED = ("messages", "turns")
PROVENANCE = ("id", "kind", "source", "run_id", "dataset", "scenario", "backend", "model", "sweep_id", "task", "status",
              "termination_reason", "parent_id", "fork_turn")


@dataclass
class Selection:
    """Which episodes to export: of these runs, this sweep's runs and these datasets (none of them: every episode),
    of one kind if given."""

    runs: list[str] = field(default_factory=list)
    sweep: Optional[str] = None
    datasets: list[str] = field(default_factory=list)
    kind: Optional[str] = None

    def describe(self) -> str:
        """The selection as the options that made it."""
        parts = [f"--run {r}" for r in self.runs] + [f"--dataset {d}" for d in self.datasets]
        parts += [f"--sweep {self.sweep}"] * (self.sweep is not None) + [f"--kind {self.kind}"] * (self.kind is not None)
        return " ".join(parts) or "every episode"


@dataclass
class Exported:
    """What an export wrote."""

    path: Path
    format: str
    n_episodes: int
    n_turns: int


def chat_roles(turns: list[Turn]) -> list[str]:
    """The chat role (system, user or assistant) of each turn, from the role the scenario or corpus gave it."""
    first_other = next((turn.role for turn in turns if turn.role not in CHAT_ROLES), None)
    return [CHAT_ROLES.get(turn.role, "user" if turn.role == first_other else "assistant") for turn in turns]


def record_of(episode: Episode, run: Optional[dict[str, Any]], annotations: list[tuple[str, Any]], flags: frozenset[str]) -> dict[str, Any]:
    """One episode as an export record: provenance, its turns as chat messages and per-turn fields, and its
    episode-level analyzer values by analyzer (the flags analyzers and guards set on a turn are in that turn's `flags`)."""
    values: dict[str, dict[str, float]] = {}
    turn_flags: dict[int, list[str]] = {}
    for analyzer, annotation in annotations:
        if annotation.turn_idx is None:
            values.setdefault(analyzer, {})[annotation.name] = annotation.value
        elif annotation.name in flags and annotation.value:
            turn_flags.setdefault(annotation.turn_idx, []).append(annotation.name)
    run = run or {}
    return {
        "id": episode.id, "kind": episode.kind, "source": episode.source, "run_id": episode.run_id, "dataset": episode.dataset,
        "scenario": run.get("scenario"), "backend": run.get("backend"), "model": run.get("model"), "sweep_id": run.get("sweep_id"),
        "task": episode.task, "status": episode.status, "termination_reason": episode.termination_reason,
        "parent_id": episode.parent_id, "fork_turn": episode.fork_turn,
        "roles": episode.roles, "meta": episode.meta,
        "messages": [
            {"role": role, "content": turn.content, "name": turn.speaker} for turn, role in zip(episode.turns, chat_roles(episode.turns))
        ],
        "turns": [
            {"idx": t.idx, "speaker": t.speaker, "role": t.role, "kind": t.kind, "finish_reason": t.finish_reason, "prompt_tokens": t.prompt_tokens,
             "completion_tokens": t.completion_tokens, "flags": turn_flags.get(t.idx, [])}
            for t in episode.turns
        ],
        "annotations": values,
    }


def _scopes(store: Store, selection: Selection) -> list[tuple[Optional[str], Optional[str]]]:
    """(run_id, dataset) of each part of the selection, each checked to exist; (None, None) for every episode."""
    runs = list(dict.fromkeys(selection.runs))
    for run_id in runs:
        store.run(run_id)
    if selection.sweep is not None:
        swept = [run["id"] for run in store.runs(selection.sweep)]
        if not swept:
            raise SimError(f"--sweep {selection.sweep!r}: no run of that sweep in {store.path}")
        runs += [run_id for run_id in swept if run_id not in runs]
    known = store.dataset_names()
    for dataset in selection.datasets:
        if dataset not in known:
            raise SimError(f"--dataset {dataset!r}: no imported dataset of that name in {store.path} (datasets: {', '.join(known) or 'none'})")
    if selection.kind is not None and selection.kind not in (kinds := store.kinds()):
        raise SimError(f"--kind {selection.kind!r}: no episode of that kind in {store.path} (kinds: {', '.join(kinds) or 'none'})")
    scopes = [(run_id, None) for run_id in runs] + [(None, d) for d in dict.fromkeys(selection.datasets)]
    return scopes or [(None, None)]


def records(store: Store, selection: Selection, flags: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The export record of every selected episode, in storage order within each run and dataset; `flags`: the
    turn-level annotation names that flag a turn. The selection is checked before the first record is asked for."""
    scopes = _scopes(store, selection)
    return _records(store, scopes, selection.kind, frozenset(flags))


def _records(
    store: Store, scopes: list[tuple[Optional[str], Optional[str]]], kind: Optional[str], wanted: frozenset[str]
) -> Iterator[dict[str, Any]]:
    """The records of checked scopes, read a chunk of episodes (and their annotations) at a time."""
    runs: dict[str, dict[str, Any]] = {}
    for run_id, dataset in scopes:
        episodes = store.episodes(run_id=run_id, dataset=dataset, kind=kind)
        while chunk := list(islice(episodes, EPISODE_CHUNK)):
            annotations = store.annotations_of([e.id for e in chunk])
            for episode in chunk:
                run = None
                if episode.run_id is not None:
                    run = runs.setdefault(episode.run_id, store.run(episode.run_id))
                yield record_of(episode, run, annotations.get(episode.id, []), wanted)


def _tabular(record: dict[str, Any], nested_as_json: bool) -> dict[str, Any]:
    """A record with its varying fields (and, if `nested_as_json`, its lists) as JSON text."""
    as_json = VARYING + NESTED if nested_as_json else VARYING
    return {key: json.dumps(value, ensure_ascii=False) if key in as_json else value for key, value in record.items()}


def _write_jsonl(rows: Iterator[dict[str, Any]], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as handle:
        for n, row in enumerate(rows, start=1):
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return n


def _write_csv(rows: Iterator[dict[str, Any]], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*PROVENANCE, *VARYING, *NESTED])
        writer.writeheader()
        for n, row in enumerate(rows, start=1):
            writer.writerow(_tabular(row, nested_as_json=True))
    return n


def _arrow_table(rows: Iterator[dict[str, Any]]) -> Any:
    """The records as one Arrow table with a fixed schema (an empty list of flags stays a list of strings)."""
    import pyarrow as pa

    text, integer = pa.string(), pa.int64()
    message = pa.struct([("role", text), ("content", text), ("name", text)])
    turn = pa.struct([
        ("idx", integer), ("speaker", text), ("role", text), ("kind", text), ("finish_reason", text), ("prompt_tokens", integer),
        ("completion_tokens", integer), ("flags", pa.list_(text)),
    ])
    columns = [(name, integer if name == "fork_turn" else text) for name in (*PROVENANCE, *VARYING)]
    schema = pa.schema([*columns, ("messages", pa.list_(message)), ("turns", pa.list_(turn))])
    return pa.Table.from_pylist([_tabular(row, nested_as_json=False) for row in rows], schema=schema)


def _write_parquet(rows: Iterator[dict[str, Any]], path: Path) -> int:
    import pyarrow.parquet as pq

    table = _arrow_table(rows)
    pq.write_table(table, path)
    return table.num_rows


def _write_hf(rows: Iterator[dict[str, Any]], path: Path) -> int:
    from datasets import Dataset

    dataset = Dataset(_arrow_table(rows))
    dataset.save_to_disk(str(path))
    return dataset.num_rows


WRITERS: dict[str, Callable[[Iterator[dict[str, Any]], Path], int]] = {
    "jsonl": _write_jsonl, "csv": _write_csv, "parquet": _write_parquet, "hf": _write_hf,
}
# The package each format needs beyond the core dependencies, and the extra that brings it.
NEEDS = {"parquet": ("pyarrow", "parquet"), "hf": ("datasets", "datasets")}


def check_format(fmt: str) -> None:
    """Refuse an unknown format, or one whose package is not installed, in one line."""
    if fmt not in WRITERS:
        raise SimError(f"--format {fmt!r}: formats are {', '.join(WRITERS)}")
    if fmt in NEEDS:
        package, extra = NEEDS[fmt]
        try:
            __import__(package)
        except ImportError:
            raise SimError(f"--format {fmt} needs the {package} package: pip install -e '.[{extra}]'") from None


def check_out(out: Path, fmt: str, force: bool) -> None:
    """Refuse an output path that would overwrite data (unless `force`) or is the wrong kind of thing: `hf` writes
    a folder, the other formats a file."""
    if not out.exists():
        return
    folder = fmt == "hf"
    if out.is_dir() != folder:
        raise SimError(f"--out {out} is a {'folder' if out.is_dir() else 'file'}; --format {fmt} writes a {'folder' if folder else 'file'}")
    holds_data = any(out.iterdir()) if folder else out.stat().st_size > 0
    if holds_data and not force:
        raise SimError(f"--out {out} already exists and is not empty; pass --force to replace it")


def _remove(path: Path) -> None:
    """Delete a file or folder, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _put_in_place(temporary: Path, out: Path) -> None:
    """Move a finished export onto `out`: one rename for a file; for a folder, the old one is set aside first (a
    folder cannot be renamed over another) and deleted only once the new one is in place."""
    if not out.is_dir():
        os.replace(temporary, out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.replace(out, old)
    os.replace(temporary, out)
    _remove(old)


def export(store: Store, selection: Selection, fmt: str, out: Path, flags: tuple[str, ...] = (), force: bool = False) -> Exported:
    """Write the selected episodes to `out` in `fmt`; built beside `out` under a temporary name and renamed into
    place when complete, so that a failure or an empty selection leaves nothing behind."""
    check_format(fmt)
    check_out(out, fmt, force)
    selected = records(store, selection, flags)
    created = next((folder for folder in reversed(out.parents) if not folder.exists()), None)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimError(f"--out: cannot create folder {out.parent}: {exc.strerror}") from None
    temporary = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    counted = {"turns": 0}

    def counting(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            counted["turns"] += len(row["turns"])
            yield row

    try:
        n_episodes = WRITERS[fmt](counting(selected), temporary)
        if not n_episodes:
            raise SimError(f"no episode in {store.path} matches the selection ({selection.describe()}); nothing written")
        _put_in_place(temporary, out)
    except BaseException:
        _remove(temporary)
        if created is not None:  # the folders made for --out go too, so that a failed export leaves no trace
            shutil.rmtree(created, ignore_errors=True)
        raise
    return Exported(out, fmt, n_episodes, counted["turns"])
