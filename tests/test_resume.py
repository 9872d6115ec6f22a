"""Ctrl-C marks a run and its unfinished episodes `interrupted`, and the run resumes (SIGKILL: test_crash_safety.py)."""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_crash_safety import ARGS, count_turns

# Ctrl-C lands while the embedded model generates a turn.
pytestmark = pytest.mark.slow


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
    resumed = sim("run", *ARGS, "run.id=stopped")
    assert resumed.returncode == 0, resumed.stderr
    with sqlite3.connect(db) as conn:
        assert {row[0] for row in conn.execute("SELECT status FROM episodes")} == {"done"}
