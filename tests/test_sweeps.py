"""Sweeps: a 2x2 multirun, four parallel processes writing one database, one shard per job merged without
duplicates, and the cluster launcher presets."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from helpers import DATA, TINY, db_rows, scripted_args
from test_bad_input import assert_one_line_error
from sim.api import open_results
from sim.ids import sweep_job_run_id
from sim.progress import count_jobs

# One short conversation per job, on the scripted model: what is under test is how jobs are launched and stored.
SHORT = [*TINY, "scenario.n_episodes=1", "scenario.max_turns=2", "scenario.max_tokens=16", *scripted_args("Instruction: Begin. Input: None")]
SHARD_PATH = "store.path=${hydra:sweep.dir}/shards/${hydra:job.num}.db"
TABLES = ("runs", "episodes", "turns", "annotations", "request_cache")


def counts(db: Path) -> dict[str, int]:
    """Rows per table."""
    return {table: db_rows(db, f"SELECT count(*) FROM {table}")[0][0] for table in TABLES}


def assert_sound(db: Path) -> None:
    """Integrity ok, and no turn stored twice."""
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(db, "SELECT count(*) FROM (SELECT episode_id, idx FROM turns GROUP BY 1, 2 HAVING count(*) > 1)") == [(0,)]


def test_count_jobs_is_the_product_of_the_sweeps() -> None:
    assert count_jobs(["backend=embedded", "scenario.temperature=0.2,0.8", "seed=1,2,3"]) == 6
    assert count_jobs(["seed=range(4)", "run.id=x"]) == 4


def test_a_sweep_jobs_run_id_follows_its_sweep_and_its_overrides() -> None:
    job = sweep_job_run_id("runs/multirun/a", 0, ["seed=1"])
    assert job == sweep_job_run_id("runs/multirun/a", 0, ["seed=1"]) and job.endswith("-j0")
    assert job != sweep_job_run_id("runs/multirun/a", 0, ["seed=3"]), "another sweep in the same folder"
    assert job != sweep_job_run_id("runs/multirun/b", 0, ["seed=1"])


def test_two_by_two_multirun_is_four_runs_of_one_sweep(sim, tmp_path: Path) -> None:
    sweep = [*SHORT, "hydra.sweep.dir=runs/multirun/two-by-two", "scenario.temperature=0.2,0.8", "seed=1,2"]
    result = sim("run", "-m", *sweep)
    assert result.returncode == 0, result.stderr
    rows = db_rows(tmp_path / "runs" / "sim.db", "SELECT seed, sweep_id, status, config_yaml, n_turns FROM runs")
    combos = {(yaml.safe_load(config)["scenario"]["temperature"], seed) for seed, _, _, config, _ in rows}
    assert combos == {(0.2, 1), (0.2, 2), (0.8, 1), (0.8, 2)}
    assert len({sweep for _, sweep, *_ in rows}) == 1 and rows[0][1].startswith("runs/multirun/")
    assert {(status, n_turns) for _, _, status, _, n_turns in rows} == {("done", 2)}
    # A job started again (as a cluster requeues one) finds its run by its id: done, nothing is added.
    again = sim("run", "-m", *sweep)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("is already done") == 4
    assert len(db_rows(tmp_path / "runs" / "sim.db", "SELECT id FROM runs")) == 4
    results = open_results(tmp_path / "runs" / "sim.db")
    try:
        assert sorted(results.runs(sweep_id=rows[0][1]).seed) == [1, 1, 2, 2]
        assert results.runs(sweep_id="no-such-sweep").empty
    finally:
        results.close()


def test_a_failing_job_does_not_stop_the_other_jobs_of_a_sweep(sim, tmp_path: Path) -> None:
    texts = DATA / "free_form/m4-llama2-samples/wikihow_llama2_100.jsonl"
    result = sim(
        "run", "-m", *SHORT, "scenario=free_text", "scenario.samples_per_prompt=1",
        f"scenario.reference={tmp_path / 'missing.jsonl'},{texts}",
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: job 0 (") and "missing.jsonl" in lines[0]
    assert lines[-1].startswith("error: ") and "missing.jsonl" in lines[-1] and "the other jobs ran" in lines[-1]
    assert "Traceback" not in result.stderr
    assert db_rows(tmp_path / "runs" / "sim.db", "SELECT scenario, status FROM runs") == [("free_text", "done")]


@pytest.mark.slow
def test_joblib_sweep_of_four_processes_shares_one_db(sim, tmp_path: Path) -> None:
    # The embedded model keeps the four jobs writing long enough to overlap, which the test checks.
    result = sim(
        "run", "-m", "hydra/launcher=parallel", *TINY, "scenario.n_episodes=3", "scenario.max_turns=3",
        "scenario.max_tokens=24", "runner.concurrency=3", "backend.n_threads=1", "seed=1,2,3,4",
    )
    assert result.returncode == 0, result.stderr
    assert "locked" not in result.stdout + result.stderr
    db = tmp_path / "runs" / "sim.db"
    rows = db_rows(db, "SELECT seed, status, n_turns, created_at, finished_at FROM runs ORDER BY seed")
    assert [(seed, status, n) for seed, status, n, *_ in rows] == [(s, "done", 9) for s in (1, 2, 3, 4)]
    assert max(r[3] for r in rows) < min(r[4] for r in rows), "all four jobs were writing at the same time"
    assert db_rows(db, "SELECT count(DISTINCT episode_id) FROM annotations WHERE analyzer = 'role_flip'") == [(12,)]
    assert_sound(db)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, run_sim) -> list[Path]:
    """Two shards written by a real submitit sweep (its local executor: a process per job, as on a cluster)."""
    folder = tmp_path_factory.mktemp("submitit")
    result = run_sim(["run", "-m", "hydra/launcher=submitit_local", *SHORT, SHARD_PATH, "seed=1,2"], folder)
    assert result.returncode == 0, result.stderr
    found = sorted(folder.glob("runs/multirun/*/*/shards/*.db"))
    assert [path.name for path in found] == ["0.db", "1.db"]
    return found


def test_merge_of_overlapping_shards_adds_each_row_once(sim, tmp_path: Path, shards: list[Path]) -> None:
    merged = tmp_path / "merged.db"
    first = sim("merge", str(shards[0]), str(shards[1]), str(shards[0]), "--into", str(merged))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1].endswith("nothing new")
    expected = {table: sum(counts(shard)[table] for shard in shards) for table in TABLES}
    assert counts(merged) == expected and expected["turns"] == 4
    again = sim("merge", *map(str, shards), "--into", str(merged))
    assert again.returncode == 0, again.stderr
    assert counts(merged) == expected
    assert_sound(merged)
    assert len({sweep for (sweep,) in db_rows(merged, "SELECT sweep_id FROM runs")}) == 1
    analyzed = sim("analyze", "--db", str(merged), "--all", "--analyzer", "role_flip", "--json")
    assert analyzed.returncode == 0, analyzed.stderr
    assert '"n_episodes": 2' in analyzed.stdout


def test_a_finished_shard_completes_a_copy_merged_while_it_ran(sim, tmp_path: Path, shards: list[Path]) -> None:
    running = tmp_path / "running.db"
    shutil.copy(shards[0], running)
    with sqlite3.connect(running) as conn:  # the shard as it was before its last turn and its ending
        conn.execute("DELETE FROM turns WHERE idx = 1")
        conn.execute("UPDATE episodes SET status = 'running', termination_reason = NULL, n_turns = 1")
        conn.execute("UPDATE runs SET status = 'running', finished_at = NULL")
    merged = tmp_path / "merged.db"
    assert sim("merge", str(running), "--into", str(merged)).returncode == 0
    assert db_rows(merged, "SELECT status FROM episodes") == [("running",)]
    assert sim("merge", str(shards[0]), str(running), "--into", str(merged)).returncode == 0
    assert db_rows(merged, "SELECT status, n_turns FROM episodes") == db_rows(shards[0], "SELECT status, n_turns FROM episodes")
    assert db_rows(merged, "SELECT status FROM runs") == [("done",)]
    assert db_rows(merged, "SELECT idx, content FROM turns ORDER BY idx") == db_rows(shards[0], "SELECT idx, content FROM turns ORDER BY idx")
    assert_sound(merged)


def test_merge_refuses_what_it_cannot_merge(sim, tmp_path: Path, shards: list[Path]) -> None:
    target = tmp_path / "sim.db"
    assert sim("merge", str(shards[0]), "--into", str(target)).returncode == 0
    before = counts(target)
    assert_one_line_error(sim("merge", str(tmp_path / "missing.db"), "--into", str(target)), "shard: no file at", "missing.db")
    assert_one_line_error(sim("merge", str(target), "--into", str(target)), "is the target database itself")
    (tmp_path / "notes.db").write_text("not a database")
    assert_one_line_error(sim("merge", str(tmp_path / "notes.db"), "--into", str(target)), "notes.db", "not a SQLite database")
    other = tmp_path / "other.db"  # another run that happens to have the same id (say, run.id=x on two machines)
    shutil.copy(shards[0], other)
    with sqlite3.connect(other) as conn:
        conn.execute("UPDATE runs SET created_at = '2020-01-01T00:00:00.000+00:00'")
        conn.execute("UPDATE turns SET content = 'another conversation'")
    assert_one_line_error(sim("merge", str(other), "--into", str(target)), "other.db", "is another run than the target's run")
    assert counts(target) == before
    assert "another conversation" not in str(db_rows(target, "SELECT content FROM turns"))


def test_slurm_preset_composes_into_a_valid_submitit_launcher(sim, tmp_path: Path) -> None:
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

    shown = sim("run", "hydra/launcher=slurm", "hydra.launcher.partition=gpu", SHARD_PATH, "--cfg", "hydra", "--package", "hydra.launcher")
    assert shown.returncode == 0, shown.stderr
    launcher_cfg = yaml.safe_load(shown.stdout.split("\n", 1)[1])
    assert launcher_cfg["_target_"].endswith("SlurmLauncher")
    assert (launcher_cfg["partition"], launcher_cfg["timeout_min"], launcher_cfg["gpus_per_node"]) == ("gpu", 240, 1)
    launcher_cfg.update(submitit_folder=".submitit/%j", name="sim")  # Hydra resolves these two when it launches
    assert isinstance(instantiate(launcher_cfg), SlurmLauncher)  # every key is one the launcher takes
    # Here submitit gets as far as looking for SLURM; on a cluster it would submit the job array.
    assert_one_line_error(sim("run", "-m", "hydra/launcher=slurm", *SHORT, SHARD_PATH, "seed=1,2"), "slurm", "srun")
    assert not (tmp_path / "runs").exists(), "a sweep that could not start leaves no folder (nor its multirun.yaml)"


@pytest.mark.parametrize(
    "launcher", [["hydra/launcher=slurm"], ["hydra/launcher=ray_cluster", "hydra.launcher.ray.init.address=auto"]]
)
def test_jobs_on_several_machines_without_a_shard_each_are_refused(sim, tmp_path: Path, launcher: list[str]) -> None:
    result = sim("run", "-m", *launcher, *SHORT, "seed=1,2")
    assert_one_line_error(result, "runs jobs on several machines", "shards/${hydra:job.num}.db")
    assert not (tmp_path / "runs").exists(), "refused before any job or folder"
    assert_one_line_error(sim("run", "-m", "seed=1,2", "--cfg", "job"), "Only one of --run, --multirun, --cfg")


@pytest.mark.skipif(
    not __import__("importlib.util").util.find_spec("hydra_plugins.hydra_ray_launcher"),
    reason="the ray extra (hydra-ray-launcher) is not installed",
)
@pytest.mark.slow
def test_ray_sweep_on_a_local_ray_instance_writes_shards(sim, tmp_path: Path) -> None:
    result = sim("run", "-m", "hydra/launcher=ray_cluster", *SHORT, SHARD_PATH, "seed=1,2")
    assert result.returncode == 0, result.stderr
    found = sorted(tmp_path.glob("runs/multirun/*/*/shards/*.db"))
    assert len(found) == 2
    assert sim("merge", *map(str, found), "--into", str(tmp_path / "merged.db")).returncode == 0
    assert db_rows(tmp_path / "merged.db", "SELECT count(*), min(status), max(status) FROM runs") == [(2, "done", "done")]
