"""Bad input: one clear line on stderr, a non-zero exit, and no damage to existing data."""

import sqlite3
from pathlib import Path

import pytest

from conftest import TINY


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("scenario=nope", ("unknown scenario 'nope'", "roleplay")),
        ("backend=nope", ("unknown backend 'nope'", "embedded")),
        ("scenario.n_episodes=many", ("n_episodes", "many")),
        ("scenario.no_such_key=1", ("no_such_key",)),
        ("scenario.n_episodes=-2", ("scenario.n_episodes must be a positive integer",)),
        ("scenario.top_p=0", ("scenario.top_p",)),
        ("runner.analyze=[nope]", ("unknown analyzer 'nope'", "role_flip")),
        ("backend.model_path=/nonexistent/model.gguf", ("no such GGUF file", "/nonexistent/model.gguf")),
        ("analyzer.instructions.subset_size=1", ("analyzer.instructions.subset_size must be at least 2",)),
        ("analyzer.preferences.lexicons=/nonexistent", ("analyzer.preferences.lexicons: /nonexistent is not a folder",)),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(sim, tmp_path: Path, override: str, fragments) -> None:
    assert_one_line_error(sim("run", *TINY, override), *fragments)
    assert not (tmp_path / "runs" / "sim.db").exists()


def test_bad_value_inside_a_sweep_is_caught_before_any_job(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("run", "-m", *TINY, "scenario=roleplay,nope"), "unknown scenario 'nope'")
    assert not (tmp_path / "runs").exists()


def test_a_fixed_run_id_in_a_sweep_is_refused(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("run", "-m", *TINY, "run.id=same", "seed=1,2"), "leave run.id unset")
    assert not (tmp_path / "runs").exists()


def test_unwritable_db_path(sim, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    assert_one_line_error(sim("run", *TINY, "store.path=blocker/sim.db"), "cannot create folder")


def test_file_that_is_not_sqlite_is_left_intact(sim, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"precious notes\n" * 100)
    before = notes.read_bytes()
    assert_one_line_error(sim("run", *TINY, f"store.path={notes}"), "is not a SQLite database")
    assert_one_line_error(sim("show", "x", "--db", str(notes)), "is not a SQLite database")
    assert_one_line_error(sim("analyze", "--db", str(notes)), "is not a SQLite database")
    assert notes.read_bytes() == before
    assert not list(tmp_path.glob("notes.txt-*")), "no WAL or journal file was created beside it"
    assert not list(tmp_path.rglob("*.db"))


def test_reading_commands_on_missing_things(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("show", "e1"), "no database at runs/sim.db")
    assert not (tmp_path / "runs").exists()
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    assert_one_line_error(sim("show", "e1", "--db", str(db)), "no episode 'e1'")
    assert_one_line_error(sim("analyze", "--db", str(db), "--run", "r9"), "no run 'r9'")
    assert_one_line_error(sim("analyze", "--db", str(db), "--analyzer", "nope"), "unknown analyzer 'nope'")
    assert_one_line_error(sim("episodes", "--db", str(db), "--run", "r9"), "no run 'r9'")


def test_debug_shows_the_traceback(sim) -> None:
    result = sim("--debug", "show", "e1")
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--analyzer", "nope"), ("unknown analyzer 'nope'", "free_text")),
        (("scenario.n_episodes=3",), ("sim analyze takes analyzer and judge settings", "scenario.n_episodes=3")),
        (("--analyzer", "digression", "analyzer.digression.mode=guess"), ("analyzer.digression.mode must be one of embedding, judge",)),
        (("--analyzer", "role_drift", "analyzer.role_drift.reference=nobody"), ("analyzer.role_drift.reference must be one of roles, history",)),
        (("analyzer.free_text.embeddings=maybe",), ("analyzer.free_text.embeddings must be auto, true or false",)),
        (("analyzer.nope.x=1",), ("analyzer.nope.x",)),
        (("analyzer.instructions.rouge_pairs=many",), ("rouge_pairs", "many")),
    ],
)
def test_bad_analyzer_settings_are_one_line_and_touch_nothing(sim, tmp_path: Path, args, fragments) -> None:
    db = tmp_path / "sim.db"
    sqlite3.connect(db).close()
    assert sim("analyze", "--db", str(db), "--analyzer", "role_flip").returncode == 0  # migrates an empty store
    before = db.read_bytes()
    assert_one_line_error(sim("analyze", "--db", str(db), *args), *fragments)
    assert db.read_bytes() == before
