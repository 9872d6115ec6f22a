"""Docs are generated, not typed: a generator rerun with the command written above its table rewrites it unchanged."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_coverage_table_regenerates_from_its_command(tmp_path: Path) -> None:
    document = ROOT / "docs" / "statistics.md"
    committed = document.read_text(encoding="utf-8")
    command = re.search(r"`(python docs/make_statistics\.py[^`]*)`", committed)
    assert command, "the coverage table names the command that wrote it"
    copy = tmp_path / "statistics.md"
    shutil.copy(document, copy)
    args = command.group(1).split()[2:]
    subprocess.run([sys.executable, str(ROOT / "docs" / "make_statistics.py"), *args, "--out", str(copy)], check=True, cwd=ROOT)
    assert copy.read_text(encoding="utf-8") == committed
