"""How many requests to one backend are in flight at once: a fixed number (`backend.max_concurrency=N`), or a
limit that adapts to the server (`backend.max_concurrency=auto`): additive increase while requests are answered,
multiplicative decrease when the server says it is overloaded (429, 503, timeouts)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Optional

from sim.errors import SimError, require_positive

AUTO = "auto"
# What an overload leaves of the limit. Halving (TCP Reno's factor) keeps a server with N slots about 3/4 busy on
# average; 0.7 (CUBIC's) about 85%, for an overload every 0.3 N round trips instead of every 0.5 N.
DECREASE = 0.7


def check_max_concurrency(value: Any) -> None:
    """Refuse a `backend.max_concurrency` that is neither a positive whole number nor `auto`, in one line."""
    if value == AUTO:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimError(f"backend.max_concurrency must be a positive whole number or {AUTO}, got {value!r}")
    require_positive("backend.max_concurrency", value)


@dataclass(frozen=True)
class Ticket:
    """A request let through: its number in order of sending, and the limit it was sent under."""

    number: int
    limit: float


@dataclass(frozen=True)
class LimitState:
    """Where a request limit stands: its size now, the largest it has been, the smallest an overload cut it to
    (None: none did), its ceiling, and the answers that said the server was overloaded."""

    adaptive: bool
    current: int
    low: Optional[int]
    high: int
    ceiling: int
    overloads: int


class RequestLimit:
    """At most `current` requests in flight, served first come, first served (a request sent again after a wait
    first of all). `current` starts at `floor` and grows by one per request answered (slow start) until the first
    overload, then by one per `current` requests answered (one per round trip), never past `ceiling`; an overload
    sets it to DECREASE times the limit its request was sent under, down to `floor`, and until the server's
    Retry-After has passed it grows no further than one below that limit. A fixed limit is one whose floor is its
    ceiling."""

    def __init__(self, floor: int, ceiling: int) -> None:
        self.floor, self.ceiling = floor, ceiling
        self._size = float(floor)
        self._threshold = float(ceiling)  # slow start below it; set to the limit by each overload
        self._in_flight = 0
        self._sent = 0  # requests let through so far; each one's number, and the limit then, is its ticket
        # Requests with a ticket up to this one were sent before the last decrease: their overloads are the same
        # congestion, already answered, and do not shrink the limit again.
        self._cut_after = 0
        # Until when (monotonic clock) the limit stays below the one an overload was sent under, and how far it may
        # grow meanwhile: the server asked to be left alone that long, and the same limit would be turned away again.
        self._hold = (0.0, float(ceiling))
        self._waiters: deque[asyncio.Future[Ticket]] = deque()
        self._low: Optional[int] = None
        self._high = floor
        self._overloads = 0

    @property
    def current(self) -> int:
        """Requests that may be in flight now."""
        return int(self._size)

    def state(self) -> LimitState:
        """The limit's size now, how far it went each way, and the overloads counted."""
        return LimitState(self.floor < self.ceiling, self.current, self._low, self._high, self.ceiling, self._overloads)

    @asynccontextmanager
    async def slot(self, overloaded: Callable[[BaseException], Optional[float]], again: bool = False) -> AsyncIterator[None]:
        """Hold one place in flight for the body, ahead of the others when the request is sent `again` after a
        wait. An exception that says the server is overloaded (`overloaded(exc)` gives how long it asked to be left
        alone, 0 when it did not say, None for any other exception) shrinks the limit, an answer (no exception) may
        grow it, anything else leaves it as it is."""
        ticket = await self._acquire(again)
        try:
            yield
        except BaseException as exc:
            self._in_flight -= 1
            if (wait_s := overloaded(exc)) is not None:
                self._shrink(ticket, wait_s)
            self._admit()
            raise
        self._in_flight -= 1
        self._grow()
        self._admit()

    async def _acquire(self, again: bool) -> Ticket:
        if (again or not self._waiters) and self._in_flight < self.current:
            return self._let_through()
        waiter: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        # A request back from a wait has queued once already: sent first, it keeps its episode from falling
        # further behind the others, which would leave the end of a run waiting on a few late episodes.
        if again:
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # let through just as it was cancelled: give the place back
                self._in_flight -= 1
                self._admit()
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _let_through(self) -> Ticket:
        self._in_flight += 1
        self._sent += 1
        return Ticket(self._sent, self._size)

    def _admit(self) -> None:
        """Let the first waiters through while there is room."""
        while self._waiters and self._in_flight < self.current:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter leaves its turn to the next
                waiter.set_result(self._let_through())

    def _grow(self) -> None:
        # Only a limit in full use has shown that the server takes that many; an idle margin proves nothing.
        if self._in_flight + 1 < self.current:
            return
        until, held = self._hold
        top = held if time.monotonic() < until else float(self.ceiling)
        grown = self._size + (1.0 if self._size < self._threshold else 1.0 / self._size)
        self._size = min(grown, max(top, self._size))
        self._high = max(self._high, self.current)

    def _shrink(self, ticket: Ticket, wait_s: float) -> None:
        self._overloads += 1
        if ticket.number <= self._cut_after:
            return
        # From the limit the request was sent under, the one that proved too many: answers to the requests sent
        # with it may have grown the limit well past it meanwhile (by one each in slow start).
        self._size = self._threshold = max(ticket.limit * DECREASE, float(self.floor))
        self._hold = (time.monotonic() + wait_s, max(float(int(ticket.limit) - 1), float(self.floor)))
        self._cut_after = self._sent
        self._low = self.current if self._low is None else min(self._low, self.current)


def request_limit(max_concurrency: int | str, ceiling: int) -> RequestLimit:
    """The request limit `backend.max_concurrency` asks for: that many, or (`auto`) adaptive from 1 to `ceiling`
    (the run's `runner.concurrency`, the most requests its episodes can have in flight)."""
    check_max_concurrency(max_concurrency)
    if max_concurrency == AUTO:
        return RequestLimit(1, ceiling)
    return RequestLimit(int(max_concurrency), int(max_concurrency))
