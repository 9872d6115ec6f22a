"""Every scenario end to end on the embedded model on its built-in items; what a scenario takes from a real reference
file, and how it refuses bad input, on the scripted model."""

import json
from pathlib import Path

import pandas as pd
import pytest

from analyzers.text import words
from helpers import DATA, db_rows as rows
from sim.api import open_results
from sim.spp import is_correct
from test_bad_input import assert_one_line_error

QUIET = ["runner.progress=false", "runner.analyze=[]"]


def analyzed_by(name: str) -> list[str]:
    """Overrides for a quiet run followed by one analyzer."""
    return ["runner.progress=false", f"runner.analyze=[{name}]"]


def annotation_values(db: Path, analyzer: str) -> dict[str, dict[str, float]]:
    """Episode-level annotation values of one analyzer, by episode and name."""
    values: dict[str, dict[str, float]] = {}
    for episode_id, name, value in rows(db, f"SELECT episode_id, name, value FROM annotations WHERE analyzer = '{analyzer}' AND turn_idx IS NULL"):
        values.setdefault(episode_id, {})[name] = value
    return values
SPP_PUZZLES = DATA / "conversations" / "artifacts-llmgendata-spp" / "logic_grid_puzzle_200.jsonl"


def episodes_of(db: Path) -> list[dict]:
    columns = ("id", "kind", "status", "termination_reason", "n_turns", "meta_json", "task")
    return [dict(zip(columns, row)) for row in rows(db, f"SELECT {', '.join(columns)} FROM episodes ORDER BY id")]


def roles_of(db: Path, episode_id: str) -> list[str]:
    return [r for (r,) in rows(db, f"SELECT role FROM turns WHERE episode_id = '{episode_id}' ORDER BY idx")]


@pytest.mark.slow
def test_task_labels_defaults_with_personas_and_confidences(sim, tmp_path: Path) -> None:
    result = sim(
        "run", "scenario=task_labels", *QUIET, "scenario.n_episodes=2", "scenario.annotators=3",
        "scenario.personas=[a nurse from Ohio,a retired engineer]", "backend.logits_all=true", "backend.n_ctx=1024",
    )
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    episodes = episodes_of(db)
    assert len(episodes) == 2 and all(e["kind"] == "task_label" and e["n_turns"] == 4 for e in episodes)
    meta = json.loads(episodes[0]["meta_json"])
    assert meta["personas"] == ["a nurse from Ohio", "a retired engineer", "a nurse from Ohio"]
    assert len(meta["model_labels"]) == 3
    assert all(label in (0.0, 1.0, 2.0, None) for label in meta["model_labels"])
    for label, confidence in zip(meta["model_labels"], meta["model_confidences"]):
        assert (confidence is None) == (label is None)
        assert confidence is None or 0 < confidence <= 1
    assert roles_of(db, episodes[0]["id"]) == ["item", "model_annotator", "model_annotator", "model_annotator"]
    assert all(lp is not None and lp <= 0 for (lp,) in rows(db, "SELECT logprob FROM turns WHERE role='model_annotator'"))

    frame = open_results(db).task_labels()
    assert list(frame["text"]) == ["The service was slow and the food arrived cold.", "The meeting has been moved to Thursday at 3 pm."]
    assert frame["model_labels"].map(len).tolist() == [3, 3]
    assert frame["model"].tolist() == ["SmolLM2-135M-Instruct.Q4_1.gguf"] * 2


@pytest.mark.slow
def test_task_labels_on_a_real_file_keeps_human_labels(sim, tmp_path: Path) -> None:
    reference = DATA / "task_labels" / "artifacts-llmgendata" / "ghc_intermodel.jsonl"
    result = sim(
        "run", "scenario=task_labels", *analyzed_by("task_labels"), "scenario.n_episodes=2", "scenario.annotators=2",
        f"scenario.reference={reference}", "scenario.labels=[not hateful,hateful]",
        "scenario.instruction=Is this text hateful?", "scenario.task=ghc",
    )
    assert result.returncode == 0, result.stderr
    frame = open_results(tmp_path / "runs" / "sim.db").task_labels()
    # The analyzer ran after the run and compared the model's labels with the reference's human labels.
    values = annotation_values(tmp_path / "runs" / "sim.db", "task_labels")
    for episode_id, labels in zip(frame["episode_id"], frame["model_labels"]):
        parsed = [label for label in labels if label is not None]
        assert (episode_id in values) == bool(parsed)
        if parsed:
            assert {"majority_match", "minority_match", "js_distance"} <= set(values[episode_id])
            assert values[episode_id]["model_unanimous"] == float(len(set(parsed)) == 1)
    assert "task_labels (v4" in result.stdout
    first = json.loads((DATA / "task_labels" / "artifacts-llmgendata" / "ghc_intermodel.jsonl").open().readline())
    assert frame["text"].iloc[0] == first["text"]
    assert frame["human_labels"].iloc[0] == [float(v) for v in first["human_annots"] if v is not None]
    assert frame["text"].nunique() == 2


@pytest.mark.slow
def test_preferences_judges_each_pair_in_both_orders(sim, tmp_path: Path) -> None:
    result = sim("run", "scenario=preferences", *analyzed_by("preferences"), "scenario.n_episodes=2")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    frame = open_results(db).preferences()
    values = annotation_values(db, "preferences")
    codes = {"output_1": 1.0, "output_2": -1.0, "tie": 0.0}
    for episode_id, judgments, consistent in zip(frame["episode_id"], frame["judgments"], frame["position_consistent"]):
        assert values[episode_id]["choice[human]"] == codes[judgments["human"]]
        if pd.notna(consistent):  # an unparsed judgment leaves it empty (NaN in the frame)
            assert values[episode_id]["position_consistent[judge]"] == float(consistent)
        else:
            assert "position_consistent[judge]" not in values[episode_id]
    assert len(frame) == 2
    assert frame["prompt"].iloc[0] == "How do I boil an egg?"
    for judgments, swapped, consistent in zip(frame["judgments"], frame["swapped_judgments"], frame["position_consistent"]):
        assert judgments["judge"] in ("output_1", "output_2", "tie", None)
        assert swapped["judge"] in ("output_1", "output_2", "tie", None)
        if None not in (judgments["judge"], swapped["judge"]):
            assert bool(consistent) == (judgments["judge"] == swapped["judge"])
    assert frame["judgments"].iloc[0]["human"] == "output_1"
    episode = episodes_of(db)[0]["id"]
    assert roles_of(db, episode) == ["prompt", "output_1", "output_2", "judge", "judge_swapped"]
    shown = rows(db, f"SELECT content FROM turns WHERE episode_id = '{episode}' AND role LIKE 'judge%'")
    assert len(shown) == 2


def test_preferences_on_a_real_file(sim, scripted, tmp_path: Path) -> None:
    reference = DATA / "preferences" / "artifacts-llmgendata" / "mtbench_human_model_preferences.csv"
    result = sim(
        "run", "scenario=preferences", *QUIET, *scripted("Output (a)"), "scenario.n_episodes=1", "scenario.max_tokens=4",
        f"scenario.reference={reference}", "scenario.reference_options={judge: human}",
    )
    assert result.returncode == 0, result.stderr
    frame = open_results(tmp_path / "runs" / "sim.db").preferences()
    assert len(frame) == 1 and frame["judgments"].iloc[0]["human"] in ("output_1", "output_2", "tie")


@pytest.mark.slow
def test_free_text_samples_per_prompt_share_a_pair(sim, tmp_path: Path) -> None:
    result = sim(
        "run", "scenario=free_text", *analyzed_by("free_text"), "scenario.n_episodes=2", "scenario.samples_per_prompt=2",
        "scenario.max_tokens=24",
    )
    assert result.returncode == 0, result.stderr
    frame = open_results(tmp_path / "runs" / "sim.db").free_text()
    values = annotation_values(tmp_path / "runs" / "sim.db", "free_text")
    for episode_id, text in zip(frame["episode_id"], frame["text"]):
        assert values[episode_id]["words"] == len(words(text))
    assert len(frame) == 4
    assert frame["pair"].tolist() == [0, 0, 1, 1]
    assert set(frame["author"]) == {"llm"} and all(frame["text"].str.len() > 0)
    assert frame["prompt"].iloc[0] == "Explain why the sky is blue to a ten-year-old."


def test_free_text_on_a_real_file_keeps_the_human_text(sim, scripted, tmp_path: Path) -> None:
    reference = DATA / "free_form" / "m4-llama2-samples" / "arxiv_llama2_100.jsonl"
    result = sim("run", "scenario=free_text", *QUIET, *scripted("We study the sky."), "scenario.n_episodes=1", "scenario.max_tokens=24", f"scenario.reference={reference}")
    assert result.returncode == 0, result.stderr
    (episode,) = episodes_of(tmp_path / "runs" / "sim.db")
    first = json.loads(reference.open().readline())
    assert episode["task"] == first["prompt"]
    assert json.loads(episode["meta_json"])["human_text"] == first["human_text"]


@pytest.mark.slow
def test_instructions_bootstrap_in_rounds_with_lineage(sim, tmp_path: Path) -> None:
    result = sim(
        "run", "scenario=instructions", *analyzed_by("instructions"), "scenario.n_episodes=4", "scenario.round_size=2",
        "scenario.max_tokens=48", "scenario.n_human_examples=3", "scenario.n_machine_examples=1",
    )
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    frame = open_results(db).instructions()
    values = annotation_values(db, "instructions")
    for episode_id, instruction in zip(frame["episode_id"], frame["instruction"]):
        if instruction:
            assert values[episode_id]["instruction_words"] == len(words(instruction))
    assert "distinct_1@50" in result.stdout
    assert len(frame) == 4
    assert set(frame["termination_reason"]) <= {"accepted", "near_duplicate", "invalid"}
    for _, row in frame.iterrows():
        if row["termination_reason"] != "invalid":
            assert 0 <= row["rouge_l_max"] <= 1 and row["instruction"]
    accepted_first_round = set(frame[(frame["termination_reason"] == "accepted") & frame["episode_id"].str[-1].isin(["0", "1"])]["episode_id"])
    second_round_parents = {p for parents in frame["parents"].iloc[2:] for p in parents}
    seeds = {p for p in second_round_parents if p.startswith("seed-")}
    assert len(seeds) >= 3
    # A machine example in round 2 can only come from round 1's accepted instructions.
    assert second_round_parents - seeds <= accepted_first_round
    if accepted_first_round:
        assert second_round_parents & accepted_first_round


def test_instructions_on_the_real_seed_tasks(sim, scripted, tmp_path: Path) -> None:
    reference = DATA / "instructions" / "self-instruct" / "seed_tasks.jsonl"
    result = sim("run", "scenario=instructions", *QUIET, *scripted("Write a haiku about rain."), "scenario.n_episodes=1", "scenario.max_tokens=32", f"scenario.reference={reference}")
    assert result.returncode == 0, result.stderr
    frame = open_results(tmp_path / "runs" / "sim.db").instructions()
    seed_ids = {json.loads(line)["id"] for line in reference.open()}
    assert len(frame) == 1 and len(frame["parents"].iloc[0]) == 4
    assert all(p.split("-", 1)[1].rsplit("-", 1)[0] in seed_ids for p in frame["parents"].iloc[0])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "agents"])
def test_spp_scores_the_final_answer(sim, tmp_path: Path, mode: str) -> None:
    result = sim("run", "scenario=spp", *QUIET, "scenario.n_episodes=1", f"scenario.mode={mode}", "scenario.max_turns=3", "scenario.max_tokens=64")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    frame = open_results(db).conversations()
    (row,) = frame.itertuples()
    assert row.target == ["3"] and row.termination_reason in ("final_answer", "max_turns", "no_final_answer")
    assert row.correct == is_correct(row.final_answer, ["3"])
    speakers = [s for (s,) in rows(db, "SELECT speaker FROM turns ORDER BY idx")]
    if mode == "agents":
        assert speakers[:3] == ["AI Assistant", "Logic Puzzle Expert", "Critical Thinker"]
    else:
        assert speakers and json.loads(episodes_of(db)[0]["meta_json"])["raw_response"]


def test_spp_on_the_real_puzzles(sim, scripted, tmp_path: Path) -> None:
    result = sim("run", "scenario=spp", *QUIET, *scripted("Final answer: 3"), "scenario.n_episodes=1", "scenario.max_tokens=48", f"scenario.reference={SPP_PUZZLES}")
    assert result.returncode == 0, result.stderr
    (episode,) = episodes_of(tmp_path / "runs" / "sim.db")
    first = json.loads(SPP_PUZZLES.open().readline())
    assert episode["task"] == first["inputs"]
    assert json.loads(episode["meta_json"])["target"] == first["targets"]


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["round_robin", "moderator"])
def test_group_discussion_and_its_transition_graph(sim, tmp_path: Path, policy: str) -> None:
    result = sim("run", "scenario=group", *QUIET, "scenario.n_episodes=1", "scenario.max_turns=4", "scenario.max_tokens=32", f"scenario.policy={policy}")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    (episode,) = episodes_of(db)
    speakers = [s for (s,) in rows(db, "SELECT speaker FROM turns ORDER BY idx")]
    assert set(speakers) <= {"Maria", "Tom", "Aisha"} and speakers[0] == "Maria"
    if policy == "round_robin":
        assert speakers == ["Maria", "Tom", "Aisha", "Maria"] and episode["termination_reason"] == "max_turns"
    graph = json.loads(episode["meta_json"])["transitions"]
    assert sum(weight for _, _, weight in graph["edges"]) == len(speakers) - 1
    assert graph["n_speakers"] == len(set(speakers))


def test_group_on_real_dialogues_takes_their_opening_lines(sim, scripted, tmp_path: Path) -> None:
    reference = DATA / "conversations" / "dailydialog" / "dailydialog_sample_2624.jsonl"
    result = sim("run", "scenario=group", *QUIET, *scripted("I agree, let us go on."), "scenario.n_episodes=1", "scenario.max_turns=3", "scenario.max_tokens=24", f"scenario.reference={reference}")
    assert result.returncode == 0, result.stderr
    (episode,) = episodes_of(tmp_path / "runs" / "sim.db")
    assert episode["task"] == json.loads(reference.open().readline())["turns"][0]["text"]
    assert episode["n_turns"] == 3


def test_roleplay_replays_the_tasks_of_an_imported_camel_dataset(sim, scripted, tmp_path: Path) -> None:
    chat = {
        "role_1": "Python Programmer_ASSISTANT", "role_2": "Stock Trader_USER", "original_task": "Develop a trading bot",
        "message_1": {"role_name": "Stock Trader", "role_type": "USER", "content": "Instruction: pick a library.\nInput: None"},
        "message_2": {"role_name": "Python Programmer", "role_type": "ASSISTANT", "content": "Solution: pandas. Next request."},
    }
    (tmp_path / "chat.json").write_text(json.dumps(chat))
    assert sim("import", "camel", "chat.json", "--dataset", "camel_ref").returncode == 0
    result = sim("run", *QUIET, *scripted("Instruction: Begin. Input: None"), "scenario.reference=camel_ref", "scenario.n_episodes=2", "scenario.max_turns=2", "scenario.max_tokens=16")
    assert result.returncode == 0, result.stderr
    generated = [e for e in episodes_of(tmp_path / "runs" / "sim.db") if e["id"].startswith("2")]
    assert [e["task"] for e in generated] == ["Develop a trading bot"] * 2
    roles = rows(tmp_path / "runs" / "sim.db", f"SELECT roles_json FROM episodes WHERE id = '{generated[0]['id']}'")
    assert json.loads(roles[0][0]) == {"user": "Stock Trader", "assistant": "Python Programmer"}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["scenario=task_labels", "scenario.reference=/nonexistent/labels.jsonl"], ("scenario.reference", "/nonexistent/labels.jsonl")),
        (["scenario.tasks=[]"], ("holds no usable items for scenario=roleplay",)),
        (["scenario=task_labels", "scenario.labels=[]"], ("scenario.labels is empty",)),
        (["scenario=task_labels", "scenario.annotators=0"], ("scenario.annotators must be at least 1",)),
        (["scenario=free_text", f"scenario.reference={DATA / 'free_form' / 'hc3-plus' / 'val_hc3_si_en.jsonl'}"], ("holds no usable items",)),
        (["scenario=spp", f"scenario.reference={SPP_PUZZLES}", "scenario.reference_format=table", "scenario.reference_options={text: question}"], ("missing column(s) question",)),
        (["scenario=group", "scenario.personas=[{name: A, description: a}]"], ("at least 3 members",)),
        (["scenario=roleplay", "scenario.guards=[{analyzer: role_flip, action: explode}]"], ("scenario.guards[0].action",)),
        (["scenario=roleplay", "scenario.guards=[{analyzer: nope}]"], ("unknown analyzer 'nope'",)),
    ],
)
def test_bad_scenario_input_is_one_line_and_stores_nothing(sim, scripted, tmp_path: Path, args, fragments) -> None:
    assert_one_line_error(sim("run", *QUIET, *scripted(), *args), *fragments)
    db = tmp_path / "runs" / "sim.db"
    assert not db.exists() or rows(db, "SELECT count(*) FROM runs") == [(0,)]
