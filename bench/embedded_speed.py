"""Model time of the quick start on the embedded backend with and without its state cache, and the backend's
speed against llama-cpp-python called directly.

    python bench/embedded_speed.py [--episodes 3] [--turns 6] [--repeat 1] [--prompts 8] [--max-tokens 128] [--markdown]

(a) The quick start's run (`sim run`: role-play, 3 episodes of 6 turns, seed 0, SmolLM2 on all cores) in this
process, with `backend.state_cache_mb=0` (every prompt read again, the behaviour before the cache) and with the
default, alternating, `--repeat` times each: model seconds (the turns' latencies), prompt tokens sent, prompt tokens
llama.cpp actually evaluated, generated tokens, the speedup (target: at least 2x) and whether every turn's text is
the same as without the cache. Analyzers are left out; each run has a fresh store.

(b) `--prompts` distinct chat prompts answered by the backend (`EmbeddedBackend.complete`, with its defaults) and by
`Llama.create_chat_completion` on a model opened alike, each with only its own model open, in the order backend,
raw, raw, backend: generated tokens per second of each and their ratio (target: the backend at least 95% of
llama-cpp-python), and how many prompts both answered alike.
`--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hydra import compose, initialize_config_module

import sim.compose  # noqa: F401  (registers analyzers, scenarios, backends and the top-level schema)
from sim.backends.embedded import EmbeddedBackend, EmbeddedConfig, bundled_model_path
from sim.messages import ChatMessage, SamplingParams
from sim.runner import execute
from sim.store import Store

from markdown_tables import measured, table

TOPICS = [
    "photosynthesis", "the water cycle", "compound interest", "how vaccines work", "plate tectonics",
    "binary numbers", "supply and demand", "the French Revolution", "black holes", "recycling plastics",
    "how bread rises", "the rules of chess",
]


class CountingBackend(EmbeddedBackend):
    """The embedded backend, remembered when the runner builds it so that its token counts can be read after."""

    built: list[EmbeddedBackend] = []

    def __init__(self, **settings: object) -> None:
        super().__init__(**settings)
        CountingBackend.built.append(self)


def quick_start(db: Path, cache_mb: int | None, episodes: int, turns: int) -> dict:
    """One run of the quick start's workload; `cache_mb` None leaves the backend's default."""
    overrides = [
        f"backend._target_={__name__}.CountingBackend",
        f"scenario.n_episodes={episodes}",
        f"scenario.max_turns={turns}",
        "runner.progress=false",
        "runner.analyze=[]",
        f"store.path={db}",
    ]
    if cache_mb is not None:
        overrides.append(f"backend.state_cache_mb={cache_mb}")
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    report = execute(cfg)
    backend = CountingBackend.built.pop()
    store = Store.open(db)
    texts = [row["content"] for row in store.db.query("SELECT content FROM turns ORDER BY episode_id, idx")]
    store.close()
    return {
        "cache_mb": cfg.backend.state_cache_mb,
        "model_s": report.totals["latency_ms"] / 1000,
        "turns": report.totals["n_turns"],
        "prompt_tokens": report.totals["prompt_tokens"],
        "evaluated": backend.prompt_tokens_evaluated,
        "generated": report.totals["completion_tokens"],
        "texts": texts,
    }


def quick_start_table(runs: list[dict]) -> tuple[str, str]:
    """Each run, then the mean speedup of the default against the cache off and the target."""
    off = [run for run in runs if run["cache_mb"] == 0]
    on = [run for run in runs if run["cache_mb"] != 0]
    base_s = sum(run["model_s"] for run in off) / len(off)
    rows = [
        [
            run["cache_mb"] if run["cache_mb"] else "0 (off)", run["turns"], f"{run['model_s']:.1f}", run["prompt_tokens"],
            run["evaluated"], run["generated"], f"{base_s / run['model_s']:.2f}",
            "yes" if run["texts"] == off[0]["texts"] else "no",
        ]
        for run in runs
    ]
    header = ["state_cache_mb", "turns", "model s", "prompt tokens sent", "prompt tokens evaluated", "generated tokens",
              "speedup vs off (mean)", "same texts as off"]
    speedup = base_s / (sum(run["model_s"] for run in on) / len(on))
    target = table(["mean speedup (target ≥ 2)", "target met"], [[f"{speedup:.2f}", "yes" if speedup >= 2 else "no"]])
    return table(header, rows), target


def prompts(count: int) -> list[list[ChatMessage]]:
    """`count` distinct chat prompts sharing one system prompt."""
    if count > len(TOPICS):
        raise SystemExit(f"--prompts is at most {len(TOPICS)}")
    system = ChatMessage("system", "You are a patient teacher who explains things clearly.")
    return [[system, ChatMessage("user", f"Explain {topic} to a new student.")] for topic in TOPICS[:count]]


def against_raw(count: int, max_tokens: int) -> dict:
    """Generated tokens and seconds of the backend and of llama-cpp-python on the same prompts: each answers them
    all with its own model, which is then closed, twice, in the order backend, raw, raw, backend, each time on a
    thread of its own that ends with it. Only one model and one calling thread at a time: llama.cpp's thread pool
    belongs to the thread that calls it, and one left idle by another caller keeps spinning on the cores the
    measured one needs."""
    from llama_cpp import Llama

    defaults = EmbeddedConfig()
    threads = os.cpu_count() or 1
    params = SamplingParams(temperature=0.7, top_p=0.95, max_tokens=max_tokens, seed=0)
    totals = {"backend": [0, 0.0], "raw": [0, 0.0]}
    texts: dict[str, list[list[str]]] = {"backend": [], "raw": []}

    def by_backend() -> list[str]:
        backend = EmbeddedBackend()
        answers = []
        try:
            for messages in prompts(count):
                started = time.perf_counter()
                completion = asyncio.run(backend.complete(messages, params))
                totals["backend"][0] += completion.completion_tokens
                totals["backend"][1] += time.perf_counter() - started
                answers.append(completion.text)
        finally:
            asyncio.run(backend.aclose())
        return answers

    def by_raw() -> list[str]:
        raw = Llama(model_path=str(bundled_model_path()), n_ctx=defaults.n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
        answers = []
        try:
            for messages in prompts(count):
                started = time.perf_counter()
                response = raw.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens, seed=params.seed,
                )
                totals["raw"][0] += response["usage"]["completion_tokens"]
                totals["raw"][1] += time.perf_counter() - started
                answers.append(response["choices"][0]["message"]["content"] or "")
        finally:
            raw.close()
        return answers

    for name, answer in (("backend", by_backend), ("raw", by_raw), ("raw", by_raw), ("backend", by_backend)):
        # Each block on a thread of its own that ends with it, as the backend's worker thread does.
        with ThreadPoolExecutor(max_workers=1) as block:
            texts[name].append(block.submit(answer).result())
    same = sum(a == b for a, b in zip(texts["backend"][0], texts["raw"][0]))
    return {"totals": totals, "same": same, "count": count}


def raw_table(result: dict) -> tuple[str, str]:
    """Tokens per second of each and the ratio against the target."""
    rate = {name: tokens / seconds for name, (tokens, seconds) in result["totals"].items()}
    rows = [
        [name, result["count"], tokens, f"{seconds:.1f}", f"{rate[name]:.1f}"]
        for name, (tokens, seconds) in result["totals"].items()
    ]
    labels = {"backend": "embedded backend (`complete`)", "raw": "llama-cpp-python `create_chat_completion`"}
    rows = [[labels[row[0]], *row[1:]] for row in rows]
    ratio = 100 * rate["backend"] / rate["raw"]
    summary = table(
        ["backend tok/s as % of llama-cpp-python (target ≥ 95)", "target met", "prompts answered alike"],
        [[f"{ratio:.1f}", "yes" if ratio >= 95 else "no", f"{result['same']} of {result['count']}"]],
    )
    return table(["caller", "prompts", "generated tokens", "seconds", "generated tokens/s"], rows), summary


def main() -> None:
    """Run (a) and (b) and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=1, help="runs of (a) with the cache off and on each, alternating")
    parser.add_argument("--prompts", type=int, default=8, help="distinct prompts of (b)")
    parser.add_argument("--max-tokens", type=int, default=128, help="generated tokens at most per prompt of (b)")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    runs = []
    # In Markdown mode stdout carries only the tables; anything the runs print goes to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if args.markdown else contextlib.nullcontext()
    with quiet, tempfile.TemporaryDirectory() as tmp:
        for number in range(args.repeat):
            for cache_mb in (0, None):
                run = quick_start(Path(tmp) / f"{number}-{cache_mb}.db", cache_mb, args.episodes, args.turns)
                print(f"state_cache_mb={run['cache_mb']}: {run['model_s']:.1f} model s, {run['evaluated']} prompt tokens evaluated",
                      file=sys.stderr, flush=True)
                runs.append(run)
        versus = against_raw(args.prompts, args.max_tokens)
    quick, target = quick_start_table(runs)
    speed, summary = raw_table(versus)
    tables = [
        (f"(a) The quick start's run ({args.episodes} role-play episodes of {args.turns} turns, seed 0), cache off and on:", quick),
        ("", target),
        (f"(b) {args.prompts} distinct prompts, at most {args.max_tokens} generated tokens each:", speed),
        ("", summary),
    ]
    if args.markdown:
        print(measured(*tables))
    else:
        for caption, body in tables:
            print(f"{caption}\n{body}\n" if caption else f"{body}\n")


if __name__ == "__main__":
    main()
