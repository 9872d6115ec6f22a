"""Markdown output shared by the benchmark scripts: each table under the exact command line that measured it."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]


def command_line() -> str:
    """The command line this process was started with, as run from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(ROOT)
    except ValueError:
        pass
    return "python " + shlex.join([str(script), *map(relative_to_root, sys.argv[1:])])


def relative_to_root(arg: str) -> str:
    """An absolute path beside or inside the repository (e.g. the shared corpora) as seen from its root, so that a
    command line written into docs/ names no folder of the machine it ran on; any other argument as given."""
    path = Path(arg)
    if path.is_absolute() and path.resolve().is_relative_to(ROOT.parent):
        return os.path.relpath(path.resolve(), ROOT)
    return arg


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table; cells are printed as given."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def measured(*tables: tuple[str, str]) -> str:
    """Each (caption, table) as its caption (if any), the command line in a bash block, and the table."""
    parts = []
    for caption, body in tables:
        block = f"```bash\n{command_line()}\n```\n\n{body}"
        parts.append(f"{caption}\n\n{block}" if caption else block)
    return "\n\n".join(parts)


def seconds_list(values: Iterable[float], digits: int = 2) -> str:
    """Several timings of one measurement, comma-separated."""
    return ", ".join(f"{value:.{digits}f}" for value in values)
