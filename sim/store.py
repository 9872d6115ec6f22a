"""The SQLite store: one WAL-mode file holding runs, episodes, turns and annotations."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from itertools import groupby, islice
from operator import itemgetter
from typing import Any, Iterator, Optional, Sequence

from sqlite_utils import Database
from tenacity import Retrying, retry_if_exception_message, stop_after_delay, wait_random

from sim.errors import SimError
from sim.migrations import migrations
from sim.records import TRUNCATED, UTTERANCE, Annotation, Episode, Turn, utc_now

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_S = 30.0
EPISODE_CHUNK = 2000
# Turns per INSERT of an import: 7 values each, under SQLite's limit of 32,766 variables per statement.
IMPORT_CHUNK = 4000
# How SQLite words a malformed full-text query, as against any other failure of the same statement.
FTS_QUERY_ERRORS = ("fts5", "unterminated string", "syntax error")
TURN_COLUMNS = tuple(Turn.__dataclass_fields__)
# What a turn says, without its request statistics: all that analyzers read (of utterances only, see `episodes`).
TEXT_COLUMNS = ("idx", "speaker", "role", "content")


# A ledger's sums over `requests q`: requests sent, their tokens, their cost (null when any of them is unpriced) and
# how many of them are unpriced, and the requests answered from the cache with the tokens and cost they saved (null
# when any of them is unpriced).
LEDGER_SUMS = """coalesce(sum(NOT q.cache_hit), 0), coalesce(sum(CASE WHEN q.cache_hit THEN 0 ELSE q.prompt_tokens END), 0),
    coalesce(sum(CASE WHEN q.cache_hit THEN 0 ELSE q.completion_tokens END), 0),
    CASE WHEN sum(NOT q.cache_hit AND q.cost_usd IS NULL) THEN NULL ELSE coalesce(sum(CASE WHEN q.cache_hit THEN 0 ELSE q.cost_usd END), 0) END,
    coalesce(sum(NOT q.cache_hit AND q.cost_usd IS NULL), 0), coalesce(sum(q.cache_hit), 0),
    coalesce(sum(CASE WHEN q.cache_hit THEN coalesce(q.prompt_tokens, 0) + coalesce(q.completion_tokens, 0) END), 0),
    CASE WHEN sum(q.cache_hit AND q.cost_usd IS NULL) THEN NULL ELSE coalesce(sum(CASE WHEN q.cache_hit THEN q.cost_usd END), 0) END"""
LEDGER_NAMES = ("requests", "prompt_tokens", "completion_tokens", "cost_usd", "unpriced_requests", "cache_hits",
                "saved_tokens", "saved_usd")


def _ledger_costs(row: dict[str, Any]) -> dict[str, Any]:
    """A ledger row with its costs rounded to micro-dollars (None stays None: unpriced)."""
    for name in ("cost_usd", "saved_usd"):
        row[name] = None if row[name] is None else round(row[name], 6)
    return row


def _check_is_sqlite(path: Path, option: str) -> None:
    """Refuse a file that exists but is not a SQLite database, before SQLite touches it; `option` names where the
    path came from (store.path, --db, ...) in the error."""
    if not path.exists() or path.stat().st_size == 0:
        return
    if path.is_dir():
        raise SimError(f"{option}: {path} is a directory, not a SQLite database")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise SimError(f"{option}: cannot read {path}: {exc.strerror}") from None
    if header != SQLITE_HEADER:
        raise SimError(f"{option}: {path} is not a SQLite database")


def _check_writable(path: Path, option: str) -> None:
    """Refuse, before any write, a database that could only be read: SQLite would fail at the first write."""
    if not os.access(path, os.W_OK):
        raise SimError(f"{option}: {path} is read-only; make it writable or pass another database")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise SimError(f"{option}: the folder of {path} is read-only, and SQLite writes its -wal and -shm files there")


def _not_a_store(path: Path, what: str) -> str:
    """Why a command that only uses an existing store refuses a file that holds none."""
    return f"{path} is not an artifact-sim database ({what}); choose another file, or fill this one with `sim run` or `sim import`"


def _open_error(path: Path, exc: sqlite3.DatabaseError, option: str) -> SimError:
    """What SQLite's refusal to open or set up the database at `path` means for the user."""
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return SimError(
            f"{option}: cannot open {path}: its folder is read-only, and SQLite needs to create the database's "
            "-shm and -wal files there; copy the database to a writable folder"
        )
    return SimError(f"{option}: cannot use {path} as a database: {exc}")


def episodes_of(run_ids: Sequence[str], datasets: Sequence[str]) -> tuple[str, list[Any]]:
    """An SQL condition on `episodes e` that holds for the episodes of these runs and of these imported datasets,
    and its parameters."""
    parts = [f"e.run_id IN ({', '.join('?' * len(run_ids))})"] if run_ids else []
    if datasets:
        parts.append(f"(e.run_id IS NULL AND e.dataset IN ({', '.join('?' * len(datasets))}))")
    return "(" + " OR ".join(parts) + ")", [*run_ids, *datasets]


def optional_scope(run_ids: Optional[Sequence[str]], datasets: Optional[Sequence[str]]) -> tuple[list[str], list[Any]]:
    """`episodes_of` as a list of conditions on `episodes e` with their parameters, none where neither runs nor
    datasets are given (every episode)."""
    if run_ids is None and datasets is None:
        return [], []
    condition, params = episodes_of(run_ids or [], datasets or [])
    return [condition], params


class Store:
    """Typed access to one artifact-sim database; every write commits at once."""

    def __init__(self, db: Database, path: Path) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(
        cls, path: str | Path, create: bool = True, writable: Optional[bool] = None, option: str = "store.path"
    ) -> "Store":
        """Open (and, if `create`, create and migrate) the database at `path`; one that will be written to
        (`writable`, by default when `create`) must not be read-only. Without `create` the file must already hold
        an artifact-sim store: an empty file is refused, not made into one. Errors name `option`, where the path
        came from."""
        path = Path(path).expanduser()
        _check_is_sqlite(path, option)
        if not path.exists():
            if not create:
                raise SimError(f"no database at {path} (run `sim run` first or pass --db)")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SimError(f"{option}: cannot create folder {path.parent}: {exc.strerror}") from None
        else:
            if not create and path.is_file() and path.stat().st_size == 0:
                raise SimError(_not_a_store(path, "the file is empty"))
            if create if writable is None else writable:
                _check_writable(path, option)
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S)
        except sqlite3.DatabaseError as exc:
            raise _open_error(path, exc, option) from None
        try:
            db = Database(conn)
            cls._check_schema(db, path, create)
            cls._enable_wal(db)
            # In WAL mode NORMAL keeps every committed turn across a killed process; only power loss can drop the last few.
            db.execute("PRAGMA synchronous=NORMAL")
            if migrations.pending(db):
                cls._migrate(db)
        except BaseException as exc:
            # Closed now, not at exit: closing the last connection to a WAL database removes its -wal and -shm files.
            conn.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise _open_error(path, exc, option) from None
            raise
        return cls(db, path)

    @staticmethod
    def _enable_wal(db: Database) -> None:
        """Switch a new database to WAL mode. SQLite answers "database is locked" at once, without waiting for
        the busy timeout, while another process that opened the new file at the same time holds a lock on it."""
        for attempt in Retrying(
            retry=retry_if_exception_message(match="database is locked"),
            stop=stop_after_delay(BUSY_TIMEOUT_S),
            wait=wait_random(0.01, 0.2),
            reraise=True,
        ):
            with attempt:
                db.enable_wal()

    @staticmethod
    def _migrate(db: Database) -> None:
        """Apply pending migrations holding the write lock from the first look at what is pending: processes that
        open a new database at once (the jobs of a parallel sweep) then migrate it one after another, where each
        would otherwise find another's tables half made or fail to upgrade its read to a write."""
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            migrations.apply(db)
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
        db.conn.execute("COMMIT")

    @staticmethod
    def _check_schema(db: Database, path: Path, create: bool) -> None:
        """Refuse another application's database, one written by a newer artifact-sim, and (unless `create`) one
        without any tables, which only `create` may turn into a store."""
        applied = migrations.applied(db)
        if db.table_names() and not applied:
            raise SimError(f"{path} is another application's SQLite database (no artifact-sim schema); choose another file")
        if not applied and not create:
            raise SimError(_not_a_store(path, "a SQLite database without tables"))
        known = {m.name for m in migrations.pending(Database(memory=True))}
        unknown = [m.name for m in applied if m.name not in known]
        if unknown:
            raise SimError(f"{path} has a newer schema ({', '.join(unknown)}); upgrade artifact-sim to use it")

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # Runs

    def start_run(self, run: dict[str, Any]) -> None:
        """Insert a new run row; a run id may only be used once."""
        if self.db["runs"].count_where("id = ?", [run["id"]]):
            raise SimError(f"run.id {run['id']!r} already exists in {self.path}; choose another run.id")
        self.db["runs"].insert({**run, "created_at": utc_now(), "status": "running"})

    def restart_run(self, run_id: str, overrides: list[str]) -> None:
        """Mark an unfinished run as running again before it is resumed, adding this session's overrides to its own."""
        sessions = json.loads(self.run(run_id)["overrides_json"] or "[]")
        self.db["runs"].update(run_id, {"status": "running", "finished_at": None, "overrides_json": json.dumps([*sessions, overrides])})

    def set_run_status(self, run_id: str, status: str) -> None:
        """Change a run's status, keeping its totals."""
        self.db["runs"].update(run_id, {"status": status})

    def finish_run(self, run_id: str, status: str, wall_s: Optional[float] = None) -> dict[str, Any]:
        """Mark a run finished with `status` and store its turn, token, latency, cache and retry totals; the
        retries count those of the requests that failed an episode too."""
        totals = self.db.execute(
            """
            SELECT count(*), sum(prompt_tokens), sum(completion_tokens),
                   sum(CASE WHEN cache_hit THEN 0 ELSE latency_ms END), sum(cache_hit), sum(retries),
                   sum(finish_reason = ?)
            FROM turns JOIN episodes ON turns.episode_id = episodes.id WHERE episodes.run_id = ?
            """,
            [TRUNCATED, run_id],
        ).fetchone()
        names = ("n_turns", "prompt_tokens", "completion_tokens", "latency_ms", "cache_hits", "retries")
        row = {name: value or 0 for name, value in zip(names, totals)}
        truncated_turns = totals[-1] or 0  # reported, not a column of runs: it is read from the turns
        row["retries"] += self.db.execute(
            "SELECT coalesce(sum(failed_attempts - 1), 0) FROM episodes WHERE run_id = ? AND failed_attempts > 0",
            [run_id],
        ).fetchone()[0]
        self.db["runs"].update(run_id, {**row, "status": status, "finished_at": utc_now(), "wall_s": wall_s})
        return {**row, "truncated_turns": truncated_turns}

    def record_request_limit(self, run_id: str, current: int, low: Optional[int], high: int, overloads: int) -> None:
        """Store a session's request limit with its run: where it ended (`request_limit`), over all the run's
        sessions the smallest an overload cut it to (null: none did) and the largest it was, and the answers that
        said the server was overloaded (429, 503, timeouts), added to those of earlier sessions."""
        run = self.run(run_id)
        lows = [value for value in (low, run["request_limit_min"]) if value is not None]
        self.db["runs"].update(run_id, {
            "request_limit": current,
            "request_limit_min": min(lows) if lows else None,
            "request_limit_max": max(high, run["request_limit_max"] or high),
            "overloads": (run["overloads"] or 0) + overloads,
        })

    def find_run(self, run_id: str) -> Optional[dict[str, Any]]:
        """One run row, or None."""
        rows = list(self.db["runs"].rows_where("id = ?", [run_id]))
        return rows[0] if rows else None

    def run(self, run_id: str) -> dict[str, Any]:
        """One run row; a SimError when there is none."""
        row = self.find_run(run_id)
        if row is None:
            raise SimError(f"no run {run_id!r} in {self.path}")
        return row

    def run_overview(self, sweep_id: Optional[str] = None) -> list[dict[str, Any]]:
        """Every run (or a sweep's), oldest first, with its episodes by status, its turns' totals and its ledger's
        (requests sent and their tokens and cost, requests answered from the cache and what they saved) as stored
        now, so that a run still going, or stopped, is counted too."""
        where, params = ("WHERE r.sweep_id = ?", [sweep_id]) if sweep_id is not None else ("", [])
        rows = self.db.execute(
            f"""
            SELECT r.id, r.status, r.scenario, r.backend, r.model, r.sweep_id, r.created_at, r.wall_s, r.config_yaml,
                   coalesce(e.done, 0), coalesce(e.failed, 0), coalesce(e.unfinished, 0), coalesce(t.n_turns, 0),
                   coalesce(t.truncated, 0), {LEDGER_SUMS}
            FROM runs r
            LEFT JOIN (SELECT run_id, sum(status = 'done') AS done, sum(status = 'failed') AS failed,
                              sum(status NOT IN ('done', 'failed')) AS unfinished
                       FROM episodes GROUP BY run_id) e ON e.run_id = r.id
            LEFT JOIN (SELECT e.run_id, count(*) AS n_turns, sum(t.finish_reason = ?) AS truncated
                       FROM turns t JOIN episodes e ON t.episode_id = e.id GROUP BY e.run_id) t ON t.run_id = r.id
            LEFT JOIN requests q ON q.run_id = r.id
            {where} GROUP BY r.id ORDER BY r.created_at, r.id
            """,
            [TRUNCATED, *params],
        ).fetchall()
        names = ("id", "status", "scenario", "backend", "model", "sweep_id", "created_at", "wall_s", "config_yaml",
                 "episodes_done", "episodes_failed", "episodes_unfinished", "n_turns", "truncated_turns", *LEDGER_NAMES)
        return [_ledger_costs(dict(zip(names, row))) for row in rows]

    def ledger(self, run_id: str) -> list[dict[str, Any]]:
        """A run's ledger per kind of call (turn, text, judge) and purpose (a text's key such as specify_task or
        moderator, a judge's analyzer): requests sent, their tokens and cost, and what cache hits saved."""
        rows = self.db.execute(
            f"SELECT q.kind, q.purpose, {LEDGER_SUMS} FROM requests q WHERE q.run_id = ?"
            " GROUP BY q.kind, q.purpose ORDER BY min(q.id)",
            [run_id],
        ).fetchall()
        return [_ledger_costs(dict(zip(("kind", "purpose", *LEDGER_NAMES), row))) for row in rows]

    def ledger_total(self, run_id: str) -> dict[str, Any]:
        """A run's whole ledger in one row: what `ledger` gives per kind of call, summed."""
        row = self.db.execute(f"SELECT {LEDGER_SUMS} FROM requests q WHERE q.run_id = ?", [run_id]).fetchone()
        return _ledger_costs(dict(zip(LEDGER_NAMES, row)))

    def run_spend(self, run_id: str) -> tuple[float, int]:
        """The cost (USD, of priced requests) and tokens of the requests a run's generation sent so far (not its
        judges', nor its cache hits): where a resumed run's budget starts."""
        usd, tokens = self.db.execute(
            "SELECT coalesce(sum(cost_usd), 0), coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)"
            " FROM requests WHERE run_id = ? AND kind != 'judge' AND NOT cache_hit",
            [run_id],
        ).fetchone()
        return float(usd), int(tokens)

    def add_request(self, row: dict[str, Any], completion_json: Optional[str] = None) -> None:
        """Record one answered request in the ledger and, given its completion's JSON, in the request cache under
        its hash, in one commit."""
        created_at = utc_now()
        with self.db.atomic():
            self._insert("requests", {**row, "created_at": created_at})
            if completion_json is not None:
                cached = {"hash": row["request_hash"], "backend": row["backend"], "model": row["model"],
                          "completion_json": completion_json, "created_at": created_at}
                self._insert("request_cache", cached, replace=True)

    def run_revisions(self, run_id: str) -> list[dict[str, Any]]:
        """The recorded revisions of a run's config, in order, each with its `changes` and `overrides` decoded."""
        rows = self.db["run_revisions"].rows_where("run_id = ?", [run_id], order_by="revision")
        return [{**row, "changes": json.loads(row["changes_json"]), "overrides": json.loads(row["overrides_json"])} for row in rows]

    def add_run_revision(self, run_id: str, revision: int, changes: dict[str, Any], overrides: list[str], generation: bool) -> None:
        """Record what a resume changed in a run's config (`generation`: whether it changes what is generated)."""
        self.db["run_revisions"].insert(
            {
                "run_id": run_id,
                "revision": revision,
                "created_at": utc_now(),
                "generation": int(generation),
                "changes_json": json.dumps(changes),
                "overrides_json": json.dumps(overrides),
            }
        )

    def latest_run_id(self) -> Optional[str]:
        """The most recently created run, if any."""
        rows = list(self.db["runs"].rows_where(order_by="created_at desc", limit=1, select="id"))
        return rows[0]["id"] if rows else None

    # Episodes and turns

    def start_episode(self, episode: Episode) -> None:
        """Insert an episode row before its first turn."""
        self._insert_now(
            "episodes",
            {
                "id": episode.id,
                "run_id": episode.run_id,
                "source": episode.source,
                "dataset": episode.dataset,
                "kind": episode.kind,
                "task": episode.task,
                "roles_json": json.dumps(episode.roles),
                "status": episode.status,
                "termination_reason": episode.termination_reason,
                "n_turns": len(episode.turns),
                "meta_json": json.dumps(episode.meta),
                "parent_id": episode.parent_id,
                "fork_turn": episode.fork_turn,
                "created_at": utc_now(),
            }
        )

    def add_turn(self, episode_id: str, turn: Turn) -> None:
        """Insert and commit one turn."""
        # Field by field rather than asdict(): a turn's fields are flat, and asdict's deep copy is most of the cost.
        row = {"episode_id": episode_id, **{name: getattr(turn, name) for name in TURN_COLUMNS}, "created_at": utc_now()}
        self._insert_now("turns", row)

    def _insert_now(self, table: str, row: dict[str, Any], replace: bool = False) -> None:
        """One parameterized INSERT and its commit: the per-turn hot path, where sqlite-utils' per-call
        table introspection costs more than the write itself."""
        with self.db.atomic():  # nests as a savepoint inside an import's transaction
            self._insert(table, row, replace)

    def _insert(self, table: str, row: dict[str, Any], replace: bool = False) -> None:
        columns = ", ".join(f"[{name}]" for name in row)
        placeholders = ", ".join("?" for _ in row)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        self.db.conn.execute(f"{verb} INTO [{table}] ({columns}) VALUES ({placeholders})", list(row.values()))

    def finish_episode(self, episode_id: str, status: str, termination_reason: str, failed_attempts: int = 0) -> None:
        """Record how an episode ended, how many turns it has, and how many attempts the request that failed it
        made (0 when none failed)."""
        with self.db.atomic():  # one statement, without sqlite-utils' look-ups of the table on the hot path
            self.db.conn.execute(
                "UPDATE episodes SET status = ?, termination_reason = ?, failed_attempts = ?, "
                "n_turns = (SELECT count(*) FROM turns WHERE episode_id = ?) WHERE id = ?",
                [status, termination_reason, failed_attempts, episode_id, episode_id],
            )

    def update_episode_meta(self, episode_id: str, **fields: Any) -> None:
        """Set the task or other episode columns after the episode started."""
        self.db["episodes"].update(episode_id, fields)

    def find_episode_row(self, episode_id: str) -> Optional[dict[str, Any]]:
        """One episode row without turns, or None."""
        return next(self.db.query("SELECT * FROM episodes WHERE id = ?", [episode_id]), None)

    def episode(self, episode_id: str) -> Episode:
        """One episode with its turns."""
        row = self.find_episode_row(episode_id)
        if row is None:
            raise SimError(f"no episode {episode_id!r} in {self.path}")
        return Episode.from_row(row, self.turns(episode_id))

    def episodes(
        self, run_id: Optional[str] = None, kind: Optional[str] = None, dataset: Optional[str] = None, text_only: bool = False
    ) -> Iterator[Episode]:
        """Episodes with their turns, optionally of one run, kind and dataset, in creation order. `text_only` reads
        what analyzers of language score: the utterances, without their request statistics (tokens, latency, cache,
        retries); non-utterance turns (a negotiation's deal actions) are left out, their neighbours keep their idx."""
        clauses, params = [], []
        for column, value in (("run_id", run_id), ("kind", kind), ("dataset", dataset)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = " and ".join(clauses) or None
        rows = self.db["episodes"].rows_where(where, params, order_by="rowid")
        # Turns are read for a chunk of episodes at once: one query per episode dominates on large corpora.
        while chunk := list(islice(rows, EPISODE_CHUNK)):
            ids = [row["id"] for row in chunk]
            turns = self._turns_of(ids, TEXT_COLUMNS, utterances_only=True) if text_only else self._turns_of(ids)
            for row in chunk:
                yield Episode.from_row(row, turns.get(row["id"], []))

    def runs(self, sweep_id: Optional[str] = None) -> list[dict[str, Any]]:
        """Every run row (or one sweep's), oldest first."""
        if sweep_id is None:
            return list(self.db["runs"].rows_where(order_by="created_at"))
        return list(self.db["runs"].rows_where("sweep_id = ?", [sweep_id], order_by="created_at"))

    def sweep_ids(self) -> list[str]:
        """The sweeps that hold runs, oldest first."""
        rows = self.db.execute("SELECT sweep_id FROM runs WHERE sweep_id IS NOT NULL GROUP BY sweep_id ORDER BY min(created_at)")
        return [sweep_id for (sweep_id,) in rows]

    def latest_sweep(self, min_runs: int) -> Optional[str]:
        """The newest sweep with at least `min_runs` runs, or None."""
        row = self.db.execute(
            "SELECT sweep_id FROM runs WHERE sweep_id IS NOT NULL GROUP BY sweep_id HAVING count(*) >= ?"
            " ORDER BY max(created_at) DESC LIMIT 1",
            [min_runs],
        ).fetchone()
        return row[0] if row else None

    def dataset_names(self) -> list[str]:
        """The imported datasets that hold episodes, in the order they were first imported."""
        rows = self.db.execute("SELECT dataset FROM episodes WHERE dataset IS NOT NULL GROUP BY dataset ORDER BY min(rowid)").fetchall()
        return [name for (name,) in rows]

    def kinds(self) -> list[str]:
        """The kinds of data item the stored episodes hold (conversation, task_label, ...), sorted."""
        return [kind for (kind,) in self.db.execute("SELECT DISTINCT kind FROM episodes ORDER BY kind").fetchall()]

    def episode_rows(self, run_id: Optional[str] = None) -> list[dict[str, Any]]:
        """Episode rows without turns, for listings."""
        if run_id is None:
            return list(self.db["episodes"].rows_where(order_by="rowid"))
        return list(self.db["episodes"].rows_where("run_id = ?", [run_id], order_by="rowid"))

    def truncated_turns(self, run_ids: Sequence[str], datasets: Sequence[str]) -> list[tuple[Optional[str], Optional[str], int, int]]:
        """Per episode of these runs and imported datasets: its run, dataset, turns, and turns cut at max_tokens."""
        if not run_ids and not datasets:
            return []
        condition, params = episodes_of(run_ids, datasets)
        return self.db.execute(
            f"""SELECT e.run_id, e.dataset, count(*), coalesce(sum(t.finish_reason = ?), 0)
                FROM episodes e JOIN turns t ON t.episode_id = e.id WHERE {condition} GROUP BY e.id""",
            [TRUNCATED, *params],
        ).fetchall()

    def count_episodes(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> int:
        """How many episodes are stored (of one run, of one dataset, or of both where given)."""
        clauses = [(column, value) for column, value in (("run_id", run_id), ("dataset", dataset)) if value is not None]
        where = " AND ".join(f"{column} = ?" for column, _ in clauses) or None
        return self.db["episodes"].count_where(where, [value for _, value in clauses])

    def episode_meta(
        self, kind: str, run_ids: Optional[Sequence[str]] = None, datasets: Optional[Sequence[str]] = None
    ) -> list[tuple[Optional[str], Optional[str], dict[str, Any]]]:
        """(run, dataset, meta) of every stored episode of `kind`, or only of these runs and imported datasets
        where either is given."""
        scope, params = optional_scope(run_ids, datasets)
        rows = self.db.execute(
            f"SELECT e.run_id, e.dataset, e.meta_json FROM episodes e WHERE {' AND '.join(['e.kind = ?', *scope])} ORDER BY e.rowid",
            [kind, *params],
        )
        return [(run_id, dataset, json.loads(meta_json or "{}")) for run_id, dataset, meta_json in rows]

    def parent_ids(self, run_ids: Sequence[str], datasets: Sequence[str]) -> set[str]:
        """The episodes that some episode of these runs and imported datasets was forked from."""
        where, params = episodes_of(run_ids, datasets)
        rows = self.db.execute(f"SELECT DISTINCT e.parent_id FROM episodes e WHERE e.parent_id IS NOT NULL AND {where}", params)
        return {parent_id for (parent_id,) in rows}

    def view_rows(self, view: str, run_id: Optional[str] = None, dataset: Optional[str] = None) -> sqlite3.Cursor:
        """The rows of `episodes` or of a kind view (`v_task_label`, ...), of one run or dataset where given, in
        the order their episodes were stored."""
        key = "id" if view == "episodes" else "episode_id"
        return self.db.execute(
            f"SELECT v.* FROM [{view}] v JOIN episodes e ON e.id = v.{key}"
            " WHERE (? IS NULL OR e.run_id = ?) AND (? IS NULL OR e.dataset = ?) ORDER BY e.rowid",
            [run_id, run_id, dataset, dataset],
        )

    def run_rows(self, sweep_id: Optional[str] = None) -> sqlite3.Cursor:
        """The rows of `runs` (of one sweep where given), oldest first."""
        return self.db.execute("SELECT * FROM runs WHERE ? IS NULL OR sweep_id = ? ORDER BY created_at", [sweep_id, sweep_id])

    def turn_rows(self, run_id: Optional[str] = None, dataset: Optional[str] = None) -> sqlite3.Cursor:
        """The rows of `turns` with their turn's kind as `turn_kind` and their episode's run, dataset and kind, of one
        run or dataset where given, in storage order."""
        columns = ", ".join(f"t.[{name}]" for name in self.db["turns"].columns_dict if name != "kind")
        return self.db.execute(
            f"SELECT {columns}, t.kind AS turn_kind, e.run_id, e.dataset, e.kind FROM turns t JOIN episodes e ON e.id = t.episode_id"
            " WHERE (? IS NULL OR e.run_id = ?) AND (? IS NULL OR e.dataset = ?) ORDER BY e.rowid, t.idx",
            [run_id, run_id, dataset, dataset],
        )

    def annotation_rows(self, analyzer: Optional[str] = None, run_id: Optional[str] = None, dataset: Optional[str] = None) -> sqlite3.Cursor:
        """The rows of `annotations` with their episode's run and dataset, of one analyzer, run or dataset where
        given, oldest first."""
        return self.db.execute(
            "SELECT a.*, e.run_id, e.dataset FROM annotations a JOIN episodes e ON e.id = a.episode_id"
            " WHERE (? IS NULL OR a.analyzer = ?) AND (? IS NULL OR e.run_id = ?) AND (? IS NULL OR e.dataset = ?)"
            " ORDER BY a.id",
            [analyzer, analyzer, run_id, run_id, dataset, dataset],
        )

    def forks_of(self, episode_id: str) -> list[dict[str, Any]]:
        """The episodes forked from `episode_id` (id, run_id, fork_turn), oldest first."""
        return list(self.db["episodes"].rows_where("parent_id = ?", [episode_id], select="id, run_id, fork_turn", order_by="rowid"))

    def turns(self, episode_id: str) -> list[Turn]:
        """The turns of one episode in order."""
        return self._turns_of([episode_id]).get(episode_id, [])

    def _turns_of(
        self, episode_ids: list[str], columns: tuple[str, ...] = TURN_COLUMNS, utterances_only: bool = False
    ) -> dict[str, list[Turn]]:
        """The turns (with `utterances_only`, the utterances) of several episodes, each episode's in order, with
        `columns` (the first fields of Turn) read."""
        placeholders = ", ".join("?" * len(episode_ids))
        spoken = f" AND kind = '{UTTERANCE}'" if utterances_only else ""
        cursor = self.db.execute(
            f"SELECT episode_id, {', '.join(columns)} FROM turns WHERE episode_id IN ({placeholders}){spoken} ORDER BY episode_id, idx",
            episode_ids,
        )
        return {episode_id: [Turn(*row[1:]) for row in rows] for episode_id, rows in groupby(cursor, key=itemgetter(0))}

    # Imports

    def find_import(self, sha256: str, format_name: str, dataset: str) -> Optional[dict[str, Any]]:
        """The record of an earlier import of the same file bytes, format and dataset, if any."""
        rows = list(
            self.db["imports"].rows_where(
                "sha256 = ? and format = ? and dataset = ?", [sha256, format_name, dataset]
            )
        )
        return rows[0] if rows else None

    def record_import(self, row: dict[str, Any]) -> None:
        """Remember one imported file."""
        self.db["imports"].insert({**row, "created_at": utc_now()})

    def add_imported_episode(self, episode: Episode) -> None:
        """Insert an imported episode with all its turns (call inside `db.atomic()`)."""
        self.start_episode(episode)
        now = utc_now()
        rows = [(episode.id, t.idx, t.speaker, t.role, t.content, t.kind, now) for t in episode.turns]
        # One multi-row INSERT per chunk: the full-text index writes a segment per statement, not per row.
        for start in range(0, len(rows), IMPORT_CHUNK):
            chunk = rows[start : start + IMPORT_CHUNK]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            self.db.conn.execute(
                f"INSERT INTO turns (episode_id, idx, speaker, role, content, kind, created_at) VALUES {values}",
                [value for row in chunk for value in row],
            )

    # Request cache

    def cached_completion(self, request_hash: str) -> Optional[str]:
        """The stored completion JSON for a request hash, if any."""
        row = self.db.conn.execute("SELECT completion_json FROM request_cache WHERE hash = ?", [request_hash]).fetchone()
        return row[0] if row else None

    # Annotations

    def add_annotations(self, analyzer: str, version: str, annotations: list[Annotation]) -> None:
        """Append annotations (a live guard's, written as turns are generated)."""
        with self.db.atomic():
            self._insert_annotations(analyzer, version, annotations)

    def replace_annotations_of(
        self, analyzer: str, version: str, by_episode: dict[str, list[Annotation]], first_time: bool = False
    ) -> None:
        """Atomically replace an analyzer's annotations of several episodes, of whatever version, with this
        version's, in one transaction; `first_time` (the store held none of this analyzer's annotations) skips
        looking for old ones."""
        with self.db.atomic():
            if not first_time:
                self.db.conn.executemany(
                    "DELETE FROM annotations WHERE analyzer = ? AND episode_id = ?",
                    [(analyzer, episode_id) for episode_id in by_episode],
                )
            self._insert_annotations(analyzer, version, [a for annotations in by_episode.values() for a in annotations])

    def has_annotations(self, analyzer: str) -> bool:
        """Whether any annotation of this analyzer, of any version, is stored."""
        query = "SELECT 1 FROM annotations WHERE analyzer = ? LIMIT 1"
        return self.db.conn.execute(query, [analyzer]).fetchone() is not None

    def stale_scopes(self, analyzer: str, version: str) -> list[tuple[Optional[str], Optional[str], str, int]]:
        """(run_id, dataset, the other versions, n_episodes) of every run or dataset holding episodes annotated by
        another version of `analyzer`: what `sim reanalyze` analyzes again."""
        return self.db.execute(
            "SELECT e.run_id, e.dataset, group_concat(DISTINCT a.analyzer_version), count(DISTINCT e.id)"
            " FROM annotations a JOIN episodes e ON e.id = a.episode_id"
            " WHERE a.analyzer = ? AND a.analyzer_version != ? GROUP BY e.run_id, e.dataset ORDER BY min(e.rowid)",
            [analyzer, version],
        ).fetchall()

    def drop_other_versions(self, analyzer: str, version: str, run_id: Optional[str], dataset: Optional[str]) -> None:
        """Delete what other versions of `analyzer` left on the episodes of one run or dataset (episodes the
        current version no longer applies to keep nothing of the old one)."""
        with self.db.atomic():
            self.db.execute(
                "DELETE FROM annotations WHERE analyzer = ? AND analyzer_version != ?"
                " AND episode_id IN (SELECT id FROM episodes WHERE run_id IS ? AND dataset IS ?)",
                [analyzer, version, run_id, dataset],
            )

    def annotated_episodes(
        self, analyzer: str, version: Optional[str] = None, run_ids: Optional[Sequence[str]] = None,
        datasets: Optional[Sequence[str]] = None,
    ) -> list[tuple[str, Optional[str], Optional[str], int, Optional[str], Optional[int]]]:
        """(id, run, dataset, turns, parent, fork turn) of every episode `analyzer` (of `version`, where given)
        stored something for, of these runs and imported datasets where either is given, in storage order."""
        conditions = ["a.analyzer = ?", *(["a.analyzer_version = ?"] if version is not None else [])]
        scope, scope_params = optional_scope(run_ids, datasets)
        annotated = f"EXISTS (SELECT 1 FROM annotations a WHERE a.episode_id = e.id AND {' AND '.join(conditions)})"
        return self.db.execute(
            "SELECT e.id, e.run_id, e.dataset, e.n_turns, e.parent_id, e.fork_turn FROM episodes e"
            f" WHERE {' AND '.join([annotated, *scope])} ORDER BY e.rowid",
            [analyzer, *([version] if version is not None else []), *scope_params],
        ).fetchall()

    def annotation_values(
        self, analyzer: str, version: Optional[str] = None, names: Optional[Sequence[str]] = None,
        run_ids: Optional[Sequence[str]] = None, datasets: Optional[Sequence[str]] = None,
        level: Optional[str] = None, nonzero: bool = False,
    ) -> list[tuple[str, Optional[str], Optional[str], Optional[str], Optional[int], str, float]]:
        """(episode, run, dataset, the episode's author, turn, name, value) of `analyzer`'s stored values: of
        `version`, called one of `names`, of these runs and imported datasets, of `level` (`turn` or `episode`),
        only those not zero, each where given."""
        conditions, params = ["a.analyzer = ?"], [analyzer]
        if version is not None:
            conditions.append("a.analyzer_version = ?")
            params.append(version)
        if names is not None:
            conditions.append(f"a.name IN ({', '.join('?' * len(names))})")
            params.extend(names)
        if level is not None:
            conditions.append("a.turn_idx IS NOT NULL" if level == "turn" else "a.turn_idx IS NULL")
        if nonzero:
            conditions.append("a.value != 0")
        scope, scope_params = optional_scope(run_ids, datasets)
        conditions.extend(scope)
        params.extend(scope_params)
        return self.db.execute(
            "SELECT a.episode_id, e.run_id, e.dataset, json_extract(e.meta_json, '$.author'), a.turn_idx, a.name, a.value"
            f" FROM annotations a JOIN episodes e ON e.id = a.episode_id WHERE {' AND '.join(conditions)} ORDER BY a.id",
            params,
        ).fetchall()

    def add_validations(self, rows: list[dict[str, Any]]) -> None:
        """Store the results of one known-answer validation, one row per kind of perturbation."""
        with self.db.atomic():
            self.db["validations"].insert_all(rows)

    def validations(self, analyzer: str, version: str, settings_hash: str) -> list[dict[str, Any]]:
        """The stored validations of one analyzer version and settings, newest first."""
        return list(self.db["validations"].rows_where(
            "analyzer = ? AND analyzer_version = ? AND settings_hash = ?", [analyzer, version, settings_hash], order_by="id DESC"
        ))

    def analyzed_names(self) -> list[str]:
        """The analyzers (and `guard`) whose annotations are stored, in the order they first wrote."""
        rows = self.db.execute("SELECT analyzer FROM annotations GROUP BY analyzer ORDER BY min(id)").fetchall()
        return [name for (name,) in rows]

    def _insert_annotations(self, analyzer: str, version: str, annotations: list[Annotation]) -> None:
        # Plain executemany: analyzers write a row per value, a million rows for a large corpus.
        now = utc_now()
        self.db.conn.executemany(
            "INSERT INTO annotations (analyzer, analyzer_version, episode_id, turn_idx, name, value, detail_json, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(analyzer, version, a.episode_id, a.turn_idx, a.name, a.value, json.dumps(a.detail) if a.detail else "{}", now) for a in annotations],
        )

    def action_counts(self, analyzer: str, episode_id: str) -> dict[str, int]:
        """How many annotations of each name one analyzer wrote for one episode, e.g. {"guard_flag": 2}."""
        rows = self.db.execute(
            "SELECT name, count(*) FROM annotations WHERE analyzer = ? AND episode_id = ? GROUP BY name ORDER BY name",
            [analyzer, episode_id],
        ).fetchall()
        return {name: n for name, n in rows}

    def matching_turns(
        self,
        episode_id: Optional[str] = None,
        run_id: Optional[str] = None,
        query: Optional[str] = None,
        flags: Optional[tuple[str, ...]] = None,
    ) -> dict[str, set[int]]:
        """Indices of the turns, by episode in storage order, that match the full-text `query` (SQLite FTS5 syntax,
        over the `turns_fts` index) and, given `flags`, carry a non-zero annotation of one of those names."""
        clauses: list[str] = []
        params: list[Any] = []
        if episode_id is not None:
            clauses.append("t.episode_id = ?")
            params.append(episode_id)
        if run_id is not None:
            clauses.append("e.run_id = ?")
            params.append(run_id)
        if query is not None:
            clauses.append("t.rowid IN (SELECT rowid FROM turns_fts WHERE turns_fts MATCH ?)")
            params.append(query)
        if flags is not None:
            # The flagged (episode, turn) pairs once, rather than a lookup per turn that no index serves.
            clauses.append(
                f"(t.episode_id, t.idx) IN (SELECT episode_id, turn_idx FROM annotations"
                f" WHERE value != 0 AND name IN ({', '.join('?' * len(flags))}))"
            )
            params.extend(flags)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT t.episode_id, t.idx FROM turns t JOIN episodes e ON e.id = t.episode_id {where} ORDER BY e.rowid, t.idx"
        try:
            rows = self.db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if query is None or not any(sign in str(exc) for sign in FTS_QUERY_ERRORS):
                raise
            raise SimError(f"--search {query!r}: {exc}") from None
        found: dict[str, set[int]] = {}
        for episode, idx in rows:
            found.setdefault(episode, set()).add(idx)
        return found

    def annotations(self, episode_id: str) -> list[Annotation]:
        """The stored annotations of one episode."""
        return [_annotation(row) for row in self.db["annotations"].rows_where("episode_id = ?", [episode_id], order_by="id")]

    def annotations_of(self, episode_ids: list[str]) -> dict[str, list[tuple[str, Annotation]]]:
        """The stored annotations of several episodes, each as (analyzer, annotation), by episode in storage order."""
        found: dict[str, list[tuple[str, Annotation]]] = {}
        for start in range(0, len(episode_ids), EPISODE_CHUNK):
            chunk = episode_ids[start : start + EPISODE_CHUNK]
            rows = self.db["annotations"].rows_where(f"episode_id IN ({', '.join('?' * len(chunk))})", chunk, order_by="id")
            for row in rows:
                found.setdefault(row["episode_id"], []).append((row["analyzer"], _annotation(row)))
        return found


def _annotation(row: dict[str, Any]) -> Annotation:
    """An annotation from its `annotations` row."""
    return Annotation(
        episode_id=row["episode_id"],
        name=row["name"],
        value=row["value"],
        turn_idx=row["turn_idx"],
        detail=json.loads(row["detail_json"] or "{}"),
    )
