"""An adaptive request limit (`backend.max_concurrency=auto`) against a server with a few generation slots that
answers 429 with Retry-After beyond them, beside fixed limits.

    python bench/adaptive_concurrency.py --latency-ms 100 --slots 8 --retry-after 1 --limits auto 8 64

Each limit plays `--episodes` role-play episodes of `--turns` turns with `--concurrency` episodes in flight, over
the `openai` backend, against the loopback responder (bench/loopback_responder.py) in another process with
`--slots` slots, started afresh for each limit. It reports the episodes lost, turns per second, how many requests
the server turned away (429) and their share of all it was sent, and where the limit went; then, for `auto`, the
targets: no failed episode, at least 75% of the throughput of the limit set by hand to the server's slots, at
most 20% of requests answered 429. `--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

from hydra import compose, initialize_config_module

import sim.compose  # noqa: F401  (registers analyzers, scenarios, backends and the top-level schema)
from sim.runner import execute

from markdown_tables import measured, table
from runner_throughput import start_responder

# The targets of `auto` against the same run with the limit set by hand to the server's slots.
MIN_SHARE_OF_HAND_SET = 0.75
MAX_REFUSED_SHARE = 0.20


def measure(base_url: str, db: Path, limit: str, args: argparse.Namespace) -> dict:
    """Play one run at request limit `limit`; its throughput, losses, the server's answers and the limit's course."""
    overrides = [
        "backend=openai", f"backend.base_url={base_url}", "backend.model=bench", "backend.api_key_env=null",
        f"backend.max_concurrency={limit}", f"runner.concurrency={args.concurrency}",
        f"scenario.n_episodes={args.episodes}", f"scenario.max_turns={args.turns}",
        "runner.progress=false", "runner.analyze=[]", f"store.path={db}",
    ]
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    report = execute(cfg)
    with urllib.request.urlopen(f"{base_url}/stats", timeout=5) as answer:
        served = json.load(answer)
    reached = report.request_limit
    assert reached is not None
    return {
        "limit": limit,
        "failed": sum(outcome.status == "failed" for outcome in report.outcomes),
        "turns": report.totals["n_turns"],
        "wall_s": report.totals["wall_s"],
        "answered": served["answered"],
        "refused": served["refused"],
        "limit_end": reached.current,
        "limit_low": reached.low,
        "limit_high": reached.high,
    }


def results_table(results: list[dict], hand_set: dict | None) -> str:
    """One row per limit."""
    header = ["backend.max_concurrency", "episodes failed", "turns", "wall s", "turns/s", "% of hand-set limit's turns/s",
              "requests answered", "429s", "429 share", "limit at end (lowest cut, highest)"]
    rows = []
    for row in results:
        relative = f"{100 * row['turns_per_s'] / hand_set['turns_per_s']:.0f}" if hand_set else "-"
        course = f"{row['limit_end']} ({row['limit_low'] if row['limit_low'] is not None else 'never cut'}, {row['limit_high']})"
        rows.append([
            row["limit"], row["failed"], row["turns"], f"{row['wall_s']:.2f}", f"{row['turns_per_s']:.1f}", relative,
            row["answered"], row["refused"], f"{100 * row['refused_share']:.1f}%", course,
        ])
    return table(header, rows)


def targets_table(auto: dict, hand_set: dict, slots: int) -> str:
    """`auto` against the targets."""
    share = auto["turns_per_s"] / hand_set["turns_per_s"]
    checks = [
        ("no failed episode", str(auto["failed"]), auto["failed"] == 0),
        (f"≥ {MIN_SHARE_OF_HAND_SET:.0%} of the turns/s at limit {slots}", f"{share:.0%}", share >= MIN_SHARE_OF_HAND_SET),
        (f"≤ {MAX_REFUSED_SHARE:.0%} of requests answered 429", f"{auto['refused_share']:.1%}", auto["refused_share"] <= MAX_REFUSED_SHARE),
    ]
    return table(["target of auto", "measured", "met"], [[name, value, "yes" if met else "no"] for name, value, met in checks])


def main() -> None:
    """Measure each limit against a fresh capped responder and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds the server's 429s ask to wait")
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--concurrency", type=int, default=64, help="runner.concurrency")
    parser.add_argument("--limits", nargs="+", default=["auto", "8", "64"], help="backend.max_concurrency values")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()

    results = []
    # In Markdown mode stdout carries only the tables; anything the run prints goes to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.markdown else contextlib.nullcontext()
    with quiet, tempfile.TemporaryDirectory() as tmp:
        for limit in args.limits:
            process, base_url = start_responder(args.latency_ms, "--slots", str(args.slots), "--retry-after", str(args.retry_after))
            try:
                results.append(measure(base_url, Path(tmp) / f"limit-{limit}.db", limit, args))
            finally:
                process.terminate()
                process.wait()
    for row in results:
        row.update(turns_per_s=row["turns"] / row["wall_s"], refused_share=row["refused"] / (row["answered"] + row["refused"]))
    hand_set = next((row for row in results if row["limit"] == str(args.slots)), None)
    auto = next((row for row in results if row["limit"] == "auto"), None)
    tables = [("", results_table(results, hand_set))]
    if auto and hand_set:
        tables.append(("Against the targets:", targets_table(auto, hand_set, args.slots)))
    if args.markdown:
        print(measured(*tables))
    else:
        print(f"latency {args.latency_ms:g} ms, {args.slots} slots (429 with Retry-After: {args.retry_after:g} beyond), "
              f"{args.episodes} episodes of {args.turns} turns, runner.concurrency={args.concurrency}, {os.cpu_count()} CPUs")
        print("\n\n".join(body for _, body in tables))


if __name__ == "__main__":
    main()
