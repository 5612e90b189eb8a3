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
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from silkroute.api.tuning import DEFAULT_GROUP
from silkroute.services.checkout import routing_observer
from silkroute.services.one_click import BuyNow, OneClickResult, one_click_group

log = logging.getLogger("silkroute.api")


@dataclass(frozen=True)
class TokenBuyNow:
    """A buy-now whose buyer is still a bearer token's hash: the group looks all its
    tokens up at once (one statement instead of one per request)."""

    token_hash: str
    sku: str
    quantity: int
    idempotency_key: str


class NotABuyer(Exception):
    """The token is not a live buyer's: the request is not the group's to answer (the fast
    path hands it to the route, whose authentication answers it)."""


Accounts = Callable[[list[str]], Awaitable[dict[str, Any]]]


class BuyNowGroups:
    """The buy-now queue of one worker process (its event loop)."""

    def __init__(self, engine: Engine, *, max_size: int = DEFAULT_GROUP,
                 observe: Callable[[float], None] | None = None,
                 group_size: Callable[[float], None] | None = None,
                 accounts: Accounts | None = None,
                 run: Callable[..., list[Any]] = one_click_group):
        """`observe` takes each routing decision's seconds, `group_size` each group's
        size; `accounts(hashes)` gives the live accounts of token hashes by hash
        (`LiveAccounts.many`, for `TokenBuyNow`s); `run(engine, requests)` answers a group
        (`one_click_group`)."""
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.engine = engine
        self.max_size = max_size
        self._observe = observe
        self._group_size = group_size
        self._run = run
        self._accounts = accounts
        self._queue: list[tuple[BuyNow | TokenBuyNow,
                                asyncio.Future[OneClickResult]]] = []
        self._drainer: asyncio.Task[None] | None = None  # (kept: the loop holds tasks weakly)
        self.batches = 0  # batches run, and the requests in them (for tests and docs)
        self.requests = 0

    async def buy_now(self, request: BuyNow | TokenBuyNow) -> OneClickResult:
        """The request's result, or its exception, once its batch has run (`NotABuyer`
        for a `TokenBuyNow` whose token is not a live buyer's)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[OneClickResult] = loop.create_future()
        self._queue.append((request, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        if self._observe is not None:
            routing_observer.set(self._observe)
        try:
            while self._queue:
                batch = self._queue[:self.max_size]
                del self._queue[:self.max_size]
                self.batches += 1
                self.requests += len(batch)
                self._count(len(batch))
                try:
                    ready = await self._buyers(batch)
                    if not ready:
                        continue
                    outcomes = await run_in_threadpool(
                        self._run, self.engine, [request for request, _ in ready])
                    if len(outcomes) != len(ready):
                        raise RuntimeError(f"a group of {len(ready)} buy-nows gave "
                                           f"{len(outcomes)} answers")
                except BaseException as exc:  # (a bug, or the loop shutting down)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, future), outcome in zip(ready, outcomes, strict=True):
                    if future.done():  # (the request was cancelled)
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._drainer = None
            if self._queue:  # (left by a cancelled drain): the next one takes them
                with contextlib.suppress(RuntimeError):  # (no loop any more)
                    self._drainer = asyncio.get_running_loop().create_task(self._drain())

    async def _buyers(self, batch: list[tuple[BuyNow | TokenBuyNow, Any]]
                      ) -> list[tuple[BuyNow, Any]]:
        """The batch with every token resolved to its buyer; a request whose token is not
        a live buyer's gets `NotABuyer` and leaves the batch."""
        hashes = [r.token_hash for r, _ in batch if isinstance(r, TokenBuyNow)]
        if not hashes:
            return batch  # type: ignore[return-value]  # (BuyNows only)
        if self._accounts is None:
            raise RuntimeError("a TokenBuyNow needs `accounts`")
        found = await self._accounts(hashes)
        kept = []
        for request, future in batch:
            if isinstance(request, TokenBuyNow):
                account = found.get(request.token_hash)
                if account is None or account.role != "buyer" or account.buyer_id is None:
                    if not future.done():
                        future.set_exception(NotABuyer())
                    continue
                request = BuyNow(account.buyer_id, request.sku, request.quantity,
                                 request.idempotency_key)
            kept.append((request, future))
        return kept

    def _count(self, size: int) -> None:
        if self._group_size is not None:
            try:
                self._group_size(size)
            except Exception:  # a metric must not fail purchases
                log.exception("buy-now group size not recorded")
