"""Time of `sim browse`'s pages on a large store, with its facet time limit and with Datasette's default.

    python bench/browse_pages.py [--db runs/bench/data_analyzers.db] [--query women] [--repeat 3] [--markdown]

Serves the store as `sim browse` does (its metadata: facets on runs, episodes and annotations, full-text search on
turns; read-only) inside this process, and times each page's HTML through Datasette's internal client: the median
of `--repeat` loads after one warm-up load of the database page. Each page is measured twice: with `sim browse`'s
settings (facet time limit 2 s) and with Datasette's default limit (200 ms); the facets column counts those that
came back within the limit (read from the page's JSON). The default store is the one bench/data_analyzers.py
fills (run it first). `--markdown` prints the table under the command line that measured it.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from datasette.app import Datasette

from sim.browse import ANNOTATION_FACETS, EPISODE_FACETS, SETTINGS, metadata
from sim.store import Store

from markdown_tables import measured, table

DEFAULT_LIMIT_MS = 200  # Datasette's own facet_time_limit_ms


def pages(query: str) -> dict[str, tuple[str, int]]:
    """Label: (path under the database, facets configured)."""
    return {
        f"episodes, {len(EPISODE_FACETS)} facets": ("/episodes", len(EPISODE_FACETS)),
        f"annotations, {len(ANNOTATION_FACETS)} facets": ("/annotations", len(ANNOTATION_FACETS)),
        f"turns, full-text search `{query}`": (f"/turns?_search={query}", 0),
        "turns, unfiltered (counts every row)": ("/turns", 0),
    }


async def measure(path: Path, settings: dict[str, Any], query: str, repeat: int) -> dict[str, tuple[float, int]]:
    """Median seconds of each page's HTML and the facets its JSON returned, served with `settings`."""
    name = path.stem
    datasette = Datasette([str(path)], metadata=metadata(name, path), settings=settings)
    await datasette.invoke_startup()
    await datasette.client.get(f"/{name}")
    results = {}
    for label, (page, _) in pages(query).items():
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            response = await datasette.client.get(f"/{name}{page}")
            seconds.append(time.perf_counter() - started)
            response.raise_for_status()
        table_path, _, params = page.partition("?")
        document = (await datasette.client.get(f"/{name}{table_path}.json" + (f"?{params}" if params else ""))).json()
        results[label] = (statistics.median(seconds), len(document.get("facet_results", {})))
    return results


def main() -> None:
    """Time every page under both facet limits and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, default=Path("runs/bench/data_analyzers.db"))
    parser.add_argument("--query", default="women", help="the full-text search of turns")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown table, under this command line")
    args = parser.parse_args()
    if not args.db.exists():
        parser.error(f"no store at {args.db}: run bench/data_analyzers.py first, or pass --db")
    Store.open(args.db, create=False, option="--db").close()  # brings the schema current, as `sim browse` does
    with sqlite3.connect(f"file:{args.db}?mode=ro", uri=True) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in ("episodes", "turns", "annotations")]
    limits = {
        f"sim browse ({SETTINGS['facet_time_limit_ms']} ms)": SETTINGS,
        f"Datasette's default ({DEFAULT_LIMIT_MS} ms)": {**SETTINGS, "facet_time_limit_ms": DEFAULT_LIMIT_MS},
    }
    measured_limits = {label: asyncio.run(measure(args.db, settings, args.query, args.repeat)) for label, settings in limits.items()}
    header = ["page"]
    for label in limits:
        header += [f"s, facet limit of {label}", "facets shown"]
    rows = []
    for page, (_, configured) in pages(args.query).items():
        cells: list[object] = [page]
        for label in limits:
            seconds, facets = measured_limits[label][page]
            cells += [f"{seconds:.2f}", f"{facets} of {configured}" if configured else ""]
        rows.append(cells)
    caption = (f"{args.db}: {counts[0]:,} episodes, {counts[1]:,} turns, {counts[2]:,} annotations; "
               + (f"median of {args.repeat} loads of each page's HTML:" if args.repeat > 1 else "one load of each page's HTML:"))
    result = table(header, rows)
    print(measured((caption, result)) if args.markdown else f"{caption}\n\n{result}")


if __name__ == "__main__":
    main()
