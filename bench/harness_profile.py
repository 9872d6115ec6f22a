"""Where the harness process's time per turn goes: the runner workload of bench/runner_throughput.py under cProfile.

    python bench/harness_profile.py --latency-ms 200 --concurrency 256 --backends sleep http

For each backend it plays max(2c, 8) role-play episodes of `--turns` turns at concurrency c, as
bench/runner_throughput.py does, after a small unprofiled run of the same backend (so that imports and first-call
costs are paid), and profiles the run alone (not the config composition) with cProfile. It sums each function's
own time by the part of the harness its code belongs to (SQLite, the retry loop, the HTTP client, JSON, hashing,
the event loop, the harness's own Python). The event loop's wait for sockets and timers is idle time and is left
out of the shares.
cProfile adds a fixed cost to every Python call, so parts made of many small calls read larger than they run
unprofiled; the shares say where to look, and bench/runner_throughput.py gives the unprofiled CPU per turn.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from markdown_tables import measured, table
from runner_throughput import backend_overrides, measure, prepare_store, start_responder, workload_config
from sim.runner import execute

# (part, what a function's file path or built-in name contains), first match wins; anything else is "other".
PARTS = [
    ("idle: waiting for sockets and timers", ("'poll' of 'select.epoll'",)),
    ("SQLite (statements, commits, sqlite-utils)", ("sqlite3", "sqlite_utils")),
    ("retry loop (tenacity)", ("tenacity",)),
    ("HTTP client (aiohttp, or the SDK and httpx)",
     ("aiohttp", "yarl", "multidict", "site-packages/openai/", "httpx", "httpcore", "anyio", "h11", "_socket")),
    ("JSON", ("json",)),
    ("request hashing", ("_hashlib", "sha256")),
    ("event loop (asyncio)", ("asyncio", "selectors", "contextvars")),
    ("harness code (sim, agents, scenarios)", ("/sim/", "/agents/", "/scenarios/")),
    ("config (Hydra, OmegaConf), once per run", ("hydra", "omegaconf", "yaml")),
]
OTHER = "other (built-ins and standard library not traced to a part)"
# How many callers up a general-purpose function's time is traced to the part that called it.
CALLER_DEPTH = 4


def part_of(key: tuple[str, int, str]) -> str:
    """The part of the harness a profiled function belongs to, by its file path or built-in name."""
    filename, _, name = key
    where = f"{filename}:{name}"
    return next((part for part, marks in PARTS if any(mark in where for mark in marks)), OTHER)


def profile(overrides: list[str], episodes: int, turns: int, concurrency: int) -> tuple[int, dict[str, float]]:
    """Turns stored and seconds of own time per part, for one profiled run of the workload."""
    with tempfile.TemporaryDirectory() as tmp:
        measure(overrides, Path(tmp) / "warm-up.db", 8, 2, 8)
        db = Path(tmp) / "profile.db"
        prepare_store(db, "on")
        cfg = workload_config(overrides, db, episodes, turns, concurrency)
        profiler = cProfile.Profile()
        with profiler:
            report = execute(cfg)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    seconds: dict[str, float] = defaultdict(float)
    shares = Attribution(stats)
    for key, (_, _, own, _, _) in stats.items():
        for part, share in shares.of(key, CALLER_DEPTH).items():
            seconds[part] += own * share
    return report.totals["n_turns"], seconds


class Attribution:
    """The parts each profiled function's own time belongs to: its own part, or for a general-purpose function (a
    built-in, the standard library) its callers' parts, in proportion to the time spent for each of them."""

    def __init__(self, stats: dict) -> None:
        self.stats = stats
        self._known: dict[tuple[tuple[str, int, str], int], dict[str, float]] = {}  # a built-in has hundreds of callers

    def of(self, key: tuple[str, int, str], depth: int) -> dict[str, float]:
        """Each part's share of `key`'s own time, tracing callers up to `depth` calls up."""
        if (key, depth) not in self._known:
            self._known[key, depth] = self._traced(key, depth)
        return self._known[key, depth]

    def _traced(self, key: tuple[str, int, str], depth: int) -> dict[str, float]:
        part = part_of(key)
        callers = self.stats[key][4] if key in self.stats else {}
        if part != OTHER or depth == 0 or not callers:
            return {part: 1.0}
        # Weighted by the time spent under each caller (cumulative), so that a thin wrapper passes its share on.
        spent = {caller: timing[3] for caller, timing in callers.items()}
        total = sum(spent.values())
        shares: dict[str, float] = defaultdict(float)
        for caller, time_spent in spent.items():
            weight = time_spent / total if total else 1 / len(spent)
            for caller_part, share in self.of(caller, depth - 1).items():
                shares[caller_part] += weight * share
        return shares


def parts_table(results: dict[str, tuple[int, dict[str, float]]]) -> str:
    """One row per part: milliseconds per turn under cProfile and share of the busy (not idle) time, per backend."""
    backends = list(results)
    header = ["part", *(f"{name}: ms/turn (share)" for name in backends)]
    rows = []
    for part in [name for name, _ in PARTS[1:]] + [OTHER, PARTS[0][0]]:
        cells: list[object] = [part]
        for name in backends:
            turns, seconds = results[name]
            busy = sum(value for key, value in seconds.items() if key != PARTS[0][0])
            share = "" if part == PARTS[0][0] else f" ({100 * seconds[part] / busy:.0f}%)"
            cells.append(f"{1000 * seconds[part] / turns:.3f}{share}")
        rows.append(cells)
    return table(header, rows)


def main() -> None:
    """Profile each backend's workload and print the table of parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--backends", nargs="+", default=["sleep", "http"], choices=["http", "http_sdk", "sleep"])
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown table, under this command line")
    args = parser.parse_args()

    quiet = contextlib.redirect_stdout(sys.stderr) if args.markdown else contextlib.nullcontext()
    results = {}
    with quiet:
        process, base_url = start_responder(args.latency_ms)
        try:
            for name in args.backends:
                overrides = backend_overrides(name, base_url, args.latency_ms)
                results[name] = profile(overrides, max(2 * args.concurrency, 8), args.turns, args.concurrency)
        finally:
            process.terminate()
            process.wait()
    body = parts_table(results)
    print(measured(("", body)) if args.markdown else body)


if __name__ == "__main__":
    main()
