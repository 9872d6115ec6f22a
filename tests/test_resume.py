"""A run killed with SIGKILL resumes without losing or duplicating a turn, and ends as an uninterrupted run would."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import TINY

ARGS = [
    *TINY, "scenario.n_episodes=3", "scenario.max_turns=3", "scenario.max_tokens=24", "runner.concurrency=1", "seed=21",
    "runner.use_cache=false",
]


def turns(db: Path, run_id: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT substr(episode_id, length(?) + 2), idx, speaker, content FROM turns "
            "WHERE episode_id LIKE ? ORDER BY episode_id, idx",
            [run_id, f"{run_id}-%"],
        ).fetchall()


def count_turns(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM turns").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_killed_run_resumes_exactly(sim, tmp_path: Path) -> None:
    db = tmp_path / "runs" / "sim.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", *ARGS, "run.id=killed"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while count_turns(db) < 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = turns(db, "killed")
    assert 4 <= len(before) < 9, "the kill must land mid-run"

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT status FROM runs").fetchone() == ("running",)

    resumed = sim("run", *ARGS, "run.id=killed")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    after = turns(db, "killed")
    assert set(before) <= set(after), "every turn stored before the kill is kept"
    keys = [(episode, idx) for episode, idx, *_ in after]
    assert len(keys) == len(set(keys)), "no turn is duplicated"
    for episode in {k[0] for k in keys}:
        assert [idx for e, idx in keys if e == episode] == list(range(len([1 for e, _ in keys if e == episode])))

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs WHERE id='killed'").fetchone() == ("done",)
        assert {s for (s,) in conn.execute("SELECT status FROM episodes")} == {"done"}

    straight = sim("run", *ARGS, "run.id=straight")
    assert straight.returncode == 0, straight.stderr
    assert turns(db, "straight") == after


def test_ctrl_c_marks_the_run_interrupted_and_it_resumes(sim, tmp_path: Path) -> None:
    db = tmp_path / "runs" / "sim.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "run", *ARGS, "run.id=stopped"], cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 300
    while count_turns(db) < 1 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # lands while the model is generating a turn in its worker thread
    process.wait(timeout=120)
    assert process.returncode not in (0, -signal.SIGSEGV), process.stderr.read()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM runs").fetchone() == ("interrupted",)
        statuses = {row[0] for row in conn.execute("SELECT status FROM episodes")}
    assert "interrupted" in statuses and "running" not in statuses
    resumed = sim("run", *ARGS, "scenario.n_episodes=1", "run.id=stopped")
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(db) as conn:
        assert {row[0] for row in conn.execute("SELECT status FROM episodes")} == {"done"}
