"""What `sim` prints is readable and honest: truncated turns are marked wherever turns are counted, listings fit
80 columns when piped, bare `sim analyze` says which run it covers, and listings come as JSON too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripted_server import ScriptedServer

REPLY = "Instruction: Write the next part of the plan now, step by step, with care. Input: None"  # 16 words
EPISODES, TURNS = 4, 2


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, run_sim) -> tuple[Path, dict[str, str]]:
    """A store with two runs of the same tasks from a scripted server: `cut`, whose replies all stop at
    max_tokens, then `whole`, whose replies end by themselves; and what `sim run` printed for each."""
    folder = tmp_path_factory.mktemp("readable")
    printed = {}
    with ScriptedServer(lambda messages: REPLY) as server:
        for run_id, max_tokens in (("cut", 6), ("whole", 64)):
            done = run_sim(["run", *server.backend_args(), f"run.id={run_id}", f"scenario.max_tokens={max_tokens}",
                            f"scenario.n_episodes={EPISODES}", f"scenario.max_turns={TURNS}", "runner.analyze=[conversation_stats]"], folder)
            assert done.returncode == 0, done.stderr
            printed[run_id] = done.stdout
    return folder, printed


def test_the_run_summary_counts_turns_cut_at_max_tokens(two_runs) -> None:
    _, printed = two_runs
    assert f"{EPISODES * TURNS} of {EPISODES * TURNS} turns (100%) were cut at max_tokens" in " ".join(printed["cut"].split())
    assert "cut at max_tokens" not in printed["whole"]


def test_sim_show_marks_a_truncated_turn(two_runs, run_sim) -> None:
    folder, _ = two_runs
    cut = run_sim(["show", "cut-e0000"], folder)
    whole = run_sim(["show", "whole-e0000"], folder)
    assert cut.returncode == whole.returncode == 0
    assert cut.stdout.count("cut at max_tokens (6 tokens)") == TURNS
    assert "cut at max_tokens" not in whole.stdout


def test_compare_reports_the_truncated_share_and_warns_when_groups_differ(two_runs, run_sim) -> None:
    folder, _ = two_runs
    done = run_sim(["compare", "--run", "whole", "--run", "cut", "--by", "run", "--analyzer", "conversation_stats", "--json"], folder)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    shares = {row["group"]: (row["truncated_turns"], row["n_turns"], row["truncated_turn_share"]) for row in result["truncation"]}
    assert shares == {"whole": (0, EPISODES * TURNS, 0.0), "cut": (EPISODES * TURNS, EPISODES * TURNS, 1.0)}
    (warning,) = result["warnings"]
    assert "groups differ in truncated_turn_share (whole 0%, cut 100%" in warning
    printed = run_sim(["compare", "--run", "whole", "--run", "cut", "--by", "run", "--analyzer", "conversation_stats", "--out", "report"], folder)
    assert printed.stdout.startswith("warning: groups differ in truncated_turn_share")
    assert "Turns cut at max_tokens" in printed.stdout
    report = (folder / "report" / "report.md").read_text()
    assert "> **Warning:** groups differ in truncated_turn_share" in report
    same = run_sim(["compare", "--run", "cut", "--run", "cut", "--by", "run", "--analyzer", "conversation_stats", "--json"], folder)
    assert json.loads(same.stdout)["warnings"] == []


def test_piped_listings_fit_80_columns_without_losing_a_column(two_runs, run_sim) -> None:
    folder, _ = two_runs
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    for args in (["episodes", "--all"], ["analyze", "--all", "--analyzer", "conversation_stats"],
                 ["compare", "--run", "whole", "--run", "cut", "--by", "run", "--analyzer", "conversation_stats"]):
        # without COLUMNS, as a pipe sees it
        done = subprocess.run([sys.executable, "-m", "sim", *args], cwd=folder, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert max(len(line) for line in done.stdout.splitlines()) <= 80, done.stdout
    listing = run_sim(["episodes", "--all"], folder).stdout
    header = next(line for line in listing.splitlines() if line.strip().startswith("id"))
    assert header.split() == ["id", "kind", "ending", "turns", "task"]
    assert "cut-e0000" in listing and "whole-e0003" in listing and "done: max_turns" in listing


def test_bare_analyze_covers_the_latest_run_and_says_so(two_runs, run_sim) -> None:
    folder, _ = two_runs
    latest = run_sim(["analyze", "--analyzer", "conversation_stats", "--analyzer", "task_labels"], folder)
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout.splitlines()[0] == "analyzed run whole, the latest (--all for every run and imported dataset)"
    assert "no applicable episodes: task_labels" in latest.stdout and "(no applicable episodes)" not in latest.stdout
    assert f"conversation_stats (v2): whole, {EPISODES} episodes" in latest.stdout
    every = run_sim(["analyze", "--all", "--analyzer", "conversation_stats", "--json"], folder)
    (summary,) = json.loads(every.stdout)["analyzers"]
    assert summary["n_episodes"] == 2 * EPISODES


def test_episodes_as_json(two_runs, run_sim) -> None:
    folder, _ = two_runs
    done = run_sim(["episodes", "--run", "cut", "--json"], folder)
    rows = json.loads(done.stdout)
    assert [row["id"] for row in rows] == [f"cut-e000{i}" for i in range(EPISODES)]
    assert all(row["n_turns"] == TURNS and isinstance(row["roles"], dict) and "roles_json" not in row for row in rows)


def test_sim_runs_lists_each_run_with_its_truncated_share(two_runs, run_sim) -> None:
    folder, _ = two_runs
    done = run_sim(["runs", "--json"], folder)
    assert done.returncode == 0, done.stderr
    runs = {run["id"]: run for run in json.loads(done.stdout)}
    assert set(runs) == {"cut", "whole"}
    for run_id, share in (("cut", 1.0), ("whole", 0.0)):
        run = runs[run_id]
        assert (run["status"], run["scenario"], run["backend"], run["model"]) == ("done", "roleplay", "openai", "scripted")
        assert (run["episodes_done"], run["episodes_failed"], run["episodes_planned"], run["episodes_pending"]) == (EPISODES, 0, EPISODES, 0)
        assert (run["n_turns"], run["truncated_turn_share"]) == (EPISODES * TURNS, share)
        assert run["completion_tokens"] == EPISODES * TURNS * (6 if run_id == "cut" else len(REPLY.split()))
    table = run_sim(["runs"], folder)
    assert table.returncode == 0 and "100%" in table.stdout and "whole" in table.stdout
    missing = run_sim(["runs", "--sweep", "nope"], folder)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: --sweep: no runs of sweep 'nope' in runs/sim.db"
