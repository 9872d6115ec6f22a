"""The `openai` backend against a real llama.cpp server on loopback, with and without injected faults."""

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from helpers import TINY, openai_args
from fault_proxy import FAULTS, FaultProxy
from sim.backends.openai_api import retry_after_seconds
from test_bad_input import assert_one_line_error



def test_concurrent_run_over_http_then_served_from_cache(sim, tmp_path: Path, llama_server: str, db_rows) -> None:
    with FaultProxy(llama_server) as proxy:
        args = openai_args(proxy.base_url, *TINY, "scenario.n_episodes=3", "runner.concurrency=3", "seed=5")
        first = sim("run", *args, "run.id=live")
        assert first.returncode == 0, first.stderr
        calls = proxy.counts["forwarded"]
        second = sim("run", *args, "run.id=cached")
        assert second.returncode == 0, second.stderr
        assert proxy.counts["forwarded"] == calls, "a cache hit must make no backend call"
    db = tmp_path / "runs" / "sim.db"
    live = db_rows(db, "SELECT idx, content, cache_hit FROM turns WHERE episode_id LIKE 'live-%' ORDER BY episode_id, idx")
    cached = db_rows(db, "SELECT idx, content, cache_hit FROM turns WHERE episode_id LIKE 'cached-%' ORDER BY episode_id, idx")
    assert calls == len(live) and {c[2] for c in live} == {0}
    assert [c[:2] for c in cached] == [c[:2] for c in live] and {c[2] for c in cached} == {1}
    (run,) = db_rows(db, "SELECT backend, model, n_turns, prompt_tokens, completion_tokens, cache_hits FROM runs WHERE id='live'")
    assert run[:3] == ("openai", "smollm2", len(live)) and run[3] > 0 and run[4] > 0 and run[5] == 0
    assert "cache hits" in second.stdout


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_faults_end_every_episode_done_or_failed_with_reason(sim, tmp_path: Path, llama_server: str, rate: float, db_rows) -> None:
    # Up to 40 turns meet every fault kind (429 with and without Retry-After, 500/502/503, resets, stalls past the
    # timeout, truncated, non-JSON and empty replies). The server answers one request at a time, so the timeout
    # must cover its queue: one request in flight, and short replies, so that only a stall runs past it. The margin
    # is wide because a real timeout of a slow reply on a loaded machine would be a retry no fault explains.
    with FaultProxy(llama_server, rate=rate, stall_s=16, seed=1) as proxy:
        args = openai_args(
            proxy.base_url, *TINY, "scenario.n_episodes=10", "scenario.max_turns=4", "scenario.max_tokens=12",
            "runner.concurrency=3", "backend.max_concurrency=1", "backend.timeout_s=15",
            "runner.backoff_initial_s=0.05", "runner.backoff_max_s=0.5", "runner.max_attempts=5",
        )
        result = sim("run", *args, "run.id=faulty")
        injected = {fault: proxy.counts[fault] for fault in FAULTS}
    assert result.returncode == 0, result.stderr
    assert min(injected.values()) >= 1, f"every fault kind is met: {injected}"
    db = tmp_path / "runs" / "sim.db"
    for status, reason in db_rows(db, "SELECT status, termination_reason FROM episodes"):
        assert (status, reason in ("task_done", "max_turns")) == ("done", True) or (
            status == "failed" and reason.startswith("backend_error: ")
        )
    assert db_rows(db, "SELECT count(*) FROM episodes WHERE status = 'done'")[0][0] >= 1, "an episode gets through"
    # Each injected fault was retried (a turn's retries) or was an attempt of a request that failed its episode.
    ((turn_retries,),) = db_rows(db, "SELECT sum(retries) FROM turns")
    failed = [n for (n,) in db_rows(db, "SELECT failed_attempts FROM episodes WHERE status = 'failed'")]
    assert all(n >= 1 for n in failed) and turn_retries + sum(failed) == sum(injected.values())
    assert db_rows(db, "SELECT retries, status FROM runs") == [(turn_retries + sum(n - 1 for n in failed), "done")]


def test_retry_after_is_honored(tmp_path: Path, llama_server: str) -> None:
    from sim.messages import ChatMessage, SamplingParams
    from sim.backends import backends
    from sim.requests import Budget, Call, RequestExecutor, RetryPolicy
    from sim.store import Store

    store = Store.open(tmp_path / "sim.db")
    with FaultProxy(llama_server, script=("429_retry_after", "503"), retry_after_s=1.5) as proxy:
        backend = backends.create("openai", base_url=proxy.base_url, model="smollm2", api_key_env=None)
        policy = RetryPolicy(max_attempts=3, initial_s=0.01, max_s=0.05, retry_after_max_s=300.0)
        executor = RequestExecutor(store, backend, policy, False, Budget(None, None), (0.0, 0))

        async def timed() -> tuple:
            started = time.monotonic()
            result = await executor.complete([ChatMessage("user", "Hi")], SamplingParams(max_tokens=4), 0, Call("turn", "turn", None, None))
            await backend.aclose()
            return result, time.monotonic() - started

        result, elapsed = asyncio.run(timed())
    assert result.retries == 2 and result.completion.text
    assert elapsed >= 1.5, "the server asked for 1.5 s; backoff alone would wait about 0.06 s"
    assert proxy.counts["429_retry_after"] == 1 and proxy.counts["503"] == 1


@pytest.mark.parametrize("http_client", ["aiohttp", "sdk"])
def test_every_fault_kind_is_retried(tmp_path: Path, llama_server: str, http_client: str) -> None:
    from sim.messages import ChatMessage, SamplingParams
    from sim.backends import backends
    from sim.requests import Budget, Call, RequestExecutor, RetryPolicy
    from sim.store import Store

    store = Store.open(tmp_path / "sim.db")
    # One request meets each fault once, in turn; only a stall needs the timeout, so it is short.
    with FaultProxy(llama_server, script=FAULTS, stall_s=3) as proxy:
        backend = backends.create(
            "openai", base_url=proxy.base_url, model="smollm2", api_key_env=None, timeout_s=2, http_client=http_client
        )
        policy = RetryPolicy(max_attempts=len(FAULTS) + 1, initial_s=0.01, max_s=0.05, retry_after_max_s=300.0)
        executor = RequestExecutor(store, backend, policy, False, Budget(None, None), (0.0, 0))

        async def complete():
            try:
                return await executor.complete([ChatMessage("user", "Hi")], SamplingParams(max_tokens=4), 0, Call("turn", "turn", None, None))
            finally:
                await backend.aclose()

        result = asyncio.run(complete())
    assert result.retries == len(FAULTS) and result.completion.text
    assert proxy.counts == {**{fault: 1 for fault in FAULTS}, "forwarded": 1}


def test_unreachable_server_fails_the_run_then_the_fixed_run_resumes(sim, tmp_path: Path, llama_server: str, db_rows) -> None:
    result = sim("run", *openai_args("http://127.0.0.1:9/v1", *TINY), "run.id=down")
    assert_one_line_error(result, "backend=openai: cannot reach http://127.0.0.1:9/v1", "backend.base_url")
    db = tmp_path / "runs" / "sim.db"
    assert db_rows(db, "SELECT id, status FROM runs") == [("down", "failed")]
    switched = sim("run", "run.id=down", "backend=embedded", *TINY)
    assert_one_line_error(switched, "run 'down' already exists with another backend")
    fixed = sim("run", "run.id=down", *openai_args(llama_server, *TINY))
    assert fixed.returncode == 0, fixed.stderr
    assert db_rows(db, "SELECT id, status FROM runs") == [("down", "done")]
    assert db_rows(db, "SELECT count(*) FROM episodes WHERE status = 'done'") == [(2,)]


def test_a_preset_without_its_model_says_so(sim) -> None:
    assert_one_line_error(sim("run", "backend=vllm_server", *TINY), "backend.model must be set")


def test_unknown_model_is_named(sim, llama_server: str) -> None:
    args = openai_args(llama_server, *TINY)
    args[2] = "backend.model=no-such-model"
    assert_one_line_error(sim("run", *args), "model 'no-such-model' is not served", "smollm2")


def test_missing_key_variable_is_named(sim, llama_server: str, monkeypatch) -> None:
    monkeypatch.delenv("SIM_TEST_MISSING_KEY", raising=False)
    args = [*openai_args(llama_server, *TINY)[:-len(TINY)], "backend.api_key_env=SIM_TEST_MISSING_KEY", *TINY]
    assert_one_line_error(sim("run", *args), "SIM_TEST_MISSING_KEY is not set")


def test_rejected_key_fails_the_run_in_one_line(sim, tmp_path: Path, llama_server: str, monkeypatch, db_rows) -> None:
    monkeypatch.setenv("SIM_TEST_KEY", "sk-wrong-sentinel")
    with FaultProxy(llama_server, required_key="sk-right") as proxy:
        args = [*openai_args(proxy.base_url)[:-1], "backend.api_key_env=SIM_TEST_KEY", *TINY, "run.id=denied"]
        result = sim("run", *args)
    assert_one_line_error(result, "rejected the key in SIM_TEST_KEY with HTTP 401", "backend.api_key_env")
    db = tmp_path / "runs" / "sim.db"
    assert db_rows(db, "SELECT id, status FROM runs") == [("denied", "failed")]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert "sk-wrong-sentinel" not in db.read_bytes().decode("latin-1")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "2"}, 2.0), ({"retry-after-ms": "150"}, 0.15), ({"retry-after": "soon"}, None), ({}, None)],
)
def test_retry_after_parsing(headers: dict, expected) -> None:
    assert retry_after_seconds(headers) == expected
