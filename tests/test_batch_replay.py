"""`sim replay --run`: every episode of a run forked at turn K into one new run against a loopback server, episodes
too short skipped and counted, a SIGKILLed batch resumed with no fork lost or duplicated, and bad input refused."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from helpers import db_rows
from scripted_server import ScriptedServer
from test_bad_input import assert_one_line_error
from test_paired import CLEAN_TURN, FLIPPED_TURN, roleplayer

COMMIT_KILLER = Path(__file__).with_name("commit_killer.py")
BASE = "base"


def stored(db: Path, run_id: str) -> dict[str, tuple]:
    """Each episode of a run: its parent, fork turn, status and its turns' contents in order."""
    episodes = db_rows(db, f"SELECT id, parent_id, fork_turn, status FROM episodes WHERE run_id = '{run_id}' ORDER BY id")
    return {
        episode: (parent, at, status, [c for (c,) in db_rows(db, f"SELECT content FROM turns WHERE episode_id = '{episode}' ORDER BY idx")])
        for episode, parent, at, status in episodes
    }


def test_a_run_forked_whole_resumes_after_a_kill(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "runs" / "sim.db"
    with ScriptedServer(roleplayer(False)) as clean, ScriptedServer(roleplayer(True)) as flipping:
        made = run_sim(["run", *clean.backend_args(), "scenario.n_episodes=4", "scenario.max_turns=4", "runner.progress=false",
                        "runner.analyze=[]", f"run.id={BASE}"], tmp_path)
        assert made.returncode == 0, made.stderr
        # One conversation ended after two turns: it cannot be forked at turn 3.
        with sqlite3.connect(db) as conn:
            conn.execute(f"DELETE FROM turns WHERE episode_id = '{BASE}-e0001' AND idx >= 2")
            conn.execute(f"UPDATE episodes SET n_turns = 2 WHERE id = '{BASE}-e0001'")
        parents = stored(db, BASE)
        fork_args = ["replay", "--run", BASE, "--fork-at", "3", f"backend.base_url={flipping.base_url}", "runner.concurrency=1"]
        # Killed as its fifth turn write commits: the three children are stored with their kept turns, and two of
        # them have their new turn.
        killed = subprocess.Popen([sys.executable, str(COMMIT_KILLER), "turns", "5", *fork_args], cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert killed.wait() == -signal.SIGKILL
        ((fork_run,),) = db_rows(db, f"SELECT id FROM runs WHERE id != '{BASE}'")
        resumed = run_sim(["run", f"run.id={fork_run}"], tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        listed = run_sim([*fork_args, "--episodes", f"{BASE}-e0001,{BASE}-e0002"], tmp_path)
        assert listed.returncode == 0, listed.stderr
    forks = stored(db, fork_run)
    assert sorted(parent for parent, *_ in forks.values()) == [f"{BASE}-e0000", f"{BASE}-e0002", f"{BASE}-e0003"]
    for child, (parent, at, status, turns) in forks.items():
        assert (at, status) == (3, "done")
        assert turns[:3] == parents[parent][3][:3] and turns[3] == FLIPPED_TURN and parents[parent][3][3] == CLEAN_TURN
    assert f"forked 1 episode(s) of {BASE} at turn 3 into run" in listed.stdout
    assert "1 shorter than 3 turns skipped" in listed.stdout


def test_batch_replay_refuses_bad_input_and_writes_nothing(sim, tmp_path: Path) -> None:
    with ScriptedServer(roleplayer(False)) as clean:
        made = sim("run", *clean.backend_args(), "scenario.n_episodes=2", "scenario.max_turns=2", "runner.progress=false",
                   "runner.analyze=[]", f"run.id={BASE}")
        assert made.returncode == 0, made.stderr
        db = tmp_path / "runs" / "sim.db"
        for args, expected in [
            (["--run", "nope", "--fork-at", "1"], "no run 'nope'"),
            (["--run", BASE, "--fork-at", "-1"], "--fork-at must not be negative, got -1"),
            (["--run", BASE, "--fork-at", "1", "--episodes", "other-e0000"], f"--episodes: 'other-e0000' is not an episode of run {BASE}"),
            (["--run", BASE, "--fork-at", "5"], f"--fork-at 5: no chosen episode of run {BASE} has 5 turns to keep"),
            (["--run", BASE, "--fork-at", "1", "scenario=spp"], "sim replay takes backend=..., backend.*, scenario.*"),
        ]:
            assert_one_line_error(sim("replay", *args), expected)
        both = sim("replay", f"{BASE}-e0000", "--run", BASE, "--fork-at", "1")
        assert both.returncode == 2 and "exactly one of EPISODE_ID or --run" in both.stderr
        assert db_rows(db, "SELECT id FROM runs") == [(BASE,)]
