"""Gather concurrent requests into batches for engines that are fastest when given many prompts at once."""

from __future__ import annotations

import asyncio
from typing import Callable, Generic, Optional, TypeVar

Request = TypeVar("Request")
Response = TypeVar("Response")


class MicroBatcher(Generic[Request, Response]):
    """Collects requests for up to `wait_s` (or `max_batch` of them) and runs them as one blocking batch call."""

    def __init__(self, run_batch: Callable[[list[Request]], list[Response]], max_batch: int, wait_s: float) -> None:
        if max_batch <= 0:
            raise ValueError("max_batch must be positive")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batch_sizes: list[int] = []
        self._queue: Optional[asyncio.Queue[tuple[Request, asyncio.Future[Response]]]] = None
        self._worker: Optional[asyncio.Task[None]] = None

    async def submit(self, request: Request) -> Response:
        """Queue one request and wait for its response."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._work())
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _work(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            live = [(request, future) for request, future in batch if not future.cancelled()]
            if not live:
                continue
            self.batch_sizes.append(len(live))
            try:
                responses = await asyncio.to_thread(self.run_batch, [request for request, _ in live])
            except Exception as exc:  # one failed batch fails each of its requests, not the worker
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), response in zip(live, responses):
                if not future.done():
                    future.set_result(response)

    async def aclose(self) -> None:
        """Stop the worker."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
