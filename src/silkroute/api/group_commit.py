"""Group commit for buy-now: the requests a worker receives while it is busy go together.

Each paid buy-now alone costs about five round trips, two commits and a hop to a worker
thread, and on two cores those fixed costs, not the purchase itself, bound the throughput
(`bench http`, docs/api.md). `BuyNowGroups` queues the buy-nows that arrive on a worker's
event loop; one batch at a time runs `one_click_group` in a worker thread, and what
arrived meanwhile is the next batch. Nothing waits for a batch to fill: a lone request is
a batch of one at once, and under load the batches grow with the queue (at most
`max_size`). Each request gets exactly the answer (or the exception) it would have had
alone; the batch only shares the statements, the commits and the thread hop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from silkroute.api.tuning import DEFAULT_GROUP
from silkroute.services.checkout import routing_observer
from silkroute.services.one_click import BuyNow, OneClickResult, one_click_group


class BuyNowGroups:
    """The buy-now queue of one worker process (its event loop)."""

    def __init__(self, engine: Engine, *, max_size: int = DEFAULT_GROUP,
                 observe: Callable[[float], None] | None = None,
                 group_size: Callable[[float], None] | None = None,
                 run: Callable[..., list[Any]] = one_click_group):
        """`observe` takes each routing decision's seconds, `group_size` each group's
        size; `run(engine, requests)` answers a group (`one_click_group`)."""
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.engine = engine
        self.max_size = max_size
        self._observe = observe
        self._group_size = group_size
        self._run = run
        self._queue: list[tuple[BuyNow, asyncio.Future[OneClickResult]]] = []
        self._draining = False
        self.batches = 0  # batches run, and the requests in them (for tests and docs)
        self.requests = 0

    async def buy_now(self, request: BuyNow) -> OneClickResult:
        """The request's result, or its exception, once its batch has run."""
        future: asyncio.Future[OneClickResult] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        if self._observe is not None:
            routing_observer.set(self._observe)
        try:
            while self._queue:
                batch = self._queue[:self.max_size]
                del self._queue[:self.max_size]
                try:
                    outcomes = await run_in_threadpool(
                        self._run, self.engine, [request for request, _ in batch])
                except BaseException as exc:  # (a bug, or the loop shutting down)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches += 1
                self.requests += len(batch)
                if self._group_size is not None:
                    self._group_size(len(batch))
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # (the request was cancelled)
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._draining = False
            if self._queue:  # (left by a cancelled drain): the next one takes them
                with contextlib.suppress(RuntimeError):  # (no loop any more)
                    asyncio.get_running_loop().create_task(self._drain())
                    self._draining = True
