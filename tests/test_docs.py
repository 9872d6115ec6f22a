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


@pytest.mark.slow
def test_turn_budget_table_regenerates_and_each_default_fits_its_longest_counterpart(tmp_path: Path) -> None:
    """docs/turn_budgets.md comes from its command, and every scenario's default max_tokens is the budget its table
    rows call for (the largest of them), so a default cannot drift from the measurement that chose it."""
    document = ROOT / "docs" / "turn_budgets.md"
    committed = document.read_text(encoding="utf-8")
    copy = tmp_path / "turn_budgets.md"
    shutil.copy(document, copy)
    subprocess.run([sys.executable, str(ROOT / "docs" / "make_turn_budgets.py"), "--out", str(copy)], check=True, cwd=ROOT)
    assert copy.read_text(encoding="utf-8") == committed
    rows = [line.split(" | ") for line in committed.splitlines() if line.startswith("| ") and not line.startswith("| scenario")]
    budgets: dict[str, list[int]] = {}
    for cells in rows:
        budgets.setdefault(cells[0].strip("| "), []).append(int(cells[9]))
    defaults = {cells[0].strip("| "): int(cells[10]) for cells in rows}
    assert set(defaults) == {"roleplay", "spp", "group", "instructions", "free_text"}
    assert defaults == {scenario: max(values) for scenario, values in budgets.items()}
