"""A run killed with SIGKILL at any point resumes without losing or duplicating a turn, and ends with the data an
uninterrupted run makes from the same seed."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import TINY, run_sim

ARGS = [*TINY, "scenario.n_episodes=3", "scenario.max_turns=3", "scenario.max_tokens=24", "runner.concurrency=1", "seed=21"]
ANALYZERS = ["role_flip", "conversation_stats"]
# The embedding analyzer loads a sentence-transformers model first: seconds in which the run is done but analysis is not.
SLOW_ANALYZERS = [*ANALYZERS, "digression"]


def turns(db: Path, run_id: str) -> list[tuple]:
    """(episode suffix, idx, speaker, content) of every turn of one run, in order."""
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT substr(episode_id, length(?) + 2), idx, speaker, content FROM turns "
            "WHERE episode_id LIKE ? ORDER BY episode_id, idx",
            [run_id, f"{run_id}-%"],
        ).fetchall()


def annotations(db: Path, run_id: str, analyzers: list[str]) -> list[tuple]:
    """(analyzer, episode suffix, turn, name, value) of one run's annotations by `analyzers`, in order."""
    marks = ", ".join("?" * len(analyzers))
    with sqlite3.connect(db) as conn:
        return conn.execute(
            f"SELECT analyzer, substr(episode_id, length(?) + 2) AS e, turn_idx, name, round(value, 9) FROM annotations "
            f"WHERE episode_id LIKE ? AND analyzer IN ({marks}) ORDER BY analyzer, e, turn_idx, name",
            [run_id, f"{run_id}-%", *analyzers],
        ).fetchall()


def scalar(db: Path, sql: str, params: tuple = ()) -> object:
    """The first value of one query, or None while the database or its tables do not exist yet."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute(sql, params).fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def count_turns(db: Path) -> int:
    """How many turns the database holds (0 before it exists)."""
    return scalar(db, "SELECT count(*) FROM turns") or 0


def kill_when(args: list[str], cwd: Path, ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start `sim run ARGS`, poll until `ready()`, then SIGKILL it; fail if it ended first."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill point"


def assert_turns_whole(after: list[tuple]) -> None:
    """Every episode's turns are numbered 0..n-1 exactly once."""
    keys = [(episode, idx) for episode, idx, *_ in after]
    assert len(keys) == len(set(keys)), "no turn is duplicated"
    for episode in {episode for episode, _ in keys}:
        indexes = [idx for e, idx in keys if e == episode]
        assert indexes == list(range(len(indexes)))


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database of one uninterrupted run `straight` with the same seed and settings."""
    folder = tmp_path_factory.mktemp("straight")
    result = run_sim(["run", *ARGS, f"runner.analyze=[{','.join(ANALYZERS)}]", "run.id=straight"], folder)
    assert result.returncode == 0, result.stderr
    return folder / "runs" / "sim.db"


def mid_turn(db: Path) -> bool:
    # The fourth turn is committed and the model is already generating the fifth.
    return count_turns(db) >= 4


def after_episode(db: Path) -> bool:
    # An episode has just been marked done; the next one is being started and its first turn committed.
    return scalar(db, "SELECT count(*) FROM episodes WHERE status = 'done'") == 1


def in_analysis(db: Path) -> bool:
    # Generation is over; the analyzers are still loading or writing.
    return scalar(db, "SELECT status FROM runs") == "analyzing"


@pytest.mark.parametrize("kill_point", [mid_turn, after_episode, in_analysis], ids=lambda point: point.__name__)
def test_killed_run_resumes_exactly(sim, tmp_path: Path, straight: Path, kill_point) -> None:
    db = tmp_path / "runs" / "sim.db"
    args = [*ARGS, f"runner.analyze=[{','.join(SLOW_ANALYZERS if kill_point is in_analysis else ANALYZERS)}]", "run.id=killed"]
    kill_when(args, tmp_path, lambda: kill_point(db))
    before = turns(db, "killed")
    assert before, "the kill must land after the first turn"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        status = conn.execute("SELECT status FROM runs").fetchone()[0]
    assert status == ("analyzing" if kill_point is in_analysis else "running")

    resumed = sim("run", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    after = turns(db, "killed")
    assert set(before) <= set(after), "every turn stored before the kill is kept"
    assert_turns_whole(after)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM runs WHERE id = 'killed'").fetchone() == ("done",)
        assert {s for (s,) in conn.execute("SELECT status FROM episodes")} == {"done"}
    assert after == turns(straight, "straight"), "the resumed run's data equal the uninterrupted run's"
    expected = annotations(straight, "straight", ANALYZERS)
    assert expected and annotations(db, "killed", ANALYZERS) == expected, "the resumed run is analyzed as the uninterrupted one"
