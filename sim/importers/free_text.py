"""Free text written by people and by LLMs, paired on the same prompt where the corpus pairs them."""

from __future__ import annotations

from typing import Any, Iterator, Optional

from sim.importers.base import ImportProblem, Importer, Source, field_of, imported_episode, importers, read_csv, read_jsonl
from sim.records import Episode

HC3_AUTHORS = {0: ("human", "human"), 1: ("llm", "chatgpt")}


def text_episode(
    source: Source, key: Any, author: str, writer: str, text: str, prompt: Optional[str], meta: dict[str, Any]
) -> Episode:
    """Turns: the prompt (when there is one), then the text by `writer` (a model name or human)."""
    turns = [("prompt", "prompt", prompt)] if prompt else []
    turns.append((writer, "text", text))
    return imported_episode(source, key, "free_text", turns, prompt, {**meta, "author": author, "writer": writer})


@importers.register("free_text")
class FreeTextImporter(Importer):
    """M4 (prompt, human_text, machine_text), HC3-Plus (text, label), Self-Instruct predictions (prompt, response,
    target) and POPQUORN email rewrites; paired texts become two episodes sharing `meta.pair`."""

    description = "human vs LLM text: M4 JSONL, HC3-Plus JSONL, Self-Instruct *_predictions.jsonl, POPQUORN email CSV"

    def episodes(self, source: Source) -> Iterator[Episode]:
        """One episode per text."""
        if source.path.suffix.lower() == ".csv":
            yield from self._email_rewrites(source)
            return
        model = source.options.get("model", source.path.stem.removesuffix("_predictions"))
        for line, record in read_jsonl(source.path):
            path = source.path
            if isinstance(record, dict) and "machine_text" in record:
                prompt = str(field_of(record, "prompt", path, line))
                meta = {"pair": line, "source": record.get("source")}
                yield text_episode(source, f"{line}-human", "human", "human", str(field_of(record, "human_text", path, line)), prompt, meta)
                writer = str(record.get("model") or "llm")
                yield text_episode(source, f"{line}-llm", "llm", writer, str(record["machine_text"]), prompt, meta)
            elif isinstance(record, dict) and "response" in record and "target" in record:
                prompt = str(field_of(record, "prompt", path, line))
                meta = {"pair": line, "instruction": record.get("instruction")}
                yield text_episode(source, f"{line}-human", "human", "human", str(record["target"]), prompt, meta)
                yield text_episode(source, f"{line}-llm", "llm", model, str(record["response"]), prompt, meta)
            else:
                label = field_of(record, "label", path, line)
                if label not in HC3_AUTHORS:
                    raise ImportProblem(path, line, f"label must be 0 (human) or 1 (ChatGPT), got {label!r}")
                author, writer = HC3_AUTHORS[label]
                yield text_episode(source, line, author, writer, str(field_of(record, "text", path, line)), None, {})

    def _email_rewrites(self, source: Source) -> Iterator[Episode]:
        demographics = ("gender", "race", "age", "occupation", "education")
        for line, row in read_csv(source.path, {"instance_id", "user_id", "original email", "revised email"}):
            meta = {"instance_id": row["instance_id"], **{k: row.get(k) or None for k in demographics}}
            yield text_episode(source, line, "human", f"user_{row['user_id']}", row["revised email"], row["original email"], meta)
