"""Progress bars over long work show on a terminal: jobs of a sweep, episodes, turns and analyzer batches."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from helpers import scripted_args

# Each test starts the `sim` command on a pseudo-terminal.
pytestmark = pytest.mark.slow

# The bars are the runner's whatever answers the turns: the scripted model gives them at once.
SMALL = [
    "scenario.n_episodes=2", "scenario.max_turns=2", "scenario.max_tokens=16", "runner.analyze=[conversation_stats]",
    *scripted_args("Instruction: Name the first step. Input: None", "Solution: Buy the parts. Next request."),
]


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run `python -m sim ARGS` with a pseudo-terminal as its stdout and stderr; its exit code and all it wrote."""
    master, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, and tqdm would draw every bar in none of them.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "sim", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    written = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        written += chunk
    os.close(master)
    return process.wait(timeout=600), written.decode(errors="replace")


def test_a_sweep_shows_bars_over_jobs_episodes_turns_and_analysis(tmp_path: Path) -> None:
    code, shown = run_in_terminal(["run", "-m", *SMALL, "seed=1,2"], tmp_path)
    assert code == 0, shown
    for bar in ("jobs", "episodes"):  # these stay on screen when done
        assert re.search(rf"{bar}: 100%.*\b2/2\b", shown), f"no finished {bar} bar in:\n{shown}"
    # These are cleared when done: at least their start is drawn.
    assert re.search(r"analyzing: +\d+%.*\b\d/2\b", shown) and re.search(r"turns: \d+turn", shown), shown


def test_progress_off_shows_no_bar(tmp_path: Path) -> None:
    code, shown = run_in_terminal(["run", *SMALL, "runner.progress=false"], tmp_path)
    assert code == 0, shown
    assert not re.search(r"(episodes|turns|analyzing): ", shown), shown
