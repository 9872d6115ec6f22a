"""Write the table of docs/turn_budgets.md: how long each scenario's turns are when a capable model or a person
writes them, in the bundled model's tokens, and what share of them each scenario's default `max_tokens` would cut.

    python docs/make_turn_budgets.py [--data ../shared/data] [--out docs/turn_budgets.md]

For each scenario whose turns have a counterpart in the reference corpora, the counterpart texts are tokenized with
SmolLM2's tokenizer (the bundled GGUF, vocabulary only; other models' tokenizers give counts of the same order), and
the table gives their count, median, 90th, 95th and 99th percentile and longest, the scenario's default
`max_tokens` (composed from `conf/`, as `sim run scenario=NAME` gets it) and the share of texts longer than it.
A default is chosen as the 95th percentile of the longest-running counterpart, rounded up to a multiple of 32: a
normal turn fits, a rare long one is cut and marked as cut. Scenarios whose turns are a label or a verdict line
(task_labels, preferences) have a format, not a corpus, behind their budget and are not in the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from make_statistics import replace_block  # noqa: E402
from markdown_tables import relative_to_root, table  # noqa: E402
from sim.backends.embedded import bundled_model_path  # noqa: E402
from sim.compose import compose_config  # noqa: E402

BLOCK = "turn_budgets"
ROUND_TO = 32
QUANTILE = 95
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def jsonl(path: Path) -> Iterator[dict]:
    """The records of a JSON Lines file."""
    with path.open(encoding="utf-8") as lines:
        yield from (json.loads(line) for line in lines if line.strip())


def gpteacher_roleplay(data: Path) -> Iterator[str]:
    """GPT-4's answers in an assigned role (GPTeacher role-play)."""
    with (data / "instructions/gpteacher/roleplay-simple-deduped-roleplay-instruct.json").open(encoding="utf-8") as file:
        yield from (record["response"] for record in json.load(file))


def spp_responses(data: Path) -> Iterator[str]:
    """GPT-4's Solo-Performance-Prompting responses, each a whole multi-persona solution (the paper's own runs)."""
    path = data / "conversations/artifacts-llmgendata-spp/logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl"
    # One line of the file is an empty record.
    for record in jsonl(path):
        for response in record.get("raw_response", []):
            yield from (choice["message"]["content"] for choice in response["choices"])


def dailydialog_turns(data: Path) -> Iterator[str]:
    """The turns of human daily-life conversations (DailyDialog, the group scenario's topic source)."""
    for record in jsonl(data / "conversations/dailydialog/dailydialog_sample_2624.jsonl"):
        yield from (turn["text"] for turn in record["turns"])


def generated_instructions(data: Path) -> Iterator[str]:
    """Instructions proposed by GPT-3 in a rerun of the Self-Instruct pipeline."""
    for record in jsonl(data / "instructions/self-instruct-pipeline-rerun/machine_generated_instructions.jsonl"):
        yield record["instruction"]


def generated_instances(data: Path) -> Iterator[str]:
    """Input and output pairs written by GPT-3 for those instructions, as the instance writer answers them."""
    for record in jsonl(data / "instructions/self-instruct-pipeline-rerun/all_generated_instances.jsonl"):
        yield f"Input: {record['input']}\nOutput: {record['output']}"


def davinci_003_answers(data: Path) -> Iterator[str]:
    """text-davinci-003's answers to Self-Instruct's 252 user-oriented instructions."""
    path = data / "free_form/self-instruct-user-oriented-predictions/text-davinci-003_predictions.jsonl"
    yield from (record["response"].strip() for record in jsonl(path))


def human_answers(data: Path) -> Iterator[str]:
    """People's answers to the same 252 instructions (the targets of the Self-Instruct human evaluation)."""
    path = data / "free_form/self-instruct-user-oriented-predictions/text-davinci-003_predictions.jsonl"
    yield from (record["target"].strip() for record in jsonl(path))


@dataclass(frozen=True)
class Counterpart:
    """Texts that stand for one kind of a scenario's turns."""

    scenario: str
    turns: str
    source: str
    texts: Callable[[Path], Iterator[str]]


COUNTERPARTS = [
    Counterpart("roleplay", "an agent's turn in its role", "GPTeacher role-play, GPT-4 answers", gpteacher_roleplay),
    Counterpart("spp", "one response voicing every persona (mode=single)", "the paper's SPP runs, GPT-4", spp_responses),
    Counterpart("group", "a persona's turn in a discussion", "DailyDialog turns, people", dailydialog_turns),
    Counterpart("instructions", "a proposed instruction", "Self-Instruct rerun, GPT-3 instructions", generated_instructions),
    Counterpart("instructions", "an instance (input and output)", "Self-Instruct rerun, GPT-3 instances", generated_instances),
    Counterpart("free_text", "an answer to a person's request", "Self-Instruct user-oriented, text-davinci-003", davinci_003_answers),
    Counterpart("free_text", "an answer to a person's request", "Self-Instruct user-oriented, people", human_answers),
]


def default_max_tokens(scenario: str) -> int:
    """The scenario's `max_tokens` as `sim run scenario=NAME` composes it."""
    return int(compose_config([f"scenario={scenario}"]).scenario.max_tokens)


def budget(lengths: np.ndarray) -> int:
    """The chosen default for texts of these lengths: their 95th percentile rounded up to a multiple of 32."""
    return ROUND_TO * math.ceil(np.percentile(lengths, QUANTILE) / ROUND_TO)


def rows(data: Path) -> list[list[object]]:
    """One row per counterpart: lengths in tokens, the budget they call for, the default and the share it cuts."""
    from llama_cpp import Llama

    tokenizer = Llama(model_path=str(bundled_model_path()), vocab_only=True, verbose=False)
    table_rows = []
    for counterpart in COUNTERPARTS:
        lengths = np.array(
            [len(tokenizer.tokenize(text.encode("utf-8"), add_bos=False)) for text in counterpart.texts(data) if text]
        )
        default = default_max_tokens(counterpart.scenario)
        p50, p90, p95, p99 = (int(round(np.percentile(lengths, q))) for q in (50, 90, 95, 99))
        table_rows.append([
            counterpart.scenario, counterpart.turns, counterpart.source, len(lengths), p50, p90, p95, p99,
            int(lengths.max()), budget(lengths), default, f"{100 * np.mean(lengths > default):.1f}%",
        ])
    return table_rows


def main() -> None:
    """Measure the counterparts and write the table into the document's generated block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the reference corpora")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "turn_budgets.md", help="the document holding the block")
    args = parser.parse_args()
    header = ["scenario", "turns", "counterpart", "texts", "median", "p90", "p95", "p99", "longest",
              f"p{QUANTILE} rounded up to {ROUND_TO}", "default max_tokens", "cut at the default"]
    # The command above the table names the corpora it read, never the scratch copy a test writes to.
    command = "python docs/make_turn_budgets.py"
    if args.data.resolve() != DEFAULT_DATA.resolve():
        command += f" --data {relative_to_root(str(args.data.resolve()))}"
    body = f"```bash\n{command}\n```\n\n{table(header, rows(args.data))}"
    args.out.write_text(replace_block(args.out.read_text(encoding="utf-8"), BLOCK, body), encoding="utf-8")


if __name__ == "__main__":
    main()
