"""A run can be found and followed: its id before the first turn, the command that resumes it after Ctrl-C, and
progress lines on stderr when nobody watches a terminal."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from scripted_server import ScriptedServer


def slow_answer(seconds: float):
    """A scripted model that takes `seconds` to say one short line."""

    def answer(messages: list[dict]) -> str:
        time.sleep(seconds)
        return "Let us go on with the task."

    return answer


def run_args(server: ScriptedServer, db: Path, *extra: str) -> list[str]:
    return ["run", *server.backend_args(), f"store.path={db}", "runner.analyze=[]", "scenario.max_tokens=16", *extra]


def test_ctrl_c_prints_the_run_id_first_and_the_command_that_resumes_it(tmp_path: Path, db_rows, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(slow_answer(0.4)) as server:
        args = run_args(server, db, "scenario.n_episodes=2", "scenario.max_turns=6", "runner.concurrency=1")
        process = subprocess.Popen([sys.executable, "-m", "sim", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        started = process.stdout.readline()  # said before any request is sent
        assert re.fullmatch(rf"run (\S+) started, stored in {re.escape(str(db))}\n", started), started
        run_id = started.split()[1]
        server.wait_for_requests(2)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        assert "Traceback" not in stderr and "Aborted" not in stderr
        (line,) = [line for line in stderr.splitlines() if line.startswith("interrupted;")]
        resume = shlex.split(line.split("Resume it with: ", 1)[1])
        assert resume[:2] == ["sim", "run"] and f"run.id={run_id}" in resume
        assert db_rows(db, "SELECT status FROM runs") == [("interrupted",)]
        stored = db_rows(db, "SELECT count(*) FROM turns")[0][0]
        assert 1 <= stored < 12

        done = run_sim(resume[1:], tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"run {run_id} resumed, stored in {db}\n")
    assert db_rows(db, "SELECT status FROM runs") == [("done",)]
    assert db_rows(db, "SELECT status, count(*) FROM episodes GROUP BY status") == [("done", 2)]
    # every turn once: the resume kept what was stored and played only the rest
    assert db_rows(db, "SELECT count(*), count(DISTINCT episode_id || ':' || idx) FROM turns") == [(12, 12)]
    snapshot = next(tmp_path.glob("runs/outputs/*/*/.hydra/config.yaml")).read_text()
    assert f"id: {run_id}" in snapshot, "Hydra's job config records the id given to the run"


def test_a_piped_run_prints_progress_lines_and_no_request_logs(tmp_path: Path, db_rows, run_sim) -> None:
    with ScriptedServer(slow_answer(0.25)) as server:
        db = tmp_path / "sim.db"
        done = run_sim(run_args(server, db, "scenario.n_episodes=4", "scenario.max_turns=20", "runner.concurrency=1"), tmp_path)
    assert done.returncode == 0, done.stderr
    ((generating_s,),) = db_rows(db, "SELECT wall_s FROM runs")
    assert generating_s > 20, "long enough for two progress lines"
    lines = [line for line in done.stderr.splitlines() if line.startswith("progress: ")]
    # one line every 10 s of the run (whose stored time also counts its setup), each saying how long it has gone
    seconds = [int(line.rsplit(", ", 1)[1].removesuffix(" s")) for line in lines]
    assert seconds == [10 * (i + 1) for i in range(len(seconds))] and len(seconds) >= int(generating_s // 10) - 1, done.stderr
    assert re.fullmatch(r"progress: episodes \d/4, \d+ turns \(\d+\.\d\d/s\), 0 retries \(0 waiting, 0 rate-limited\), \d+ s", lines[0]), lines[0]
    assert "httpx" not in done.stderr and "HTTP Request" not in done.stderr
