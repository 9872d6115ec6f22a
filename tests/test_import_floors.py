"""Import floors: the agents and scenarios load no backend, the command line no Hydra, and no module below the front
end imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The modules a backend brings in: each built-in backend and the SDK of the OpenAI-compatible one.
BACKEND_MODULES = (
    "openai", "sim.backends.embedded", "sim.backends.openai_api", "sim.backends.vllm_engine", "sim.backends.hf_pipeline",
    "sim.backends.langchain_chat", "sim.backends.scripted",
)
# The front end: the command line, the Hydra app and what renders or serves results (`__main__` is `python -m sim`).
FRONT_END = ("cli", "app", "compare", "report", "figures", "browse", "api", "__main__")
TOP = ("sim.app", "sim.cli")
# Everything else that ships: the engine and the packages it drives.
ENGINE_FOLDERS = ("sim", "agents", "scenarios", "analyzers")
# What importing each module must not load: the agents and scenarios no backend, the command line (which loads
# what a command needs when it runs) not even Hydra.
MUST_NOT_LOAD = {
    "agents": BACKEND_MODULES,
    "scenarios": BACKEND_MODULES,
    "sim.cli": (*BACKEND_MODULES, "hydra", "omegaconf"),
}


@pytest.mark.slow
@pytest.mark.parametrize("module", sorted(MUST_NOT_LOAD))
def test_light_imports(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {MUST_NOT_LOAD[module]!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"import {module} loaded {result.stdout.strip()}"


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function; `from sim import app` counts as `sim.app`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def engine_files() -> list[Path]:
    """The Python files of the engine folders, less the front end's modules."""
    files = [path for folder in ENGINE_FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))]
    return [path for path in files if not (path.parent == ROOT / "sim" and path.stem in FRONT_END)]


def test_no_engine_module_imports_the_front_end() -> None:
    files = engine_files()
    assert ROOT / "sim" / "runner.py" in files and ROOT / "sim" / "replay.py" in files
    climbs = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files for module in sorted(imported_modules(path))
        if module in TOP or module.startswith(tuple(f"{top}." for top in TOP))
    ]
    assert climbs == []


def test_compare_names_no_analyzer() -> None:
    """An analyzer's figures come from its own `report_figures`: sim/compare.py names none and imports no analyzer's
    module (the registry only)."""
    from analyzers import analyzers

    tree = ast.parse((ROOT / "sim" / "compare.py").read_text())
    names = set(analyzers.names())
    assert {"role_flip", "task_labels", "preferences"} <= names
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    named = sorted(name for name in names if any(name in literal for literal in literals))
    assert named == []
    assert [module for module in imported_modules(ROOT / "sim" / "compare.py") if module.startswith("analyzers.")] == ["analyzers.analyzers"]
