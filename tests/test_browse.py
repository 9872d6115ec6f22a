"""`sim browse` and the full-text index of turns: a real Datasette server over a real imported corpus."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_utils import Database

from helpers import DATA, db_rows, free_port
from sim.migrations import migrations
from sim.records import Turn
from sim.store import Store
from test_bad_input import assert_one_line_error

DAILYDIALOG = DATA / "conversations" / "dailydialog" / "dailydialog_sample_2624.jsonl"
SEARCH_WORD = "birthday"
RUN_FACETS = ["backend", "model", "scenario", "status", "sweep_id"]
EPISODE_FACETS = ["dataset", "kind", "run_id", "source", "status", "termination_reason"]


def matches(db: Path, query: str) -> list[int]:
    """Turn ids whose content matches an FTS5 query, in id order."""
    with closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT rowid FROM turns_fts WHERE turns_fts MATCH ? ORDER BY rowid", [query])]


def test_migration_indexes_existing_turns_and_triggers_keep_the_index_current(tmp_path: Path, episode) -> None:
    path = tmp_path / "old.db"
    # A database as the release before the index left it: every migration up to m005 applied, turns stored.
    old = Database(path)
    migrations.apply(old, stop_before="m005_turns_full_text_search")
    assert "turns_fts" not in old.table_names()
    stored = episode("e1", [("A", "the walrus sings"), ("A", "a quiet harbour")])
    with old.atomic():
        Store(old, path).start_episode(stored)
        # The turns' columns of that release (no `kind` yet)
        old["turns"].insert_all({"episode_id": "e1", "idx": t.idx, "speaker": t.speaker, "role": t.role, "content": t.content} for t in stored.turns)
    old.close()

    store = Store.open(path)
    try:
        assert "m005_turns_full_text_search" in {m.name for m in migrations.applied(store.db)}
        schema = store.db["turns_fts"].schema
        assert "USING FTS5" in schema and 'content="turns"' in schema  # external content: no second copy of the text
        assert matches(path, "walrus") == [1] and matches(path, "harbour") == [2]

        store.start_episode(episode("e2"))
        store.add_turn("e2", Turn(idx=0, speaker="A", role="A", content="another walrus arrives"))
        assert matches(path, "walrus") == [1, 3]

        store.db.execute("UPDATE turns SET content = 'a quiet lighthouse' WHERE id = 2")
        store.db.conn.commit()
        assert matches(path, "harbour") == [] and matches(path, "lighthouse") == [2]

        store.db.execute("DELETE FROM turns WHERE id = 1")
        store.db.conn.commit()
        assert matches(path, "walrus") == [3]
        # The index agrees with the table it indexes (FTS5's own consistency check raises otherwise).
        store.db.execute("INSERT INTO turns_fts(turns_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        store.close()


def get_json(url: str) -> dict:
    """One JSON response of the server."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def wait_until_serving(process: subprocess.Popen, url: str) -> None:
    """Poll `url` until the server answers; fail with its output if it exits or never answers."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"sim browse exited with {process.returncode}: {process.communicate()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    process.kill()
    pytest.fail(f"sim browse did not answer at {url}")


def sha256(path: Path) -> str:
    """The digest of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_browse_serves_facets_and_full_text_search_read_only(sim, tmp_path: Path) -> None:
    imported = sim("import", "dailydialog", str(DAILYDIALOG), "--db", "dd.db", "--dataset", "dailydialog")
    assert imported.returncode == 0, imported.stderr
    db = tmp_path / "dd.db"
    before = sha256(db)
    port = free_port()
    base = f"http://127.0.0.1:{port}/dd"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "browse", "--db", str(db), "--port", str(port), "--no-open"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until_serving(process, f"{base}.json")

        episodes = get_json(f"{base}/episodes.json?_size=0")
        assert sorted(episodes["facet_results"]) == EPISODE_FACETS
        datasets = {r["value"]: r["count"] for r in episodes["facet_results"]["dataset"]["results"]}
        assert datasets == {"dailydialog": 2624}
        assert {r["value"] for r in episodes["facet_results"]["kind"]["results"]} == {"conversation"}
        assert sorted(get_json(f"{base}/runs.json?_size=0")["facet_results"]) == RUN_FACETS

        # The search box uses turns_fts: every turn that has the word as a token, and only those.
        expected = {i for i, text in db_rows(db, "SELECT id, content FROM turns") if re.search(rf"\b{SEARCH_WORD}\b", text, re.I)}
        found = get_json(f"{base}/turns.json?_search={SEARCH_WORD}&_shape=objects&_size=max")
        assert {row["id"] for row in found["rows"]} == expected and len(expected) > 5

        assert sha256(db) == before  # browsing wrote nothing to the database file

        # A writer is not blocked, and a turn committed to the WAL but not yet checkpointed is found at once
        # (a database opened `immutable=1` would miss it).
        [(n_turns,)] = db_rows(db, "SELECT count(*) FROM turns")
        writer = sqlite3.connect(db, timeout=5)
        try:
            writer.execute("PRAGMA wal_autocheckpoint=0")
            writer.execute(
                "INSERT INTO turns (episode_id, idx, speaker, role, content) VALUES ('dailydialog-0', 99, 'A', 'A', 'zyzzyva')"
            )
            writer.commit()
            rows = get_json(f"{base}/turns.json?_search=zyzzyva&_shape=objects")["rows"]
            assert [(row["episode_id"], row["idx"]) for row in rows] == [("dailydialog-0", 99)]
            query = urllib.parse.quote("SELECT count(*) AS n FROM turns")
            assert get_json(f"{base}.json?sql={query}&_shape=objects")["rows"] == [{"n": n_turns + 1}]
        finally:
            writer.close()
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert f"serving {db} read-only at {base}" in stdout


def test_browse_refuses_a_missing_database(sim) -> None:
    assert_one_line_error(sim("browse", "--db", "absent.db", "--no-open"), "no database at absent.db")


def test_browse_refuses_a_port_in_use(sim, store) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = sim("browse", "--db", str(store.path), "--port", str(port), "--no-open")
    assert_one_line_error(result, f"cannot serve on 127.0.0.1:{port}")


def test_browse_without_datasette_says_how_to_install_it(store, tmp_path: Path) -> None:
    # Datasette made unimportable, as in an install without the `browse` extra.
    code = "import sys; sys.modules['datasette'] = None; from sim.cli import cli; cli(sys.argv[1:])"
    result = subprocess.run(
        [sys.executable, "-c", code, "browse", "--db", str(store.path), "--no-open"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert_one_line_error(result, "pip install -e '.[browse]'")
