"""A run killed with SIGKILL at any point resumes without losing or duplicating a turn, and ends with the data an
uninterrupted run makes from the same seed."""

import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

from helpers import TINY

# Runs of the embedded model, killed mid-generation at each point and compared with a straight run from one seed.
pytestmark = pytest.mark.slow
QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
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


def endings(db: Path, run_id: str) -> list[tuple]:
    """(episode suffix, status, termination reason, turn count) of every episode of one run, and the run's totals."""
    with sqlite3.connect(db) as conn:
        episodes = conn.execute(
            "SELECT substr(id, length(?) + 2), status, termination_reason, n_turns FROM episodes WHERE run_id = ? ORDER BY id",
            [run_id, run_id],
        ).fetchall()
        totals = conn.execute("SELECT status, n_turns, completion_tokens FROM runs WHERE id = ?", [run_id]).fetchall()
    return episodes + totals


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


COMMIT_KILLER = Path(__file__).with_name("commit_killer.py")


def assert_killed(process: subprocess.Popen) -> None:
    """The run died of SIGKILL rather than ending first."""
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill point"


def kill_when(args: list[str], cwd: Path, ready: Callable[[], bool], timeout: float = 300) -> None:
    """Start `sim run ARGS`, poll until `ready()`, then SIGKILL it; fail if it ended first."""
    process = subprocess.Popen([sys.executable, "-m", "sim", "run", *args], cwd=cwd, **QUIET)
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert_killed(process)
    assert ready(), "the kill point was reached"


def kill_at_commit(args: list[str], cwd: Path, table: str, nth: int) -> None:
    """Run `sim run ARGS` so that it SIGKILLs itself as the `nth` transaction writing `table` starts to commit."""
    assert_killed(subprocess.Popen([sys.executable, str(COMMIT_KILLER), table, str(nth), "run", *args], cwd=cwd, **QUIET))


def assert_turns_whole(after: list[tuple]) -> None:
    """Every episode's turns are numbered 0..n-1 exactly once."""
    keys = [(episode, idx) for episode, idx, *_ in after]
    assert len(keys) == len(set(keys)), "no turn is duplicated"
    for episode in {episode for episode, _ in keys}:
        indexes = [idx for e, idx in keys if e == episode]
        assert indexes == list(range(len(indexes)))


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory, run_sim) -> Path:
    """The database of one uninterrupted run `straight` with the same seed and settings."""
    folder = tmp_path_factory.mktemp("straight")
    result = run_sim(["run", *ARGS, f"runner.analyze=[{','.join(ANALYZERS)}]", "run.id=straight"], folder)
    assert result.returncode == 0, result.stderr
    return folder / "runs" / "sim.db"


@dataclass(frozen=True)
class KillPoint:
    """Where a run is killed: `kill(args, cwd, db)` kills it there; `status` is the run's status it leaves behind
    (`analyzing` once every turn is generated); `stored_turns`/`analyzed`, where set, how many turns and whether
    any annotations are stored at that moment, and `cache_hits` how many turns the resume takes from the request
    cache (answered before the kill, not stored as turns)."""

    name: str
    kill: Callable[[list[str], Path, Path], None]
    status: str = "running"
    stored_turns: Optional[int] = None
    analyzed: Optional[bool] = None
    cache_hits: Optional[int] = None
    slow_analysis: bool = False


KILL_POINTS = [
    # The fourth turn is committed and the model is already generating the fifth.
    KillPoint("mid_turn", lambda args, cwd, db: kill_when(args, cwd, lambda: count_turns(db) >= 4)),
    # An episode has just been marked done; the next one is being started and its first turn committed.
    KillPoint(
        "after_episode",
        lambda args, cwd, db: kill_when(
            args, cwd, lambda: scalar(db, "SELECT count(*) FROM episodes WHERE status = 'done'") == 1
        ),
    ),
    # The fourth turn's row and its full-text row are written, and their COMMIT has started: the turn must vanish.
    KillPoint("mid_commit", lambda args, cwd, db: kill_at_commit(args, cwd, "turns", 4), stored_turns=3, cache_hits=1),
    # Generation is over and analysis has begun; the embedding analyzer is still loading its model.
    KillPoint(
        "in_analysis",
        lambda args, cwd, db: kill_when(args, cwd, lambda: scalar(db, "SELECT status FROM runs") == "analyzing"),
        status="analyzing",
        slow_analysis=True,
    ),
    # The first analyzer's annotations are written and their COMMIT has started: none may be kept.
    KillPoint(
        "mid_analysis_commit",
        lambda args, cwd, db: kill_at_commit(args, cwd, "annotations", 1),
        status="analyzing",
        analyzed=False,
    ),
]


@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda point: point.name)
def test_killed_run_resumes_exactly(sim, tmp_path: Path, straight: Path, point: KillPoint) -> None:
    db = tmp_path / "runs" / "sim.db"
    args = [*ARGS, f"runner.analyze=[{','.join(SLOW_ANALYZERS if point.slow_analysis else ANALYZERS)}]", "run.id=killed"]
    point.kill(args, tmp_path, db)
    before = turns(db, "killed")
    assert before, "the kill must land after the first turn"
    if point.stored_turns is not None:
        assert len(before) == point.stored_turns, "only committed turns are stored"
    if point.status == "analyzing":
        assert before == turns(straight, "straight"), "generation had ended"
    if point.analyzed is not None:
        assert bool(annotations(db, "killed", ANALYZERS)) == point.analyzed, "an uncommitted analysis leaves nothing"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM runs").fetchone() == (point.status,)

    resumed = sim("run", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    after = turns(db, "killed")
    assert set(before) <= set(after), "every turn stored before the kill is kept"
    assert_turns_whole(after)
    if point.cache_hits is not None:
        hits = scalar(db, "SELECT count(*) FROM turns WHERE episode_id LIKE 'killed-%' AND cache_hit = 1")
        assert hits == point.cache_hits, "a request answered before the kill is not asked again"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM runs WHERE id = 'killed'").fetchone() == ("done",)
        assert {s for (s,) in conn.execute("SELECT status FROM episodes")} == {"done"}
    assert after == turns(straight, "straight"), "the resumed run's data equal the uninterrupted run's"
    assert endings(db, "killed") == endings(straight, "straight"), "its episodes end as the uninterrupted run's"
    expected = annotations(straight, "straight", ANALYZERS)
    assert expected and annotations(db, "killed", ANALYZERS) == expected, "the resumed run is analyzed as the uninterrupted one"
