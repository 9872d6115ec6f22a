"""`sim compare` prices what it compares: per group of priced runs, the cost of generating it per episode and per
episode that shows each artifact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripted_server import ScriptedServer

USAGE = (20, 8)  # prompt and completion tokens the server reports for every request
PRICING = "backend.pricing={input_usd_per_mtok:1000,output_usd_per_mtok:2000}"
PER_REQUEST_USD = 0.036  # 20 * 1000 / 1e6 + 8 * 2000 / 1e6
EPISODES, TURNS = 3, 4


def flip_in_one_task(messages: list[dict]) -> str:
    """Both role markers (a flip on either side) in the Stock Trader's episode, neither in the others."""
    if any("Stock Trader" in message["content"] for message in messages):
        return "Instruction: check the prices. Solution: buy."
    return "Let us go on with the task."


def test_compare_gives_the_cost_per_episode_and_per_episode_with_an_artifact(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(flip_in_one_task, usage=USAGE) as server:
        done = run_sim(["run", *server.backend_args(), PRICING, f"store.path={db}", "runner.analyze=[role_flip]",
                        f"scenario.n_episodes={EPISODES}", f"scenario.max_turns={TURNS}", "scenario.max_tokens=16",
                        "runner.progress=false", "run.id=priced"], tmp_path)
        assert done.returncode == 0, done.stderr
        requests = len(server.requests)
    out = tmp_path / "report"
    compared = run_sim(["compare", "--db", str(db), "--run", "priced", "--analyzer", "role_flip", "--json", "--out", str(out)], tmp_path)
    assert compared.returncode == 0, compared.stderr
    (group,) = json.loads(compared.stdout)["cost"]
    cost = requests * PER_REQUEST_USD
    assert group["cost_usd"] == pytest.approx(cost) and group["n_episodes"] == EPISODES
    assert group["usd_per_episode"] == pytest.approx(cost / EPISODES)
    artifacts = {row["artifact"]: row for row in group["artifacts"]}
    assert artifacts["role_flip.role_flipping_happens"]["n_episodes"] == 1
    assert artifacts["role_flip.role_flipping_happens"]["usd_per_episode"] == pytest.approx(cost)
    assert "Cost per artifact" in (out / "report.md").read_text()


def test_unpriced_runs_get_no_cost(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(flip_in_one_task, usage=USAGE) as server:
        done = run_sim(["run", *server.backend_args(), f"store.path={db}", "runner.analyze=[role_flip]", "scenario.n_episodes=1",
                        "scenario.max_turns=2", "runner.progress=false", "run.id=unpriced"], tmp_path)
        assert done.returncode == 0, done.stderr
    compared = run_sim(["compare", "--db", str(db), "--run", "unpriced", "--analyzer", "role_flip", "--json",
                        "--out", str(tmp_path / "report")], tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert json.loads(compared.stdout)["cost"] == []
