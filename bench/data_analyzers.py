"""Speed of the data-artifact analyzers on the reference corpora beside the checkout (../shared/data).

    python bench/data_analyzers.py [--data ../shared/data] [--db runs/bench/data_analyzers.db]

Imports the corpora once into a scratch database (kept for reruns; import time is not counted), then times:

- `task_labels`: the whole analyzer (annotate, write annotations, summarize with bootstrap CIs) over every
  label file under task_labels/;
- free-text style features (`style_features`: tokens, sentences, MTLD, Flesch, VADER, NRC) per text, on the
  HC3-Plus texts (short) and the M4 samples (long), in one process;
- sentence embeddings (all-MiniLM-L6-v2, batches of 32) on 2,000 HC3-Plus texts and on 2,000 short
  instructions (the 175 Self-Instruct seed instructions, repeated);
- the `preferences` analyzer on P2C (5,000 pairs, two judges, Hummingbird lexicons) and the `instructions`
  analyzer on the GPTeacher code set (4,535 instructions, embedding dispersion on).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from analyzers.embeddings import embed
from analyzers.free_text import style_features
from analyzers.instructions import InstructionsAnalyzer
from analyzers.preferences import PreferencesAnalyzer
from analyzers.task_labels import TaskLabelsAnalyzer
from sim.analysis import analyze
from sim.importing import import_file
from sim.store import Store


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


def timed(label: str, count: int, unit: str, action) -> dict[str, object]:
    """Run `action` once and report its wall time and rate."""
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return {"workload": label, "items": count, "unit": unit, "seconds": round(seconds, 2), "per_second": round(count / seconds, 1)}


def main() -> None:
    """Run every measurement and print a Markdown table (and JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--db", type=Path, default=Path("runs/bench/data_analyzers.db"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(args.db)
    prepare(store, args.data)
    results = []

    n_items = store.db.execute("SELECT count(*) FROM episodes WHERE kind = 'task_label'").fetchone()[0]
    results.append(timed("task_labels analyzer, all label files", n_items, "items", lambda: analyze(store, [TaskLabelsAnalyzer()])))

    free = args.data / "free_form"
    hc3 = [record["text"] for record in json_lines(free / "hc3-plus" / "val_hc3_si_en.jsonl")]
    m4 = [
        record[key]
        for path in sorted((free / "m4-llama2-samples").glob("*.jsonl"))
        for record in json_lines(path)
        for key in ("human_text", "machine_text")
    ]
    style_features("warm-up: load VADER, NRC and the hyphenation patterns.")
    hc3_words = sum(len(text.split()) for text in hc3) // len(hc3)
    m4_words = sum(len(text.split()) for text in m4) // len(m4)
    results.append(timed(f"style features, HC3-Plus (mean {hc3_words} words)", len(hc3), "texts", lambda: [style_features(t) for t in hc3]))
    results.append(timed(f"style features, M4 (mean {m4_words} words)", len(m4), "texts", lambda: [style_features(t) for t in m4]))

    embed(["warm-up: load the model"])
    sample = hc3[:2000]
    sample_words = sum(len(text.split()) for text in sample) // len(sample)
    results.append(timed(f"embeddings, HC3-Plus (mean {sample_words} words)", len(sample), "texts", lambda: embed(sample)))
    seeds = [record["instruction"] for record in json_lines(args.data / "instructions" / "self-instruct" / "seed_tasks.jsonl")]
    seed_words = sum(len(text.split()) for text in seeds) // len(seeds)
    short = (seeds * 12)[:2000]
    results.append(timed(f"embeddings, Self-Instruct seed instructions (mean {seed_words} words)", len(short), "texts", lambda: embed(short)))

    lexicons = str(args.data / "preferences" / "artifacts-llmgendata" / "hummingbird_tokens_avg")
    results.append(timed("preferences analyzer, P2C", 5000, "pairs", lambda: analyze(store, [PreferencesAnalyzer(lexicons=lexicons)], dataset="p2c")))
    results.append(timed("instructions analyzer, GPTeacher code", 4535, "instructions", lambda: analyze(store, [InstructionsAnalyzer(embeddings=True)], dataset="codegen")))
    store.close()

    if args.json:
        print(json.dumps(results, indent=2))
    print("| workload | items | seconds | items/s |\n|---|---|---|---|")
    for row in results:
        print(f"| {row['workload']} | {row['items']} {row['unit']} | {row['seconds']} | {row['per_second']} |")


if __name__ == "__main__":
    main()
