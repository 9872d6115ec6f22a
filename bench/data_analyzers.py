"""Speed of the data-artifact analyzers on the reference corpora beside the checkout (../shared/data).

    python bench/data_analyzers.py [--data ../shared/data] [--db runs/bench/data_analyzers.db] [--batch-sizes 8 16 32 64 128] [--markdown]

Imports the corpora once into a scratch database (kept for reruns; import time is not counted), then times each
workload once, in one process:

- `task_labels`: the whole analyzer (read, annotate, write annotations, summarize with bootstrap CIs) over every
  label file under task_labels/;
- free-text style features (`style_features`: tokens, sentences, MTLD, Flesch, VADER, NRC) per text, on the
  HC3-Plus texts (short) and the M4 samples (long); and VADER alone on the M4 samples, sentence by sentence as
  `style_features` scores them and on each whole text at once;
- the embedding model (all-MiniLM-L6-v2, the analyzers' batch size) on 2,000 HC3-Plus texts, on 2,000 short
  instructions (the 175 Self-Instruct seed instructions, repeated), and on the GPTeacher code instructions that the
  `instructions` analyzer embeds; the model is called directly, past the analyzers' per-text cache;
- the `preferences` analyzer on P2C (two judges, Hummingbird lexicons) and the `instructions` analyzer on the
  GPTeacher code set (embedding dispersion on).

Each analyzer's earlier annotations are deleted before it is timed (not counted), so every run times a first
analysis. `--batch-sizes` also times the model on the short instructions at each batch size. `--markdown` prints the
tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from analyzers import analyzers, embeddings
from analyzers.free_text import style_features
from analyzers.instructions import instruction_of
from analyzers.task_labels import TaskLabelsAnalyzer
from analyzers.text import sentences
from sim.analysis import analyze
from sim.importing import import_file
from sim.store import Store

from markdown_tables import measured, table


def label_files(data: Path) -> list[tuple[Path, dict[str, str]]]:
    """Every multi-annotator label file with the options its importer needs."""
    labels = data / "task_labels"
    files: list[tuple[Path, dict[str, str]]] = [(p, {}) for p in sorted((labels / "artifacts-llmgendata").glob("*.jsonl"))]
    files.append((labels / "artifacts-llmgendata" / "mismatch_gpt3.csv", {}))
    files.append((labels / "popquorn" / "offensiveness_raw_data.csv", {"label": "offensiveness"}))
    return files


def prepare(store: Store, data: Path) -> None:
    """Import what the benchmark reads, unless an earlier run already did."""
    if store.db["episodes"].count:
        return
    prefs = data / "preferences" / "artifacts-llmgendata"
    for path, options in label_files(data):
        import_file(store, "task_labels", path, dataset=f"labels:{path.stem}", options=options, progress=False)
    import_file(
        store, "preferences", prefs / "p2c_subjective_pref_preferences.csv", dataset="p2c", progress=False,
        options={"judge": "human", "pair_with": str(prefs / "p2c_generative_pref_preferences.csv"), "other_judge": "gpt-3"},
    )
    import_file(store, "instructions", data / "instructions" / "gpteacher" / "codegen-instruct.json", dataset="codegen", progress=False)


def json_lines(path: Path) -> list[dict]:
    """The records of a JSON Lines file (split on newlines only: texts may hold other line separators)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def timed(label: str, count: int, unit: str, action: Callable[[], Any]) -> dict[str, Any]:
    """Run `action` once and report its wall time and rate."""
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    print(f"{label}: {seconds:.2f} s", file=sys.stderr)
    return {"workload": label, "items": count, "unit": unit, "seconds": round(seconds, 2), "per_second": round(count / seconds, 1)}


def encode(texts: list[str], batch_size: int = embeddings.BATCH_SIZE) -> None:
    """The embedding model on `texts`, as `embeddings.embed` calls it, without its per-text cache."""
    embeddings.model().encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)


def fresh_analysis(store: Store, analyzer: Any, dataset: str | None = None) -> list[Any]:
    """`analyze` with one analyzer after its earlier annotations are removed, and with an empty embedding cache."""
    with store.db.atomic():
        store.db.execute("DELETE FROM annotations WHERE analyzer = ?", [analyzer.name])
    embeddings.clear_cache()
    return analyze(store, [analyzer], dataset=dataset, progress=False)


def mean_words(texts: list[str]) -> int:
    """Mean words per text, rounded down."""
    return sum(len(text.split()) for text in texts) // len(texts)


def main() -> None:
    """Run every measurement and print the tables (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--db", type=Path, default=Path("runs/bench/data_analyzers.db"))
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[], help="also time the model at these batch sizes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(args.db)
    prepare(store, args.data)
    results = []

    label_items = store.db.execute("SELECT count(*) FROM episodes WHERE kind = 'task_label'").fetchone()[0]
    summaries: list[Any] = []
    results.append(timed("task_labels analyzer, all label files", label_items, "items",
                         lambda: summaries.extend(fresh_analysis(store, TaskLabelsAnalyzer()))))
    (labels_summary,) = summaries
    label_turns = store.db.execute(
        "SELECT count(*) FROM turns WHERE episode_id IN (SELECT id FROM episodes WHERE kind = 'task_label')"
    ).fetchone()[0]
    label_rows = store.db.execute("SELECT count(*) FROM annotations WHERE analyzer = 'task_labels'").fetchone()[0]
    label_groups = len({metric.group for metric in labels_summary.metrics})

    free = args.data / "free_form"
    hc3 = [record["text"] for record in json_lines(free / "hc3-plus" / "val_hc3_si_en.jsonl")]
    m4 = [
        record[key]
        for path in sorted((free / "m4-llama2-samples").glob("*.jsonl"))
        for record in json_lines(path)
        for key in ("human_text", "machine_text")
    ]
    style_features("warm-up: load VADER, NRC and the hyphenation patterns.")
    results.append(timed(f"style features, HC3-Plus (mean {mean_words(hc3)} words)", len(hc3), "texts", lambda: [style_features(t) for t in hc3]))
    results.append(timed(f"style features, M4 (mean {mean_words(m4)} words)", len(m4), "texts", lambda: [style_features(t) for t in m4]))
    vader = SentimentIntensityAnalyzer()
    m4_sentences = [sentences(text) or [text] for text in m4]
    results.append(timed("VADER alone, M4, sentence by sentence (as in style features)", len(m4), "texts",
                         lambda: [[vader.polarity_scores(piece) for piece in pieces] for pieces in m4_sentences]))
    results.append(timed("VADER alone, M4, each whole text at once", len(m4), "texts", lambda: [vader.polarity_scores(t) for t in m4]))

    encode(["warm-up: load the model"])
    sample = hc3[:2000]
    results.append(timed(f"embedding model, HC3-Plus (mean {mean_words(sample)} words)", len(sample), "texts", lambda: encode(sample)))
    seeds = [record["instruction"] for record in json_lines(args.data / "instructions" / "self-instruct" / "seed_tasks.jsonl")]
    short = (seeds * 12)[:2000]
    results.append(timed(f"embedding model, Self-Instruct seed instructions (mean {mean_words(short)} words)", len(short), "texts",
                         lambda: encode(short)))
    code = list(dict.fromkeys(instruction_of(episode) for episode in store.episodes(dataset="codegen", text_only=True)))
    code = [text for text in code if text]
    results.append(timed(f"embedding model, GPTeacher code instructions (mean {mean_words(code)} words)", len(code), "texts",
                         lambda: encode(code)))

    lexicons = str(args.data / "preferences" / "artifacts-llmgendata" / "hummingbird_tokens_avg")
    pairs = store.db.execute("SELECT count(*) FROM episodes WHERE dataset = 'p2c'").fetchone()[0]
    instructions = store.db.execute("SELECT count(*) FROM episodes WHERE dataset = 'codegen'").fetchone()[0]
    results.append(timed("preferences analyzer, P2C", pairs, "pairs",
                         lambda: fresh_analysis(store, analyzers.create("preferences", lexicons=lexicons), dataset="p2c")))
    results.append(timed("instructions analyzer, GPTeacher code", instructions, "instructions",
                         lambda: fresh_analysis(store, analyzers.create("instructions", embeddings=True), dataset="codegen")))

    batches = [timed(f"batch size {size}", len(short), "texts", lambda size=size: encode(short, size)) for size in args.batch_sizes]
    store.close()

    if args.json:
        print(json.dumps(results + batches, indent=2), file=sys.stderr if args.markdown else sys.stdout)
    workloads = table(["workload", "items", "seconds", "items/s"],
                      [[r["workload"], f"{r['items']} {r['unit']}", f"{r['seconds']:.2f}", f"{r['per_second']:.1f}"] for r in results])
    if not args.markdown:
        print(workloads)
        return
    style = next(r for r in results if r["workload"].startswith("style features, HC3-Plus"))
    tables = [
        ("", workloads),
        ("What the `task_labels` analyzer read, wrote and summarized:",
         table(["items", "turns read", "annotation rows written", "groups summarized"], [[label_items, label_turns, label_rows, label_groups]])),
        ("Against the target:",
         table(["target", "measured", "met"],
               [["style features, 2,000 texts/s or more on short texts (HC3-Plus)", f"{style['per_second']:.1f} texts/s",
                 "yes" if style["per_second"] >= 2000 else "no"]])),
    ]
    if batches:
        tables.append((f"The embedding model at each batch size, on the {len(short)} short instructions "
                       f"(the analyzers use {embeddings.BATCH_SIZE}):",
                       table(["batch size", "seconds", "texts/s"],
                             [[size, f"{r['seconds']:.2f}", f"{r['per_second']:.1f}"] for size, r in zip(args.batch_sizes, batches)])))
    print(measured(*tables))


if __name__ == "__main__":
    main()
