"""Shared fixtures: the `sim` command run for real in a scratch folder."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

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


@pytest.fixture
def sim(tmp_path: Path):
    """A function that runs `sim` inside this test's scratch folder."""

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return run_sim(list(args), tmp_path)

    return call


@pytest.fixture
def store(tmp_path: Path):
    """An empty store in this test's scratch folder."""
    from sim.store import Store

    opened = Store.open(tmp_path / "sim.db")
    yield opened
    opened.close()


def db_rows(db: Path, sql: str) -> list[tuple]:
    """All rows of one query on a database file."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server() -> str:
    """A real llama.cpp OpenAI-compatible server on loopback, serving the bundled SmolLM2 as `smollm2`."""
    from sim.backends.embedded import bundled_model_path

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(bundled_model_path()), "--model_alias", SERVED_MODEL,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(os.cpu_count() or 1),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the llama.cpp server did not start")
        time.sleep(0.5)
    yield base_url
    process.terminate()
    process.wait(timeout=30)


def openai_args(base_url: str, *extra: str) -> list[str]:
    """Overrides that point `backend=openai` at a local keyless server."""
    return ["backend=openai", f"backend.base_url={base_url}", f"backend.model={SERVED_MODEL}", "backend.api_key_env=null", *extra]
