"""Write the generated blocks of docs/benchmarks.md: each benchmark's tables under the command that measured them.

    python docs/make_benchmarks.py [--only NAME ...] [--data ../shared/data] [--out docs/benchmarks.md] [--quick]

Runs each benchmark below (all, or those named by `--only`) from the repository root with `--markdown`, and puts
what it prints between `<!-- generated: NAME -->` and `<!-- end generated -->` in the document; the prose around
the blocks is kept. Block `machine` (CPUs, memory, Python, SQLite and library versions, commit) is written here;
it is rewritten with every full run, and with `--only` when named. Each block is written as soon as its benchmark
has finished. `--out` writes into another file (copied from docs/benchmarks.md first if it does not exist);
`--quick` runs tiny workloads into scratch stores under runs/bench/quick/ to check the scripts and the markers,
and never writes docs/benchmarks.md itself. A full run takes about 30 minutes on 2 quiet cores (more the first
time, when the benchmark stores are built).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
DOCUMENT = DOCS / "benchmarks.md"
RUNNER = "bench/runner_throughput.py"
# name: the commands whose output fills the block, run from the repository root, each with --markdown added.
BENCHMARKS: dict[str, list[list[str]]] = {
    "machine": [],
    "runner": [[RUNNER, "--latency-ms", "200", "--turns", "6", "--concurrency", "1", "4", "16", "64", "256", "--baseline", "64"]],
    "runner_1000ms": [[RUNNER, "--latency-ms", "1000", "--concurrency", "16", "64", "256", "--baseline", "0", "--backends", "http"]],
    "harness_profile": [["bench/harness_profile.py", "--concurrency", "256", "--backends", "sleep", "http", "http_sdk"]],
    "data_analyzers": [["bench/data_analyzers.py", "--batch-sizes", "8", "16", "32", "64", "128"]],
    "role_flip": [["bench/role_flip_throughput.py", "--runs", "3"]],
    "digression": [["bench/digression_embeddings.py"]],
    "full_text_index": [["bench/full_text_index.py", "--runs", "3"]],
    "full_text_index_runner": [
        [RUNNER, "--backends", "sleep", "--concurrency", "64", "256", "--baseline", "0", "--full-text-index", "off", "on", "--repeat", "4"],
        [RUNNER, "--backends", "http", "--concurrency", "64", "--baseline", "0", "--full-text-index", "off", "on", "--repeat", "2"],
    ],
    "browse": [["bench/browse_pages.py"]],
    "validate": [["bench/validate_throughput.py"]],
    "embedded": [["bench/embedded_speed.py", "--repeat", "2"]],
    "adaptive_concurrency": [["bench/adaptive_concurrency.py"]],
}
QUICK_STORES = "runs/bench/quick"
# Tiny workloads of the same scripts (--quick), for checking them, not for numbers.
QUICK: dict[str, list[list[str]]] = {
    "machine": [],
    "runner": [[RUNNER, "--latency-ms", "20", "--turns", "2", "--concurrency", "1", "64", "--baseline", "64"]],
    "runner_1000ms": [[RUNNER, "--latency-ms", "50", "--turns", "2", "--concurrency", "4", "--baseline", "0", "--backends", "http"]],
    "harness_profile": [["bench/harness_profile.py", "--latency-ms", "20", "--turns", "2", "--concurrency", "8"]],
    "data_analyzers": [["bench/data_analyzers.py", "--db", f"{QUICK_STORES}/data_analyzers.db", "--batch-sizes", "32"]],
    "role_flip": [["bench/role_flip_throughput.py", "--conversations", "200", "--turns", "10", "--db", f"{QUICK_STORES}/role_flip.db", "--runs", "2"]],
    "digression": [["bench/digression_embeddings.py", "--db", f"{QUICK_STORES}/digression.db"]],
    "full_text_index": [["bench/full_text_index.py", "--runs", "1", "--large-store", f"{QUICK_STORES}/role_flip.db", "--large-size", "200", "10"]],
    "full_text_index_runner": [
        [RUNNER, "--latency-ms", "20", "--turns", "2", "--backends", "sleep", "--concurrency", "4", "--baseline", "0",
         "--full-text-index", "off", "on", "--repeat", "2"],
    ],
    "browse": [["bench/browse_pages.py", "--db", f"{QUICK_STORES}/data_analyzers.db", "--repeat", "1"]],
    "validate": [["bench/validate_throughput.py", "--db", f"{QUICK_STORES}/validate.db"]],
    "embedded": [["bench/embedded_speed.py", "--episodes", "1", "--turns", "2", "--prompts", "2", "--max-tokens", "16"]],
    "adaptive_concurrency": [["bench/adaptive_concurrency.py", "--episodes", "8", "--turns", "2", "--concurrency", "16"]],
}
TAKES_DATA = {"bench/data_analyzers.py", "bench/digression_embeddings.py", "bench/full_text_index.py", "bench/validate_throughput.py"}
PACKAGES = [
    "hydra-core", "openai", "httpx2", "sqlite-utils", "numpy", "scipy", "scikit-learn", "vaderSentiment", "pyphen",
    "sentence-transformers", "transformers", "torch", "datasette",
]


def block_pattern(name: str) -> re.Pattern[str]:
    """The generated block `name`, markers included."""
    return re.compile(rf"<!-- generated: {re.escape(name)} -->\n.*?<!-- end generated -->", re.DOTALL)


def write_block(path: Path, name: str, body: str) -> None:
    """Replace the block `name` of the document at `path` with `body`."""
    text = path.read_text()
    pattern = block_pattern(name)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no block <!-- generated: {name} --> ... <!-- end generated -->")
    block = f"<!-- generated: {name} -->\n\n{body.strip()}\n\n<!-- end generated -->"
    path.write_text(pattern.sub(lambda _: block, text, count=1))


def version(package: str) -> str:
    """The installed version of `package`, or `not installed`."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def git(*args: str) -> str:
    """The output of a git command in the repository, or an empty string."""
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def machine() -> str:
    """The machine, the software and the commit the benchmarks ran on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = next(int(line.split()[1]) for line in meminfo.read_text().splitlines() if line.startswith("MemTotal"))
        memory = f", {total_kb / 1024**2:.0f} GiB RAM"
    try:
        import torch

        threads = f"; torch uses {torch.get_num_threads()} threads, GPU {'present but unused' if torch.cuda.is_available() else 'none'}"
    except ImportError:
        threads = ""
    commit = git("rev-parse", "--short", "HEAD")
    dirty = " with uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    lines = [
        f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC at commit {commit or 'unknown'}{dirty}, on {os.cpu_count()} CPU cores "
        f"({cpu}, {platform.machine()}){memory}{threads}; {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}.",
        "",
        "| package | version |",
        "|---|---|",
        *[f"| {package} | {version(package)} |" for package in PACKAGES],
    ]
    return "\n".join(lines)


def run(command: list[str], data: Path | None) -> str:
    """What one benchmark command prints with --markdown (its progress goes to stderr)."""
    args = [*command]
    if data is not None and command[0] in TAKES_DATA:
        args += ["--data", str(data)]
    args.append("--markdown")
    print(f"$ python {' '.join(args)}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return done.stdout


def main() -> None:
    """Run the selected benchmarks and write their blocks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"Run only these benchmarks (the other blocks are kept): {', '.join(BENCHMARKS)}.")
    parser.add_argument("--data", type=Path, help="The reference corpora, passed on as --data (default: the scripts' ../shared/data).")
    parser.add_argument("--out", type=Path, default=DOCUMENT, help="Write the blocks into this file (default: docs/benchmarks.md).")
    parser.add_argument("--quick", action="store_true", help="Tiny workloads, to check the scripts; needs --out elsewhere.")
    args = parser.parse_args()
    out = args.out.resolve()
    if args.quick and out == DOCUMENT:
        parser.error("--quick writes numbers of tiny workloads: give --out another file")
    if not out.exists():
        shutil.copyfile(DOCUMENT, out)
    commands = QUICK if args.quick else BENCHMARKS
    for name in args.only or list(BENCHMARKS):
        started = time.perf_counter()
        if name == "machine":
            body = machine()
        else:
            body = "\n\n".join(run(command, args.data).strip() for command in commands[name])
        write_block(out, name, body)
        print(f"{name}: written into {out} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
