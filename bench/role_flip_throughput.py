"""Speed of the marker-based role-flip analyzer on a large store.

    python bench/role_flip_throughput.py [--conversations 25000] [--turns 40] [--db runs/bench/role_flip.db]

Builds (once; kept for reruns) a store of CAMEL-style conversations with alternating user and assistant turns
of about 30 words, about 2% of them carrying the partner's marker, then times `analyze` with the `role_flip`
analyzer end to end: reading every episode and turn, classifying each turn, writing the annotations, and
summarizing with confidence intervals; once as the first analysis of the store and once as a re-analysis
that replaces the annotations.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
from pathlib import Path

from analyzers.role_flip import RoleFlipAnalyzer
from sim.analysis import analyze
from sim.records import Episode, Turn
from sim.store import Store

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


def main() -> None:
    """Build the store if needed, then time the analyzer and print where the time goes."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=25_000)
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--db", type=Path, default=Path("runs/bench/role_flip.db"))
    parser.add_argument("--profile", action="store_true", help="print the 15 most expensive functions")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(args.db)
    if store.db["episodes"].count != args.conversations:
        store.close()
        args.db.unlink()
        store = Store.open(args.db)
        started = time.perf_counter()
        build(store, args.conversations, args.turns)
        print(f"built {args.conversations} x {args.turns} turns in {time.perf_counter() - started:.1f} s")
    # A first analysis (the store holds no role_flip annotations) and a re-analysis that replaces them.
    with store.db.atomic():
        store.db.execute("DELETE FROM annotations WHERE analyzer = 'role_flip'")
    for label in ("first analysis", "re-analysis"):
        profile = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profile:
            profile.enable()
        (summary,) = analyze(store, [RoleFlipAnalyzer()])
        if profile:
            profile.disable()
        seconds = time.perf_counter() - started
        turns = int(next(m.total for m in summary.metrics if m.name == "n_checked_turns"))
        flipped = int(next(m.total for m in summary.metrics if m.name == "n_role_flipped_turns"))
        print(f"role_flip, {label}: {summary.n_episodes} conversations, {turns} turns ({flipped} flipped) in {seconds:.2f} s"
              f" ({turns / seconds:,.0f} turns/s)")
        if profile:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(15)
    store.close()


if __name__ == "__main__":
    main()
