"""Runner throughput and harness CPU per turn against backends with a fixed, configurable latency.

    python bench/runner_throughput.py --latency-ms 200 --turns 6 --concurrency 1 4 16 64 256

For each concurrency c it plays max(2c, 8) role-play episodes of `--turns` turns with c episodes and c requests in
flight, and reports turns per second against the ideal c / latency and the CPU time of this process per turn
during generation. Two backends are measured:

- `http`: the `openai` backend (official SDK) against a loopback OpenAI-compatible responder in another process;
  the CPU per turn is the harness plus the SDK's HTTP client.
- `sleep`: an in-process backend that only sleeps for the latency; the CPU per turn is the harness alone
  (scheduling, seeds, request hashing, the request cache, the SQLite writes, the agents' prompts).

The `--baseline` workload (default: that of c=64) is then run one conversation after another on each backend.
"""

from __future__ import annotations

import argparse
import asyncio
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

import analyzers  # noqa: F401  (registers analyzers)
import scenarios  # noqa: F401  (registers scenarios)
import sim.backends  # noqa: F401  (registers backends)
import sim.config  # noqa: F401  (registers the top-level schema)
from sim.backends import Backend, ChatMessage, Completion, SamplingParams, backends
from sim.runner import execute


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


def start_responder(latency_ms: float) -> tuple[subprocess.Popen, str]:
    """The loopback responder in its own process, and its base URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(HERE / "loopback_responder.py"), "--port", str(port), "--latency-ms", str(latency_ms)]
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


def measure(backend: list[str], db: Path, episodes: int, turns: int, concurrency: int) -> dict:
    """Run one workload in this process and return its throughput and CPU cost during generation."""
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
        cfg = compose(config_name="config", overrides=overrides)
    report = execute(cfg)
    n_turns = report.totals["n_turns"]
    assert n_turns == episodes * turns, f"expected {episodes * turns} turns, stored {n_turns}"
    return {"turns": n_turns, "wall_s": report.totals["wall_s"], "cpu_s": report.totals["cpu_s"]}


def main() -> None:
    """Measure every concurrency level, then the sequential baseline, and print a Markdown table and JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--baseline", type=int, default=64, help="run this level's workload sequentially as well")
    parser.add_argument("--backends", nargs="+", default=["http", "sleep"], choices=["http", "sleep"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    latency_s = args.latency_ms / 1000
    process, base_url = start_responder(args.latency_ms)
    choices = {
        "http": ["backend=openai", f"backend.base_url={base_url}", "backend.model=bench", "backend.api_key_env=null"],
        "sleep": ["backend=base_sleep", f"backend.latency_ms={args.latency_ms}"],
    }
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.backends:
                workloads = [(c, c, "concurrent") for c in args.concurrency]
                if args.baseline:
                    workloads.append((args.baseline, 1, f"sequential (workload of c={args.baseline})"))
                for size, concurrency, mode in workloads:
                    episodes = max(2 * size, 8)
                    db = Path(tmp) / f"{name}-{mode.split()[0]}-{size}.db"
                    row = measure(choices[name], db, episodes, args.turns, concurrency)
                    row.update(backend=name, mode=mode, concurrency=concurrency, episodes=episodes)
                    results.append(row)
    finally:
        process.terminate()
        process.wait()

    print(f"latency {args.latency_ms:g} ms, {args.turns} turns per episode, {os.cpu_count()} CPUs")
    print("| backend | mode | concurrency | episodes | turns | wall s | turns/s | ideal turns/s | % of ideal | CPU ms/turn |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        rate = row["turns"] / row["wall_s"]
        ideal = row["concurrency"] / latency_s
        row.update(turns_per_s=rate, ideal_turns_per_s=ideal, cpu_ms_per_turn=1000 * row["cpu_s"] / row["turns"])
        print(
            f"| {row['backend']} | {row['mode']} | {row['concurrency']} | {row['episodes']} | {row['turns']} | {row['wall_s']:.2f} | "
            f"{rate:.1f} | {ideal:.1f} | {100 * rate / ideal:.1f} | {row['cpu_ms_per_turn']:.3f} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"latency_ms": args.latency_ms, "turns": args.turns, "results": results}, indent=2))


if __name__ == "__main__":
    main()
