"""The ledger of every request (turns, texts, judges) with its tokens and cost, `sim runs` and `sim runs show`
reading it, and budgets that stop a run before a request could pass them and let a resume finish it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from scripted_server import ScriptedServer

REPLY = "Let us go on with the task."
USAGE = (20, 8)  # prompt and completion tokens the server reports for every request
PRICING = "backend.pricing={input_usd_per_mtok:1000,output_usd_per_mtok:2000}"
PER_REQUEST_USD = 0.036  # 20 * 1000 / 1e6 + 8 * 2000 / 1e6
EPISODES, TURNS = 4, 6


def run_args(server: ScriptedServer, db: Path, *extra: str) -> list[str]:
    """`sim run` of roleplay episodes with a task specifier against the scripted server, not analyzed."""
    return ["run", *server.backend_args(), f"store.path={db}", "runner.analyze=[]", "scenario.max_tokens=16",
            f"scenario.n_episodes={EPISODES}", f"scenario.max_turns={TURNS}", "scenario.specify_task=true",
            "runner.progress=false", *extra]


@pytest.fixture
def runs_json(run_sim):
    """`runs_json(db, folder)`: `sim runs --json`, by run id."""

    def listed(db: Path, folder: Path) -> dict[str, dict]:
        result = run_sim(["runs", "--db", str(db), "--json"], folder)
        assert result.returncode == 0, result.stderr
        return {run["id"]: run for run in json.loads(result.stdout)}

    return listed


def test_a_budget_stops_the_run_near_its_cap_and_a_resume_with_a_higher_cap_finishes_it(tmp_path: Path, runs_json, run_sim, db_rows) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(lambda messages: REPLY, usage=USAGE) as server:
        stopped = run_sim(run_args(server, db, PRICING, "runner.max_cost_usd=0.5", "runner.concurrency=2", "run.id=capped"), tmp_path)
        assert stopped.returncode == 3, stopped.stderr
        (line,) = [line for line in stopped.stderr.splitlines() if line.startswith("stopped: budget;")]
        assert "run.id=capped" in line and "Traceback" not in stopped.stderr
        sent_before = len(server.requests)

        run = runs_json(db, tmp_path)["capped"]
        assert run["status"] == "stopped: budget" and run["episodes_failed"] == 0
        assert run["requests"] == sent_before, "every request sent is in the ledger"
        assert (run["prompt_tokens"], run["completion_tokens"]) == (20 * sent_before, 8 * sent_before)
        assert run["cost_usd"] == pytest.approx(sent_before * PER_REQUEST_USD)
        assert f"  {sent_before} requests sent in all (turns, texts, judges), cost ${run['cost_usd']:.4f}; " in stopped.stdout
        # Stopped by itself near the cap: not past it, and short of it by less than two requests' estimates
        # (each estimated at max_tokens=16 completion tokens, 0.052 USD or a little more).
        assert 0.5 - 2 * 0.06 < run["cost_usd"] <= 0.5
        assert db_rows(db, "SELECT DISTINCT status FROM episodes WHERE status != 'done'") == [("stopped",)]

        resumed = run_sim(run_args(server, db, PRICING, "runner.max_cost_usd=5", "runner.concurrency=2", "run.id=capped"), tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        sent = len(server.requests)
    run = runs_json(db, tmp_path)["capped"]
    assert run["status"] == "done" and (run["episodes_done"], run["episodes_failed"]) == (EPISODES, 0)
    assert db_rows(db, "SELECT count(*), count(DISTINCT episode_id || ':' || idx) FROM turns") == [(EPISODES * TURNS,) * 2]
    # One request per turn and per task specified, each sent once over both sessions.
    assert sent == run["requests"] == EPISODES * (TURNS + 1)
    assert run["cost_usd"] == pytest.approx(sent * PER_REQUEST_USD)


def test_a_token_cap_stops_a_run_too_and_a_cost_cap_needs_pricing(tmp_path: Path, runs_json, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(lambda messages: REPLY, usage=USAGE) as server:
        stopped = run_sim(run_args(server, db, "runner.max_tokens=500", "run.id=tokens"), tmp_path)
        assert stopped.returncode == 3, stopped.stderr
        unpriced = run_sim(run_args(server, db, "runner.max_cost_usd=1"), tmp_path)
    run = runs_json(db, tmp_path)["tokens"]
    assert run["status"] == "stopped: budget" and run["cost_usd"] is None, "no pricing: unpriced"
    assert run["requests"] > 0 and run["prompt_tokens"] + run["completion_tokens"] <= 500
    assert unpriced.returncode == 1
    assert unpriced.stderr.strip() == (
        "error: runner.max_cost_usd needs backend.pricing (input_usd_per_mtok and output_usd_per_mtok) to count cost"
    )


def test_the_ledger_sums_each_kind_of_call_with_its_own_pricing(tmp_path: Path, runs_json, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(lambda messages: REPLY, usage=USAGE) as server, ScriptedServer(lambda messages: "No.") as judge:
        judged_by = ["runner.analyze=[digression]", "analyzer.digression.mode=judge", *judge.backend_args("analyzer.digression.judge"),
                     "analyzer.digression.judge=openai"]
        done = run_sim(run_args(server, db, PRICING, "run.id=judged", *judged_by), tmp_path)
        assert done.returncode == 0, done.stderr
        again = run_sim(run_args(server, db, PRICING, "run.id=again", *judged_by), tmp_path)  # the same requests: all cached
        assert again.returncode == 0, again.stderr
        judged = len(judge.requests)
        # A judge asked later, by `sim analyze`, is counted in the ledger of the run whose episodes it judged.
        analyzed = run_sim(["analyze", "--db", str(db), "--run", "judged", "--analyzer", "role_drift", "analyzer.role_drift.mode=judge",
                            *judge.backend_args("analyzer.role_drift.judge"), "analyzer.role_drift.judge=openai"], tmp_path)
        assert analyzed.returncode == 0, analyzed.stderr
        drift_judged = len(judge.requests) - judged
    shown = run_sim(["runs", "show", "judged", "--db", str(db), "--json"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    ledger = {(row["kind"], row["purpose"]): row for row in json.loads(shown.stdout)["ledger"]}
    assert set(ledger) == {("turn", "turn"), ("text", "specify_task"), ("judge", "digression"), ("judge", "role_drift")}
    assert ledger["judge", "role_drift"]["requests"] == drift_judged == EPISODES * TURNS, "one question per turn"
    turns, texts, judges = ledger["turn", "turn"], ledger["text", "specify_task"], ledger["judge", "digression"]
    assert (turns["requests"], texts["requests"], judges["requests"]) == (EPISODES * TURNS, EPISODES, judged)
    assert turns["cost_usd"] == pytest.approx(EPISODES * TURNS * PER_REQUEST_USD)
    assert texts["cost_usd"] == pytest.approx(EPISODES * PER_REQUEST_USD)
    assert judges["cost_usd"] is None and judges["prompt_tokens"] > 0, "the judge has no pricing: its tokens count, its cost is unknown"
    runs = runs_json(db, tmp_path)
    assert runs["judged"]["cost_usd"] is None, "a run with an unpriced request has no total cost"
    cached = runs["again"]
    assert (cached["requests"], cached["cost_usd"]) == (0, 0.0)
    assert cached["cache_hits"] == EPISODES * (TURNS + 1) + judged
    assert cached["saved_tokens"] == 28 * EPISODES * (TURNS + 1) + sum(row["prompt_tokens"] + row["completion_tokens"] for row in [judges])
    assert cached["saved_usd"] is None, "the cache saved an unpriced judge's requests too"


def test_sim_runs_show_prints_the_config_the_overrides_and_the_ledger(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(lambda messages: REPLY, usage=USAGE) as server:
        assert run_sim(run_args(server, db, PRICING, "runner.max_cost_usd=0.2", "run.id=shown"), tmp_path).returncode == 3
        # The resume names no backend: the run goes on with the one it was started with, and its pricing.
        resumed = run_sim(["run", f"store.path={db}", "runner.analyze=[]", "runner.max_cost_usd=5", "run.id=shown"], tmp_path)
        assert resumed.returncode == 0, resumed.stderr
    shown = run_sim(["runs", "show", "shown", "--db", str(db)], tmp_path)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("run shown  done  roleplay  openai:scripted\n")
    assert "overrides started: " in out and "runner.max_cost_usd=0.2" in out
    assert "overrides resume 1: " in out and "runner.max_cost_usd=5" in out
    assert "input_usd_per_mtok: 1000" in out and "max_cost_usd: 0.2" in out, "the config as the run first stored it"
    assert "Ledger of run shown" in out
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():  # the first table's rows (columns that do not fit the terminal follow in another)
        if line.split() and line.split()[0] in ("turn", "text", "all"):
            rows.setdefault(line.split()[0], line.split())
    n = EPISODES * (TURNS + 1)
    assert rows["all"][1:4] == [str(n), str(20 * n), str(8 * n)] and rows["all"][4] == f"${n * PER_REQUEST_USD:.4f}"
    assert rows["text"][1] == "specify_task"
    listing = run_sim(["runs", "--db", str(db)], tmp_path)
    assert listing.returncode == 0 and f"${n * PER_REQUEST_USD:.4f}" in listing.stdout
    missing = run_sim(["runs", "show", "nope", "--db", str(db)], tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: no run 'nope' in {db}"


def test_the_request_that_would_cross_the_cap_is_not_sent(tmp_path: Path) -> None:
    import sim.compose  # noqa: F401  (registers every backend)
    from sim.messages import ChatMessage, SamplingParams
    from sim.backends import backends
    from sim.errors import SimError
    from sim.config import RunnerConfig
    from sim.requests import Budget, BudgetStop, Call, RequestExecutor, retry_policy
    from sim.store import Store

    prompt = [ChatMessage("user", "x" * 20)]  # 20 characters: estimated at 20 tokens before any answer
    params = SamplingParams(max_tokens=8)  # estimated at 8, as the server reports
    with ScriptedServer(lambda messages: REPLY, usage=USAGE) as server:
        config = {"base_url": server.base_url, "model": server.model, "api_key_env": None,
                  "pricing": {"input_usd_per_mtok": 1000, "output_usd_per_mtok": 2000}}

        def session(store: Store, run_id: str, budget: Budget, n: int, prompt: list[ChatMessage] = prompt) -> list[object]:
            """`n` requests at once under `budget`, each its own (another sample index); what each ended with."""
            backend = backends.create("openai", **config)
            executor = RequestExecutor(store, backend, retry_policy(RunnerConfig()), True, budget, store.run_spend(run_id))

            async def every() -> list[object]:
                calls = [executor.complete(prompt, params, i, Call("turn", "turn", run_id, None)) for i in range(n)]
                ended = await asyncio.gather(*calls, return_exceptions=True)
                await backend.aclose()
                return ended

            return asyncio.run(every())

        store = Store.open(tmp_path / "sim.db")
        ended = session(store, "r", Budget(0.1, None), 3)  # 2 requests cost 0.072; a third would make 0.108
        assert len(server.requests) == 2 and sum(isinstance(e, BudgetStop) for e in ended) == 1
        ended = session(store, "r", Budget(0.108, None), 4)  # two from the cache, and room for exactly one more
        assert len(server.requests) == 3 and sum(isinstance(e, BudgetStop) for e in ended) == 1
        assert store.run_spend("r") == (pytest.approx(0.108), 84)
        ended = session(store, "t", Budget(None, 56), 3, [ChatMessage("user", "y" * 20)])  # a token cap: 28 a request
        assert len(server.requests) == 5 and isinstance(ended[2], BudgetStop)
        ((hits, saved_tokens, saved_usd),) = store.db.execute(
            "SELECT sum(cache_hit), sum(prompt_tokens + completion_tokens), sum(cost_usd) FROM requests WHERE cache_hit"
        ).fetchall()
        assert (hits, saved_tokens, saved_usd) == (2, 2 * 28, pytest.approx(2 * PER_REQUEST_USD)), "cache hits are counted as saved"
        store.close()
        with pytest.raises(SimError, match=r"^backend openai\.pricing needs input_usd_per_mtok and output_usd_per_mtok"):
            backends.create("openai", **{**config, "pricing": {"input_usd_per_mtok": 1}})


def test_a_database_from_before_the_ledger_gets_its_requested_turns_in_it(tmp_path: Path) -> None:
    import sqlite3

    from sqlite_utils import Database

    from sim.migrations import migrations
    from sim.store import Store

    path = tmp_path / "old.db"
    old = Database(sqlite3.connect(path))
    migrations.apply(old, stop_before="m009_request_ledger")
    old["runs"].insert({"id": "r", "backend": "openai", "model": "m", "status": "done"})
    old["episodes"].insert({"id": "r-e0000", "run_id": "r", "source": "generated", "kind": "conversation", "status": "done"})
    old["episodes"].insert({"id": "d-1", "source": "imported", "dataset": "d", "kind": "conversation", "status": "done"})
    for idx, cache_hit in enumerate([0, 1]):
        old["turns"].insert({"episode_id": "r-e0000", "idx": idx, "speaker": "a", "role": "a", "content": "x",
                             "prompt_tokens": 20, "completion_tokens": 8, "cache_hit": cache_hit, "retries": 0})
    old["turns"].insert({"episode_id": "r-e0000", "idx": 2, "speaker": "a", "role": "a", "content": "no request"})
    old["turns"].insert({"episode_id": "d-1", "idx": 0, "speaker": "a", "role": "a", "content": "imported"})
    old.close()
    store = Store.open(path)
    (run,) = store.run_overview()
    assert (run["requests"], run["prompt_tokens"], run["completion_tokens"], run["cache_hits"], run["saved_tokens"]) == (1, 20, 8, 1, 28)
    assert run["cost_usd"] is None, "no pricing was recorded before the ledger"
    assert [(row["kind"], row["purpose"], row["requests"]) for row in store.ledger("r")] == [("turn", "turn", 1)]
    assert store.db["runs"].columns_dict["overrides_json"] is str
    store.close()


def test_merged_shards_bring_their_ledgers_once(tmp_path: Path, runs_json, run_sim) -> None:
    shards = [tmp_path / "a.db", tmp_path / "b.db"]
    with ScriptedServer(lambda messages: REPLY, usage=USAGE) as server:
        for shard, seed in zip(shards, (1, 2)):
            done = run_sim(run_args(server, shard, PRICING, f"seed={seed}", f"run.id=job{seed}"), tmp_path)
            assert done.returncode == 0, done.stderr
    merged = tmp_path / "merged.db"
    for _ in range(2):  # a second merge of the same shards adds nothing
        result = run_sim(["merge", *map(str, shards), "--into", str(merged)], tmp_path)
        assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith("nothing new")
    fields = ("requests", "prompt_tokens", "completion_tokens", "cost_usd", "cache_hits")
    expected = {run_id: {key: run[key] for key in fields} for shard in shards for run_id, run in runs_json(shard, tmp_path).items()}
    assert {run_id: {key: run[key] for key in fields} for run_id, run in runs_json(merged, tmp_path).items()} == expected
    assert expected["job1"]["requests"] == EPISODES * (TURNS + 1)
