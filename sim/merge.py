"""Merge SQLite shards (one per job of a sweep spread over machines) into one store, without duplicates."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import SimError
from sim.store import Store

SHARD = "shard"
# Statuses after which a run or an episode changes no more: a shard's finished copy replaces an unfinished
# one merged earlier (a job that was merged while running, then resumed), never the other way round.
FINISHED_RUN = "('done')"
FINISHED_EPISODE = "('done', 'failed')"


@dataclass
class MergeCounts:
    """Rows one shard added to (or, for runs and episodes, finished in) the target store."""

    shard: Path
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All rows added or updated."""
        return sum(self.rows.values())


def _columns(store: Store, table: str, skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"[{c.name}]" for c in store.db[table].columns if c.name not in skip)


def _upsert_finished(store: Store, table: str, finished: str) -> int:
    """Add the shard's rows of `table` (keyed by id); replace an unfinished row with a finished one."""
    columns = _columns(store, table)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns.split(", ") if c != "[id]")
    cursor = store.db.conn.execute(
        f"INSERT INTO main.[{table}] ({columns}) SELECT {columns} FROM {SHARD}.[{table}] WHERE true"
        f" ON CONFLICT(id) DO UPDATE SET {updates}"
        f" WHERE main.[{table}].status NOT IN {finished} AND excluded.status IN {finished}"
    )
    return cursor.rowcount


def _insert_new(store: Store, table: str, conflict: str) -> int:
    """Add the shard's rows of `table` whose `conflict` key the target lacks; integer ids are assigned anew."""
    columns = _columns(store, table, skip=("id",) if table in ("turns", "imports") else ())
    cursor = store.db.conn.execute(
        f"INSERT INTO main.[{table}] ({columns}) SELECT {columns} FROM {SHARD}.[{table}] WHERE true"
        f" ON CONFLICT({conflict}) DO NOTHING"
    )
    return cursor.rowcount


def _insert_annotations(store: Store) -> int:
    """Add the shard's annotations the target lacks (same analyzer, version, episode, turn and name)."""
    columns = _columns(store, "annotations", skip=("id",))
    cursor = store.db.conn.execute(
        f"INSERT INTO main.annotations ({columns}) SELECT {columns} FROM {SHARD}.annotations s WHERE NOT EXISTS ("
        " SELECT 1 FROM main.annotations a WHERE a.analyzer = s.analyzer AND a.episode_id = s.episode_id"
        " AND a.analyzer_version = s.analyzer_version AND a.turn_idx IS s.turn_idx AND a.name = s.name)"
        " ORDER BY s.id"
    )
    return cursor.rowcount


def merge_shard(store: Store, shard: Path) -> MergeCounts:
    """Merge one shard into `store` in one transaction: all of it or, on any error, nothing."""
    if not shard.is_file():
        raise SimError(f"no shard at {shard}")
    if shard.resolve() == store.path.resolve():
        raise SimError(f"{shard} is the target database itself; merge other shards into it")
    Store.open(shard, create=False).close()  # refuses what is not an artifact-sim store; brings it to this schema
    conn = store.db.conn
    conn.execute(f"ATTACH DATABASE ? AS {SHARD}", [str(shard)])
    try:
        with store.db.atomic():
            rows = {
                "runs": _upsert_finished(store, "runs", FINISHED_RUN),
                "episodes": _upsert_finished(store, "episodes", FINISHED_EPISODE),
                "turns": _insert_new(store, "turns", "episode_id, idx"),
                "annotations": _insert_annotations(store),
                "request_cache": _insert_new(store, "request_cache", "hash"),
                "imports": _insert_new(store, "imports", "sha256, format, dataset"),
            }
    except sqlite3.DatabaseError as exc:
        raise SimError(f"cannot merge {shard}: {exc}") from None
    finally:
        conn.execute(f"DETACH DATABASE {SHARD}")
    return MergeCounts(shard, rows)
