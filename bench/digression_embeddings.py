"""Speed of the `digression` analyzer in embedding mode against the embedding model alone on the same texts.

    python bench/digression_embeddings.py [--data ../shared/data] [--db runs/bench/digression.db] [--markdown]

Imports the 200 GPT-4 Solo-Performance-Prompting transcripts (with their puzzles) once into `--db` (kept for reruns;
import time is not counted). Then, in one process with the model loaded: the model embeds every text the analyzer
embeds (each conversation's task statement and turns), and the analyzer runs end to end (read, embed, annotate,
write, summarize), its earlier annotations removed first. The per-text embedding cache is emptied before each, so
both embed every text. `--markdown` prints the table under the command line that measured it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from analyzers import analyzers
from analyzers.embeddings import clear_cache, embed, model
from sim.analysis import analyze
from sim.importing import import_file
from sim.store import Store

from markdown_tables import measured, table

SPP = "conversations/artifacts-llmgendata-spp"
TRANSCRIPTS = f"{SPP}/logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl"
PUZZLES = f"{SPP}/logic_grid_puzzle_200.jsonl"
DATASET = "spp_gpt4"


def main() -> None:
    """Import the transcripts if needed, time the model and the analyzer, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--db", type=Path, default=Path("runs/bench/digression.db"))
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown table, under this command line")
    args = parser.parse_args()
    args.db.parent.mkdir(parents=True, exist_ok=True)
    store = Store.open(args.db)
    if not store.db.execute("SELECT count(*) FROM episodes WHERE dataset = ?", [DATASET]).fetchone()[0]:
        import_file(store, "spp", args.data / TRANSCRIPTS, dataset=DATASET, options={"puzzles": str(args.data / PUZZLES)}, progress=False)
    analyzer = analyzers.create("digression", mode="embedding")
    episodes = [e for e in store.episodes(dataset=DATASET, text_only=True) if analyzer.applies_to(e)]
    texts = list(dict.fromkeys(text for e in episodes for text in [e.task or ""] + [turn.content for turn in e.turns]))
    n_turns = sum(len(e.turns) for e in episodes)

    embed(["warm-up: load the model"])
    clear_cache()
    started = time.perf_counter()
    embed(texts)
    model_s = time.perf_counter() - started
    with store.db.atomic():
        store.db.execute("DELETE FROM annotations WHERE analyzer = ?", [analyzer.name])
    clear_cache()
    started = time.perf_counter()
    analyze(store, [analyzer], dataset=DATASET, progress=False)
    analyzer_s = time.perf_counter() - started
    store.close()

    rows = [
        ["all-MiniLM-L6-v2 on the texts alone", f"{model_s:.2f}", f"{len(texts) / model_s:.1f}"],
        ["`digression` analyzer end to end (read, embed, annotate, write, summarize)", f"{analyzer_s:.2f}", f"{len(texts) / analyzer_s:.1f}"],
        ["the analyzer's time beyond the model's", f"{analyzer_s - model_s:.2f}", ""],
    ]
    caption = (f"{len(episodes)} conversations, {n_turns} turns; {len(texts)} distinct texts (task statements and turns), "
               f"each cut by the model to its first {model().max_seq_length} tokens:")
    result = table(["workload", "seconds", "texts/s"], rows)
    if args.markdown:
        print(measured((caption, result)))
    else:
        print(caption, result, sep="\n", file=sys.stdout)


if __name__ == "__main__":
    main()
