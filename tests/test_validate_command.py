"""`sim validate` end to end on real PersuasionForGood dialogues: the card, what the database gains (only the
summary rows), what `sim analyze` then says, the report files, and bad input refused in one line."""

import csv
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from helpers import DATA

PFG = DATA / "conversations" / "persuasionforgood" / "full_dialog.csv"


def first_dialogues(path: Path, n: int) -> Path:
    """A copy of the first `n` PersuasionForGood dialogues (all their rows), as the original CSV."""
    with PFG.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        kept, rows = [], []
        for row in reader:
            if row["B2"] not in kept:
                if len(kept) == n:
                    break
                kept.append(row["B2"])
            rows.append(row)
        columns = reader.fieldnames
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def pfg_db(tmp_path: Path, sim) -> Path:
    """A store holding 30 real dialogues as dataset `pfg` and 10 as `few`."""
    assert sim("import", "persuasionforgood", str(first_dialogues(tmp_path / "pfg.csv", 30)), "--dataset", "pfg").returncode == 0
    assert sim("import", "persuasionforgood", str(first_dialogues(tmp_path / "few.csv", 10)), "--dataset", "few").returncode == 0
    return tmp_path / "runs" / "sim.db"


def table_dump(db: Path, skip: str = "validations") -> str:
    """Every row of every table but `skip`, as text."""
    with sqlite3.connect(db) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") if n != skip]
        return "\n".join(f"{name}: {sorted(map(repr, conn.execute(f'SELECT * FROM [{name}]')))}" for name in names)


def test_a_loop_card_is_printed_stored_and_cited_by_analyze(pfg_db: Path, sim, tmp_path: Path) -> None:
    before = sim("analyze", "--dataset", "pfg", "--analyzer", "conversation_stats")
    assert before.returncode == 0 and "not validated with these settings" in before.stdout
    dump = table_dump(pfg_db)
    result = sim("validate", "--dataset", "pfg", "--analyzer", "conversation_stats", "--kinds", "loop", "--json", "--out", "report")
    assert result.returncode == 0, result.stderr
    (card,) = json.loads(result.stdout)["cards"]
    (loop,) = card["results"]
    assert (card["analyzer"], loop["kind"], loop["score"], loop["flag"]) == ("conversation_stats", "loop", "loop_score", "looped")
    assert loop["n_conversations"] == 30 and loop["n_perturbed_conversations"] == 15 and loop["n_replaced"] > 15
    assert loop["auc"]["mean"] > 0.9 and loop["auc"]["ci_low"] < loop["auc"]["mean"] < loop["auc"]["ci_high"]
    assert loop["recall"]["mean"] > 0.8 and loop["false_flag_rate"]["mean"] < 0.05
    # The corpus is perturbed in a scratch store: the database gains the summary row and nothing else.
    assert table_dump(pfg_db) == dump
    with sqlite3.connect(pfg_db) as conn:
        assert conn.execute("SELECT analyzer, dataset, kind, seed FROM validations").fetchall() == [("conversation_stats", "pfg", "loop", 0)]
    assert (tmp_path / "report" / "roc.png").read_bytes().startswith(b"\x89PNG")
    assert "| AUC [95% CI] |" in (tmp_path / "report" / "validity.md").read_text()
    after = sim("analyze", "--dataset", "pfg", "--analyzer", "conversation_stats", "--json")
    (analyzed,) = json.loads(after.stdout)["analyzers"]
    assert analyzed["validity"][0]["kind"] == "loop" and analyzed["validity"][0]["dataset"] == "pfg"
    assert any("validated by sim validate: loop on pfg: AUC" in note for note in analyzed["notes"])
    # Other settings, other validity: the stored card does not speak for them.
    other = sim("analyze", "--dataset", "pfg", "--analyzer", "role_flip")
    assert "not validated with these settings" in other.stdout


def test_the_same_seed_gives_the_same_card_and_no_record_leaves_the_file_as_it_was(pfg_db: Path, sim) -> None:
    args = ("validate", "--dataset", "pfg", "--analyzer", "conversation_stats", "--kinds", "loop", "--json", "--seed", "4")
    sim("analyze", "--dataset", "pfg", "--analyzer", "conversation_stats")  # the store at its newest schema
    digest = hashlib.sha256(pfg_db.read_bytes()).hexdigest()
    first, second = sim(*args, "--no-record"), sim(*args, "--no-record")
    assert first.returncode == 0 and json.loads(first.stdout) == json.loads(second.stdout)
    assert hashlib.sha256(pfg_db.read_bytes()).hexdigest() == digest
    assert json.loads(sim(*args[:-1], "5", "--no-record").stdout) != json.loads(first.stdout)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--dataset", "nope"), "'nope' holds 0 conversations"),
        (("--dataset", "few"), "'few' holds 10 conversations in"),
        (("--dataset", "pfg", "--analyzer", "free_text"), "free_text has no per-turn score to validate"),
        (("--dataset", "pfg", "--analyzer", "conversation_stats", "--kinds", "marker"), "no selected analyzer detects 'marker'"),
        (("--dataset", "pfg", "--analyzer", "role_flip"), "no selected analyzer detects a perturbation that fits 'pfg'"),
        (("--dataset", "pfg", "--kinds", "shuffle"), "kinds are a comma-separated list of swap, digression, loop, marker"),
        (("--dataset", "pfg", "--rate", "1.5"), "--rate"),
        (("--dataset", "pfg", "--distractors", "nope"), "no imported dataset 'nope'"),
        ((), "exactly one of --dataset or --run"),
        (("--dataset", "pfg", "scenario.max_turns=3"), "sim validate takes analyzer and judge settings"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(pfg_db: Path, sim, args: tuple[str, ...], message: str) -> None:
    dump = table_dump(pfg_db, skip="")
    result = sim("validate", *args)
    # A bad option is a usage error (2); a bad analyzer setting is refused as in every command (1).
    assert result.returncode == (1 if "=" in "".join(args) else 2) and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert table_dump(pfg_db, skip="") == dump


def test_role_flip_finds_every_inserted_marker(tmp_path: Path, sim) -> None:
    chats = tmp_path / "camel"
    chats.mkdir()
    for number in range(24):
        messages = {}
        for i in range(8):
            user = i % 2 == 0
            text = (f"Instruction: gather the data for step {i} of plan {number}.\nInput: None" if user
                    else f"Solution: I gathered the data for step {i - 1} of plan {number}. Next request.")
            messages[f"message_{i + 1}"] = {"role_type": "USER" if user else "ASSISTANT", "role_name": "Planner" if user else "Analyst", "content": text}
        (chats / f"chat_{number:02d}.json").write_text(json.dumps({"role_1": "Analyst", "role_2": "Planner", "original_task": "Plan", **messages}))
    assert sim("import", "camel", str(chats), "--dataset", "camel").returncode == 0
    result = sim("validate", "--dataset", "camel", "--kinds", "marker", "--json")
    assert result.returncode == 0, result.stderr
    (card,) = json.loads(result.stdout)["cards"]
    (marker,) = card["results"]
    assert card["analyzer"] == "role_flip" and marker["n_replaced"] == 12  # round(0.2 * 6) = 1 turn in each of 12 chats
    assert marker["recall"]["mean"] == 1.0 and marker["precision"]["mean"] == 1.0 and marker["false_flag_rate"]["mean"] == 0.0
    assert marker["auc"]["mean"] == 1.0
