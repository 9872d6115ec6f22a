"""`backend.max_concurrency=auto` against a loopback server with a few generation slots that answers 429 with
Retry-After beyond them: the request limit shrinks on a 429, grows back, stays between 1 and runner.concurrency,
settles near the server's slots, each refused request waits out Retry-After, and no episode is lost."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from scripted_server import ScriptedServer
from test_run_visibility import slow_answer
from sim.backends import backends
from sim.errors import SimError
from sim.limits import DECREASE, LimitState, RequestLimit, Ticket, request_limit
from sim.messages import ChatMessage, SamplingParams
from sim.progress import RunProgress
from sim.requests import Budget, Call, RequestExecutor, RequestStats, RetryPolicy
from sim.store import Store

SLOTS = 4
RETRY_AFTER_S = 0.3
CEILING = 16  # runner.concurrency: one request for each episode in flight
TURNS = 6


def converse(server: ScriptedServer, limit: RequestLimit, count: int, store: Store) -> RequestExecutor:
    """`count` conversations of TURNS requests each, one after another within each, sent to `server` through an
    executor with `limit` (the executor, afterwards). Its backoff is far shorter than the server's Retry-After, so
    that a retry sent before Retry-After has passed would show."""
    backend = backends.create("openai", base_url=server.base_url, model=server.model, api_key_env=None)
    policy = RetryPolicy(max_attempts=5, initial_s=0.01, max_s=0.05, retry_after_max_s=300.0)
    executor = RequestExecutor(store, backend, policy, False, Budget(None, None), (0.0, 0), limit)

    async def conversation(index: int) -> None:
        for turn in range(TURNS):
            prompt = [ChatMessage("user", f"conversation {index}, turn {turn}")]
            await executor.complete(prompt, SamplingParams(max_tokens=8), 0, Call("turn", "turn", "r", None))

    async def all_of_them() -> None:
        try:
            await asyncio.gather(*(conversation(index) for index in range(count)))
        finally:
            await backend.aclose()

    asyncio.run(all_of_them())
    return executor


def refused_share(server: ScriptedServer) -> tuple[int, float]:
    """How many completion requests the server turned away, and their share of all it was sent."""
    refused = sum(status == 429 for _, status, _ in server.attempts)
    return refused, refused / len(server.attempts)


def test_the_auto_limit_shrinks_on_429_grows_back_and_settles_near_the_servers_slots(tmp_path: Path) -> None:
    class NotedLimit(RequestLimit):
        """`auto`'s limit (from 1 to CEILING), noting its size after every answer and every overload, and when
        each cut came and the limit its request had been sent under."""

        def __init__(self) -> None:
            super().__init__(1, CEILING)
            self.sizes: list[tuple[float, int]] = []
            self.cuts: list[tuple[float, int]] = []

        def _grow(self) -> None:
            super()._grow()
            self.sizes.append((time.monotonic(), self.current))

        def _shrink(self, ticket: Ticket, wait_s: float) -> None:
            before = self._cut_after
            super()._shrink(ticket, wait_s)
            self.sizes.append((time.monotonic(), self.current))
            if self._cut_after != before:
                self.cuts.append((time.monotonic(), int(ticket.limit)))

    store = Store.open(tmp_path / "sim.db")
    limit = NotedLimit()
    with ScriptedServer(slow_answer(0.05), slots=SLOTS, retry_after_s=RETRY_AFTER_S) as server:
        executor = converse(server, limit, CEILING, store)
    sizes = [size for _, size in limit.sizes]
    assert len(server.requests) == TURNS * CEILING, "every request was answered in the end"
    refused, share = refused_share(server)
    assert refused > 0, "the limit grew until the server said no"
    assert share <= 0.2, f"{share:.0%} of requests turned away"
    first_cut = next(i for i in range(1, len(sizes)) if sizes[i] < sizes[i - 1])
    assert sizes[first_cut - 1] > SLOTS, "it shrank once past the server's slots"
    after = sizes[first_cut:]
    assert any(later > earlier for earlier, later in zip(after, after[1:])), "and grew back after the cut"
    settled = sizes[len(sizes) // 2:]
    assert SLOTS / 2 <= statistics.median(settled) <= SLOTS * 1.5, f"settled around {statistics.median(settled)}"
    # Retry-After honored: the limit a request was turned away under is not tried again sooner than the server
    # asked, nor is the refused request sent again sooner.
    for cut, refused_at in limit.cuts:
        again = next((at for at, size in limit.sizes if at > cut and size >= refused_at), None)
        assert again is None or again - cut >= RETRY_AFTER_S - 0.01, (cut, refused_at, again)
    arrivals: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for arrived, status, body in server.attempts:
        arrivals[body["messages"][-1]["content"]].append((arrived, status))
    for attempts in arrivals.values():
        for (arrived, status), (again, _) in zip(attempts, attempts[1:]):
            assert status == 429 and again - arrived >= RETRY_AFTER_S - 0.01, attempts
    state, stats = limit.state(), executor.stats()
    assert state.overloads == refused and stats.retried == refused and (stats.waiting, stats.rate_limited) == (0, 0)
    # Each 429 is a retry in the ledger.
    assert store.db.execute("SELECT sum(retries) FROM requests").fetchone()[0] == refused
    store.close()


def test_a_run_with_auto_loses_no_episode_and_records_its_limit(tmp_path: Path, run_sim, db_rows) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(slow_answer(0.05), slots=SLOTS, retry_after_s=RETRY_AFTER_S) as server:
        done = run_sim(
            ["run", *server.backend_args(), f"store.path={db}", "runner.analyze=[]", "runner.progress=false",
             "scenario.max_tokens=16", "scenario.n_episodes=16", f"scenario.max_turns={TURNS}", f"runner.concurrency={CEILING}",
             "backend.max_concurrency=auto", "run.id=adaptive"],
            tmp_path,
        )
    assert done.returncode == 0, done.stderr
    assert db_rows(db, "SELECT status, count(*) FROM episodes GROUP BY status") == [("done", 16)]
    refused, share = refused_share(server)
    assert refused > 0 and share <= 0.2, (refused, share)
    ((final, low, high, overloads, retries),) = db_rows(
        db, "SELECT request_limit, request_limit_min, request_limit_max, overloads, retries FROM runs"
    )
    assert 1 <= low <= final <= high <= CEILING and high > SLOTS, "it went past the server's slots and was cut"
    assert overloads == refused and retries == refused
    printed = " ".join(done.stdout.split())  # as one line: the console wraps at 80 columns
    said = re.search(r"request limit \(auto, up to 16\): (\d+) at the end, (\d+) at the highest, cut to (\d+) at the lowest; (\d+) answers", printed)
    assert said and tuple(map(int, said.groups())) == (final, high, low, overloads), done.stdout

    shown = run_sim(["runs", "show", "adaptive", "--db", str(db)], tmp_path)
    assert said.group(0) in " ".join(shown.stdout.split()), shown.stdout
    as_json = json.loads(run_sim(["runs", "show", "adaptive", "--db", str(db), "--json"], tmp_path).stdout)
    assert as_json["request_limit"] == {
        "adaptive": True, "current": final, "low": low, "high": high, "ceiling": CEILING, "overloads": overloads
    }


@pytest.mark.parametrize("schema", ["openai_api.OpenAIConfig", "langchain_chat.LangChainConfig", "vllm_engine.VLLMConfig"])
def test_every_schema_takes_auto(schema: str) -> None:
    config = OmegaConf.merge(OmegaConf.structured(get_class(f"sim.backends.{schema}")), {"max_concurrency": "auto"})
    assert config.max_concurrency == "auto"


@pytest.mark.parametrize("value", ["lots", 2.5, True, 0])
def test_a_limit_that_is_neither_a_number_nor_auto_is_refused_in_one_line(value: object) -> None:
    wanted = "must be positive, got 0" if value == 0 else f"must be a positive whole number or auto, got {value!r}"
    with pytest.raises(SimError, match=re.escape(f"backend.max_concurrency {wanted}")):
        backends.create("openai", base_url="http://127.0.0.1:9/v1", model="m", api_key_env=None, max_concurrency=value)


def test_progress_shows_rate_limited_waits_and_the_auto_limit() -> None:
    adaptive = RunProgress(4, False, lambda: RequestStats(3, 2, 1, LimitState(True, 7, 4, 9, 64, 5)))
    assert re.fullmatch(
        r"progress: episodes 0/4, 0 turns \(0\.00/s\), 3 retries \(2 waiting, 1 rate-limited\), request limit 7/64 \(auto\), \d+ s",
        adaptive.line(),
    ), adaptive.line()
    fixed = RunProgress(4, False, lambda: RequestStats(0, 0, 0, LimitState(False, 8, None, 8, 8, 0)))
    assert "request limit" not in fixed.line()


def test_the_auto_limit_grows_up_to_runner_concurrency_and_no_further(tmp_path: Path) -> None:
    limit, store = request_limit("auto", 4), Store.open(tmp_path / "sim.db")
    with ScriptedServer(slow_answer(0.02)) as server:  # no slots: it takes whatever it is sent
        converse(server, limit, 12, store)
    store.close()
    assert limit.state().high == 4 and server.peak == 4 and len(server.requests) == 12 * TURNS


def test_overloads_cut_the_limit_once_per_round_trip_and_never_below_one() -> None:
    async def sizes() -> list[int]:
        limit = RequestLimit(1, 8)

        async def request(overloaded: bool) -> None:
            try:
                async with limit.slot(lambda exc: 0.0 if overloaded else None):
                    await asyncio.sleep(0)
                    if overloaded:
                        raise RuntimeError("turned away")
            except RuntimeError:
                pass

        while limit.current < 8:  # answers to a full limit grow it
            await asyncio.gather(*(request(False) for _ in range(limit.current)))
        seen = [limit.current]
        await asyncio.gather(*(request(True) for _ in range(8)))  # turned away together: one congestion
        seen.append(limit.current)
        for _ in range(6):  # each sent after the last cut: each cuts again
            await request(True)
            seen.append(limit.current)
        return seen

    assert DECREASE == 0.7  # 8 * 0.7 = 5.6, then 3.9, 2.7, 1.9, 1.3, 1
    assert asyncio.run(sizes()) == [8, 5, 3, 2, 1, 1, 1, 1]


def test_a_cancelled_waiter_leaves_no_place_taken() -> None:
    async def scenario() -> bool:
        limit = RequestLimit(1, 1)
        held, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with limit.slot(lambda exc: None):
                held.set()
                await release.wait()

        holder = asyncio.ensure_future(hold())
        await held.wait()
        waiter = asyncio.ensure_future(hold())
        await asyncio.sleep(0)
        waiter.cancel()
        release.set()
        await asyncio.gather(holder, waiter, return_exceptions=True)
        async with limit.slot(lambda exc: None):  # would wait for ever had the cancelled waiter kept a place
            return True

    assert asyncio.run(asyncio.wait_for(scenario(), 2))


def test_a_stored_limit_reads_its_ceiling_from_the_config_as_last_revised() -> None:
    from sim.report import stored_request_limit

    run = {"request_limit": 6, "request_limit_min": 3, "request_limit_max": 8, "overloads": 4,
           "config_yaml": "backend:\n  max_concurrency: 8\nrunner:\n  concurrency: 64\n"}
    assert stored_request_limit(run, []) == LimitState(False, 6, 3, 8, 8, 4), "a fixed limit is its own ceiling"
    resumed_auto = [{"changes": {"backend.max_concurrency": {"old": 8, "new": "auto"}, "runner.concurrency": {"old": 64, "new": 32}}}]
    assert stored_request_limit(run, resumed_auto) == LimitState(True, 6, 3, 8, 32, 4), "auto grows up to runner.concurrency"
    assert stored_request_limit({**run, "request_limit": None}, []) is None, "a run from before the limit was recorded"
