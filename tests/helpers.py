"""What test modules share besides fixtures: the corpora's folder, the run sizes, and plain helpers that module-level
constants and module-scoped fixtures use (conftest.py turns them into fixtures for the tests)."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

SERVED_MODEL = "smollm2"
# The reference corpora beside the checkout (never copied into it).
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# Small but real generations: the embedded model, few short turns.
TINY = ["scenario.n_episodes=2", "scenario.max_turns=4", "scenario.max_tokens=40", "runner.progress=false"]


def run_sim(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m sim ARGS` in `cwd` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def db_rows(db: Path, sql: str) -> list[tuple]:
    """All rows of one query on a database file."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openai_args(base_url: str, *extra: str) -> list[str]:
    """Overrides that point `backend=openai` at a local keyless server."""
    return ["backend=openai", f"backend.base_url={base_url}", f"backend.model={SERVED_MODEL}", "backend.api_key_env=null", *extra]


def scripted_args(*replies: str, model: str | None = None) -> list[str]:
    """Overrides for `backend=scripted` answering `replies` in order (none: an echo), under `model` if given."""
    quoted = ",".join("'" + reply.replace("\\", "\\\\").replace("'", "\\'") + "'" for reply in replies)
    return ["backend=scripted", f"backend.replies=[{quoted}]", *([f"backend.model={model}"] if model else [])]
