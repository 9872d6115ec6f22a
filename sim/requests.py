"""Every backend request goes through here: the cache, the per-backend request limit, and retries."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Optional

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from sim.backends import Backend, BackendError, Completion
from sim.messages import ChatMessage, SamplingParams
from sim.store import Store


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


@dataclass
class RequestResult:
    """A completion and how it was obtained."""

    completion: Completion
    request_hash: str
    cache_hit: bool
    retries: int


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.retryable


class RequestExecutor:
    """Sends requests to one backend for one run."""

    def __init__(self, store: Store, backend: Backend, policy: RetryPolicy, use_cache: bool) -> None:
        self.store = store
        self.backend = backend
        self.policy = policy
        self.use_cache = use_cache
        self._limit = asyncio.Semaphore(backend.max_concurrency)
        self._backoff = wait_exponential_jitter(multiplier=policy.initial_s, max=policy.max_s, jitter=policy.initial_s)
        self._retried = 0  # requests sent again after a failure, so far
        self._waiting = 0  # requests now waiting out a backoff or a server's Retry-After

    def retry_counts(self) -> tuple[int, int]:
        """Requests retried so far, and requests now waiting to be retried (for the progress display)."""
        return self._retried, self._waiting

    def _before_sleep(self, state: RetryCallState) -> None:
        self._waiting += 1

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = self._backoff(state)
        if isinstance(exc, BackendError) and exc.retry_after is not None:
            return min(max(exc.retry_after, backoff), self.policy.retry_after_max_s)
        return backoff

    async def complete(self, messages: list[ChatMessage], params: SamplingParams, sample_index: int) -> RequestResult:
        """A completion from the cache, or from the backend with retries; raises BackendError when all fail."""
        request_hash = self.backend.request_hash(messages, params, sample_index)
        if self.use_cache and (cached := self._cached(request_hash)) is not None:
            return RequestResult(cached, request_hash, cache_hit=True, retries=0)
        attempts = 0
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
                        self._retried += 1
                    async with self._limit:
                        completion = await self.backend.complete(messages, params)
        except BackendError as exc:
            if attempts > 1:
                raise BackendError(f"{exc} (after {attempts} attempts)", attempts=attempts) from exc
            raise
        if self.use_cache:
            self._remember(request_hash, completion)
        return RequestResult(completion, request_hash, cache_hit=False, retries=attempts - 1)

    def _cached(self, request_hash: str) -> Optional[Completion]:
        stored = self.store.cached_completion(request_hash)
        return Completion(**json.loads(stored)) if stored is not None else None

    def _remember(self, request_hash: str, completion: Completion) -> None:
        # vars() rather than asdict(): no deep copy of the raw response, which may hold numpy scalars (llama.cpp's log-probabilities).
        blob = json.dumps(vars(completion), default=_plain)
        self.store.cache_completion(request_hash, self.backend.name, self.backend.model, blob)


def _plain(value: object) -> object:
    """A JSON-ready stand-in for a value json cannot encode: a numpy scalar's Python value, else its text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)
