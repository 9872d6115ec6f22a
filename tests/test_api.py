"""The DataFrame API and the per-kind SQL views, on imported real reference files and on a run of the scripted model."""

import json
from pathlib import Path

import pytest

from helpers import DATA, TINY
from sim.api import open_results
from sim.importing import import_file
from sim.store import Store

INSTANCES = DATA / "instructions" / "self-instruct-pipeline-rerun" / "all_generated_instances.jsonl"
PREDICTIONS = DATA / "free_form" / "self-instruct-user-oriented-predictions" / "text-davinci-003_predictions.jsonl"
MISMATCH = DATA / "task_labels" / "artifacts-llmgendata" / "mismatch_gpt3.csv"


@pytest.mark.slow
def test_views_and_frames_serve_imported_data(tmp_path: Path) -> None:
    db = tmp_path / "sim.db"
    store = Store.open(db)
    import_file(store, "instructions", INSTANCES, progress=False)
    import_file(store, "free_text", PREDICTIONS, progress=False)
    import_file(store, "task_labels", MISMATCH, progress=False)
    store.close()

    results = open_results(db)
    instructions = results.instructions()
    records = [json.loads(line) for line in INSTANCES.read_text().splitlines() if line.strip()]
    assert len(instructions) == len(records)
    assert set(instructions["author"]) == {"llm"}
    assert instructions["instruction"].tolist() == [r["instruction"] for r in records]
    assert instructions["output"].tolist() == [r["output"] or None for r in records]

    texts = results.free_text(dataset=PREDICTIONS.stem)
    assert len(texts) == 2 * 252 and texts["author"].value_counts().to_dict() == {"human": 252, "llm": 252}
    first = json.loads(PREDICTIONS.open().readline())
    pair = texts[texts["pair"] == 1].set_index("author")
    assert pair.loc["human", "text"] == first["target"] and pair.loc["llm", "text"] == first["response"]
    assert pair.loc["llm", "prompt"] == first["prompt"]

    labels = results.task_labels()
    assert len(labels) == 8032 and labels["model"].iloc[0] == "gpt3"
    assert all(isinstance(v, list) for v in labels["human_labels"].head())

    assert len(results.episodes()) == len(records) + 2 * 252 + 8032
    turns = results.turns(dataset=INSTANCES.stem)
    assert set(turns["kind"]) == {"instruction"} and turns["episode_id"].nunique() == len(records)
    assert set(turns["turn_kind"]) == {"utterance"}
    assert results.runs().empty and results.annotations().empty
    results.close()


def test_frames_of_a_generated_and_analyzed_run(generate, scripted, tmp_path: Path, db_rows) -> None:
    generate(*TINY, *scripted("Instruction: name the steps.", "Solution: first, collect prices."),
             "runner.analyze=[conversation_stats,role_flip]", "run.id=api", "seed=3")
    db = tmp_path / "sim.db"
    results = open_results(db)
    runs, episodes, turns = results.runs(), results.episodes(run_id="api"), results.turns(run_id="api")
    assert runs["id"].tolist() == ["api"] and runs.loc[0, "status"] == "done" and runs.loc[0, "seed"] == 3
    assert runs.loc[0, "n_turns"] == len(turns) > 0 and len(episodes) == 2
    annotations = results.annotations(run_id="api")
    assert len(annotations) == db_rows(db, "SELECT count(*) FROM annotations")[0][0] > 0
    assert set(annotations["analyzer"]) == {"conversation_stats", "role_flip"}
    assert set(annotations["episode_id"]) == set(episodes["id"]) and set(annotations["run_id"]) == {"api"}
    assert all(isinstance(detail, dict) for detail in annotations["detail_json"])
    flips = results.annotations("role_flip")
    assert len(flips) == (annotations["analyzer"] == "role_flip").sum() and set(flips["analyzer"]) == {"role_flip"}
    assert results.annotations(run_id="another").empty and results.annotations(dataset="api").empty
    results.close()
