"""Speed of the marker-based role-flip analyzer on a large store.

    python bench/role_flip_throughput.py [--conversations 25000] [--turns 40] [--db runs/bench/role_flip.db] [--runs 3] [--markdown]

Builds (once; kept for reruns) a store of CAMEL-style conversations with alternating user and assistant turns
of about 30 words, about 2% of them carrying the partner's marker, then times `analyze` with the `role_flip`
analyzer end to end: reading every episode and turn, classifying each turn, writing the annotations, and
summarizing with confidence intervals; in each of `--runs` runs once as the first analysis of the store and once as
a re-analysis that replaces the annotations, and then reads every episode and turn alone (what the analysis reads),
to show how much of its time is reading. `--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from pathlib import Path

from analyzers.role_flip import RoleFlipAnalyzer
from sim.analysis import analyze
from sim.records import Episode, Turn
from sim.store import Store

from markdown_tables import measured, table

WORDS = "the plan needs a clear step for each part of the task so we can check results and move on".split()


def build(store: Store, conversations: int, turns: int) -> None:
    """Store `conversations` synthetic role-play conversations of `turns` turns, in one transaction."""
    rng = random.Random(0)
    with store.db.atomic():
        for number in range(conversations):
            stored = []
            for idx in range(turns):
                role = "user" if idx % 2 == 0 else "assistant"
                marker = "Instruction:" if role == "user" else "Solution:"
                if rng.random() < 0.02:
                    marker = "Solution:" if role == "user" else "Instruction:"
                text = f"{marker} " + " ".join(rng.choice(WORDS) for _ in range(30))
                stored.append(Turn(idx, role.title(), role, text))
            roles = {"user": "User", "assistant": "Assistant"}
            store.add_imported_episode(Episode(f"bench-{number:06d}", None, "imported", "conversation", "a task", roles, "done", "max_turns", "bench", {}, stored))


def ensure_store(path: Path, conversations: int, turns: int) -> Store:
    """The benchmark store at `path`, built first unless it already holds `conversations` conversations."""
    path.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(path)
    if store.db["episodes"].count == conversations and store.db["turns"].count == conversations * turns:
        return store
    store.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = Store.open(path)
    started = time.perf_counter()
    build(store, conversations, turns)
    print(f"built {conversations} x {turns} turns in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return store


def timed_analysis(store: Store, profile: bool) -> tuple[float, int, int]:
    """Seconds of one `analyze` with `role_flip`, the turns it checked and the turns it flagged."""
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    (summary,) = analyze(store, [RoleFlipAnalyzer()], progress=False)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(15)
    turns = int(next(m.total for m in summary.metrics if m.name == "n_checked_turns"))
    flipped = int(next(m.total for m in summary.metrics if m.name == "n_role_flipped_turns"))
    return seconds, turns, flipped


def timed_read(store: Store) -> float:
    """Seconds to read every episode and its turns as the analysis does (text only), and nothing else."""
    started = time.perf_counter()
    for _ in store.episodes(text_only=True):
        pass
    return time.perf_counter() - started


def main() -> None:
    """Build the store if needed, then time the analyzer and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=25_000)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--db", type=Path, default=Path("runs/bench/role_flip.db"))
    parser.add_argument("--runs", type=int, default=1, help="measure this many times")
    parser.add_argument("--profile", action="store_true", help="print the 15 most expensive functions of each analysis (to stderr)")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    store = ensure_store(args.db, args.conversations, args.turns)
    runs, checked, flagged, rows_written = [], 0, 0, 0
    for number in range(1, args.runs + 1):
        # A first analysis (the store holds no role_flip annotations) and a re-analysis that replaces them.
        with store.db.atomic():
            store.db.execute("DELETE FROM annotations WHERE analyzer = 'role_flip'")
        first, checked, flagged = timed_analysis(store, args.profile)
        rows_written = store.db.execute("SELECT count(*) FROM annotations WHERE analyzer = 'role_flip'").fetchone()[0]
        again, _, _ = timed_analysis(store, args.profile)
        read = timed_read(store)
        runs.append((number, first, again, read))
        if not args.markdown:
            print(f"run {number}: {checked} turns ({flagged} flipped); first analysis {first:.2f} s, re-analysis {again:.2f} s,"
                  f" reading alone {read:.2f} s; {rows_written} annotation rows")
    store.close()
    if not args.markdown:
        return
    analyses = [seconds for _, first, again, _ in runs for seconds in (first, again)]
    timings = table(
        ["run", "first analysis, s", "re-analysis, s", "reading every turn alone, s"],
        [[number, f"{first:.2f}", f"{again:.2f}", f"{read:.2f}"] for number, first, again, read in runs],
    )
    workload = table(
        ["conversations", "turns checked", "turns flagged", "annotation rows an analysis writes", "rows at two per turn (the former layout)",
         "turns/s (mean of all analyses)", "slowest analysis, s (target < 5)", "target met"],
        [[args.conversations, checked, flagged, rows_written, 2 * checked, f"{checked * len(analyses) / sum(analyses):,.0f}",
          f"{max(analyses):.2f}", "yes" if max(analyses) < 5 else "no"]],
    )
    print(measured(("", timings), ("The workload, and the slowest analysis against the target:", workload)))


if __name__ == "__main__":
    main()
