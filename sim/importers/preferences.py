"""Pairwise preferences and rankings from human and LLM judges."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Iterator

from sim.importers.base import ImportProblem, Importer, Source, field_of, first_line, imported_episode, importers, read_csv, read_json
from sim.records import Episode

# The artifacts-llmgendata training format: 0 = output1, 1 = output2, 2 = tie. The same MT-Bench pairs in the
# file that names the winner (model_a, model_b, tie) give the same counts under this reading and no other.
CSV_CHOICES = {"0": "output_1", "1": "output_2", "2": "tie"}
MTBENCH_CHOICES = {"model_a": "output_1", "model_b": "output_2"}


def preference_episode(
    source: Source, key: Any, outputs: list[tuple[str, str]], judgments: dict[str, str], meta: dict[str, Any], prompt: str | None = None
) -> Episode:
    """Turns: the prompt (when known), each output, then one turn per judge naming its choice."""
    turns = [("prompt", "prompt", prompt)] if prompt is not None else []
    turns += [(speaker, f"output_{i}", text) for i, (speaker, text) in enumerate(outputs, start=1)]
    turns += [(judge, "judge", choice) for judge, choice in judgments.items()]
    return imported_episode(source, key, "preference", turns, prompt, {**meta, "judgments": judgments})


def csv_choice(value: str, path: Path, line: int) -> str:
    """output_1, output_2 or tie from a target of 0, 1 or 2."""
    choice = CSV_CHOICES.get(value.strip().split(".")[0])
    if choice is None:
        raise ImportProblem(path, line, f"target must be 0 (output1), 1 (output2) or 2 (tie), got {value!r}")
    return choice


@importers.register("preferences")
class PreferencesImporter(Importer):
    """output1/output2/target CSVs (-o judge=NAME; -o pair_with=OTHER.csv -o other_judge=NAME joins the other judge's
    file of the same pairs), MT-Bench human-vs-GPT-4 CSVs, and CoBBLEr ranking JSON files (one evaluator each)."""

    description = "pairwise preferences: output1/output2/target CSV (-o judge=, -o pair_with=), MT-Bench CSV, CoBBLEr JSON"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per compared pair, or per ranked CoBBLEr example."""
        if source.path.suffix.lower() == ".json":
            yield from self._cobbler(source)
            return
        header = first_line(source.path)
        yield from self._mtbench(source) if "conversation_a" in header else self._pairs(source)

    def _pairs(self, source: Source) -> Iterator[Episode]:
        judge = source.options.get("judge", "human" if "human" in source.path.name else "llm")
        rows = list(read_csv(source.path, {"output1", "output2", "target"}))
        others: list[tuple[int, dict[str, str]]] = []
        other_judge = source.options.get("other_judge", "llm")
        if "pair_with" in source.options:
            other_path = Path(source.options["pair_with"])
            others = list(read_csv(other_path, {"output1", "output2", "target"}))
            if len(others) != len(rows):
                raise ImportProblem(other_path, None, f"has {len(others)} pairs but {source.path.name} has {len(rows)}")
        for position, (line, row) in enumerate(rows):
            judgments = {judge: csv_choice(row["target"], source.path, line)}
            if others:
                other_line, other = others[position]
                if (other["output1"], other["output2"]) != (row["output1"], row["output2"]):
                    raise ImportProblem(Path(source.options["pair_with"]), other_line, f"pair differs from {source.path.name}:{line}")
                judgments[other_judge] = csv_choice(other["target"], Path(source.options["pair_with"]), other_line)
            yield preference_episode(source, line, [("output_1", row["output1"]), ("output_2", row["output2"])], judgments, {})

    def _mtbench(self, source: Source) -> Iterator[Episode]:
        columns = {"question_id", "model_a", "model_b", "human_model", "gpt4_model", "conversation_a", "conversation_b", "turn"}
        for line, row in read_csv(source.path, columns):
            judgments = {
                "human": MTBENCH_CHOICES.get(row["human_model"], "tie"),
                "gpt-4": MTBENCH_CHOICES.get(row["gpt4_model"], "tie"),
            }
            meta = {
                "question_id": row["question_id"],
                "turn": row["turn"],
                "human_judge": row.get("human_info"),
                "raw_judgments": {"human": row["human_model"], "gpt-4": row["gpt4_model"]},
            }
            outputs = [(row["model_a"], row["conversation_a"]), (row["model_b"], row["conversation_b"])]
            yield preference_episode(source, line, outputs, judgments, meta)

    def _cobbler(self, source: Source) -> Iterator[Episode]:
        document = read_json(source.path)
        evaluator = str(field_of(document, "evaluator", source.path, 1))
        for key, example in document.items():
            if key == "evaluator":
                continue
            rankings = self._rankings(field_of(example, "rankings", source.path, 1), source.path, key)
            outputs = [(str(r["model"]), str(r["output"])) for r in rankings]
            meta = {
                "evaluator": evaluator,
                "reference": _unquote(example.get("reference")),
                "ranking": [{"model": r["model"], "rank": r["rank"], "point": r.get("point")} for r in rankings],
            }
            prompt = _unquote(field_of(example, "instruction", source.path, 1))
            yield preference_episode(source, key, outputs, {evaluator: "ranking"}, meta, prompt=prompt)

    @staticmethod
    def _rankings(value: Any, path: Path, key: str) -> list[dict[str, Any]]:
        # The files hold a Python-literal string; literal_eval parses literals only and runs no code.
        try:
            rankings = ast.literal_eval(value) if isinstance(value, str) else value
        except (ValueError, SyntaxError):
            raise ImportProblem(path, None, f"{key}: rankings is not a list literal") from None
        if not isinstance(rankings, list) or not all(isinstance(r, dict) and {"model", "output", "rank"} <= set(r) for r in rankings):
            raise ImportProblem(path, None, f"{key}: rankings must be a list of {{rank, model, output}}")
        return rankings


def _unquote(value: Any) -> str:
    text = str(value or "")
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "'" else text
