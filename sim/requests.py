"""Every backend request goes through here: the cache, the per-backend request limit, retries, the run's budget,
and the ledger that records each answered request."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Optional, TypeGuard

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from sim.backends import Backend, BackendError, Completion
from sim.config import RunnerConfig
from sim.limits import LimitState, RequestLimit, request_limit
from sim.messages import ChatMessage, SamplingParams
from sim.store import Store

# Before any request of a run is answered, a prompt is taken to be one token per character: more than tokenizers
# give for text, so that the first requests are not underestimated.
FIRST_TOKENS_PER_CHAR = 1.0
# Slack in comparing sums of floating-point costs with a cap.
CAP_SLACK = 1e-9


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped at `max_s`; a server's Retry-After wins when it asks for longer
    (up to `retry_after_max_s`, so a broken header cannot stall a run for hours). Its defaults are RunnerConfig's
    (`retry_policy`)."""

    max_attempts: int
    initial_s: float
    max_s: float
    retry_after_max_s: float


def retry_policy(runner: Any) -> RetryPolicy:
    """The retry policy a run's `runner` settings ask for."""
    return RetryPolicy(runner.max_attempts, runner.backoff_initial_s, runner.backoff_max_s, runner.retry_after_max_s)


@dataclass(frozen=True)
class Call:
    """What a request is for, as the ledger records it: its kind (`turn`, `text` for a text that is not a turn, such
    as a task specifier's or a moderator's, `judge`), its purpose (`turn`, the text's key such as `specify_task`,
    the judge's analyzer), and the run and episode it serves (None for an imported episode's)."""

    kind: str
    purpose: str
    run_id: Optional[str]
    episode_id: Optional[str]


@dataclass(frozen=True)
class Budget:
    """The caps of one run's generation (`runner.max_cost_usd`, `runner.max_tokens`; None: no cap)."""

    max_cost_usd: Optional[float]
    max_tokens: Optional[int]

    def passed_by(self, usd: float, tokens: float) -> bool:
        """Whether spending `usd` and `tokens` in all would pass a cap."""
        return (self.max_cost_usd is not None and usd > self.max_cost_usd + CAP_SLACK) or (
            self.max_tokens is not None and tokens > self.max_tokens
        )


class BudgetStop(Exception):
    """A request not sent: it could pass the run's budget."""


@dataclass
class RequestResult:
    """A completion and how it was obtained."""

    completion: Completion
    request_hash: str
    cache_hit: bool
    retries: int


@dataclass(frozen=True)
class RequestStats:
    """Where a run's requests stand, for the progress display: requests retried so far, those now waiting to be
    retried and, of those, the ones a server turned away as overloaded (429, 503, a timeout), and the request limit."""

    retried: int
    waiting: int
    rate_limited: int
    limit: LimitState


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


def _is_overload(exc: Optional[BaseException]) -> TypeGuard[BackendError]:
    return isinstance(exc, BackendError) and exc.overload


class RequestExecutor:
    """Sends requests to one backend for one run, at most `limit` at once (default: the backend's
    `max_concurrency`, an `auto` one reaching up to runner.concurrency's default)."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        policy: RetryPolicy,
        use_cache: bool,
        budget: Budget,
        spent: tuple[float, int],
        limit: Optional[RequestLimit] = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.policy = policy
        self.use_cache = use_cache
        self.budget = budget
        self.limit = limit or request_limit(backend.max_concurrency, RunnerConfig.concurrency)
        self._backoff = wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_s, jitter=policy.initial_s)
        self._retried = 0  # requests sent again after a failure, so far
        self._waiting = 0  # requests now waiting out a backoff or a server's Retry-After
        self._rate_limited = 0  # of those, the ones the server turned away as overloaded
        self._spent_usd, self._spent_tokens = spent  # by the requests answered, before a resume too
        self._held_usd, self._held_tokens = 0.0, 0.0  # the estimates of the requests in flight
        self._prompt_seen = (0, 0)  # prompt tokens and characters of the requests answered in this session
        self._changed: Optional[asyncio.Future[None]] = None  # resolved when the budget's room changes
        self.stopped = False  # a request was refused for the budget: no more are sent

    def stats(self) -> RequestStats:
        """Retries, waits and the request limit now (for the progress display)."""
        return RequestStats(self._retried, self._waiting, self._rate_limited, self.limit.state())

    def _before_sleep(self, state: RetryCallState) -> None:
        self._waiting += 1
        self._rate_limited += state.outcome is not None and _is_overload(state.outcome.exception())

    def _overload_wait(self, exc: BaseException) -> Optional[float]:
        """For an answer that says the server is overloaded, how long it asked to be left alone (0 when it did not
        say; at most `retry_after_max_s`, as for the retry); None for any other failure."""
        if not _is_overload(exc):
            return None
        return min(exc.retry_after or 0.0, self.policy.retry_after_max_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = self._backoff(state)
        if isinstance(exc, BackendError) and exc.retry_after is not None:
            return min(max(exc.retry_after, backoff), self.policy.retry_after_max_s)
        return backoff

    async def complete(
        self, messages: list[ChatMessage], params: SamplingParams, sample_index: int, call: Call
    ) -> RequestResult:
        """A completion from the cache, or from the backend with retries, recorded in the ledger as `call`; raises
        BackendError when all attempts fail, BudgetStop (sending nothing) when the request could pass the budget."""
        request_hash = self.backend.request_hash(messages, params, sample_index)
        if self.use_cache and (cached := self._cached(request_hash)) is not None:
            result = RequestResult(cached, request_hash, cache_hit=True, retries=0)
            self._record(call, result, cache=False)
            return result
        estimate = await self._hold(messages, params)
        try:
            result = await self._send(messages, params, request_hash)
            self._spend(messages, result.completion, estimate)
        finally:
            self._release(estimate)
        self._record(call, result, cache=self.use_cache)
        return result

    def _estimate(self, messages: list[ChatMessage], params: SamplingParams) -> tuple[float, float]:
        """What a request may cost (USD, tokens): its prompt's characters times the prompt tokens per character of
        the requests answered so far (one before any answer), and `max_tokens` completion tokens, the most a server
        generates."""
        tokens, chars = self._prompt_seen
        prompt = sum(len(message.content) for message in messages) * (tokens / chars if chars else FIRST_TOKENS_PER_CHAR)
        pricing = self.backend.pricing
        usd = pricing.cost_usd(prompt, params.max_tokens) if pricing is not None else 0.0  # type: ignore[arg-type]
        return usd, prompt + params.max_tokens

    async def _hold(self, messages: list[ChatMessage], params: SamplingParams) -> tuple[float, float]:
        """Hold a request's estimate against the budget, waiting while requests in flight might leave no room for
        it; BudgetStop when what is spent leaves none."""
        if self.budget.max_cost_usd is None and self.budget.max_tokens is None:
            return 0.0, 0.0
        usd, tokens = self._estimate(messages, params)
        while True:
            if self.stopped or self.budget.passed_by(self._spent_usd + usd, self._spent_tokens + tokens):
                self.stopped = True
                self._notify()
                raise BudgetStop("budget")
            if not self.budget.passed_by(self._spent_usd + self._held_usd + usd, self._spent_tokens + self._held_tokens + tokens):
                break
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._changed)  # a waiter cancelled leaves the others waiting
        self._held_usd += usd
        self._held_tokens += tokens
        return usd, tokens

    def _release(self, estimate: tuple[float, float]) -> None:
        """Give back a request's estimate once it is answered (and counted) or has failed."""
        self._held_usd -= estimate[0]
        self._held_tokens -= estimate[1]
        self._notify()

    def _notify(self) -> None:
        """Wake the requests waiting for room in the budget."""
        if self._changed is not None:
            self._changed.set_result(None)
            self._changed = None

    def _spend(self, messages: list[ChatMessage], completion: Completion, estimate: tuple[float, float]) -> None:
        """Count what an answered request spent (its estimate where the backend reported no tokens)."""
        if completion.prompt_tokens is None or completion.completion_tokens is None:
            self._spent_usd += estimate[0]
            self._spent_tokens += int(estimate[1])
            return
        tokens, chars = self._prompt_seen
        self._prompt_seen = (tokens + completion.prompt_tokens, chars + sum(len(message.content) for message in messages))
        self._spent_tokens += completion.prompt_tokens + completion.completion_tokens
        if self.backend.pricing is not None:
            self._spent_usd += self.backend.pricing.cost_usd(completion.prompt_tokens, completion.completion_tokens)

    def _record(self, call: Call, result: RequestResult, cache: bool) -> None:
        """Write an answered request into the ledger and, with `cache`, its completion into the request cache."""
        completion = result.completion
        priced = self.backend.pricing is not None and completion.prompt_tokens is not None and completion.completion_tokens is not None
        self.store.add_request({
            "run_id": call.run_id, "episode_id": call.episode_id, "kind": call.kind, "purpose": call.purpose,
            "backend": self.backend.name, "model": self.backend.model, "request_hash": result.request_hash,
            "prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
            "cost_usd": self.backend.pricing.cost_usd(completion.prompt_tokens, completion.completion_tokens) if priced else None,  # type: ignore[union-attr, arg-type]
            "cache_hit": int(result.cache_hit), "retries": result.retries,
            "latency_ms": 0.0 if result.cache_hit else round(completion.latency_ms, 3),
        }, self._cache_json(completion) if cache else None)

    async def _send(self, messages: list[ChatMessage], params: SamplingParams, request_hash: str) -> RequestResult:
        """The backend's completion, with retries."""
        attempts = 0
        turned_away = False  # whether the last attempt failed as overloaded, which its wait is counted as
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1:  # back from a wait
                        self._waiting -= 1
                        self._rate_limited -= turned_away
                        self._retried += 1
                    try:
                        async with self.limit.slot(self._overload_wait, again=attempts > 1):
                            completion = await self.backend.complete(messages, params)
                    except BackendError as exc:
                        turned_away = exc.overload
                        raise
        except BackendError as exc:
            if attempts > 1:
                raise BackendError(f"{exc} (after {attempts} attempts)", attempts=attempts) from exc
            raise
        return RequestResult(completion, request_hash, cache_hit=False, retries=attempts - 1)

    def _cached(self, request_hash: str) -> Optional[Completion]:
        stored = self.store.cached_completion(request_hash)
        return Completion(**json.loads(stored)) if stored is not None else None

    @staticmethod
    def _cache_json(completion: Completion) -> str:
        # vars() rather than asdict(): no deep copy of the raw response, which may hold numpy scalars (llama.cpp's log-probabilities).
        return json.dumps(vars(completion), default=_plain)


def _plain(value: object) -> object:
    """A JSON-ready stand-in for a value json cannot encode: a numpy scalar's Python value, else its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)
