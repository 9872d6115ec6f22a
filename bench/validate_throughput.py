"""Wall time of `sim validate` on the full PersuasionForGood corpus (1,017 dialogues, 20,932 turns), each
check in a fresh process, so that loading the embedding model and embedding every turn are counted.

    python bench/validate_throughput.py [--data ../shared/data] [--db runs/bench/validate.db] [--markdown]

The corpus is imported once into `--db` (kept for reruns; import time is not counted). Each check runs with
`--no-record`, so reruns measure the same work.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

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
    parser.add_argument("--markdown", action="store_true", help="Print the table as Markdown.")
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
    if args.markdown:
        print("| check | kinds measured | wall seconds |\n|---|---|---|")
        for name, kinds, seconds in rows:
            print(f"| {name} | {kinds} | {seconds:.1f} |")
    else:
        for name, kinds, seconds in rows:
            print(f"{name:40} {kinds:30} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
