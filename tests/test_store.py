"""The SQLite store: WAL, unique turn index, idempotent migrations, and refusal of files it must not touch."""

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from sim.errors import SimError
from sim.migrations import migrations
from sim.records import Annotation, Turn
from sim.store import Store


@pytest.fixture
def new_episode(episode):
    """`new_episode(store, episode_id="r1-e0000")`: start run r1 and a running conversation of it in `store`."""

    def start(store: Store, episode_id: str = "r1-e0000") -> None:
        store.start_run({"id": "r1", "scenario": "roleplay", "backend": "embedded", "model": "m", "seed": 0})
        store.start_episode(
            episode(episode_id, task="t", roles={"user": "U"}, status="running", source="generated", dataset=None, run_id="r1")
        )

    return start


def test_wal_mode_is_on(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "sim.db")
    assert store.db.journal_mode == "wal"
    store.close()
    with sqlite3.connect(tmp_path / "sim.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_turn_index_is_unique_per_episode(tmp_path: Path, new_episode) -> None:
    store = Store.open(tmp_path / "sim.db")
    new_episode(store)
    store.add_turn("r1-e0000", Turn(idx=0, speaker="U", role="user", content="a"))
    with pytest.raises(sqlite3.IntegrityError):
        store.add_turn("r1-e0000", Turn(idx=0, speaker="U", role="user", content="b"))
    assert [t.content for t in store.turns("r1-e0000")] == ["a"]


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    Store.open(path).close()
    with sqlite3.connect(path) as conn:
        schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        applied = conn.execute("SELECT name FROM _sqlite_migrations").fetchall()
    store = Store.open(path)
    migrations.apply(store.db)
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
        assert conn.execute("SELECT name FROM _sqlite_migrations").fetchall() == applied
    assert applied == [
        ("m001_initial_schema",),
        ("m002_cache_retries_and_run_totals",),
        ("m003_imports",),
        ("m004_logprobs_and_kind_views",),
        ("m005_turns_full_text_search",),
        ("m006_failed_request_attempts",),
        ("m007_validations",),
        ("m008_turn_kinds",),
        ("m009_request_ledger",),
        ("m010_run_revisions",),
        ("m011_request_limits",),
    ]


def test_a_database_from_before_the_kind_views_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    migrations.apply(old, stop_before="m004_logprobs_and_kind_views")
    old["episodes"].insert({"id": "x-1", "kind": "free_text", "meta_json": '{"author": "human", "pair": 3}'})
    old["turns"].insert({"episode_id": "x-1", "idx": 0, "role": "text", "content": "kept"})
    old.close()
    store = Store.open(path)
    rows = store.db.execute("SELECT episode_id, author, text, pair FROM v_free_text").fetchall()
    assert rows == [("x-1", "human", "kept", 3)]
    assert "logprob" in store.db["turns"].columns_dict
    store.close()


def test_a_database_from_before_turn_kinds_is_upgraded_in_place(tmp_path: Path, episode) -> None:
    """Turns stored before turns had a kind are utterances after the upgrade, except the deal actions of an earlier
    CaSiNo import; new turns keep their kind."""
    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="m008_turn_kinds")
    old["imports"].insert({"format": "casino", "dataset": "casino", "sha256": "0"})
    for episode_id, dataset in (("x-1", "chat"), ("casino-1", "casino")):
        old["episodes"].insert({"id": episode_id, "source": "imported", "dataset": dataset, "kind": "conversation", "status": "done"})
        for idx, content in enumerate(["hello", "Submit-Deal"]):
            old["turns"].insert({"episode_id": episode_id, "idx": idx, "speaker": "a", "role": "a", "content": content})
    old.close()
    store = Store.open(path)
    assert [t.kind for t in store.turns("x-1")] == ["utterance", "utterance"]
    assert [t.kind for t in store.turns("casino-1")] == ["utterance", "action"]
    with store.db.atomic():
        store.add_imported_episode(episode("x-2", [("a", "hi"), Turn(1, "a", "a", "Submit-Deal", kind="action")]))
    assert [(t.content, t.kind) for t in store.turns("x-2")] == [("hi", "utterance"), ("Submit-Deal", "action")]
    # Analyzers read the utterances: a chat's "Submit-Deal" is one, a CaSiNo deal action is not.
    assert [[t.content for t in e.turns] for e in store.episodes(text_only=True)] == [["hello", "Submit-Deal"], ["hello"], ["hi"]]
    store.close()


def test_an_older_database_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="m002_cache_retries_and_run_totals")
    db["runs"].insert({"id": "r0", "status": "done"})
    db.close()
    store = Store.open(path)
    assert store.find_run("r0")["status"] == "done"
    assert "cache_hit" in store.db["turns"].columns_dict
    assert store.db["request_cache"].exists()


def test_run_id_cannot_be_reused(tmp_path: Path, new_episode) -> None:
    store = Store.open(tmp_path / "sim.db")
    new_episode(store)
    with pytest.raises(SimError, match="already exists"):
        store.start_run({"id": "r1"})


def test_replacing_annotations_does_not_duplicate(tmp_path: Path, new_episode) -> None:
    store = Store.open(tmp_path / "sim.db")
    new_episode(store)
    rows = [Annotation("r1-e0000", "flag", 1.0, turn_idx=0), Annotation("r1-e0000", "any", 1.0)]
    store.replace_annotations_of("a", "1", {"r1-e0000": rows})
    store.replace_annotations_of("a", "1", {"r1-e0000": rows})
    assert len(store.annotations("r1-e0000")) == 2


def test_an_annotation_write_that_fails_halfway_leaves_the_earlier_annotations(tmp_path: Path, new_episode) -> None:
    store = Store.open(tmp_path / "sim.db")
    new_episode(store)
    store.replace_annotations_of("role_flip", "1", {"r1-e0000": [Annotation("r1-e0000", "old", 1.0)]}, first_time=True)
    # The old rows are deleted first; the second new row then fails to encode, as a crash mid-write would stop it.
    halfway = [Annotation("r1-e0000", "new", 2.0), Annotation("r1-e0000", "bad", 3.0, detail={"x": object()})]
    with pytest.raises(TypeError):
        store.replace_annotations_of("role_flip", "2", {"r1-e0000": halfway})
    rows = store.db.execute("SELECT analyzer_version, name, value FROM annotations").fetchall()
    store.close()
    assert rows == [("1", "old", 1.0)]


def _open_and_close(path: str) -> str:
    try:
        Store.open(path).close()
    except SimError as exc:
        return str(exc)
    return "ok"


@pytest.mark.slow
def test_processes_creating_one_database_at_once_migrate_it_one_after_another(tmp_path: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(6) as pool:
        for attempt in range(20):  # the jobs of a parallel sweep all open the store as they start
            path = str(tmp_path / f"{attempt}.db")
            assert pool.map(_open_and_close, [path] * 6) == ["ok"] * 6
            assert [name for (name,) in sqlite3.connect(path).execute("SELECT name FROM _sqlite_migrations")] == [
                m.name for m in migrations.pending(Database(memory=True))
            ]


def test_non_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n")
    with pytest.raises(SimError, match="not a SQLite database"):
        Store.open(path)
    assert path.read_bytes() == b"these are my notes, not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sim.db"
    store = Store.open(path)
    store.db["_sqlite_migrations"].insert(
        {"migration_set": "artifact_sim", "name": "m999_from_the_future", "applied_at": "2030-01-01"}
    )
    store.close()
    with pytest.raises(SimError, match="newer schema"):
        Store.open(path)


def test_missing_database_is_not_created_for_reading(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="no database"):
        Store.open(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


def test_unwritable_location_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(SimError, match="cannot create folder"):
        Store.open(blocker / "sub" / "sim.db")


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, distance REAL)")
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(SimError, match="another application's SQLite database"):
            Store.open(path, create=create)
    assert path.read_bytes() == before
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
