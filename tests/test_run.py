"""`sim run`, `sim show`, `sim analyze` and `sim episodes` end to end, with the real embedded model; what the runner
does whatever the model says, with the scripted one."""

import json
from pathlib import Path

import pytest
import yaml

from helpers import TINY, scripted_args


@pytest.mark.slow
def test_run_stores_analyzes_and_shows(sim, tmp_path: Path, db_rows) -> None:
    result = sim("run", *TINY, "run.id=first", "seed=3")
    assert result.returncode == 0, result.stderr
    assert "run first stored in runs/sim.db" in result.stdout
    assert "role_flipping_happens" in result.stdout

    db = tmp_path / "runs" / "sim.db"
    (run,) = db_rows(db, "SELECT id, status, scenario, backend, model, seed, config_yaml, versions_json, finished_at FROM runs")
    assert run[:6] == ("first", "done", "roleplay", "embedded", "SmolLM2-135M-Instruct.Q4_1.gguf", 3)
    config = yaml.safe_load(run[6])
    assert config["scenario"]["n_episodes"] == 2 and config["store"]["path"] == "runs/sim.db"
    assert "llama-cpp-python" in json.loads(run[7]) and run[8]

    episodes = db_rows(db, "SELECT id, source, kind, status, termination_reason, n_turns, roles_json FROM episodes ORDER BY id")
    assert [e[0] for e in episodes] == ["first-e0000", "first-e0001"]
    for _, source, kind, status, reason, n_turns, roles in episodes:
        assert (source, kind, status) == ("generated", "conversation", "done")
        assert reason in ("task_done", "max_turns")
        assert 1 <= n_turns <= 4
        assert set(json.loads(roles)) == {"user", "assistant"}

    turns = db_rows(db, "SELECT episode_id, idx, role, content, completion_tokens, request_hash FROM turns ORDER BY episode_id, idx")
    assert len(turns) == sum(e[5] for e in episodes)
    assert [t[2] for t in turns if t[0] == "first-e0000"][:2] == ["user", "assistant"]
    assert all(t[4] and t[4] <= 40 and len(t[5]) == 64 for t in turns)

    flags = db_rows(db, "SELECT count(*) FROM annotations WHERE analyzer='role_flip' AND name='role_flipping_happens'")
    assert flags == [(2,)]
    assert list((tmp_path / "runs" / "outputs").glob("*/*/.hydra/config.yaml"))

    shown = sim("show", "first-e0000")
    assert shown.returncode == 0, shown.stderr
    assert "Develop a trading bot" in shown.stdout and "(user)" in shown.stdout and "(assistant)" in shown.stdout
    first_turn = db_rows(db, "SELECT content FROM turns WHERE episode_id='first-e0000' AND idx=0")[0][0]
    assert first_turn.split()[0] in shown.stdout

    listed = sim("episodes")
    assert listed.returncode == 0 and "first-e0001" in listed.stdout

    analyzed = sim("analyze", "--json", "--run", "first")
    assert analyzed.returncode == 0, analyzed.stderr
    summaries = {s["analyzer"]: s for s in json.loads(analyzed.stdout)["analyzers"]}
    assert sorted(summaries) == ["conversation_stats", "free_text", "instructions", "preferences", "role_flip", "task_labels"]
    assert summaries["task_labels"]["n_episodes"] == 0 and summaries["task_labels"]["metrics"] == []
    summary = summaries["role_flip"]
    assert summary["n_episodes"] == 2 and {m["group"] for m in summary["metrics"]} == {"first"}
    metrics = {(m["name"], m["unit"]): m for m in summary["metrics"]}
    flipped_turns = db_rows(db, "SELECT count(*) FROM annotations WHERE name='role_flipped' AND value=1")[0][0]
    assert metrics[("n_checked_turns", "episode")]["total"] == len(turns)
    assert metrics[("n_role_flipped_turns", "episode")]["total"] == flipped_turns
    assert not any(unit == "turn" for _, unit in metrics)  # turn flags are stored, not averaged
    share = metrics[("role_flipped_turn_share", "episode")]
    assert share["ci_low"] <= share["mean"] <= share["ci_high"]
    # Re-analysis replaces annotations instead of adding to them.
    assert db_rows(db, "SELECT count(*) FROM annotations WHERE name='role_flipping_happens'") == [(2,)]


@pytest.mark.slow
def test_same_seed_gives_same_conversations(sim, tmp_path: Path, db_rows) -> None:
    for run_id in ("a", "b"):
        result = sim("run", *TINY, "scenario.n_episodes=1", "scenario.max_turns=2", f"run.id={run_id}", "seed=11", "runner.use_cache=false")
        assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    texts = {
        run_id: db_rows(db, f"SELECT content FROM turns WHERE episode_id='{run_id}-e0000' ORDER BY idx")
        for run_id in ("a", "b")
    }
    assert texts["a"] and texts["a"] == texts["b"]
    assert db_rows(db, "SELECT DISTINCT cache_hit FROM turns") == [(0,)]
    assert db_rows(db, "SELECT count(*) FROM request_cache") == [(0,)]


def test_a_done_run_is_not_run_again(generate, db_rows, tmp_path: Path) -> None:
    args = [*scripted_args("Instruction: list the steps."), "scenario.n_episodes=1", "scenario.max_turns=1", "run.id=once"]
    assert not generate(*args).already_done
    again = generate(*args)
    assert again.already_done and again.run_id == "once"
    assert db_rows(tmp_path / "sim.db", "SELECT count(*) FROM turns") == [(1,)]


def test_task_specifier_rewrites_the_task(generate, db_rows, tmp_path: Path) -> None:
    specified = "Build a bot that trades apples on Mondays."
    generate(*scripted_args(specified), "scenario.n_episodes=1", "scenario.max_turns=2", "scenario.specify_task=true")
    ((task, meta),) = db_rows(tmp_path / "sim.db", "SELECT task, meta_json FROM episodes")
    meta = json.loads(meta)
    assert meta["original_task"] == "Develop a trading bot for the stock market"
    assert task == meta["specified_task"] == specified
    assert meta["role_descriptions"]["user"].startswith("Stock Trader, who instructs")  # read by role_drift
