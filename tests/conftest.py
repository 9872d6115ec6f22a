"""Shared fixtures: the `sim` command run for real in a scratch folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
