"""Merge SQLite shards (one per job of a sweep spread over machines) into one store, without duplicates."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sim.errors import SimError
from sim.store import Store

SHARD = "shard"
# Statuses after which a run or an episode changes no more: a shard's finished copy replaces an unfinished
# one merged earlier (a job that was merged while running, then resumed), never the other way round.
FINISHED_RUN = "('done')"
FINISHED_EPISODE = "('done', 'failed')"
# The shard's episodes that the merge takes, whole: new ones, and finished copies of unfinished ones.
TAKEN = "temp.merge_taken"


def _columns(store: Store, table: str, skip: tuple[str, ...] = ()) -> str:
    return ", ".join(f"[{c.name}]" for c in store.db[table].columns if c.name not in skip)


def _check_same_runs(store: Store, shard: Path) -> None:
    """Refuse a shard whose run shares an id with a different run of the target (started at another time)."""
    clash = store.db.execute(
        f"SELECT s.id FROM {SHARD}.runs s JOIN main.runs m ON m.id = s.id WHERE s.created_at IS NOT m.created_at LIMIT 1"
    ).fetchone()
    if clash is not None:
        raise SimError(f"{shard}: run {clash[0]!r} is another run than the target's run of that id; merge it elsewhere")


def _upsert_runs(store: Store) -> int:
    """Add the shard's runs; a finished copy replaces an unfinished one."""
    columns = _columns(store, "runs")
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns.split(", ") if c != "[id]")
    return store.db.conn.execute(
        f"INSERT INTO main.runs ({columns}) SELECT {columns} FROM {SHARD}.runs WHERE true ORDER BY rowid"
        f" ON CONFLICT(id) DO UPDATE SET {updates}"
        f" WHERE main.runs.status NOT IN {FINISHED_RUN} AND excluded.status IN {FINISHED_RUN}"
    ).rowcount


def _take_episodes(store: Store) -> dict[str, int]:
    """Copy the shard's new episodes and the finished copies of unfinished ones, each with all its turns,
    annotations and ledger rows (`requests`) in place of the target's: an episode comes whole from one file, never
    spliced from two."""
    conn = store.db.conn
    conn.execute(f"DROP TABLE IF EXISTS {TAKEN}")
    conn.execute(
        f"CREATE TABLE {TAKEN} AS SELECT s.id FROM {SHARD}.episodes s LEFT JOIN main.episodes m ON m.id = s.id"
        f" WHERE m.id IS NULL OR (m.status NOT IN {FINISHED_EPISODE} AND s.status IN {FINISHED_EPISODE})"
    )
    for table in ("turns", "annotations", "requests"):
        conn.execute(f"DELETE FROM main.{table} WHERE episode_id IN (SELECT id FROM {TAKEN})")
    conn.execute(f"DELETE FROM main.episodes WHERE id IN (SELECT id FROM {TAKEN})")
    rows = {}
    for table, key in (("episodes", "id"), ("turns", "episode_id"), ("annotations", "episode_id"), ("requests", "episode_id")):
        columns = _columns(store, table, skip=() if table == "episodes" else ("id",))
        rows[table] = conn.execute(
            f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM {SHARD}.{table}"
            f" WHERE {key} IN (SELECT id FROM {TAKEN}) ORDER BY rowid"
        ).rowcount
    conn.execute(f"DROP TABLE {TAKEN}")
    return rows


def _insert_new(store: Store, table: str, conflict: str) -> int:
    """Add the shard's rows of `table` whose `conflict` key the target lacks; integer ids are assigned anew."""
    columns = _columns(store, table, skip=("id",) if table == "imports" else ())
    return store.db.conn.execute(
        f"INSERT INTO main.[{table}] ({columns}) SELECT {columns} FROM {SHARD}.[{table}] WHERE true ORDER BY rowid"
        f" ON CONFLICT({conflict}) DO NOTHING"
    ).rowcount


def check_shard(shard: Path) -> None:
    """Refuse a shard that is missing or not an artifact-sim store; bring one of an older schema up to this one."""
    if not shard.is_file():
        raise SimError(f"shard: no file at {shard}")
    Store.open(shard, create=False, option="shard").close()


def merge_shard(store: Store, shard: Path) -> dict[str, int]:
    """Merge one shard, passed by `check_shard`, into `store` in one transaction (all of it or, on any error,
    nothing); the rows it added or finished, per table."""
    if shard.resolve() == store.path.resolve():
        raise SimError(f"{shard} is the target database itself; merge other shards into it")
    conn = store.db.conn
    try:
        conn.execute(f"ATTACH DATABASE ? AS {SHARD}", [str(shard)])
        try:
            with store.db.atomic():
                _check_same_runs(store, shard)
                rows = {"runs": _upsert_runs(store), **_take_episodes(store)}
                rows["run_revisions"] = _insert_new(store, "run_revisions", "run_id, revision")
                rows["request_cache"] = _insert_new(store, "request_cache", "hash")
                rows["imports"] = _insert_new(store, "imports", "sha256, format, dataset")
        finally:
            conn.execute(f"DETACH DATABASE {SHARD}")
    except sqlite3.DatabaseError as exc:
        raise SimError(f"cannot merge {shard}: {exc}") from None
    return rows
