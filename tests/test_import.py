"""`sim import` on the real reference corpora in ../shared/data, and on bad input."""

import json
import sqlite3
from collections import Counter
import zipfile
from pathlib import Path

import pytest

from sim.importing import import_file
from sim.importers import ImportProblem
from sim.store import Store
from helpers import DATA
from test_bad_input import assert_one_line_error

DIALOGUES = DATA / "conversations"
SPP_LOG = DIALOGUES / "artifacts-llmgendata-spp" / "logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl"
SPP_PUZZLES = DIALOGUES / "artifacts-llmgendata-spp" / "logic_grid_puzzle_200.jsonl"


def counts(store: Store) -> tuple[int, int]:
    return store.db["episodes"].count, store.db["turns"].count


@pytest.mark.parametrize(
    ("format_name", "path", "n_episodes", "first_speakers"),
    [
        ("dailydialog", DIALOGUES / "dailydialog" / "dailydialog_sample_2624.jsonl", 2624, ["A", "B"]),
        ("casino", DIALOGUES / "casino" / "casino_dialogues.jsonl", 1030, ["mturk_agent_1", "mturk_agent_2"]),
        # The largest corpus: seconds to import.
        pytest.param("dealornodeal", DIALOGUES / "dealornodeal" / "dealornodeal_dialogues.jsonl", 6173, ["YOU", "THEM"], marks=pytest.mark.slow),
        ("persuasionforgood", DIALOGUES / "persuasionforgood" / "full_dialog.csv", 1017, ["persuader", "persuadee"]),
    ],
)
def test_human_dialogue_corpora(store: Store, format_name: str, path: Path, n_episodes: int, first_speakers) -> None:
    report = import_file(store, format_name, path, progress=False)
    assert report.n_episodes == n_episodes and counts(store) == (n_episodes, report.n_turns)
    first = next(store.episodes())
    assert first.source == "imported" and first.kind == "conversation" and first.dataset == path.stem
    assert [t.speaker for t in first.turns[:2]] == first_speakers
    assert all(t.content for t in first.turns)


def test_dailydialog_keeps_the_text_and_topic(store: Store) -> None:
    import_file(store, "dailydialog", DIALOGUES / "dailydialog" / "dailydialog_sample_2624.jsonl", progress=False)
    episode = store.episode("dailydialog_sample_2624-0")
    assert episode.task == "Ordinary Life"
    assert [t.content for t in episode.turns] == ["The kitchen stinks .", "I'll throw out the garbage ."]


def test_persuasionforgood_with_donations(store: Store) -> None:
    folder = DIALOGUES / "persuasionforgood"
    import_file(store, "persuasionforgood", folder / "full_dialog.csv", options={"info": str(folder / "full_info.csv")}, progress=False)
    episode = store.episode("full_dialog-20180904-045349_715_live")
    assert episode.meta["donations"] == {"persuader": 0.0, "persuadee": 0.0}
    assert episode.turns[0].content == "Good morning. How are you doing today?"


def test_spp_log_is_split_into_persona_turns(store: Store) -> None:
    report = import_file(store, "spp", SPP_LOG, dataset="spp", options={"puzzles": str(SPP_PUZZLES)}, progress=False)
    assert report.n_episodes == 199 and [s.line for s in report.skipped] == [168]
    episode = store.episode("spp-0")
    assert episode.meta["personas"] == ["AI Assistant (you)", "Detective", "Florist", "Musician"]
    assert episode.meta["target"] == ["2"] and episode.meta["correct"] is False
    assert [t.speaker for t in episode.turns[:3]] == ["Detective", "Florist", "Musician"]
    assert episode.turns[-1].role == "final_answer" and "is 3" in episode.turns[-1].content
    assert episode.task.startswith("Q: There are 4 houses")
    correct = sum(bool(e.meta["correct"]) for e in store.episodes())
    log = [json.loads(line) for line in SPP_LOG.read_text().splitlines()]
    assert correct == sum(bool(r["test_output_infos"][0]["correct"]) for r in log if r)


def camel_chat(flip: bool) -> dict:
    chat = {
        "role_1": "Python Programmer_ASSISTANT", "role_2": "Stock Trader_USER",
        "original_task": "Develop a trading bot", "specified_task": "Develop a momentum trading bot",
        "termination_reason": "<CAMEL_TASK_DONE>", "num_messages": 3,
        "message_1": {"role_name": "Stock Trader", "role_type": "USER", "content": "Instruction: pick a library.\nInput: None"},
        "message_2": {"role_name": "Python Programmer", "role_type": "ASSISTANT", "content": "Solution: use pandas. Next request."},
        "message_3": {"role_name": "Stock Trader", "role_type": "USER", "content": "Solution: I did it myself." if flip else "<CAMEL_TASK_DONE>"},
    }
    return chat


def test_camel_files_folders_and_zips(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "camel"
    folder.mkdir()
    for number, flip in ((1, False), (2, True)):
        (folder / f"chat_{number}.json").write_text(json.dumps(camel_chat(flip)))
    archive = tmp_path / "camel.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in sorted(folder.iterdir()):
            zipped.write(file, f"ai_society/{file.name}")
    assert import_file(store, "camel", folder, dataset="camel_dir", progress=False).n_episodes == 2
    assert import_file(store, "camel", archive, dataset="camel_zip", progress=False).n_episodes == 2
    assert import_file(store, "camel", folder / "chat_1.json", dataset="camel_one", progress=False).n_episodes == 1
    episode = store.episode("camel_zip-ai_society_chat_2")
    assert episode.task == "Develop a momentum trading bot" and episode.termination_reason == "<CAMEL_TASK_DONE>"
    assert [(t.speaker, t.role) for t in episode.turns][:2] == [("Stock Trader", "user"), ("Python Programmer", "assistant")]

    from analyzers.role_flip import RoleFlipAnalyzer
    from sim.analysis import analyze

    (summary,) = analyze(store, [RoleFlipAnalyzer()])
    flips = {m.group: m.total for m in summary.metrics if m.name == "role_flipping_happens"}
    assert summary.n_episodes == 5
    assert flips == {"camel_dir": 1, "camel_zip": 1, "camel_one": 0}  # chat_2 in the folder and in the zip


def test_table_jsonl_and_csv(store: Store) -> None:
    m4 = DATA / "free_form" / "m4-llama2-samples" / "arxiv_llama2_100.jsonl"
    report = import_file(store, "table", m4, dataset="m4", options={"text": "machine_text", "meta": "model,source"}, progress=False)
    assert report.n_episodes == 100
    episode = next(store.episodes())
    assert episode.kind == "free_text" and episode.meta["model"] and episode.turns[0].content
    emails = DATA / "free_form" / "popquorn-email-rewriting" / "email_rewriting_raw_data.csv"
    options = {"text": "revised email", "conversation": "instance_id", "speaker": "user_id", "kind": "free_text"}
    report = import_file(store, "table", emails, dataset="emails", options=options, progress=False)
    assert report.n_turns == 2346 and report.n_episodes < report.n_turns


def test_same_file_twice_adds_nothing(sim, tmp_path: Path) -> None:
    path = DIALOGUES / "dailydialog" / "dailydialog_sample_2624.jsonl"
    first = sim("import", "dailydialog", str(path))
    assert first.returncode == 0, first.stderr
    assert "imported 2624 episodes" in first.stdout
    second = sim("import", "dailydialog", str(path))
    assert second.returncode == 0 and "already imported" in second.stdout
    with sqlite3.connect(tmp_path / "runs" / "sim.db") as conn:
        assert conn.execute("SELECT count(*) FROM episodes").fetchone() == (2624,)
        assert conn.execute("SELECT count(*) FROM imports").fetchone() == (1,)


def broken_copy(tmp_path: Path, line: int, replacement: bytes) -> Path:
    lines = (DIALOGUES / "dailydialog" / "dailydialog_sample_2624.jsonl").read_bytes().splitlines(keepends=True)
    lines[line - 1] = replacement
    target = tmp_path / "broken.jsonl"
    target.write_bytes(b"".join(lines))
    return target


@pytest.mark.parametrize(
    ("line", "replacement", "problem"),
    [
        (1500, b'{"dialogue_idx": 1499, "turns": [\n', "broken.jsonl:1500: malformed JSON"),
        (2000, b'{"dialogue_idx": 7, "topic": "x", "turns": [{"speaker": "A", "text": "caf\xe9"}]}\n', "broken.jsonl:2000: not valid UTF-8"),
        (10, b'{"dialogue_idx": 9, "turns": [{"speaker": "A"}]}\n', "broken.jsonl:10: missing field 'text'"),
        (20, b'{"dialogue_idx": 3, "turns": []}\n', "episode 'broken-3' already exists"),
    ],
)
def test_a_bad_record_imports_nothing(sim, tmp_path: Path, line: int, replacement: bytes, problem: str) -> None:
    path = broken_copy(tmp_path, line, replacement)
    result = sim("import", "dailydialog", str(path))
    assert_one_line_error(result, problem)
    with sqlite3.connect(tmp_path / "runs" / "sim.db") as conn:
        assert conn.execute("SELECT count(*) FROM episodes").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM turns").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM imports").fetchone() == (0,)


def test_bad_import_arguments(sim, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    assert_one_line_error(sim("import", "nope", str(tmp_path / "empty.jsonl")), "unknown import format 'nope'", "dailydialog")
    assert_one_line_error(sim("import", "casino", str(tmp_path / "absent.jsonl")), "absent.jsonl: no such file")
    assert_one_line_error(sim("import", "casino", str(tmp_path / "empty.jsonl")), "empty.jsonl: the file is empty")
    assert_one_line_error(sim("import", "persuasionforgood", str(tmp_path / "wrong.csv")), "wrong.csv:1: missing column(s) B2, B4, Turn, Unit")
    assert_one_line_error(sim("import", "table", str(tmp_path / "wrong.csv")), "need -o text=COLUMN")
    assert_one_line_error(sim("import", "table", str(tmp_path / "wrong.csv"), "-o", "text"), "expected KEY=VALUE")
    assert_one_line_error(sim("import", "table", str(tmp_path / "wrong.csv"), "-o", "text=body"), "missing column(s) body")
    assert_one_line_error(sim("import", "dailydialog"), "needs FORMAT and PATH")
    (tmp_path / "fields.jsonl").write_text('{"id": 1, "body": "x"}\n')
    assert_one_line_error(sim("import", "dailydialog", str(tmp_path / "fields.jsonl")), "fields.jsonl:1: missing field 'turns'")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty.jsonl", "fields.jsonl", "wrong.csv"], "no database was created"


def test_import_problem_names_file_and_line(tmp_path: Path) -> None:
    assert str(ImportProblem(tmp_path / "f.jsonl", 7, "bad")) == f"{tmp_path / 'f.jsonl'}:7: bad"


TASK_LABELS = DATA / "task_labels"
PREFERENCES = DATA / "preferences" / "artifacts-llmgendata"


@pytest.mark.slow
def test_task_label_files(store: Store) -> None:
    inter = TASK_LABELS / "artifacts-llmgendata" / "SBIC_intermodel.jsonl"
    assert import_file(store, "task_labels", inter, progress=False).n_episodes == 15645
    first = store.episode("SBIC_intermodel-1")
    assert first.kind == "task_label" and first.meta["model"] == "koala" and first.meta["task"] == "SBIC"
    assert first.meta["human_labels"] == [2, 0, 0] and first.meta["model_labels"] == [2, 2, 2, 0, 0]
    assert [t.role for t in first.turns] == ["item"] + ["human_annotator"] * 3 + ["model_annotator"] * 5
    third = store.episode("SBIC_intermodel-3")
    assert third.meta["model_labels"][-1] is None and len(third.turns) == 1 + 3 + 4  # a missing label has no turn

    intra = TASK_LABELS / "artifacts-llmgendata" / "ghc_intramodel.jsonl"
    assert import_file(store, "task_labels", intra, progress=False).n_episodes == 13775
    assert store.episode("ghc_intramodel-1").meta["params"] is not None

    assert import_file(store, "task_labels", TASK_LABELS / "artifacts-llmgendata" / "mismatch_gpt3.csv", progress=False).n_episodes == 8032
    mismatch = store.episode("mismatch_gpt3-2")
    assert mismatch.meta["model"] == "gpt3" and mismatch.meta["human_labels"] == [3.0, 4.0, 3.0, 4.0, 3.0]

    raters = TASK_LABELS / "popquorn" / "offensiveness_raw_data.csv"
    report = import_file(store, "task_labels", raters, options={"label": "offensiveness"}, progress=False)
    assert report.n_episodes == 1500
    item = store.episode("offensiveness_raw_data-530")
    assert len(item.meta["human_labels"]) == len(item.meta["raters"]) >= 1 and item.meta["raters"][0]["gender"]


def test_preference_files(store: Store) -> None:
    human, gpt4 = PREFERENCES / "mtbench_human_model_preferences.csv", PREFERENCES / "mtbench_gpt4_model_preferences.csv"
    options = {"judge": "human", "pair_with": str(gpt4), "other_judge": "gpt-4"}
    assert import_file(store, "preferences", human, dataset="mtbench", options=options, progress=False).n_episodes == 878
    pair = store.episode("mtbench-2")
    assert set(pair.meta["judgments"]) == {"human", "gpt-4"} and [t.role for t in pair.turns] == ["output_1", "output_2", "judge", "judge"]

    paired = PREFERENCES / "mtbench-gpt4-human-pref.csv"
    assert import_file(store, "preferences", paired, dataset="mtbench_paired", progress=False).n_episodes == 882
    row = store.episode("mtbench_paired-2")
    assert row.meta["judgments"] == {"human": "output_2", "gpt-4": "output_2"} and row.turns[0].speaker == "alpaca-13b"
    # The same human judgments in both files (878 of the 882 pairs in the training-format CSV): the CSV's
    # 0/1/2 targets must read as output 1, output 2 and tie to match the file that names the winner.
    human_choices = {
        dataset: dict(Counter(e.meta["judgments"]["human"] for e in store.episodes(dataset=dataset)))
        for dataset in ("mtbench", "mtbench_paired")
    }
    assert human_choices["mtbench_paired"] == {"output_1": 165, "output_2": 497, "tie": 220}
    assert human_choices["mtbench"] == {"output_1": 165, "output_2": 493, "tie": 220}

    rankings = PREFERENCES / "cobbler_rankings" / "human.json"
    assert import_file(store, "preferences", rankings, dataset="cobbler_human", progress=False).n_episodes == 50
    example = store.episode("cobbler_human-example_1")
    assert example.meta["evaluator"] == "human" and len(example.meta["ranking"]) == len(example.turns) - 2
    assert example.task.startswith("Did people in Korea")


def test_preference_files_must_pair_up(sim, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("output1,output2,target\na,b,1\n")
    result = sim("import", "preferences", str(PREFERENCES / "mtbench_human_model_preferences.csv"), "-o", f"pair_with={other}")
    assert_one_line_error(result, "other.csv: has 1 pairs but mtbench_human_model_preferences.csv has 878")


@pytest.mark.slow
def test_instruction_files(store: Store) -> None:
    seeds = DATA / "instructions" / "self-instruct" / "seed_tasks.jsonl"
    assert import_file(store, "instructions", seeds, progress=False).n_episodes == 175
    seed = store.episode("seed_tasks-seed_task_0-0")
    assert seed.meta["author"] == "human" and seed.turns[0].role == "instruction" and seed.turns[-1].role == "output"
    codegen = DATA / "instructions" / "gpteacher" / "codegen-instruct.json"
    assert import_file(store, "instructions", codegen, progress=False).n_episodes == 4535
    assert store.episode("codegen-instruct-1").meta["author"] == "llm"
    t0 = DATA / "instructions" / "t0-promptsource-sample" / "t0_train_5_per_template.jsonl"
    assert import_file(store, "instructions", t0, progress=False).n_episodes == 1415
    rerun = DATA / "instructions" / "self-instruct-pipeline-rerun" / "machine_generated_instructions.jsonl"
    assert import_file(store, "instructions", rerun, options={"author": "llm"}, progress=False).n_episodes == 67


@pytest.mark.slow
def test_free_text_files(store: Store) -> None:
    m4 = DATA / "free_form" / "m4-llama2-samples" / "wikihow_llama2_100.jsonl"
    assert import_file(store, "free_text", m4, dataset="m4", progress=False).n_episodes == 200
    human, machine = store.episode("m4-1-human"), store.episode("m4-1-llm")
    assert (human.meta["author"], machine.meta["author"]) == ("human", "llm") and human.meta["pair"] == machine.meta["pair"]
    assert human.task == machine.task and human.turns[-1].content != machine.turns[-1].content

    hc3 = DATA / "free_form" / "hc3-plus" / "val_hc3_si_en.jsonl"
    assert import_file(store, "free_text", hc3, dataset="hc3", progress=False).n_episodes == 10641
    predictions = DATA / "free_form" / "self-instruct-user-oriented-predictions" / "text-davinci-003_predictions.jsonl"
    assert import_file(store, "free_text", predictions, dataset="si", progress=False).n_episodes == 504
    assert store.episode("si-1-llm").meta["writer"] == "text-davinci-003"
    emails = DATA / "free_form" / "popquorn-email-rewriting" / "email_rewriting_raw_data.csv"
    assert import_file(store, "free_text", emails, dataset="emails", progress=False).n_episodes == 2346


def test_parquet_and_hugging_face_datasets(sim, store: Store, tmp_path: Path, monkeypatch) -> None:
    import datasets

    m4 = DATA / "free_form" / "m4-llama2-samples" / "reddit_llama2_100.jsonl"
    mapping = {"text": "human_text", "task": "prompt", "meta": "source"}
    report = import_file(store, "hf", m4, dataset="hf_json", options={"builder": "json", **mapping}, progress=False)
    assert report.n_episodes == 100
    assert import_file(store, "hf", m4, dataset="hf_json", options={"builder": "json", **mapping}, progress=False).already_imported

    loaded = datasets.load_dataset("json", data_files=str(m4), split="train")
    loaded.to_parquet(str(tmp_path / "m4.parquet"))
    loaded.save_to_disk(str(tmp_path / "m4_saved"))
    assert import_file(store, "table", tmp_path / "m4.parquet", dataset="parquet", options=mapping, progress=False).n_episodes == 100
    assert import_file(store, "hf", tmp_path / "m4_saved", dataset="disk", options={"builder": "disk", **mapping}, progress=False).n_episodes == 100
    texts = {
        name: [e.turns[0].content for e in store.episodes() if e.dataset == name] for name in ("hf_json", "parquet", "disk")
    }
    first_line = json.loads(m4.read_text().splitlines()[0])
    assert texts["hf_json"][0] == first_line["human_text"] and texts["hf_json"] == texts["parquet"] == texts["disk"]

    result = sim("import", "hf:json", str(m4), "-o", "text=no_such_column")
    assert_one_line_error(result, "missing column(s) no_such_column")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert_one_line_error(sim("import", "hf:someone/nothing", "-o", "text=t"), "hf:someone/nothing: cannot load")


@pytest.mark.parametrize(
    ("format_name", "path", "actions"),
    [
        # CaSiNo's interface actions (SOURCES.md: 1,181 submitted, 1,005 accepted, 167 rejected deals, 25 walk-aways).
        ("casino", DIALOGUES / "casino" / "casino_dialogues.jsonl", {"Submit-Deal": 1181, "Accept-Deal": 1005, "Reject-Deal": 167, "Walk-Away": 25}),
        # Every Deal or No Deal dialogue ends with the game's item selection.
        pytest.param("dealornodeal", DIALOGUES / "dealornodeal" / "dealornodeal_dialogues.jsonl", {"<selection>": 6173}, marks=pytest.mark.slow),
        ("dailydialog", DIALOGUES / "dailydialog" / "dailydialog_sample_2624.jsonl", {}),
    ],
)
def test_deal_actions_are_marked_as_actions(store: Store, format_name: str, path: Path, actions: dict[str, int]) -> None:
    """Non-utterance turns are stored as `action` turns, every other turn as an utterance; analyzers read none of them."""
    report = import_file(store, format_name, path, progress=False)
    kinds = dict(store.db.execute("SELECT kind, count(*) FROM turns GROUP BY kind").fetchall())
    stored = Counter(dict(store.db.execute("SELECT content, count(*) FROM turns WHERE kind = 'action' GROUP BY content").fetchall()))
    assert stored == Counter(actions)
    assert kinds.get("action", 0) == sum(actions.values()) and kinds["utterance"] == report.n_turns - sum(actions.values())
    read = [turn for episode in store.episodes(text_only=True) for turn in episode.turns]
    assert len(read) == kinds["utterance"] and not any(turn.content in actions for turn in read)
    full = [turn for episode in store.episodes() for turn in episode.turns]
    assert len(full) == report.n_turns and Counter(t.content for t in full if t.kind == "action") == Counter(actions)
    assert report.turn_kinds == Counter({"utterance": kinds["utterance"], **({"action": sum(actions.values())} if actions else {})})


def test_import_line_counts_utterances_and_actions_apart(sim) -> None:
    """The import's summary does not pass CaSiNo's deal actions off as turns of the conversation."""
    result = sim("import", "casino", str(DIALOGUES / "casino" / "casino_dialogues.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "imported 1030 episodes (14297 turns: 2378 actions, 11919 utterances)" in result.stdout
