"""Small helpers shared by the repositories for the statements every request runs.

Building `insert(table).values(**kw)` on every call costs SQLAlchemy a new statement object
and a fresh cache key (profiled on the one-click path: about 120 µs of CPU per insert, more
than the round trip to PostgreSQL). A statement built once per table and executed with a
parameter dict reuses the compiled form; the parameters' keys are part of the cache key, so
rows that set different columns still compile correctly.

**Write-behind on PostgreSQL.** A unit of work on PostgreSQL does not send the inserts of
the tables in `WRITE_BEHIND` one by one: `insert_id` takes the row's id from a block of
sequence values the process holds (`IdBlocks`, the client-side twin of a sequence's
`CACHE`) and keeps the row; all kept rows go to the server as **one** statement, a chain of
data-modifying CTEs (`WITH w0 AS (INSERT ...), w1 AS (INSERT ...) INSERT ...`), just before
the next statement of the transaction runs (`before_execute`, so every read sees them) or
before it commits. A compare-and-set whose only consumer is a check (`Guard`: paying moves
the orders from reserved to paid; a lone reservation) travels in the same statement, which
fails on the server when its check does not hold; `failed` then raises and everything rolls
back, as it would have at once. The transaction, its locks and its outcome are the same;
only the number of round trips changes (a paid one-click order went from 16 statements and
4 BEGIN/COMMIT to 3 statements: its context read runs before the transaction,
`begin_outside`, and its checkout and its payment are one statement each, sent in
autocommit, `flush_alone`). A row that breaks a constraint raises the same
`IntegrityError`, from that next statement or from the commit instead of from the insert:
the whole transaction rolls back either way, so callers catch it around the unit of work,
never around one insert. (One visible consequence: when two payments of one checkout race,
the loser now meets the winner's payment row, an `IntegrityError` that `charge` answers
with the winner's payment, before it meets the orders already paid.)

Ids are handed out in order within a process; between processes they interleave by block
(PostgreSQL's own sequence `CACHE` does the same), but a block lives at most
`MAX_BLOCK_AGE_S`, so across processes ids follow the time they were handed out to within
a second. Blocks start at one id and double while a process uses each up in time (up to
`MAX_BLOCK`), so a command that creates one order takes one id and leaves no gap.
"""

from __future__ import annotations

import contextlib
import functools
import re
import threading
import time
import weakref
from collections import deque, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import Connection, Dialect, Engine, Executable, Insert, Table, event, insert
from sqlalchemy.exc import DBAPIError

# The tables of the order and payment path: written often, read back by id in the same
# transaction rarely. (Catalog, network and account rows keep their plain inserts.)
WRITE_BEHIND = frozenset({
    "checkouts", "orders", "order_lines", "allocations", "order_events", "idempotency_keys",
    "payments", "ledger_transactions", "ledger_postings", "order_money",
})
MAX_BLOCK = 64
MAX_BLOCK_AGE_S = 1.0  # a block's ids are handed out within this long, or dropped
# PostgreSQL's protocol caps a statement at 65,535 parameters: a unit of work that keeps
# more than this many (a payout batch over thousands of payees) sends what it has early.
MAX_KEPT_PARAMS = 30_000
PENDING = "silkroute_pending_writes"  # Connection.info key of the open transaction's rows


@functools.cache
def _insert(table: Table) -> Insert:
    return insert(table)


def insert_id(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """INSERT one row and return the primary key it created (RETURNING on PostgreSQL,
    lastrowid on SQLite; kept for the next flush in a write-behind unit of work)."""
    pending = conn.info.get(PENDING) if table.name in WRITE_BEHIND else None
    if pending is not None:
        row_id = _blocks(conn.engine).next_id(conn, table)
        if pending.add(table, {**values, "id": row_id}) >= MAX_KEPT_PARAMS:
            flush(conn)
        return row_id
    key = conn.execute(_insert(table), dict(values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT several rows with one statement (executemany; kept for the next flush in a
    write-behind unit of work)."""
    if not rows:
        return
    pending = conn.info.get(PENDING) if table.name in WRITE_BEHIND else None
    if pending is not None:
        for row in rows:
            if pending.add(table, row) >= MAX_KEPT_PARAMS:
                flush(conn)
        return
    conn.execute(_insert(table), rows)


# write-behind -------------------------------------------------------------------------------
class Guard(NamedTuple):
    """A kept compare-and-set: `sql` (an UPDATE ... RETURNING 1 with %s parameters) must
    change exactly `expected` rows, else the statement fails on the server (nothing of it
    stays) and `failed(changed)` raises (and the whole transaction rolls back).

    `key` names the row the update changes, when one transaction may keep several updates
    of it (a shared unit of work: several buy-nows of one SKU at one location). PostgreSQL
    applies only one change per row per statement, so such guards must become one:
    `merge(kept, new)` gives the guard that does both (the summed reservation)."""

    sql: str
    params: tuple[Any, ...]
    expected: int
    failed: Callable[[int], None]
    key: Any = None
    merge: Callable[[Guard, Guard], Guard] | None = None


class PendingWrites:
    """Rows kept by one transaction, grouped by table and column set in arrival order, and
    the compare-and-set updates that travel with them."""

    def __init__(self) -> None:
        self.groups: dict[tuple[Table, tuple[str, ...]], list[Mapping[str, Any]]] = {}
        self.guards: list[Guard] = []
        self.params = 0

    def add(self, table: Table, row: Mapping[str, Any]) -> int:
        """Keep `row`; returns how many parameters the kept rows now take."""
        self.groups.setdefault((table, tuple(row)), []).append(row)
        self.params += len(row)
        return self.params

    def add_guard(self, guard: Guard) -> None:
        if guard.key is not None:
            for i, kept in enumerate(self.guards):
                if kept.key == guard.key:
                    assert kept.merge is not None, "a keyed Guard needs `merge`"
                    self.guards[i] = kept.merge(kept, guard)
                    return
        self.guards.append(guard)

    def mark(self) -> PendingMark:
        """What is kept now, to `undo` back to (the writes of a call that then failed)."""
        return PendingMark(self.groups, {k: len(v) for k, v in self.groups.items()},
                           list(self.guards), self.params)

    def undo(self, mark: PendingMark) -> bool:
        """Drop what was kept after `mark`; False (and nothing dropped) when a flush sent
        the kept rows to the server since: then only a rollback undoes them."""
        if mark.groups is not self.groups:
            return False
        for key in [k for k in self.groups if k not in mark.sizes]:
            del self.groups[key]
        for key, size in mark.sizes.items():
            del self.groups[key][size:]
        self.guards[:] = mark.guards
        self.params = mark.params
        return True

    def __bool__(self) -> bool:
        return bool(self.groups) or bool(self.guards)


class PendingMark(NamedTuple):
    groups: dict[tuple[Table, tuple[str, ...]], list[Mapping[str, Any]]]
    sizes: dict[tuple[Table, tuple[str, ...]], int]
    guards: list[Guard]
    params: int


def keep_guard(conn: Connection, guard: Guard) -> bool:
    """Keep `guard` for the next flush if this is a write-behind unit of work; False
    means the caller runs its update now (SQLite, or no unit of work)."""
    pending = conn.info.get(PENDING)
    if pending is None:
        return False
    pending.add_guard(guard)
    return True


@functools.cache
def _column_sql(table: Table, columns: tuple[str, ...], dialect: Dialect
                ) -> tuple[str, str, tuple[Callable[[Any], Any] | None, ...]]:
    """("t (a, b)", "(%s::INTEGER, %s)", bind processors) for one table and column set,
    with the casts and value processing SQLAlchemy itself would apply."""
    prep = dialect.identifier_preparer
    marks, procs = [], []
    for name in columns:
        impl = table.c[name].type.dialect_impl(dialect)
        procs.append(impl.bind_processor(dialect))
        if getattr(impl, "render_bind_cast", False):
            marks.append(f"%s::{dialect.type_compiler_instance.process(impl)}")
        else:
            marks.append("%s")
    target = f"{prep.format_table(table)} ({', '.join(prep.quote(c) for c in columns)})"
    return target, f"({', '.join(marks)})", tuple(procs)


def flush(conn: Connection) -> None:
    """Send the transaction's kept rows as one statement (nothing to do if none)."""
    pending = conn.info.get(PENDING)
    if not pending:
        return
    groups, pending.groups = pending.groups, {}
    guards, pending.guards = pending.guards, []
    if len(guards) > 1:
        # The server takes the guards' row locks in this order (the checks below read
        # w0, w1, ... in turn): rows named by a key in one global order, as reservations
        # made one by one are, so that two such statements cannot deadlock.
        guards.sort(key=lambda g: (g.key is None, g.key if g.key is not None else ()))
    pending.params = 0
    # PostgreSQL's own placeholders ($1, $2, ...), numbered here as the text is built, and
    # sent with psycopg's RawCursor: a group commit's statement has hundreds of
    # parameters, and psycopg's parse of %s placeholders in a text too long for its cache
    # cost about a third of the server's CPU under load (py-spy on `bench http`).
    parts: list[str] = []
    params: list[Any] = []
    for g in guards:
        parts.append(_numbered(_pieces(g.sql), len(params)))
        params.extend(g.params)
    for (table, columns), rows in groups.items():
        target, marks, procs = _column_sql(table, columns, conn.dialect)
        pieces = _pieces(marks)
        values = []
        for row in rows:
            values.append(_numbered(pieces, len(params)))
            for name, proc in zip(columns, procs, strict=True):
                value = row[name]
                params.append(proc(value) if proc is not None and value is not None
                              else value)
        parts.append(f"INSERT INTO {target} VALUES {', '.join(values)}")
    if guards:
        # Every statement a CTE; the main query checks each guard's count on the server and
        # fails the statement itself when one is off (so the check holds in autocommit too):
        # a cast error whose text names the guard and the count. The text depends on the
        # count, so PostgreSQL cannot fold it into an error at plan time.
        checks = " ".join(
            f"WHEN (SELECT count(*) FROM w{i}) <> {int(g.expected)} THEN "
            f"CAST('{_GUARD_MARK}' || '{i}:' || (SELECT count(*) FROM w{i}) AS INTEGER)"
            for i, g in enumerate(guards))
        ctes, last = parts, f"SELECT CASE {checks} ELSE 0 END"
    else:
        *ctes, last = parts
    sql = (f"WITH {', '.join(f'w{i} AS ({p})' for i, p in enumerate(ctes))} {last}"
           if ctes else last)
    failure = None
    _begins(conn)  # as any statement but a lock-free read would (not in `flush_alone`)
    try:
        execute_on_driver(conn, sql, params, numbered=True)
    except DBAPIError as exc:
        failure = _GUARD_FAILED.search(str(exc.orig)) if guards else None
        if failure is None:
            raise
    if failure is not None:  # outside the except: the guard's own error is the one to see
        guards[int(failure[1])].failed(int(failure[2]))
        raise RuntimeError("a Guard's `failed` must raise")


@functools.lru_cache(maxsize=256)
def _pieces(sql: str) -> tuple[str, ...]:
    """`sql` cut at its %s placeholders (it has no other %)."""
    assert "%%" not in sql and "%(" not in sql, sql
    return tuple(sql.split("%s"))


def _numbered(pieces: tuple[str, ...], before: int) -> str:
    """The text of `pieces` with $before+1, $before+2, ... between them."""
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:], before + 1):
        out.append(f"${i}")
        out.append(piece)
    return "".join(out)


def execute_on_driver(conn: Connection, sql: str, params: Any, *,
                      numbered: bool = False) -> Any:
    """Run `sql` on the connection's psycopg connection directly, as it stands (in or out of
    its transaction): the statements this module builds need none of what SQLAlchemy does
    around a statement (events, result metadata: about 0.2 ms of CPU each, profiled on
    buy-now). Returns the psycopg cursor. A failure raises SQLAlchemy's exception for it
    (IntegrityError, ...), as `exec_driver_sql` would; a connection that broke is
    invalidated, as SQLAlchemy does."""
    driver = conn.connection.driver_connection
    assert driver is not None
    for observe in _DRIVER_OBSERVERS:
        observe(conn, sql, params)
    try:
        if numbered:  # $1, $2, ... as PostgreSQL takes them: psycopg has nothing to parse
            return psycopg.RawCursor(driver).execute(sql, params)
        return driver.execute(sql, params)
    except psycopg.Error as exc:
        broken = driver.closed or driver.broken
        err = DBAPIError.instance(sql, params, exc, psycopg.Error,
                                  connection_invalidated=broken, dialect=conn.dialect)
        if broken:
            conn.invalidate(exc)
        raise err from exc


# Callbacks told of every statement `execute_on_driver` sends (`bench checkout` counts
# statements with SQLAlchemy's event and these, the statements SQLAlchemy never sees).
_DRIVER_OBSERVERS: list[Callable[[Connection, str, Any], None]] = []


@contextlib.contextmanager
def driver_statements(observe: Callable[[Connection, str, Any], None]) -> Iterator[None]:
    """Call `observe(conn, sql, params)` for every statement sent on the driver directly
    while the block runs."""
    _DRIVER_OBSERVERS.append(observe)
    try:
        yield
    finally:
        _DRIVER_OBSERVERS.remove(observe)


class DriverSelect:
    """A lock-free SELECT (`LOCK_FREE_READ`) that a unit of work on PostgreSQL runs before
    its transaction begins (`begin_outside`): compiled once, then sent on the driver
    directly (`execute_on_driver`), its rows named tuples with the statement's column
    names. Anywhere else (SQLite, inside a transaction, rows kept to flush) it runs through
    SQLAlchemy as usual; the rows read the same either way."""

    def __init__(self, statement: Any):
        self.statement = statement
        self._compiled: tuple[Dialect, str, dict[str, Any], Any] | None = None

    def all(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        info = conn.info
        if not info.get(_OUTSIDE) or info.get(PENDING):
            return list(conn.execute(self.statement, params).all())
        _dialect, sql_text, defaults, row_type = self._compile(conn)
        cur = execute_on_driver(conn, sql_text, {**defaults, **params})
        return [row_type._make(r) for r in cur.fetchall()]

    def _compile(self, conn: Connection) -> tuple[Dialect, str, dict[str, Any], Any]:
        compiled = self._compiled
        if compiled is None or compiled[0] is not conn.dialect:
            sql = self.statement.compile(dialect=conn.dialect)
            row = namedtuple("Row", list(self.statement.selected_columns.keys()))  # type: ignore[misc]
            compiled = self._compiled = (conn.dialect, str(sql), dict(sql.params), row)
        return compiled


_GUARD_MARK = "silkroute-guard:"
_GUARD_FAILED = re.compile(re.escape(_GUARD_MARK) + r"(\d+):(\d+)")


def flush_alone(conn: Connection) -> bool:
    """At commit: when nothing of this transaction has reached the server yet (psycopg
    begins lazily, at the first statement; lock-free reads may have run outside it, see
    `begin_outside`), send the kept rows as one statement in autocommit mode — a
    statement is its own transaction, atomic, with the deferred constraint triggers fired
    at its end — and save the BEGIN and COMMIT round trips (a one-click checkout and its
    payment are one such statement each). True if it did; False leaves the rows kept for
    the normal flush and commit."""
    pending = conn.info.get(PENDING)
    if not pending:
        return False
    driver = conn.connection.driver_connection
    if driver is None or driver.info.transaction_status != TransactionStatus.IDLE:
        return False
    was = driver.autocommit
    driver.autocommit = True
    conn.info[_BYPASS] = True
    try:
        flush(conn)
    finally:
        conn.info.pop(_BYPASS, None)
        driver.autocommit = was
    return True


# Statement execution option: this SELECT takes no lock and has no side effect, so under
# READ COMMITTED it reads the same whether it runs inside the transaction or before it.
LOCK_FREE_READ = "silkroute_lock_free_read"
_OUTSIDE = "silkroute_outside"  # Connection.info: only lock-free reads have run, autocommit
_BYPASS = "silkroute_bypass"  # Connection.info: a statement of this module's own


def begin_outside(conn: Connection) -> None:
    """Start a unit of work with its transaction not begun: statements marked
    `LOCK_FREE_READ` run in autocommit until the first other statement (or a flush),
    which begins the transaction. Only under READ COMMITTED, where a statement sees what
    was committed before it began whether or not a transaction is open: a read-only
    SELECT with no lock learns the same either way, and the transaction (its writes, its
    locks, its outcome) is unchanged."""
    driver = conn.connection.driver_connection
    if driver is None or driver.info.transaction_status != TransactionStatus.IDLE:
        return
    level = conn.engine.get_execution_options().get("isolation_level") or \
        conn.dialect.default_isolation_level
    if level == "READ COMMITTED":
        driver.autocommit = True
        conn.info[_OUTSIDE] = True


def end_outside(conn: Connection) -> None:
    """Give the connection back to the pool as it came (not in autocommit)."""
    if conn.info.pop(_OUTSIDE, False):
        driver = conn.connection.driver_connection
        if driver is not None and not driver.closed:
            driver.autocommit = False


def _flush_before(conn: Connection, statement: Any, *_args: Any) -> None:
    info = conn.info
    if info.get(_BYPASS):
        return
    pending = info.get(PENDING)
    if pending or not _lock_free(statement):
        _begins(conn)  # this statement (or the flush) begins the transaction
    if pending:
        flush(conn)


def _begins(conn: Connection) -> None:
    """The next statement begins the unit of work's transaction: leave `begin_outside`'s
    autocommit (unless this module's own statement says otherwise, `_BYPASS`)."""
    info = conn.info
    if info.get(_OUTSIDE) and not info.get(_BYPASS):
        info[_OUTSIDE] = False
        driver = conn.connection.driver_connection
        if driver is not None:
            driver.autocommit = False


def _lock_free(statement: Any) -> bool:
    return isinstance(statement, Executable) and bool(
        statement.get_execution_options().get(LOCK_FREE_READ, False))


def enable_write_behind(engine: Engine) -> None:
    """Let units of work on this (PostgreSQL) engine keep their inserts until the next
    statement or the commit."""
    event.listen(engine, "before_execute", _flush_before)
    _WRITE_BEHIND_ENGINES.add(engine)


def writes_behind(engine: Engine) -> bool:
    return engine in _WRITE_BEHIND_ENGINES


_WRITE_BEHIND_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


# ids ----------------------------------------------------------------------------------------
class _Block:
    __slots__ = ("fetched", "ids", "size")

    def __init__(self) -> None:
        self.ids: deque[int] = deque()
        self.size = 0
        self.fetched = 0.0


class IdBlocks:
    """Per engine and table, ids taken from the table's sequence a block at a time.

    A block is used for at most `MAX_BLOCK_AGE_S`; what is left then is dropped (a gap, as
    a rollback leaves) and the next block is one id again. So a busy process fetches
    rarely (blocks double while each is used up in time), and between processes ids stay
    in the order they were handed out to within that age: an order listing sorted by id
    shows two workers' orders newest first even when each makes one an hour."""

    def __init__(self) -> None:
        self._blocks: dict[str, _Block] = {}
        self._lock = threading.Lock()

    def next_id(self, conn: Connection, table: Table) -> int:
        block = self._blocks.get(table.name)
        if block is not None and block.ids and \
                time.monotonic() - block.fetched <= MAX_BLOCK_AGE_S:
            try:
                return block.ids.popleft()
            except IndexError:  # another thread took the last one
                pass
        with self._lock:
            block = self._blocks.setdefault(table.name, _Block())
            now = time.monotonic()
            if block.ids and now - block.fetched <= MAX_BLOCK_AGE_S:
                return block.ids.popleft()  # another thread refilled it meanwhile
            # The last block was used up within its age: demand is high, double it.
            busy = block.size > 0 and not block.ids and now - block.fetched <= MAX_BLOCK_AGE_S
            block.size = min(MAX_BLOCK, block.size * 2) if busy else 1
            block.ids.clear()
            block.ids.extend(_fetch_ids(conn, table, block.size))
            block.fetched = now
            return block.ids.popleft()


def _fetch_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """`n` values of the table's sequence. nextval is not transactional and never waits
    (so holding the blocks' lock over it is safe); a rollback leaves a gap, as with any
    sequence. The transaction's kept rows stay kept: they do not need these ids sent."""
    conn.info[_BYPASS] = True  # no flush before it; in or out of the transaction alike
    try:
        return list(conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (table.name, n)).scalars())
    finally:
        conn.info.pop(_BYPASS, None)


_BLOCKS: weakref.WeakKeyDictionary[Engine, IdBlocks] = weakref.WeakKeyDictionary()
_BLOCKS_LOCK = threading.Lock()


def _blocks(engine: Engine) -> IdBlocks:
    blocks = _BLOCKS.get(engine)
    if blocks is None:
        with _BLOCKS_LOCK:
            blocks = _BLOCKS.setdefault(engine, IdBlocks())
    return blocks
