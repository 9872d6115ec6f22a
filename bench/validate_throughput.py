"""Wall time of `sim validate` on the full PersuasionForGood corpus (1,017 dialogues, 20,932 turns), each
check in a fresh process, so that loading the embedding model and embedding every turn are counted.

    python bench/validate_throughput.py [--data ../shared/data] [--db runs/bench/validate.db] [--markdown]

The corpus is imported once into `--db` (kept for reruns; import time is not counted). Each check runs with
`--no-record`, so reruns measure the same work. Target: each check under 3 minutes on 2 cores, embeddings included.
`--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from markdown_tables import measured, table

TARGET_S = 180

CHECKS = {
    "role_drift, swap": ["--analyzer", "role_drift", "--kinds", "swap"],
    "digression, digression": ["--analyzer", "digression", "--kinds", "digression"],
    "conversation_stats, loop": ["--analyzer", "conversation_stats", "--kinds", "loop"],
    "all three (swap, digression, loop)": [],
}


def main() -> None:
    """Import the corpus if needed, time each check, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--db", type=Path, default=Path("runs/bench/validate.db"))
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    sim = [sys.executable, "-m", "sim"]
    if not args.db.exists():
        corpus = args.data / "conversations" / "persuasionforgood" / "full_dialog.csv"
        subprocess.run([*sim, "import", "persuasionforgood", str(corpus), "--db", str(args.db), "--dataset", "persuasionforgood"],
                       check=True, stdout=subprocess.DEVNULL)
    rows = []
    for name, check in CHECKS.items():
        started = time.perf_counter()
        done = subprocess.run([*sim, "validate", "--db", str(args.db), "--dataset", "persuasionforgood", "--no-record", "--json", *check],
                              check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        kinds = [r["kind"] for card in json.loads(done.stdout)["cards"] for r in card["results"]]
        rows.append((name, ", ".join(kinds), seconds))
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    if args.markdown:
        timings = table(["check", "kinds measured", "wall seconds"], [[name, kinds, f"{seconds:.1f}"] for name, kinds, seconds in rows])
        slowest = max(seconds for _, _, seconds in rows)
        target = table([f"slowest check, s (target < {TARGET_S})", "target met"], [[f"{slowest:.1f}", "yes" if slowest < TARGET_S else "no"]])
        with sqlite3.connect(args.db) as conn:
            dialogues, turns = conn.execute(
                "SELECT count(DISTINCT e.id), count(*) FROM turns t JOIN episodes e ON e.id = t.episode_id WHERE e.dataset = 'persuasionforgood'"
            ).fetchone()
        caption = f"PersuasionForGood as imported: {dialogues:,} dialogues, {turns:,} turns; one fresh `sim validate` process per check:"
        print(measured((caption, timings), ("Against the target:", target)))
    else:
        for name, kinds, seconds in rows:
            print(f"{name:40} {kinds:30} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
