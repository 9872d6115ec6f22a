"""`sim export`: a generated run (a loopback model, analyzed by role_flip) and an imported corpus written as JSON
Lines, CSV, Parquet and a `datasets` folder, read back with pandas and `datasets.load_from_disk`: one row per
episode, its messages in order and equal to the stored turns; bad input refused in one line, nothing written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from helpers import DATA, db_rows
from scripted_server import ScriptedServer
from sim.errors import SimError
from test_bad_input import assert_one_line_error
from test_paired import roleplayer

RUN = "flipping"
CORPUS = DATA / "free_form" / "m4-llama2-samples" / "wikihow_llama2_100.jsonl"
DATASET = "wikihow_llama2_100"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, run_sim) -> Path:
    """A store holding a role-play run whose assistant flips roles (annotated by role_flip) and an imported corpus."""
    folder = tmp_path_factory.mktemp("export")
    with ScriptedServer(roleplayer(True)) as server:
        made = run_sim(["run", *server.backend_args(), "scenario.n_episodes=3", "scenario.max_turns=4", "runner.progress=false",
                        "runner.analyze=[role_flip]", f"run.id={RUN}"], folder)
    assert made.returncode == 0, made.stderr
    imported = run_sim(["import", "free_text", str(CORPUS)], folder)
    assert imported.returncode == 0, imported.stderr
    return folder / "runs" / "sim.db"


def stored_turns(db: Path, where: str) -> dict[str, list[tuple[str, str, str]]]:
    """(speaker, role, content) of each selected episode's turns in order, read with plain SQL."""
    turns: dict[str, list[tuple[str, str, str]]] = {}
    for (episode,) in db_rows(db, f"SELECT id FROM episodes WHERE {where} ORDER BY rowid"):
        turns[episode] = db_rows(db, f"SELECT speaker, role, content FROM turns WHERE episode_id = '{episode}' ORDER BY idx")
    return turns


def read_back(path: Path, fmt: str) -> list[dict]:
    """The exported rows as dicts, read by pandas (or `datasets`), nested fields decoded where the format keeps them as JSON."""
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype=False).to_dict("records")
    if fmt == "csv":
        rows = pd.read_csv(path, keep_default_na=False).to_dict("records")
        return [{**row, **{key: json.loads(row[key]) for key in ("messages", "turns", "roles", "meta", "annotations")}} for row in rows]
    if fmt == "parquet":
        rows = pd.read_parquet(path).to_dict("records")
    else:
        from datasets import load_from_disk

        rows = list(load_from_disk(str(path)))
    return [{**row, **{key: json.loads(row[key]) for key in ("roles", "meta", "annotations")}} for row in rows]


def absent(value) -> bool:
    """Whether a cell is empty as each reader writes it: None, NaN (pandas) or an empty CSV cell."""
    return value is None or value == "" or (isinstance(value, float) and value != value)


def as_list(value) -> list:
    """A list from a list or a NumPy array (pandas reads Parquet lists as arrays)."""
    return [dict(item) if isinstance(item, dict) else item for item in list(value)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "hf"])
def test_a_run_and_a_corpus_export_one_row_per_episode(db: Path, fmt: str, run_sim) -> None:
    out = db.parent / f"export.{fmt}"
    done = run_sim(["export", "--db", str(db), "--run", RUN, "--dataset", DATASET, "--format", fmt, "--out", str(out)], db.parent)
    assert done.returncode == 0, done.stderr
    stored = stored_turns(db, f"run_id = '{RUN}' OR dataset = '{DATASET}'")
    n_turns = sum(len(turns) for turns in stored.values())
    assert f"wrote {len(stored)} episodes ({n_turns} turns) to {out} ({fmt})" in done.stdout
    rows = read_back(out, fmt)
    assert [row["id"] for row in rows] == list(stored)
    for row in rows:
        messages, turns = as_list(row["messages"]), as_list(row["turns"])
        assert [(m["name"], m["content"]) for m in messages] == [(speaker, content) for speaker, _, content in stored[row["id"]]]
        assert [t["role"] for t in turns] == [role for _, role, _ in stored[row["id"]]]
        assert {t["kind"] for t in turns} == {"utterance"}
        if row["run_id"] == RUN:
            assert (row["kind"], row["scenario"]) == ("conversation", "roleplay") and absent(row["dataset"])
            # The CAMEL user instructs, the assistant answers: the scenario's roles are already chat roles.
            assert [m["role"] for m in messages] == [role for _, role, _ in stored[row["id"]]]
            assert all(t["completion_tokens"] > 0 and t["finish_reason"] for t in turns)
            # The scripted assistant always instructs back: every assistant turn carries role_flip's flag.
            assert [list(t["flags"]) for t in turns] == [["role_flipped"] if t["role"] == "assistant" else [] for t in turns]
            assert row["annotations"]["role_flip"]["role_flipping_happens"] == 1.0
        else:
            assert (row["kind"], row["dataset"]) == ("free_text", DATASET) and absent(row["run_id"])
            # A prompt is the user's, the text written to it the assistant's.
            assert [m["role"] for m in messages] == ["user" if t["role"] == "prompt" else "assistant" for t in turns]
            assert row["meta"]["author"] in ("human", "llm") and row["annotations"] == {}


def test_kind_selects_and_force_replaces(db: Path, run_sim) -> None:
    out = db.parent / "texts.jsonl"
    args = ["export", "--db", str(db), "--kind", "free_text", "--format", "jsonl", "--out", str(out)]
    assert run_sim(args, db.parent).returncode == 0
    assert {row["kind"] for row in read_back(out, "jsonl")} == {"free_text"}
    assert_one_line_error(run_sim(args, db.parent), "already exists and is not empty; pass --force")
    replaced = run_sim([*args[:-4], "--kind", "conversation", "--format", "jsonl", "--out", str(out), "--force"], db.parent)
    assert replaced.returncode == 0, replaced.stderr
    assert {row["run_id"] for row in read_back(out, "jsonl")} == {RUN}
    folder = db.parent / "replaced.hf"
    for kind in ("free_text", "conversation"):
        made = run_sim(["export", "--db", str(db), "--kind", kind, "--format", "hf", "--out", str(folder), "--force"], db.parent)
        assert made.returncode == 0, made.stderr
    assert {row["kind"] for row in read_back(folder, "hf")} == {"conversation"}
    assert not [path for path in db.parent.iterdir() if path.name.startswith(".")]


def test_bad_input_is_one_line_and_leaves_nothing(db: Path, tmp_path: Path, run_sim) -> None:
    out = tmp_path / "out" / "x.jsonl"
    base = ["export", "--db", str(db), "--out", str(out)]
    for args, expected in [
        (["--run", "nope", "--format", "jsonl"], ["no run 'nope'"]),
        (["--dataset", "nope", "--format", "csv"], ["--dataset 'nope': no imported dataset of that name", f"(datasets: {DATASET})"]),
        (["--sweep", "nope", "--format", "jsonl"], ["--sweep 'nope': no run of that sweep"]),
        (["--kind", "preference", "--format", "jsonl"], ["--kind 'preference': no episode of that kind"]),
        (["--run", RUN, "--kind", "free_text", "--format", "parquet"], ["no episode in", "matches the selection (--run flipping --kind free_text)"]),
        (["--format", "xml"], ["--format 'xml': formats are jsonl, csv, parquet, hf"]),
    ]:
        assert_one_line_error(run_sim([*base, *args], tmp_path), *expected)
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    assert_one_line_error(run_sim(["export", "--db", str(db), "--format", "hf", "--out", str(a_file)], tmp_path),
                          f"--out {a_file} is a file; --format hf writes a folder")
    assert_one_line_error(run_sim(["export", "--db", str(tmp_path / "none.db"), "--format", "jsonl", "--out", str(out)], tmp_path), "no database at")
    assert a_file.read_text() == "keep me"
    assert [path.name for path in tmp_path.iterdir()] == ["file"]


def test_a_sweep_exports_every_run_of_it(tmp_path: Path, run_sim) -> None:
    with ScriptedServer(roleplayer(False)) as server:
        swept = run_sim(["run", "-m", "seed=1,2", *server.backend_args(), "scenario.n_episodes=1", "scenario.max_turns=2",
                         "runner.progress=false", "runner.analyze=[]"], tmp_path)
    assert swept.returncode == 0, swept.stderr
    db = tmp_path / "runs" / "sim.db"
    ((sweep,),) = db_rows(db, "SELECT DISTINCT sweep_id FROM runs")
    out = tmp_path / "sweep.jsonl"
    done = run_sim(["export", "--sweep", sweep, "--format", "jsonl", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = read_back(out, "jsonl")
    assert sorted(row["id"] for row in rows) == sorted(episode for (episode,) in db_rows(db, "SELECT id FROM episodes"))
    assert {row["sweep_id"] for row in rows} == {sweep} and len({row["run_id"] for row in rows}) == 2


def test_a_format_without_its_package_says_which_extra_brings_it(store, tmp_path: Path, monkeypatch) -> None:
    from sim.export import Selection, export

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an environment without the package answers to an import
    with pytest.raises(SimError, match=r"--format parquet needs the pyarrow package: pip install -e '\.\[parquet\]'"):
        export(store, Selection(), "parquet", tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()
