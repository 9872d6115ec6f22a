"""The README's quick start stays what CI runs and what the CLI offers."""

import re
from pathlib import Path

from click.testing import CliRunner

from sim.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def quick_start_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_lines_and_ci_runs_the_test_line() -> None:
    lines = quick_start_lines()
    assert len(lines) == 2
    assert lines[0] == "pip install -e . && sim run"
    ci_commands = [
        line for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci_commands == [lines[1]]


def test_every_command_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"| `sim {name}" in readme, name
        assert "Example" in (cli.commands[name].help or ""), name
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
