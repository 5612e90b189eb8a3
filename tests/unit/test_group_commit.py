"""BuyNowGroups (api/group_commit.py) without a database: a `run` of our own records the
batches it is given and answers each request deterministically."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, cast

import pytest
from sqlalchemy import Engine

from silkroute.api.group_commit import BuyNowGroups, NotABuyer, TokenBuyNow
from silkroute.services.one_click import BuyNow, OneClickResult

ENGINE = cast(Engine, object())  # what BuyNowGroups hands to `run` untouched
WAIT_S = 5.0  # generous bound on any wait for a worker thread


def request(i: int) -> BuyNow:
    return BuyNow(buyer_id=100 + i, sku=f"SKU-{i}", quantity=1 + i % 3,
                  idempotency_key=f"key-{i}")


def result_for(r: BuyNow) -> OneClickResult:
    """The deterministic answer our `run` gives a request."""
    n = r.buyer_id
    return OneClickResult(order_id=n, checkout_id=n + 1000, payment_id=n + 2000,
                          state="paid", currency="KRW", items_amount=10000 * r.quantity,
                          shipping_amount=3000, total=10000 * r.quantity + 3000)


class Recorder:
    """A `run`: records each batch (as the keys it got), the engine and the thread it ran
    in; blocks on `gate` until it is set; answers with `answer(batch)`."""

    def __init__(self, answer: Callable[[Sequence[BuyNow]], list[Any]] | None = None,
                 *, blocked: bool = False):
        self.batches: list[list[str]] = []
        self.engines: list[Any] = []
        self.threads: list[int] = []
        self.gate = threading.Event()
        if not blocked:
            self.gate.set()
        self.started = threading.Event()  # set when a batch has started running
        self._answer = answer or (lambda batch: [result_for(r) for r in batch])

    def __call__(self, engine: Any, requests: Sequence[BuyNow]) -> list[Any]:
        self.batches.append([r.idempotency_key for r in requests])
        self.engines.append(engine)
        self.threads.append(threading.get_ident())
        self.started.set()
        assert self.gate.wait(WAIT_S), "the test never released the batch"
        return self._answer(requests)

    async def wait_started(self) -> None:
        assert await asyncio.to_thread(self.started.wait, WAIT_S), "no batch started"


async def queued_behind_a_running_batch(groups: BuyNowGroups, run: Recorder,
                                        n: int) -> list[asyncio.Task[OneClickResult]]:
    """Request 0 starts a batch that `run` holds; requests 1..n-1 are submitted, in order,
    while it runs. Returns the n tasks (the batch is still held)."""
    first = asyncio.create_task(groups.buy_now(request(0)))
    await run.wait_started()
    assert run.batches == [["key-0"]]
    rest = [asyncio.create_task(groups.buy_now(request(i))) for i in range(1, n)]
    await asyncio.sleep(0)  # each task runs up to its await: all are queued, in order
    await asyncio.sleep(0)
    assert run.batches == [["key-0"]]  # nothing else ran while the first batch is held
    return [first, *rest]


def test_a_lone_request_runs_at_once_as_a_batch_of_one() -> None:
    run = Recorder()
    sizes: list[float] = []
    groups = BuyNowGroups(ENGINE, run=run, group_size=sizes.append)

    async def main() -> tuple[OneClickResult, int]:
        got = await asyncio.wait_for(groups.buy_now(request(7)), WAIT_S)
        return got, threading.get_ident()

    got, loop_thread = asyncio.run(main())
    assert got == result_for(request(7))
    assert run.batches == [["key-7"]]
    assert run.engines == [ENGINE]
    assert run.threads[0] != loop_thread  # in a worker thread, not on the event loop
    assert (groups.batches, groups.requests, sizes) == (1, 1, [1])
    assert groups.max_size == 64  # the default (serve --buy-now-group)


def test_requests_arriving_while_a_batch_runs_are_the_next_batch_in_order() -> None:
    run = Recorder(blocked=True)
    sizes: list[float] = []
    groups = BuyNowGroups(ENGINE, run=run, group_size=sizes.append)

    async def main() -> list[OneClickResult]:
        tasks = await queued_behind_a_running_batch(groups, run, 5)
        run.gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)

    got = asyncio.run(main())
    assert run.batches == [["key-0"], ["key-1", "key-2", "key-3", "key-4"]]
    assert got == [result_for(request(i)) for i in range(5)]
    assert sizes == [1, 4]
    assert (groups.batches, groups.requests) == (2, 5)

    # and once idle, the next lone request is a batch of one again
    assert asyncio.run(groups.buy_now(request(9))) == result_for(request(9))
    assert run.batches[-1] == ["key-9"]
    assert (groups.batches, groups.requests, sizes) == (3, 6, [1, 4, 1])


@pytest.mark.parametrize(("max_size", "n", "expected"), [
    # the first request runs alone at once; the 7 queued behind it go max_size at a time
    (3, 8, [[0], [1, 2, 3], [4, 5, 6], [7]]),
    (3, 7, [[0], [1, 2, 3], [4, 5, 6]]),
    (1, 4, [[0], [1], [2], [3]]),
    (64, 6, [[0], [1, 2, 3, 4, 5]]),
])
def test_max_size_caps_each_batch(max_size: int, n: int, expected: list[list[int]]) -> None:
    run = Recorder(blocked=True)
    sizes: list[float] = []
    groups = BuyNowGroups(ENGINE, max_size=max_size, run=run, group_size=sizes.append)

    async def main() -> list[OneClickResult]:
        tasks = await queued_behind_a_running_batch(groups, run, n)
        run.gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)

    got = asyncio.run(main())
    assert run.batches == [[f"key-{i}" for i in batch] for batch in expected]
    assert got == [result_for(request(i)) for i in range(n)]
    assert sizes == [len(batch) for batch in expected]
    assert (groups.batches, groups.requests) == (len(expected), n)


def test_a_per_request_exception_is_raised_to_that_caller_only() -> None:
    refused = ValueError("out of stock: SKU SKU-2 has 0 available, 3 requested")
    other = LookupError("no such SKU")

    def answer(batch: Sequence[BuyNow]) -> list[Any]:
        outcomes: dict[str, Any] = {"key-2": refused, "key-4": other}
        return [outcomes.get(r.idempotency_key, result_for(r)) for r in batch]

    run = Recorder(answer, blocked=True)
    groups = BuyNowGroups(ENGINE, run=run)

    async def main() -> list[Any]:
        tasks = await queued_behind_a_running_batch(groups, run, 6)
        run.gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT_S)

    got = asyncio.run(main())
    assert run.batches == [["key-0"], ["key-1", "key-2", "key-3", "key-4", "key-5"]]
    assert got[2] is refused  # the very instance `run` returned for it
    assert type(got[2]) is ValueError
    assert str(got[2]) == "out of stock: SKU SKU-2 has 0 available, 3 requested"
    assert got[4] is other and str(other) == "no such SKU"
    assert [got[i] for i in (0, 1, 3, 5)] == [result_for(request(i)) for i in (0, 1, 3, 5)]
    assert (groups.batches, groups.requests) == (2, 6)

    # raised, not returned, to the caller who awaits it
    async def alone() -> None:
        await groups.buy_now(request(2))

    with pytest.raises(ValueError, match=r"^out of stock: SKU SKU-2 has 0 available") as exc:
        asyncio.run(alone())
    assert exc.value is refused


def test_a_run_that_raises_fails_its_whole_batch_and_later_requests_are_served() -> None:
    boom = RuntimeError("database went away")

    def answer(batch: Sequence[BuyNow]) -> list[Any]:
        if any(r.idempotency_key == "key-2" for r in batch):
            raise boom
        return [result_for(r) for r in batch]

    run = Recorder(answer, blocked=True)
    sizes: list[float] = []
    groups = BuyNowGroups(ENGINE, run=run, group_size=sizes.append)

    async def main() -> tuple[list[Any], OneClickResult]:
        tasks = await queued_behind_a_running_batch(groups, run, 4)
        run.gate.set()
        got = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT_S)
        later = await asyncio.wait_for(groups.buy_now(request(5)), WAIT_S)
        return got, later

    got, later = asyncio.run(main())
    assert run.batches == [["key-0"], ["key-1", "key-2", "key-3"], ["key-5"]]
    assert got[0] == result_for(request(0))
    assert got[1] is boom and got[2] is boom and got[3] is boom
    assert str(boom) == "database went away"
    assert later == result_for(request(5))
    # the counters and `group_size` count every batch run, the one that raised too
    assert sizes == [1, 3, 1]
    assert (groups.batches, groups.requests) == (3, 5)


def test_a_run_that_raises_for_a_lone_request_raises_it_to_the_caller() -> None:
    def answer(batch: Sequence[BuyNow]) -> list[Any]:
        raise KeyError("k")

    groups = BuyNowGroups(ENGINE, run=Recorder(answer))
    with pytest.raises(KeyError, match="'k'"):
        asyncio.run(groups.buy_now(request(1)))
    assert (groups.batches, groups.requests) == (1, 1)


def test_a_run_giving_too_few_answers_fails_its_batch_and_answers_every_caller() -> None:
    groups = BuyNowGroups(ENGINE, run=Recorder(lambda batch: [result_for(batch[0])]))

    async def main() -> list[Any]:
        return await asyncio.wait_for(asyncio.gather(
            *(groups.buy_now(request(i)) for i in range(3)), return_exceptions=True), WAIT_S)

    got = asyncio.run(main())
    assert [type(g) for g in got] == [RuntimeError] * 3
    assert str(got[0]) == "a group of 3 buy-nows gave 1 answers"


def test_a_group_size_callback_that_raises_fails_no_purchase(
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(_size: float) -> None:
        raise RuntimeError("metrics broke")

    groups = BuyNowGroups(ENGINE, run=Recorder(), group_size=broken)
    got = asyncio.run(asyncio.wait_for(groups.buy_now(request(1)), WAIT_S))
    assert got == result_for(request(1))
    assert "buy-now group size not recorded" in caplog.text


def test_group_size_and_counters_across_several_rounds() -> None:
    run = Recorder(blocked=True)
    sizes: list[float] = []
    groups = BuyNowGroups(ENGINE, max_size=2, run=run, group_size=sizes.append)

    async def main() -> None:
        # round 1: 1 alone, then 5 queued -> 2, 2, 1
        tasks = await queued_behind_a_running_batch(groups, run, 6)
        run.gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
        # round 2: three requests submitted in the same turn of the loop are queued
        # before the drain task first runs: one batch of max_size, then the rest
        trio = [asyncio.create_task(groups.buy_now(request(i))) for i in (10, 11, 12)]
        assert await asyncio.wait_for(asyncio.gather(*trio), WAIT_S) == [
            result_for(request(i)) for i in (10, 11, 12)]

    asyncio.run(main())
    assert run.batches == [["key-0"], ["key-1", "key-2"], ["key-3", "key-4"], ["key-5"],
                           ["key-10", "key-11"], ["key-12"]]
    assert sizes == [1, 2, 2, 1, 2, 1]
    assert (groups.batches, groups.requests) == (6, 9)


def test_a_cancelled_caller_leaves_the_others_of_its_batch_answered() -> None:
    run = Recorder(blocked=True)
    groups = BuyNowGroups(ENGINE, run=run)

    async def main() -> list[Any]:
        tasks = await queued_behind_a_running_batch(groups, run, 4)
        tasks[2].cancel()  # the client went away while its request waited
        run.gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), WAIT_S)

    got = asyncio.run(main())
    # the request was already queued: it still runs (as the route's thread would)
    assert run.batches == [["key-0"], ["key-1", "key-2", "key-3"]]
    assert isinstance(got[2], asyncio.CancelledError)
    assert [got[i] for i in (0, 1, 3)] == [result_for(request(i)) for i in (0, 1, 3)]
    assert (groups.batches, groups.requests) == (2, 4)


@pytest.mark.parametrize("max_size", [0, -1])
def test_max_size_below_one_is_refused(max_size: int) -> None:
    with pytest.raises(ValueError, match=r"^max_size must be at least 1$"):
        BuyNowGroups(ENGINE, max_size=max_size, run=Recorder())


# tokens resolved per group -------------------------------------------------------------
class Account(NamedTuple):
    role: str
    buyer_id: int | None


def token_request(token_hash: str, i: int) -> TokenBuyNow:
    return TokenBuyNow(token_hash, f"SKU-{i}", 1, f"key-{i}")


def test_a_groups_tokens_are_looked_up_at_once_and_non_buyers_handed_back() -> None:
    lookups: list[list[str]] = []

    async def accounts(hashes: list[str]) -> dict[str, Any]:
        lookups.append(list(hashes))
        return {"h-buyer": Account("buyer", 7), "h-seller": Account("seller", None)}

    run = Recorder(blocked=True)
    groups = BuyNowGroups(ENGINE, run=run, accounts=accounts)

    async def main() -> list[Any]:
        first = asyncio.create_task(groups.buy_now(request(0)))
        await run.wait_started()
        rest = [asyncio.create_task(groups.buy_now(r)) for r in (
            token_request("h-buyer", 1), token_request("h-seller", 2),
            token_request("h-unknown", 3), request(4))]
        await asyncio.sleep(0)
        run.gate.set()
        return await asyncio.wait_for(asyncio.gather(first, *rest, return_exceptions=True),
                                      WAIT_S)

    got = asyncio.run(main())
    assert lookups == [["h-buyer", "h-seller", "h-unknown"]]  # one lookup for the group
    assert run.batches == [["key-0"], ["key-1", "key-4"]]
    resolved = BuyNow(7, "SKU-1", 1, "key-1")
    assert got[0] == result_for(request(0))
    assert got[1] == result_for(resolved)  # as buyer 7
    assert [type(g) for g in got[2:4]] == [NotABuyer, NotABuyer]
    assert got[4] == result_for(request(4))
    assert (groups.batches, groups.requests) == (2, 5)


def test_a_group_of_non_buyers_only_runs_nothing() -> None:
    async def accounts(hashes: list[str]) -> dict[str, Any]:
        return {}

    run = Recorder()
    groups = BuyNowGroups(ENGINE, run=run, accounts=accounts)
    with pytest.raises(NotABuyer):
        asyncio.run(asyncio.wait_for(groups.buy_now(token_request("h-gone", 1)), WAIT_S))
    assert run.batches == []


def test_a_token_request_without_a_lookup_fails_its_group() -> None:
    groups = BuyNowGroups(ENGINE, run=Recorder())
    with pytest.raises(RuntimeError, match=r"^a TokenBuyNow needs `accounts`$"):
        asyncio.run(asyncio.wait_for(groups.buy_now(token_request("h", 1)), WAIT_S))
