"""Runner throughput and harness CPU per turn against backends with a fixed, configurable latency.

    python bench/runner_throughput.py --latency-ms 200 --turns 6 --concurrency 1 4 16 64 256

For each concurrency c it plays max(2c, 8) role-play episodes of `--turns` turns with c episodes and c requests in
flight, and reports turns per second against the ideal c / latency and the CPU time of this process per turn
during generation. Three backends are measured:

- `http`: the `openai` backend with its default client (`backend.http_client=aiohttp`) against a loopback
  OpenAI-compatible responder in another process; the CPU per turn is the harness plus the HTTP client.
- `http_sdk`: the same with the official SDK's client (`backend.http_client=sdk`).
- `sleep`: an in-process backend that only sleeps for the latency; the CPU per turn is the harness alone
  (scheduling, seeds, request hashing, the request cache and ledger, the SQLite writes, the agents' prompts).
  What an `http` row costs beyond it is its HTTP client's, with the backend's building of the request and reading
  of the answer.

The `--baseline` workload (default: that of c=64) is then run one conversation after another on each backend.

`--full-text-index off` drops the store's full-text index of turns (`turns_fts` and its triggers) before the run;
`--full-text-index off on --repeat 4` measures each workload four times both ways, alternating, and prints the CPU
per turn side by side. `--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

import sim.compose  # noqa: F401  (registers analyzers, scenarios, backends and the top-level schema)
from sim.backends import Backend, Completion, backends
from sim.messages import ChatMessage, SamplingParams
from sim.runner import execute
from sim.store import Store

from markdown_tables import measured, table


@dataclass
class SleepConfig:
    """Schema of the benchmark-only `backend=sleep`."""

    _target_: str = f"{__name__}.SleepBackend"
    latency_ms: float = 200.0
    max_concurrency: int = 64


@backends.register("sleep", config=SleepConfig)
class SleepBackend(Backend):
    """Answers every request with a fixed text after `latency_ms`, using no CPU of its own."""

    def __init__(self, latency_ms: float, max_concurrency: int) -> None:
        self.latency_s = latency_ms / 1000
        self.max_concurrency = max_concurrency

    @property
    def model(self) -> str:
        """A fixed name."""
        return "sleep"

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """Sleep, then answer."""
        await asyncio.sleep(self.latency_s)
        return Completion("Instruction: continue with the next step.\nInput: None", "stop", 100, 12, self.latency_s * 1000)


HERE = Path(__file__).resolve().parent


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_responder(latency_ms: float, *options: str) -> tuple[subprocess.Popen, str]:
    """The loopback responder in its own process (with its command-line `options`), and its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "loopback_responder.py"), "--port", str(port), "--latency-ms", str(latency_ms), *options],
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base_url}/models", timeout=1).read()
            return process, base_url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the responder did not start")


def backend_overrides(name: str, base_url: str, latency_ms: float) -> list[str]:
    """The overrides of the measured backend `name` (http, http_sdk or sleep), the HTTP ones against `base_url`."""
    http = ["backend=openai", f"backend.base_url={base_url}", "backend.model=bench", "backend.api_key_env=null"]
    return {
        "http": http,
        "http_sdk": [*http, "backend.http_client=sdk"],
        "sleep": ["backend=base_sleep", f"backend.latency_ms={latency_ms}"],
    }[name]


def prepare_store(db: Path, full_text_index: str) -> None:
    """Create and migrate the store before the run, without the full-text index of turns for `off`."""
    store = Store.open(db)
    if full_text_index == "off":
        store.db["turns"].disable_fts()
    store.close()


def workload_config(backend: list[str], db: Path, episodes: int, turns: int, concurrency: int) -> DictConfig:
    """The composed config of one workload: `episodes` role-plays of `turns` turns, `concurrency` in flight."""
    overrides = [
        *backend,
        f"backend.max_concurrency={concurrency}",
        f"scenario.n_episodes={episodes}",
        f"scenario.max_turns={turns}",
        f"runner.concurrency={concurrency}",
        "runner.progress=false",
        "runner.analyze=[]",
        f"store.path={db}",
    ]
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def measure(backend: list[str], db: Path, episodes: int, turns: int, concurrency: int) -> dict:
    """Run one workload in this process and return its throughput and CPU cost during generation."""
    report = execute(workload_config(backend, db, episodes, turns, concurrency))
    n_turns = report.totals["n_turns"]
    assert n_turns == episodes * turns, f"expected {episodes * turns} turns, stored {n_turns}"
    return {"turns": n_turns, "wall_s": report.totals["wall_s"], "cpu_s": report.totals["cpu_s"]}


def throughput_table(results: list[dict], with_index: bool) -> str:
    """One row per measured workload."""
    header = ["backend", "mode", "concurrency", "episodes", "turns", "wall s", "turns/s", "ideal turns/s", "% of ideal", "CPU ms/turn"]
    if with_index:
        header.insert(2, "full-text index")
    rows = []
    for row in results:
        cells = [
            row["backend"], row["mode"], row["concurrency"], row["episodes"], row["turns"], f"{row['wall_s']:.2f}",
            f"{row['turns_per_s']:.1f}", f"{row['ideal_turns_per_s']:.1f}", f"{row['percent_of_ideal']:.1f}",
            f"{row['cpu_ms_per_turn']:.3f}",
        ]
        if with_index:
            cells.insert(2, row["full_text_index"])
        rows.append(cells)
    return table(header, rows)


def targets_table(results: list[dict], baseline: int) -> str:
    """The targets per backend (at c=64 at least 90% of ideal; at c=64 to 256 at most 0.5 ms of CPU per turn; at
    c=256 at least 1,000 turns/s), and how much faster than the sequential baseline of the same workload the
    concurrent run was."""
    header = [
        "backend", "% of ideal at c=64 (target ≥ 90)", "CPU ms/turn at c=64–256 (target ≤ 0.5)",
        "turns/s at c=256 (target ≥ 1,000)", "all met",
    ]
    if baseline == 64:
        header.append("times faster than sequential")
    rows = []
    for backend in dict.fromkeys(row["backend"] for row in results):
        concurrent = [r for r in results if r["backend"] == backend and r["mode"] == "concurrent"]
        at_64 = [r for r in concurrent if r["concurrency"] == 64]
        at_256 = [r for r in concurrent if r["concurrency"] == 256]
        if not at_64:
            continue
        percent = min(r["percent_of_ideal"] for r in at_64)
        cpu = max(r["cpu_ms_per_turn"] for r in concurrent if 64 <= r["concurrency"] <= 256)
        rate = min(r["turns_per_s"] for r in at_256) if at_256 else None
        met = percent >= 90 and cpu <= 0.5 and rate is not None and rate >= 1000
        cells = [backend, f"{percent:.1f}", f"{cpu:.3f}", "not measured" if rate is None else f"{rate:.0f}", "yes" if met else "no"]
        if baseline == 64:
            sequential = [r for r in results if r["backend"] == backend and r["mode"] != "concurrent"]
            ratio = sum(r["wall_s"] for r in sequential) / sum(r["wall_s"] for r in at_64) if sequential else float("nan")
            cells.append(f"{ratio:.0f}")
        rows.append(cells)
    return table(header, rows)


def cpu_split_table(results: list[dict]) -> str:
    """Where each HTTP turn's CPU goes, per concurrency: the harness (the `sleep` backend's CPU per turn) and the
    HTTP client with the backend's request and answer handling (what an `http` backend's turn costs beyond it)."""
    clients = [name for name in dict.fromkeys(r["backend"] for r in results) if name != "sleep"]
    header = ["concurrency", "harness ms/turn (sleep)", *(f"{name}: client ms/turn (share of the turn)" for name in clients)]
    rows = []
    for concurrency in dict.fromkeys(r["concurrency"] for r in results if r["mode"] == "concurrent"):
        def cpu(backend: str) -> float | None:
            found = [r["cpu_ms_per_turn"] for r in results
                     if (r["backend"], r["mode"], r["concurrency"]) == (backend, "concurrent", concurrency)]
            return sum(found) / len(found) if found else None

        harness = cpu("sleep")
        if harness is None:
            continue
        cells = [concurrency, f"{harness:.3f}"]
        for name in clients:
            total = cpu(name)
            cells.append("not measured" if total is None else f"{total - harness:.3f} ({100 * (total - harness) / total:.0f}%)")
        rows.append(cells)
    return table(header, rows)


def index_table(results: list[dict]) -> str:
    """CPU per turn without and with the full-text index, each run, per backend and workload."""
    rows = []
    keys = dict.fromkeys((r["backend"], r["mode"], r["concurrency"], r["turns"]) for r in results)
    for backend, mode, concurrency, turns in keys:
        runs = {
            index: [r for r in results if (r["backend"], r["mode"], r["concurrency"], r["turns"]) == (backend, mode, concurrency, turns)
                    and r["full_text_index"] == index]
            for index in ("off", "on")
        }
        cpu = {index: [r["cpu_ms_per_turn"] for r in found] for index, found in runs.items()}
        added = sum(cpu["on"]) / len(cpu["on"]) - sum(cpu["off"]) / len(cpu["off"])
        base = sum(cpu["off"]) / len(cpu["off"])
        percent = {index: [r["percent_of_ideal"] for r in found] for index, found in runs.items()}
        label = str(concurrency) if mode == "concurrent" else f"{concurrency} ({mode})"
        rows.append([
            backend, label, turns,
            ", ".join(f"{v:.3f}" for v in cpu["off"]), ", ".join(f"{v:.3f}" for v in cpu["on"]),
            f"{added:+.3f} ({100 * added / base:+.0f}%)",
            f"{min(percent['off']):.1f}-{max(percent['off']):.1f}", f"{min(percent['on']):.1f}-{max(percent['on']):.1f}",
        ])
    header = [
        "backend", "concurrency", "turns", "CPU ms/turn without the index", "CPU ms/turn with the index",
        "mean added, ms", "% of ideal without", "% of ideal with",
    ]
    return table(header, rows)


def main() -> None:
    """Measure every concurrency level, then the sequential baseline, and print the tables (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--baseline", type=int, default=64, help="run this level's workload sequentially as well (0: no baseline)")
    parser.add_argument("--backends", nargs="+", default=["http", "http_sdk", "sleep"], choices=["http", "http_sdk", "sleep"])
    parser.add_argument("--full-text-index", nargs="+", default=["on"], choices=["off", "on"],
                        help="with (on) or without (off) the full-text index of turns; both: measured alternately")
    parser.add_argument("--repeat", type=int, default=1, help="measure each workload this many times")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    indexes = list(dict.fromkeys(args.full_text_index))

    latency_s = args.latency_ms / 1000
    results = []
    # In Markdown mode stdout carries only the tables; anything the run prints goes to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.markdown else contextlib.nullcontext()
    with quiet:
        process, base_url = start_responder(args.latency_ms)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for name in args.backends:
                    workloads = [(c, c, "concurrent") for c in args.concurrency]
                    if args.baseline:
                        workloads.append((args.baseline, 1, f"sequential (workload of c={args.baseline})"))
                    for size, concurrency, mode in workloads:
                        episodes = max(2 * size, 8)
                        for number in range(args.repeat):
                            for index in indexes:
                                db = Path(tmp) / f"{name}-{mode.split()[0]}-{size}-{index}-{number}.db"
                                prepare_store(db, index)
                                row = measure(backend_overrides(name, base_url, args.latency_ms), db, episodes, args.turns, concurrency)
                                row.update(backend=name, mode=mode, concurrency=concurrency, episodes=episodes, full_text_index=index)
                                results.append(row)
        finally:
            process.terminate()
            process.wait()

    for row in results:
        rate = row["turns"] / row["wall_s"]
        ideal = row["concurrency"] / latency_s
        row.update(turns_per_s=rate, ideal_turns_per_s=ideal, percent_of_ideal=100 * rate / ideal,
                   cpu_ms_per_turn=1000 * row["cpu_s"] / row["turns"])
    if len(indexes) > 1:
        tables = [("", index_table(results))]
    else:
        tables = [("", throughput_table(results, with_index=False))]
        if any(r["mode"] == "concurrent" and r["concurrency"] == 64 for r in results):
            tables.append(("Against the targets:", targets_table(results, args.baseline)))
        if "sleep" in args.backends and len(args.backends) > 1:
            tables.append(("Where the CPU of an HTTP turn goes:", cpu_split_table(results)))
    if args.markdown:
        print(measured(*tables))
    else:
        print(f"latency {args.latency_ms:g} ms, {args.turns} turns per episode, {os.cpu_count()} CPUs, full-text index {'/'.join(indexes)}")
        print("\n\n".join(body for _, body in tables))
    if args.json:
        args.json.write_text(json.dumps({"latency_ms": args.latency_ms, "turns": args.turns, "results": results}, indent=2))


if __name__ == "__main__":
    main()
