"""A budget inside a sweep: each job stops at its own cap, says how to resume it, and the sweep goes on."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from scripted_server import ScriptedServer

USAGE = (20, 8)  # prompt and completion tokens the server reports for every request: 0.036 USD at this pricing
PRICING = "backend.pricing={input_usd_per_mtok:1000,output_usd_per_mtok:2000}"
EPISODES, TURNS = 2, 6


def test_each_job_of_a_sweep_stops_at_its_budget_and_resumes_on_its_own(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(lambda messages: "Let us go on with the task.", usage=USAGE) as server:
        swept = run_sim(["run", "-m", *server.backend_args(), PRICING, f"store.path={db}", "runner.analyze=[]",
                         "scenario.max_tokens=16", f"scenario.n_episodes={EPISODES}", f"scenario.max_turns={TURNS}",
                         "runner.progress=false", "runner.concurrency=1", "runner.max_cost_usd=0.2", "seed=1,2"], tmp_path)
        assert swept.returncode == 0, swept.stderr  # a job that stops says so, and the sweep goes on with the others
        resumes = [line.split(": sim run ", 1)[1] for line in swept.stderr.splitlines() if line.startswith("stopped: budget;")]
        assert len(resumes) == 2 and "Traceback" not in swept.stderr

        listed = run_sim(["runs", "--db", str(db), "--json"], tmp_path)
        runs = {run["id"]: run for run in json.loads(listed.stdout)}
        assert len(runs) == 2 and {run["status"] for run in runs.values()} == {"stopped: budget"}
        assert all(run["cost_usd"] <= 0.2 and run["episodes_failed"] == 0 for run in runs.values())

        # The first job's printed command, with a higher cap, finishes that job's run and leaves the other stopped.
        command = [arg for arg in shlex.split(resumes[0]) if not arg.startswith("runner.max_cost_usd=")]
        resumed = run_sim(["run", *command, "runner.max_cost_usd=5"], tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    run_id = next(arg.split("=", 1)[1] for arg in command if arg.startswith("run.id="))
    listed = run_sim(["runs", "--db", str(db), "--json"], tmp_path)
    runs = {run["id"]: run for run in json.loads(listed.stdout)}
    assert runs[run_id]["status"] == "done" and runs[run_id]["episodes_done"] == EPISODES
    assert runs[run_id]["n_turns"] == EPISODES * TURNS
    (other,) = [run for key, run in runs.items() if key != run_id]
    assert other["status"] == "stopped: budget"
