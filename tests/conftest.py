"""Shared fixtures: the `sim` command run for real in a scratch folder, stores and episodes built by hand, the
scripted stand-in for a model, and a real llama.cpp server for the tests that need one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, Union

import pytest

from helpers import SERVED_MODEL, db_rows as db_rows_of, free_port, run_sim as run_sim_in, scripted_args
from sim.records import Episode, Turn

if TYPE_CHECKING:
    from sim.runner import RunReport

# Fixtures that start a real model or server, or run the `sim` command in a new Python process (which imports the
# whole stack: 5-10 s a command on two busy cores): a test that asks for one is in the slow tier, marked or not.
SLOW_FIXTURES = {"llama_server", "hf_model_dir", "sim", "run_sim", "unprivileged"}

# A turn given to `episode()`: a Turn, (role, content) said by the role itself, or (speaker, role, content).
TurnSpec = Union[Turn, tuple[str, str], tuple[str, str, str]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that uses a fixture starting a real model or server."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def make_episode(
    id: str = "e0",
    turns: Sequence[TurnSpec] = (),
    *,
    kind: str = "conversation",
    task: str | None = None,
    roles: dict[str, str] | None = None,
    dataset: str | None = "d",
    meta: dict | None = None,
    source: str = "import",
    status: str = "done",
    termination_reason: str | None = None,
    run_id: str | None = None,
) -> Episode:
    """An episode built by hand: an imported one by default, its turns numbered in the order given."""
    built = []
    for idx, spec in enumerate(turns):
        if isinstance(spec, Turn):
            built.append(spec)
        else:
            speaker, role, content = spec if len(spec) == 3 else (spec[0], *spec)
            built.append(Turn(idx, speaker, role, content))
    return Episode(id, run_id, source, kind, task, dict(roles or {}), status, termination_reason, dataset, dict(meta or {}), built)


@pytest.fixture(scope="session")
def episode() -> Callable[..., Episode]:
    """`episode(id, turns, kind=..., ...)`: an Episode built by hand (see make_episode)."""
    return make_episode


@pytest.fixture(scope="session")
def run_sim() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`run_sim(args, cwd)`: run `python -m sim ARGS` in a folder of the test's choosing."""
    return run_sim_in


@pytest.fixture(scope="session")
def db_rows() -> Callable[[Path, str], list[tuple]]:
    """`db_rows(db, sql)`: all rows of one query on a database file."""
    return db_rows_of


@pytest.fixture
def sim(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """A function that runs `sim` inside this test's scratch folder."""

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return run_sim_in(list(args), tmp_path)

    return call


@pytest.fixture(scope="session")
def scripted() -> Callable[..., list[str]]:
    """`scripted(*replies, model=None)`: the overrides that make the run's model `backend=scripted` with these replies."""
    return scripted_args


@pytest.fixture
def generate(tmp_path: Path) -> Callable[..., "RunReport"]:
    """`generate(*overrides)`: a run composed from the overrides as `sim run` composes one, played in this process
    into tmp_path/sim.db, by the scripted model unless an override picks another backend; its report."""
    from sim.compose import compose_config
    from sim.runner import execute

    def run(*overrides: str) -> "RunReport":
        chosen = ["backend=scripted", f"store.path={tmp_path / 'sim.db'}", "runner.progress=false", *overrides]
        return execute(compose_config(chosen), overrides=list(overrides))

    return run


@pytest.fixture
def store(tmp_path: Path):
    """An empty store in this test's scratch folder."""
    from sim.store import Store

    opened = Store.open(tmp_path / "sim.db")
    yield opened
    opened.close()


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
