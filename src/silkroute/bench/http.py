"""`bench http`: a real `silkroute serve` process, buy-now clients over loopback, figures."""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from silkroute.api.tuning import DEFAULT_GROUP

APPROVE_CARD = "4242424242424242"  # the test payment provider approves it (docs/payments.md)
PG_ADMIN_ENV = "SILKROUTE_TEST_POSTGRES_URL"
PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command() -> list[str]:
    """`silkroute serve` from the same environment as this interpreter."""
    script = Path(sys.executable).parent / "silkroute"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "from silkroute.cli import main; main()", "serve"]


class Server:
    """A `silkroute serve` subprocess in its own process group on a free loopback port.

    `kill()` SIGKILLs the whole group (supervisor and workers) as a crash would.
    """

    def __init__(self, db_url: str, log_path: Path, *, workers: int = 1,
                 port: int | None = None, ready_timeout: float = 60.0,
                 extra_args: Sequence[str] = ()):
        self.db_url = db_url
        self.extra_args = tuple(extra_args)
        self.log_path = log_path
        self.workers = workers
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: TextIO | None = None

    def start(self) -> Server:
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(
            [*serve_command(), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--db", self.db_url, "--log-level", "warning",
             *self.extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.log()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/api/v1/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return self
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"serve did not answer in {self.ready_timeout} s: "
                                   f"{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def pids(self) -> list[int]:
        """The server's processes (the group: supervisor and uvicorn workers)."""
        if self.proc is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    # fields after the command name: state ppid pgrp ...
                    if int(stat.rsplit(")", 1)[1].split()[2]) == self.proc.pid:
                        found.append(int(entry.name))
        return sorted(found)

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL every process of the server at once: no shutdown code runs."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        self._wait_group_gone()
        self._close()

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL after 15 s."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self._wait_group_gone()
        self._close()

    def _wait_group_gone(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            self._signal_group(signal.SIGKILL)
            time.sleep(0.05)

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# a market over HTTP ------------------------------------------------------------------------
class Http:
    """A tiny keep-alive JSON client on the standard library (cheap enough for a bench)."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             headers: dict[str, str] | None = None, raw: bytes | None = None
             ) -> tuple[int, Any]:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            payload = resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # reconnect on the next call
            raise
        return resp.status, json.loads(payload) if payload else None

    def ok(self, method: str, path: str, body: Any = None, token: str | None = None,
           **kwargs: Any) -> Any:
        status, data = self.call(method, path, body, token, **kwargs)
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path} -> {status}: {data}")
        return data

    def close(self) -> None:
        self.conn.close()


@dataclass
class Market:
    """A shop selling `skus` with `units` each, and buyers with a saved approving card."""

    seller_token: str
    skus: list[str]
    buyers: list[tuple[int, str]] = field(default_factory=list)  # (buyer_id, token)


def seed_market(port: int, *, buyers: int, skus: int = 1, units: int = 10,
                prefix: str | None = None, parallel: int = 8) -> Market:
    """Over the API: a shop, a warehouse, SKUs in stock, and buyers with default cards."""
    tag = prefix or uuid.uuid4().hex[:6].upper()
    api = Http(port)
    try:
        shop = api.ok("POST", "/api/v1/sellers", {"name": f"Bench shop {tag}",
                                                  "currency": "KRW"})
        seller = shop["token"]["token"]
        api.ok("POST", "/api/v1/seller/locations",
               {"name": f"WH-{tag}", "city": "Seoul"}, seller)
        codes = [f"B{tag}-{i}" for i in range(skus)]
        csv = "title,sku,price,currency,weight_g,location,quantity\n" + "".join(
            f"Bench item {c},{c},10000,KRW,500,WH-{tag},{units}\n" for c in codes)
        api.ok("POST", "/api/v1/seller/catalog/imports", token=seller, raw=csv.encode(),
               headers={"Content-Type": "text/csv"})
    finally:
        api.close()

    local = threading.local()

    def one_buyer(i: int) -> tuple[int, str]:
        if not hasattr(local, "api"):
            local.api = Http(port)
        reg = local.api.ok("POST", "/api/v1/buyers",
                           {"name": f"Buyer {tag}-{i}", "address": {"city": "Seoul"}})
        token = reg["token"]["token"]
        local.api.ok("POST", "/api/v1/buyer/payment-methods",
                     {"card": APPROVE_CARD, "currency": "KRW", "default": True}, token)
        return int(reg["buyer_id"]), token

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        made = list(pool.map(one_buyer, range(buyers)))
    return Market(seller, codes, made)


# the bench ---------------------------------------------------------------------------------
def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def drive_buy_now(port: int, market: Market, clients: int, seconds: float,
                  warmup: float = 1.0) -> dict[str, Any]:
    """C closed-loop clients buy one unit at a time (client i as buyer i, SKU i mod n)."""
    start_at = time.monotonic() + 0.2
    measure_from = start_at + warmup
    stop_at = measure_from + seconds
    run = uuid.uuid4().hex[:8]
    lat: list[list[float]] = [[] for _ in range(clients)]
    outcomes: list[Counter[str]] = [Counter() for _ in range(clients)]
    paid_all = [0] * clients  # warm-up included (for CPU per order)

    def client(i: int) -> None:
        api = Http(port)
        _, token = market.buyers[i % len(market.buyers)]
        body = {"sku": market.skus[i % len(market.skus)], "quantity": 1}
        n = 0
        while time.monotonic() < start_at:
            time.sleep(0.001)
        try:
            while True:
                t0 = time.monotonic()
                if t0 >= stop_at:
                    return
                n += 1
                try:
                    status, data = api.call("POST", "/api/v1/buyer/buy-now", body, token,
                                            headers={"Idempotency-Key": f"{run}-{i}-{n}"})
                    outcome = "paid" if status in (200, 201) and data.get("state") == "paid" \
                        else f"{status} {(data or {}).get('code', '')}".strip()
                except (http.client.HTTPException, OSError) as exc:
                    outcome = f"transport {type(exc).__name__}"
                t1 = time.monotonic()
                paid_all[i] += outcome == "paid"
                if t0 >= measure_from and t1 <= stop_at:
                    outcomes[i][outcome] += 1
                    if outcome == "paid":
                        lat[i].append((t1 - t0) * 1000)
        finally:
            api.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total: Counter[str] = Counter()
    for c in outcomes:
        total.update(c)
    latencies = sorted(x for per in lat for x in per)
    paid = total.pop("paid", 0)
    return {"clients": clients, "seconds": seconds, "paid_orders": paid,
            "paid_per_s": round(paid / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
            "errors": dict(total), "paid_all": sum(paid_all)}


def bench_one(db_url: str, *, clients: int, seconds: float, workers: int,
              log_dir: Path, buy_now_group: int = DEFAULT_GROUP) -> dict[str, Any]:
    """Start a server on `db_url`, seed a market over HTTP, drive buy-now, stop it."""
    with Server(db_url, log_dir / "serve.log", workers=workers,
                extra_args=("--buy-now-group", str(buy_now_group))) as server:
        skus = max(1, min(16, clients))
        market = seed_market(server.port, buyers=clients, skus=skus, units=10**8)
        meters = CpuMeters(server.pids(), postgres=not db_url.startswith("sqlite"))
        result = drive_buy_now(server.port, market, clients, seconds)
        cpu = meters.ms_per(result.pop("paid_all"))
    return {**result, "workers": workers, "skus": skus, "buy_now_group": buy_now_group,
            "cpu_ms_per_order": cpu}


class CpuMeters:
    """CPU seconds spent from now on by the server's processes, the bench's own (the
    clients) and, for a database on this machine, PostgreSQL's processes (Linux `/proc`;
    an empty answer elsewhere)."""

    def __init__(self, server_pids: list[int], *, postgres: bool):
        self.server_pids = server_pids
        self.postgres = postgres
        self.start = self._now()

    def _now(self) -> dict[str, float]:
        if not Path("/proc/self/stat").exists():
            return {}
        now = {"server": _cpu_seconds(self.server_pids), "client": _cpu_seconds([os.getpid()])}
        if self.postgres:
            local = _postgres_pids()
            if local:
                now["postgres"] = _cpu_seconds(local)
        return now

    def ms_per(self, orders: int) -> dict[str, float]:
        """CPU milliseconds per order since this meter started, by part."""
        end = self._now()
        return {part: round((end[part] - self.start[part]) * 1000 / orders, 3)
                for part in end if part in self.start and orders > 0}


def _cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds of these processes (all their threads; those gone
    count nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _postgres_pids() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().startswith("postgres"):
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def temporary_postgres(admin_url: str | None = None) -> Iterator[str]:
    """A fresh database on the PostgreSQL server, dropped afterwards."""
    from sqlalchemy import text

    from silkroute.store.engine import make_engine

    url = admin_url or os.environ.get(PG_ADMIN_ENV, PG_ADMIN_DEFAULT)
    name = f"silkroute_bench_http_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
                        connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.rsplit("/", 1)[0] + "/" + name
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def run_http_bench(db: str | None, clients: int, seconds: float, workers: int,
                   buy_now_group: int = DEFAULT_GROUP) -> dict[str, dict[str, Any]]:
    """On `db` only, or on a temporary SQLite file and (when reachable) a temporary
    PostgreSQL database: one entry per backend."""
    from silkroute.store.engine import is_sqlite

    results: dict[str, dict[str, Any]] = {}
    run = functools.partial(bench_one, clients=clients, seconds=seconds, workers=workers,
                            buy_now_group=buy_now_group)
    with tempfile.TemporaryDirectory(prefix="silkroute-bench-http-") as tmp:
        logs = Path(tmp)
        if db:
            key = "sqlite" if is_sqlite(db) else "postgresql"
            results[key] = run(db, log_dir=logs)
            return results
        results["sqlite"] = run(f"sqlite:///{logs / 'bench.db'}", log_dir=logs)
        try:
            pg = temporary_postgres()
            pg_url = pg.__enter__()
        except Exception as exc:  # not reachable: report and go on
            results["postgresql"] = {"skipped": f"{type(exc).__name__}: "
                                                f"{str(exc).splitlines()[0]}"}
            return results
        try:
            results["postgresql"] = run(pg_url, log_dir=logs)
        finally:
            pg.__exit__(None, None, None)
    return results
