"""What the full-text index of turns (`turns_fts`, migration m005) costs imports, and what filling it costs.

    python bench/full_text_index.py [--data ../shared/data] [--runs 3] [--configs INDEX/STATEMENTS ...]
                                    [--large-store runs/bench/role_flip.db] [--large-size 25000 40] [--markdown]

Three measurements, each of a configuration chosen by option rather than by editing the code:

- `sim import` of three corpora (SBIC intermodel labels, PersuasionForGood, HC3-Plus val) into a new store, once per
  configuration and run, the configurations alternating. A configuration is INDEX/STATEMENTS: INDEX `none` (the
  index and its triggers dropped), `external` (as shipped: FTS5 with `content="turns"`, no second copy of the text)
  or `own-copy` (a self-contained `fts5(content)` table kept by the same triggers); STATEMENTS `episode` (as
  shipped: an episode's turns in one multi-row INSERT) or `turn` (one INSERT per turn, through `executemany`). The
  store is created and migrated first (not timed); the import runs in a fresh process (Python start included) whose
  wall and CPU seconds are counted.
- The same turns inserted into an in-memory table with and without the index, at `--rows-per-statement` rows per
  INSERT: FTS5 writes its pending data out as a new segment at the end of every statement that touches it.
- Filling the index of an existing store, as the migration does when an older database is first opened: on each
  corpus imported above and on the role-flip benchmark's store (`--large-store` of `--large-size` conversations and
  turns each, built as bench/role_flip_throughput.py builds it if missing): seconds to fill, the index's size beside
  the `turns` table's, and the time to the first 20 matches of a search.

`--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlite_utils import Database

from sim.migrations import m005_turns_full_text_search
from sim.store import Store

from markdown_tables import measured, seconds_list, table
from role_flip_throughput import ensure_store

CHILD = "--import-child"
CORPORA = {  # label: (importer, file under --data, search query for the fill table)
    "SBIC intermodel (`task_labels`)": ("task_labels", "task_labels/artifacts-llmgendata/SBIC_intermodel.jsonl", "women"),
    "PersuasionForGood (`persuasionforgood`)": ("persuasionforgood", "conversations/persuasionforgood/full_dialog.csv", "donate"),
    "HC3-Plus val (`free_text`)": ("free_text", "free_form/hc3-plus/val_hc3_si_en.jsonl", "government"),
}
INDEXES = {"none": "none", "external": "external content (as shipped)", "own-copy": "own copy of the text"}
STATEMENTS = {"turn": "one per turn", "episode": "one per episode (as shipped)"}
DEFAULT_CONFIGS = ["none/turn", "external/turn", "none/episode", "external/episode", "own-copy/turn"]
OWN_COPY = [
    "CREATE VIRTUAL TABLE turns_fts USING fts5(content)",
    "CREATE TRIGGER turns_ai AFTER INSERT ON turns BEGIN INSERT INTO turns_fts (rowid, content) VALUES (new.rowid, new.content); END",
    "CREATE TRIGGER turns_ad AFTER DELETE ON turns BEGIN DELETE FROM turns_fts WHERE rowid = old.rowid; END",
    "CREATE TRIGGER turns_au AFTER UPDATE ON turns BEGIN DELETE FROM turns_fts WHERE rowid = old.rowid;"
    " INSERT INTO turns_fts (rowid, content) VALUES (new.rowid, new.content); END",
]


def import_child(statements: str, sim_args: list[str]) -> None:
    """Run `sim` with `sim_args` in this process, importing a statement per turn if `statements` is `turn`."""
    if statements == "turn":
        from sim.records import Episode, utc_now

        def add_imported_episode(self: Store, episode: Episode) -> None:
            """The import path before multi-row INSERTs: one INSERT per turn."""
            self.start_episode(episode)
            now = utc_now()
            self.db.conn.executemany(
                "INSERT INTO turns (episode_id, idx, speaker, role, content, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(episode.id, t.idx, t.speaker, t.role, t.content, now) for t in episode.turns],
            )

        Store.add_imported_episode = add_imported_episode  # type: ignore[method-assign]
    from sim.cli import cli

    cli(args=sim_args, prog_name="sim")


def new_store(path: Path, index: str) -> None:
    """A new, migrated store at `path` whose full-text index is `index` (none, external or own-copy)."""
    store = Store.open(path)
    if index != "external":
        store.db["turns"].disable_fts()
    if index == "own-copy":
        with store.db.atomic():
            for statement in OWN_COPY:
                store.db.execute(statement)
    store.close()


def timed_import(config: str, importer: str, path: Path, db: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one import in a fresh process, into a new store configured as `config`."""
    index, statements = config.split("/")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    new_store(db, index)
    command = [sys.executable, str(Path(__file__).resolve()), CHILD, statements, "import", importer, str(path), "--db", str(db)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def import_table(data: Path, configs: list[str], runs: int, tmp: Path) -> tuple[str, dict[str, Path]]:
    """The import measurements as a table, and a store of each corpus imported as shipped (for the fill table)."""
    rows, kept = [], {}
    for label, (importer, relative, _) in CORPORA.items():
        walls: dict[str, list[float]] = {config: [] for config in configs}
        cpus: dict[str, list[float]] = {config: [] for config in configs}
        for number in range(runs):
            for config in configs:
                db = tmp / f"{importer}-{config.replace('/', '-')}.db"
                wall, cpu = timed_import(config, importer, data / relative, db)
                walls[config].append(wall)
                cpus[config].append(cpu)
                print(f"{label}, {config}, run {number + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
        shipped = tmp / f"{importer}-external-episode.db"
        if "external/episode" not in configs:
            timed_import("external/episode", importer, data / relative, shipped)
        kept[label] = shipped
        with sqlite3.connect(shipped) as conn:
            episodes = conn.execute("SELECT count(*) FROM episodes").fetchone()[0]
            turns = conn.execute("SELECT count(*) FROM turns").fetchone()[0]
        for config in configs:
            index, statements = config.split("/")
            baseline = f"none/{statements}"
            mean_cpu = statistics.mean(cpus[config])
            added = ""
            if index != "none" and baseline in cpus:
                added = f"{1e6 * (mean_cpu - statistics.mean(cpus[baseline])) / turns:+.0f}"
            rows.append([label, f"{episodes:,}", f"{turns:,}", INDEXES[index], STATEMENTS[statements],
                         seconds_list(walls[config]), f"{mean_cpu:.2f}", added])
    header = ["corpus", "episodes", "turns", "index", "INSERT statements", "wall s, each run", "CPU s, mean",
              "CPU µs per turn added by the index"]
    return table(header, rows), kept


def statement_table(texts: list[str], sizes: list[int]) -> str:
    """Seconds to insert `texts` into an in-memory table with and without the index, at each number of rows per INSERT."""
    rows = []
    for size in sizes:
        cells: list[object] = [size]
        for indexed in (False, True):
            db = Database(memory=True)
            db["turns"].create({"id": int, "content": str}, pk="id")
            if indexed:
                db["turns"].enable_fts(["content"], create_triggers=True)
            conn = db.conn
            started = time.perf_counter()
            with conn:
                if size == 1:
                    conn.executemany("INSERT INTO turns (content) VALUES (?)", [(text,) for text in texts])
                else:
                    for start in range(0, len(texts), size):
                        chunk = texts[start : start + size]
                        conn.execute(f"INSERT INTO turns (content) VALUES {', '.join(['(?)'] * len(chunk))}", chunk)
            cells.append(f"{time.perf_counter() - started:.2f}")
            conn.close()
        rows.append(cells)
    return table(["rows per INSERT", "without the index, s", "with the index, s"], rows)


def fill_row(label: str, path: Path, query: str) -> list[object]:
    """Drop the store's index, fill it again as migration m005 does, then measure its size and a search."""
    db = Database(sqlite3.connect(str(path)))
    db["turns"].disable_fts()
    db.conn.execute("BEGIN")
    started = time.perf_counter()
    m005_turns_full_text_search(db)
    fill = time.perf_counter() - started
    db.conn.execute("COMMIT")
    sizes = dict(db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    index_mb = sum(size for name, size in sizes.items() if name.startswith("turns_fts")) / 1e6
    searches = []
    for _ in range(20):
        started = time.perf_counter()
        found = db.execute("SELECT rowid FROM turns_fts WHERE turns_fts MATCH ? LIMIT 20", [query]).fetchall()
        searches.append(time.perf_counter() - started)
    turns = db["turns"].count
    db.conn.close()
    return [label, f"{turns:,}", f"{fill:.2f}", f"{index_mb:.1f}", f"{sizes['turns'] / 1e6:.1f}",
            f"`{query}`: {len(found)}", f"{1000 * statistics.median(searches):.2f}"]


def main() -> None:
    """Time the imports, the in-memory inserts and the fills, and print the tables."""
    if len(sys.argv) > 2 and sys.argv[1] == CHILD:
        import_child(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--runs", type=int, default=3, help="imports of each corpus per configuration")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, metavar="INDEX/STATEMENTS",
                        help=f"INDEX one of {', '.join(INDEXES)}; STATEMENTS one of {', '.join(STATEMENTS)}")
    parser.add_argument("--rows-per-statement", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--large-store", type=Path, default=Path("runs/bench/role_flip.db"),
                        help="the role-flip benchmark's store; built first if missing")
    parser.add_argument("--large-size", type=int, nargs=2, default=[25_000, 40], metavar=("CONVERSATIONS", "TURNS"))
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    for config in args.configs:
        index, _, statements = config.partition("/")
        if index not in INDEXES or statements not in STATEMENTS:
            parser.error(f"--configs: {config!r} is not INDEX/STATEMENTS")

    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        imports, kept = import_table(args.data, args.configs, args.runs, tmp)
        first = next(iter(kept))
        with sqlite3.connect(kept[first]) as conn:
            texts = [row[0] for row in conn.execute("SELECT content FROM turns ORDER BY rowid")]
        statements = statement_table(texts, args.rows_per_statement)
        fills = [fill_row(f"{label} import", path, CORPORA[label][2]) for label, path in kept.items()]
    conversations, turns = args.large_size
    ensure_store(args.large_store, conversations, turns).close()
    fills.append(fill_row(f"role-flip benchmark store ({conversations:,} conversations of {turns} turns)", args.large_store, "clear"))
    fill_header = ["store", "turns", "fill, s", "index, MB", "`turns` table, MB", "search: matches (first 20)", "first 20 matches, ms (median of 20)"]

    tables = [
        (f"`sim import` into a new store, {args.runs} runs each, the configurations alternating; wall seconds of the"
         " whole process (Python start included) and its CPU seconds:", imports),
        (f"The {len(texts):,} turns of the {first} import inserted into an in-memory table (one transaction):", statements),
        ("Filling the index of an existing store (migration m005), its size, and a search:", table(fill_header, fills)),
    ]
    if args.markdown:
        print(measured(*tables))
    else:
        for caption, body in tables:
            print(f"{caption}\n\n{body}\n")


if __name__ == "__main__":
    main()
