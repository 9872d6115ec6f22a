"""Replaying stored conversations: forks from turn K, `sim show` filters, and `sim reanalyze` after a version change,
on conversations of the scripted model (forks of the embedded model's group conversation, and onto a served model,
are in the slow tier)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from helpers import DATA, SERVED_MODEL, TINY, db_rows, scripted_args
from test_bad_input import assert_one_line_error
from test_compare import PRESET, backend_preset

# The scripted assistant's first answer is an instruction: a role flip at turn 1, for `sim show --flagged`.
SCRIPT = ("Instruction: Collect the historical prices. Input: None", "Solution: Backtesting strategies carefully. Next request.")
BASE = [*TINY, *scripted_args(*SCRIPT), "scenario.n_episodes=1", "scenario.max_turns=4", "scenario.max_tokens=24", "seed=3", "run.id=base"]
PARENT = "base-e0000"


@pytest.fixture(scope="module")
def base_db(tmp_path_factory, run_sim) -> Path:
    """A stored four-turn role-play conversation, analyzed; tests work on copies of it."""
    folder = tmp_path_factory.mktemp("base")
    result = run_sim(["run", *BASE], folder)
    assert result.returncode == 0, result.stderr
    return folder / "runs" / "sim.db"


@pytest.fixture
def db(base_db: Path, tmp_path: Path) -> Path:
    """This test's copy of the base database, where `sim` (run in tmp_path) finds it."""
    target = tmp_path / "runs" / "sim.db"
    target.parent.mkdir()
    shutil.copy(base_db, target)
    return target


def turns(db: Path, episode_id: str) -> list[tuple]:
    return db_rows(db, f"SELECT idx, speaker, content, cache_hit FROM turns WHERE episode_id = '{episode_id}' ORDER BY idx")


def child_of(db: Path, fork_turn: int) -> tuple[str, str]:
    ((child, run_id),) = db_rows(db, f"SELECT id, run_id FROM episodes WHERE parent_id = '{PARENT}' AND fork_turn = {fork_turn}")
    return child, run_id


def test_fork_with_the_same_settings_replays_the_parent_from_the_cache(sim, db: Path, monkeypatch) -> None:
    result = sim("replay", PARENT, "--fork-at", "2")
    assert result.returncode == 0, result.stderr
    child, _ = child_of(db, 2)
    assert f"forked {PARENT} at turn 2 into {child}" in result.stdout
    parent_turns, child_turns = turns(db, PARENT), turns(db, child)
    assert [t[:3] for t in child_turns] == [t[:3] for t in parent_turns]
    assert [t[3] for t in child_turns[2:]] == [1, 1], "turns from the fork on were asked again, and the cache answered"
    # The link shows both ways in `sim show`, and in `sim episodes`.
    _, run_id = child_of(db, 2)
    assert f"fork: {child} at turn 2 (run {run_id})" in sim("show", PARENT).stdout
    assert f"forked from {PARENT} at turn 2" in sim("show", child).stdout
    monkeypatch.setenv("COLUMNS", "160")  # room for every column of the listing when it is piped
    listing = sim("episodes", "--all", "--db", str(db)).stdout
    assert "fork of (at turn)" in listing and f"{PARENT} (2)" in listing
    assert "fork of" not in sim("episodes", "--run", "base").stdout


def test_fork_with_another_seed_keeps_the_turns_before_k_and_is_analyzed(sim, db: Path) -> None:
    # Another script too: the scripted model's answers do not depend on the seed, and the new turns must differ.
    other = scripted_args("Instruction: Pick a broker. Input: None", "Solution: Use a paper account. Next request.")
    result = sim("replay", PARENT, "--fork-at", "1", "seed=11", "scenario.temperature=1.2", *other)
    assert result.returncode == 0, result.stderr
    child, run_id = child_of(db, 1)
    parent_turns, child_turns = turns(db, PARENT), turns(db, child)
    assert child_turns[0][:3] == parent_turns[0][:3]
    assert [t[0] for t in child_turns] == [0, 1, 2, 3]
    assert [t[2] for t in child_turns[1:]] != [t[2] for t in parent_turns[1:]]
    assert all(t[3] == 0 for t in child_turns[1:])
    ((seed, scenario, status, n_turns, config),) = db_rows(db, f"SELECT seed, scenario, status, n_turns, config_yaml FROM runs WHERE id = '{run_id}'")
    assert (seed, scenario, status, n_turns) == (11, "roleplay", "done", 4)
    assert "temperature: 1.2" in config
    analyzed = {name for (name,) in db_rows(db, f"SELECT DISTINCT analyzer FROM annotations WHERE episode_id = '{child}'")}
    assert {"role_flip", "conversation_stats"} <= analyzed


def test_fork_with_another_prompt_stores_the_new_task_and_roles(sim, db: Path) -> None:
    tasks = "scenario.tasks=[{assistant_role: Chef, user_role: Critic, task: 'Plan a tasting menu'}]"
    result = sim("replay", PARENT, "--fork-at", "2", tasks)
    assert result.returncode == 0, result.stderr
    child, _ = child_of(db, 2)
    rows = db_rows(db, f"SELECT id, task, roles_json FROM episodes WHERE id IN ('{PARENT}', '{child}') ORDER BY id = '{child}'")
    assert [(task, json.loads(roles)) for _, task, roles in rows] == [
        ("Develop a trading bot for the stock market", {"user": "Stock Trader", "assistant": "Python Programmer"}),
        ("Plan a tasting menu", {"user": "Critic", "assistant": "Chef"}),
    ]
    assert [t[3] for t in turns(db, child)[2:]] == [0, 0], "turns from the fork on were generated from the new prompt"


def test_fork_onto_a_served_model_keeps_the_turns_before_k_and_is_analyzed(sim, db: Path, tmp_path: Path, llama_server: str) -> None:
    """Would model B have gone on as model A did? A conversation of the scripted model forked onto a served model
    through a user's backend preset."""
    result = sim("replay", PARENT, "--fork-at", "2", backend_preset(tmp_path, llama_server), f"backend={PRESET}")
    assert result.returncode == 0, result.stderr
    child, run_id = child_of(db, 2)
    assert db_rows(db, f"SELECT backend, model, status FROM runs WHERE id = '{run_id}'") == [("openai", SERVED_MODEL, "done")]
    parent_turns, child_turns = turns(db, PARENT), turns(db, child)
    assert [t[:3] for t in child_turns[:2]] == [t[:3] for t in parent_turns[:2]]
    assert [t[0] for t in child_turns] == [0, 1, 2, 3]
    made_by = db_rows(db, f"SELECT t.idx, c.backend, c.model FROM turns t JOIN request_cache c ON c.hash = t.request_hash "
                          f"WHERE t.episode_id = '{child}' ORDER BY t.idx")
    assert [row[:2] for row in made_by[:2]] == [(0, "scripted"), (1, "scripted")]
    assert made_by[2:] == [(2, "openai", SERVED_MODEL), (3, "openai", SERVED_MODEL)]
    analyzed = {name for (name,) in db_rows(db, f"SELECT DISTINCT analyzer FROM annotations WHERE episode_id = '{child}'")}
    assert {"role_flip", "conversation_stats"} <= analyzed


def test_an_interrupted_fork_run_resumes_as_a_fork(sim, db: Path) -> None:
    assert sim("replay", PARENT, "--fork-at", "1", "seed=5").returncode == 0
    child, run_id = child_of(db, 1)
    finished = turns(db, child)
    with sqlite3.connect(db) as conn:  # as if killed before its last turn
        conn.execute(f"DELETE FROM turns WHERE episode_id = '{child}' AND idx = 3")
        conn.execute(f"UPDATE episodes SET status = 'running' WHERE id = '{child}'")
        conn.execute(f"UPDATE runs SET status = 'interrupted' WHERE id = '{run_id}'")
    resumed = sim("run", f"run.id={run_id}")
    assert resumed.returncode == 0, resumed.stderr
    assert db_rows(db, f"SELECT id, parent_id, fork_turn, status FROM episodes WHERE run_id = '{run_id}'") == [(child, PARENT, 1, "done")]
    assert [t[:3] for t in turns(db, child)] == [t[:3] for t in finished]


@pytest.mark.slow
def test_a_fork_of_a_group_conversation_takes_group_settings(sim, tmp_path: Path) -> None:
    # The embedded model, as the moderator's pick of the next speaker is read from what a model answers.
    group = sim("run", *TINY, "scenario=group", "scenario.n_episodes=1", "scenario.max_turns=3", "scenario.max_tokens=16", "run.id=g")
    assert group.returncode == 0, group.stderr
    forked = sim("replay", "g-e0000", "--fork-at", "1", "scenario.policy=moderator", "scenario.max_turns=2")
    assert forked.returncode == 0, forked.stderr
    db = tmp_path / "runs" / "sim.db"
    ((child, meta),) = db_rows(db, "SELECT id, meta_json FROM episodes WHERE parent_id = 'g-e0000'")
    assert '"moderator:1"' in meta, "the moderator picked the speaker of the regenerated turn"
    assert [t[:3] for t in turns(db, child)][:1] == [t[:3] for t in turns(db, "g-e0000")][:1]
    assert len(turns(db, child)) == 2


def test_replay_refuses_bad_requests_and_writes_nothing(sim, db: Path, tmp_path: Path) -> None:
    before = db_rows(db, "SELECT count(*) FROM runs")
    assert_one_line_error(sim("replay", PARENT, "--fork-at", "9"), "--fork-at must be between 0 and 4")
    assert_one_line_error(sim("replay", "nope-e0000", "--fork-at", "1"), "no episode 'nope-e0000'")
    assert_one_line_error(sim("replay", PARENT, "--fork-at", "1", "store.path=x.db"), "sim replay takes", "store.path=x.db")
    assert_one_line_error(sim("replay", PARENT, "--fork-at", "1", "scenario=spp"), "sim replay takes", "scenario=spp")
    assert_one_line_error(sim("replay", PARENT, "--fork-at", "1", "scenario.nonsense=1"), "nonsense")
    imported = sim("import", "dailydialog", str(DATA / "conversations/dailydialog/dailydialog_sample_2624.jsonl"), "--dataset", "dd")
    assert imported.returncode == 0, imported.stderr
    (first,) = db_rows(db, "SELECT id FROM episodes WHERE dataset = 'dd' LIMIT 1")
    assert_one_line_error(sim("replay", first[0], "--fork-at", "1"), "was imported, not generated")
    assert db_rows(db, "SELECT count(*) FROM runs") == before


def test_a_scenario_without_turn_requests_cannot_be_forked(sim, scripted, tmp_path: Path) -> None:
    labels = sim("run", *TINY, *scripted("1"), "scenario=task_labels", "scenario.n_episodes=1", "scenario.annotators=1", "run.id=labels")
    assert labels.returncode == 0, labels.stderr
    db = tmp_path / "runs" / "sim.db"
    assert_one_line_error(sim("replay", "labels-e0000", "--fork-at", "0"), "scenario 'task_labels' cannot be forked")
    assert db_rows(db, "SELECT id FROM runs") == [("labels",)]


def test_show_filters_flagged_turns_and_full_text_matches(sim, db: Path) -> None:
    flags = "('role_flipped', 'interruption', 'looped')"  # role_flip's and conversation_stats' turn flags
    flagged = {idx for (idx,) in db_rows(db, f"SELECT turn_idx FROM annotations WHERE name IN {flags} AND value != 0 AND episode_id = '{PARENT}'")}
    shown = sim("show", PARENT, "--flagged")
    assert shown.returncode == 0, shown.stderr
    assert {idx for idx in range(4) if f"[{idx}] " in shown.stdout} == flagged
    titles = [line for line in shown.stdout.splitlines() if line.startswith("╭─")]
    assert titles and not any("turn_words" in title for title in titles), "per-turn measurements are not flags"

    idx, content = db_rows(db, f"SELECT idx, content FROM turns WHERE episode_id = '{PARENT}' ORDER BY length(content) DESC LIMIT 1")[0]
    word = max(content.replace("'", " ").split(), key=len).strip('.,!?:;"()')
    found = sim("show", "--search", f'"{word}"')
    assert found.returncode == 0, found.stderr
    matching = {i for (i,) in db_rows(db, f"SELECT idx FROM turns WHERE episode_id = '{PARENT}' AND content LIKE '%{word}%'")}
    assert idx in matching and {i for i in range(4) if f"[{i}] " in found.stdout} == matching
    assert "no turn matches" in sim("show", "--search", "zzzqqqxxy").stdout
    assert_one_line_error(sim("show", "--search", '"unclosed'), "--search", "unterminated string")
    assert_one_line_error(sim("show"), "needs an EPISODE_ID")


def test_reanalyze_replaces_annotations_of_an_older_analyzer_version(sim, db: Path) -> None:
    current = db_rows(db, "SELECT name, turn_idx, value FROM annotations WHERE analyzer = 'role_flip' ORDER BY id")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE annotations SET analyzer_version = '1', value = 99 WHERE analyzer = 'role_flip'")
    result = sim("reanalyze")
    assert result.returncode == 0, result.stderr
    assert "role_flip: v1 -> v2 on run base (1 episodes)" in result.stdout
    assert "conversation_stats" not in result.stdout, "current annotations are left alone"
    assert db_rows(db, "SELECT name, turn_idx, value FROM annotations WHERE analyzer = 'role_flip' ORDER BY id") == current
    assert db_rows(db, "SELECT DISTINCT analyzer_version FROM annotations WHERE analyzer = 'role_flip'") == [("2",)]
    assert "nothing to do" in sim("reanalyze").stdout
    assert_one_line_error(sim("reanalyze", "--analyzer", "nosuch"), "unknown analyzer 'nosuch'")
