"""Model time of the quick start on the embedded backend: the code before its speed work, and today's with and
without its state cache; and the backend's speed against llama-cpp-python called directly.

    python bench/embedded_speed.py [--episodes 3] [--turns 6] [--repeat 1] [--prompts 8] [--max-tokens 128]
                                   [--baseline REV] [--markdown]

(a) The quick start's run (`sim run`: role-play, 3 episodes of 6 turns, seed 0, SmolLM2 on all cores, today's
default `scenario.max_tokens` for all three so that they do the same work), `--repeat` times each, in the order:
the code of git revision `--baseline` (default: the last commit before the state cache and the backend's own worker
thread; `none` leaves it out), taken from this repository's history with `git archive` and run as `python -m sim run`;
today's code with `backend.state_cache_mb=0` (every prompt read again); today's default. Reported: model seconds
(the turns' latencies), prompt tokens sent, prompt tokens llama.cpp actually evaluated (not counted by the old
code), generated tokens, the speedup against the baseline (target: at least 2x) and against the cache off, and
whether every turn's text is the same as the baseline's. Analyzers are left out; each run has a fresh store.

(b) `--prompts` distinct chat prompts answered by the backend (`EmbeddedBackend.complete`, with its defaults) and by
`Llama.create_chat_completion` on a model opened alike, each with only its own model open, in the order backend,
raw, raw, backend: generated tokens per second of each and their ratio (target: the backend at least 95% of
llama-cpp-python), and how many prompts both answered alike.
Every measurement runs in a fresh process of its own, so that none inherits another's llama.cpp threads or memory.
`--markdown` prints the tables under the command line that measured them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from hydra import compose, initialize_config_module

import sim.compose  # noqa: F401  (registers analyzers, scenarios, backends and the top-level schema)
from sim.backends.base import backends
from sim.backends.embedded import EmbeddedBackend, EmbeddedConfig, bundled_model_path
from sim.messages import ChatMessage, SamplingParams
from sim.runner import execute

from markdown_tables import measured, table

# The last commit before the embedded backend's state cache and its own worker thread: the code whose quick start
# took 136 model seconds when its speed was first measured.
BASELINE = "fdd2465bc718e517c240db4f7ff97dd95097de12"
# Tokens of the prompt whose evaluation speed (b) measures.
EVALUATED_PROMPT = 1024

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


def quick_start_overrides(db: Path, episodes: int, turns: int, max_tokens: int) -> list[str]:
    """The overrides of the quick start's workload that every variant shares."""
    return [
        f"scenario.n_episodes={episodes}",
        f"scenario.max_turns={turns}",
        f"scenario.max_tokens={max_tokens}",
        "runner.progress=false",
        "runner.analyze=[]",
        f"store.path={db}",
    ]


def default_max_tokens() -> int:
    """Today's default `scenario.max_tokens` of the quick start's scenario."""
    with initialize_config_module(config_module="conf", version_base="1.3"):
        return compose(config_name="config").scenario.max_tokens


def stored_texts(db: Path) -> list[str]:
    """Every stored turn's text, in episode and turn order."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        return [row[0] for row in connection.execute("SELECT content FROM turns ORDER BY episode_id, idx")]


def unavoidable_prompt_tokens(db: Path) -> int:
    """The prompt tokens of a stored run that no cache could spare: for each turn, its prompt less the previous
    prompt and answer of the same speaker in the episode (the other side's message and the chat template's tokens),
    the whole prompt for a speaker's first turn."""
    with contextlib.closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT episode_id, speaker, prompt_tokens, completion_tokens FROM turns ORDER BY episode_id, idx")
        seen: dict[tuple[str, str], int] = {}
        total = 0
        for episode_id, speaker, prompt_tokens, completion_tokens in rows:
            total += max(prompt_tokens - seen.get((episode_id, speaker), 0), 0)
            seen[episode_id, speaker] = prompt_tokens + completion_tokens
    return total


def quick_start(db: Path, cache_mb: int | None, episodes: int, turns: int, max_tokens: int) -> dict:
    """One run of the quick start's workload on today's code; `cache_mb` None leaves the backend's default."""
    overrides = [f"backend._target_={CountingBackend.__module__}.CountingBackend",
                 *quick_start_overrides(db, episodes, turns, max_tokens)]
    if cache_mb is not None:
        overrides.append(f"backend.state_cache_mb={cache_mb}")
    with initialize_config_module(config_module="conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    report = execute(cfg)
    backend = CountingBackend.built.pop()
    return {
        "variant": f"today, state_cache_mb={cfg.backend.state_cache_mb}" + (" (off)" if cfg.backend.state_cache_mb == 0 else ""),
        "model_s": report.totals["latency_ms"] / 1000,
        "turns": report.totals["n_turns"],
        "prompt_tokens": report.totals["prompt_tokens"],
        "evaluated": backend.prompt_tokens_evaluated,
        "generated": report.totals["completion_tokens"],
        "unavoidable": unavoidable_prompt_tokens(db),
        "texts": stored_texts(db),
    }


def baseline_quick_start(db: Path, revision: str, episodes: int, turns: int, max_tokens: int) -> dict:
    """One run of the quick start's workload on the code of git `revision`, unpacked beside the store and run as
    `python -m sim run` with that code first on the import path."""
    code = db.parent / f"code-{revision[:12]}"
    if not code.exists():
        code.mkdir()
        archive = subprocess.run(["git", "archive", revision], check=True, capture_output=True, cwd=Path(__file__).parent)
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
    environment = {**os.environ, "PYTHONPATH": str(code)}
    subprocess.run([sys.executable, "-m", "sim", "run", *quick_start_overrides(db, episodes, turns, max_tokens)],
                   cwd=code, env=environment, check=True, stdout=sys.stderr)
    with contextlib.closing(sqlite3.connect(db)) as connection:
        n_turns, latency_ms, prompt_tokens, generated = connection.execute(
            "SELECT count(*), sum(latency_ms), sum(prompt_tokens), sum(completion_tokens) FROM turns").fetchone()
    return {
        "variant": f"code of {revision[:7]} (baseline)", "baseline": True, "model_s": latency_ms / 1000, "turns": n_turns,
        "prompt_tokens": prompt_tokens, "evaluated": None, "generated": generated, "texts": stored_texts(db),
    }


def quick_start_table(runs: list[dict]) -> tuple[str, str]:
    """Each run with its speedups, then the mean speedups against the target."""
    def mean_s(selected: list[dict]) -> float:
        return sum(run["model_s"] for run in selected) / len(selected)

    baseline = [run for run in runs if run.get("baseline")]
    off = [run for run in runs if run["variant"].endswith("(off)")]
    on = [run for run in runs if run not in baseline and run not in off]
    reference = baseline or off
    rows = [
        [
            run["variant"], run["turns"], f"{run['model_s']:.1f}", run["prompt_tokens"],
            "not counted" if run["evaluated"] is None else run["evaluated"], run["generated"],
            f"{mean_s(baseline) / run['model_s']:.2f}" if baseline else "-", f"{mean_s(off) / run['model_s']:.2f}",
            "yes" if run["texts"] == reference[0]["texts"] else "no",
        ]
        for run in runs
    ]
    header = ["code", "turns", "model s", "prompt tokens sent", "prompt tokens evaluated", "generated tokens",
              "speedup vs baseline (mean)", "speedup vs cache off (mean)", f"same texts as {'baseline' if baseline else 'cache off'}"]
    speedup = mean_s(baseline) / mean_s(on) if baseline else None
    target = table(
        ["mean speedup vs baseline (target ≥ 2)", "target met", "mean speedup of the cache alone"],
        [["-" if speedup is None else f"{speedup:.2f}", "-" if speedup is None else ("yes" if speedup >= 2 else "no"),
          f"{mean_s(off) / mean_s(on):.2f}"]],
    )
    return table(header, rows), target


def floor_table(runs: list[dict], versus: dict) -> str:
    """The least model time today's default run could take at llama-cpp-python's measured speeds: the prompt tokens
    no cache could spare at (b)'s evaluation speed, and the generated tokens at (b)'s generation speed (which
    includes the short prompts of (b), so it is a little slow), against the baseline."""
    on = [run for run in runs if run.get("unavoidable") is not None and not run["variant"].endswith("(off)")]
    baseline = [run["model_s"] for run in runs if run.get("baseline")]
    unavoidable, generated = on[0]["unavoidable"], on[0]["generated"]
    tokens, seconds = versus["totals"]["raw"]
    evaluated, evaluation_s = versus["evaluation"]
    floor_s = unavoidable / (evaluated / evaluation_s) + generated / (tokens / seconds)
    best = f"{sum(baseline) / len(baseline) / floor_s:.2f}" if baseline else "-"
    header = ["prompt tokens no cache can spare", "generated tokens", f"prompt tok/s ({EVALUATED_PROMPT}-token prompt)",
              "generated tok/s", "model s at those speeds", "best speedup vs baseline"]
    return table(header, [[unavoidable, generated, f"{evaluated / evaluation_s:.0f}", f"{tokens / seconds:.1f}",
                           f"{floor_s:.1f}", best]])


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
    evaluation = [0, 0.0]  # prompt tokens llama-cpp-python evaluated in one go, and the seconds it took
    texts: dict[str, list[list[str]]] = {"backend": [], "raw": []}

    def by_backend() -> list[str]:
        backend = backends.create("embedded")
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
            raw.reset()
            # A prompt as long as a late turn's: evaluation slows as the context fills.
            tokens = raw.tokenize(" ".join(TOPICS * 200).encode())[:EVALUATED_PROMPT]
            started = time.perf_counter()
            raw.eval(tokens)
            evaluation[0] += len(tokens)
            evaluation[1] += time.perf_counter() - started
        finally:
            raw.close()
        return answers

    for name, answer in (("backend", by_backend), ("raw", by_raw), ("raw", by_raw), ("backend", by_backend)):
        # Each block on a thread of its own that ends with it, as the backend's worker thread does.
        with ThreadPoolExecutor(max_workers=1) as block:
            texts[name].append(block.submit(answer).result())
    same = sum(a == b for a, b in zip(texts["backend"][0], texts["raw"][0]))
    return {"totals": totals, "same": same, "count": count, "evaluation": evaluation}


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


def quietly(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` with anything it prints sent to stderr, so that stdout carries only the tables."""
    with contextlib.redirect_stdout(sys.stderr):
        return function(*args)


def in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)` in a new Python process that ends with it."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as process:
        return process.submit(quietly, function, *args).result()


def main() -> None:
    """Run (a) and (b) and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=1, help="runs of (a) of each variant, in turn")
    parser.add_argument("--baseline", default=BASELINE, help="git revision whose code (a) measures first; none: leave it out")
    parser.add_argument("--prompts", type=int, default=8, help="distinct prompts of (b)")
    parser.add_argument("--max-tokens", type=int, default=128, help="generated tokens at most per prompt of (b)")
    parser.add_argument("--markdown", action="store_true", help="print only the Markdown tables, each under this command line")
    args = parser.parse_args()
    max_tokens = default_max_tokens()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(args.repeat):
            variants: list[tuple[Callable[..., dict], tuple]] = [(quick_start, (0,)), (quick_start, (None,))]
            if args.baseline != "none":
                variants.insert(0, (baseline_quick_start, (args.baseline,)))
            for index, (function, first) in enumerate(variants):
                db = Path(tmp) / f"{number}-{index}.db"
                run = in_fresh_process(function, db, *first, args.episodes, args.turns, max_tokens)
                print(f"{run['variant']}: {run['model_s']:.1f} model s", file=sys.stderr, flush=True)
                runs.append(run)
        versus = in_fresh_process(against_raw, args.prompts, args.max_tokens)
    quick, target = quick_start_table(runs)
    speed, summary = raw_table(versus)
    tables = [
        (f"(a) The quick start's run ({args.episodes} role-play episodes of {args.turns} turns, seed 0, "
         f"scenario.max_tokens={max_tokens}), each in a fresh process:", quick),
        ("", target),
        (f"(b) {args.prompts} distinct prompts, at most {args.max_tokens} generated tokens each, in a fresh process:", speed),
        ("", summary),
        ("(c) The least model time (a)'s default run could take at llama-cpp-python's speeds in (b): only the prompt "
         "tokens no cache can spare evaluated, every generated token at (b)'s rate:", floor_table(runs, versus)),
    ]
    if args.markdown:
        print(measured(*tables))
    else:
        for caption, body in tables:
            print(f"{caption}\n{body}\n" if caption else f"{body}\n")


if __name__ == "__main__":
    main()
