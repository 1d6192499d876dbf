"""The PostgreSQL store: several policydesk instances behind a load balancer.

* Connections: a small thread-safe pool (autocommit connections; each store call is
  one explicit transaction). A connection that broke is discarded, not reused; the
  failing call raises ``psycopg.OperationalError`` and the caller retries.
* Claims (jobs, timers, held notifications) use ``SELECT ... FOR UPDATE SKIP
  LOCKED`` so concurrent workers and sweepers never wait for or take each other's
  rows. Per-ticket timer updates, manager assignment and migrations serialise on
  transaction-scoped advisory locks.
* Leadership: ``pg_try_advisory_lock`` on a dedicated connection, held while leading.
* Durability: PostgreSQL's default ``synchronous_commit=on`` (the WAL is flushed
  before COMMIT returns); the store never lowers it.
* ``schema``: every table lives in that schema (created if missing), so tests or
  several deployments can share a database.
* Timeouts (``timeout=``, default 5 s; URL parameter ``timeout``): connecting
  (``connect_timeout``), each statement (``statement_timeout``, server side), TCP
  (keepalives and ``tcp_user_timeout``), and a client-side deadline per transaction
  (:mod:`.pgwatch`) for a network that silently drops traffic. A caller waits at most
  about that long before an ``OperationalError`` (HTTP 503, a worker retry).
* Wake-ups: every commit that makes work ready sends ``NOTIFY`` on the schema's channel;
  workers of other processes hear it through :mod:`.pglisten`.
* Values PostgreSQL cannot hold (NUL, lone surrogates, out-of-range numbers) raise
  :class:`~integrations.store.records.StoreValueError`, as on SQLite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from integrations.store.base import StoreError, StoreUnavailable, StoreValueError
from integrations.store.pglisten import Listener
from integrations.store.pgwatch import Watchdog
from integrations.store.sqlstore import UTC, SQLStore, Tx, utc
from integrations.store.values import check_params

__all__ = ["ConnectionPool", "PostgresStore", "split_url"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: First key of every transaction-scoped advisory lock the store takes ("pold").
_LOCK_NAMESPACE = 0x706F6C64


def _hash(text: str, size: int) -> int:
    """A stable signed integer of ``size`` bytes from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:size], "big", signed=True)


_STORE_PARAMS = ("schema", "pool_size", "timeout")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Split the store's own parameters (``schema``, ``pool_size``, ``timeout``) off a DSN URL.

    Returns the URL psycopg should see and the store parameters.
    """
    parts = urlsplit(url)
    mine: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (mine.__setitem__(key, value) if key in _STORE_PARAMS else rest.append((key, value)))
    return urlunsplit(parts._replace(query=urlencode(rest))), mine


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self.announced = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        check_params(params)  # the same refusals as on SQLite, before PostgreSQL's own
        try:
            cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
        except psycopg.DataError as error:  # SQLSTATE class 22: this value cannot be held
            raise StoreValueError("a value", _first_line(error)) from None
        return cur.fetchall() if cur.description is not None else []


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


class ConnectionPool:
    """A minimal thread-safe pool: at most ``max_size`` connections, reused LIFO.

    :param connect: makes a new, configured connection.
    :param timeout: seconds to wait for a free connection before ``StoreError``.
    :param check_after: a connection idle for longer is checked with ``SELECT 1``
        before it is handed out (so a server restart costs no failed call).
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        max_size: int = 10,
        timeout: float = 30.0,
        check_after: float = 30.0,
        guard: Callable[[Any, float], AbstractContextManager[None]] | None = None,
    ) -> None:
        self._connect = connect
        self._guard = guard
        self._slots = threading.BoundedSemaphore(max_size)
        self._idle: list[tuple[psycopg.Connection[Any], float]] = []
        self._check_after = check_after
        self._lock = threading.Lock()
        self._timeout = timeout
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a connection; it goes back to the pool only if it is healthy and idle."""
        if not self._slots.acquire(timeout=self._timeout):
            raise StoreError(f"no free database connection within {self._timeout} s")
        conn: psycopg.Connection[Any] | None = None
        try:
            # Most recently used first; a stale one is checked, a dead one dropped.
            while conn is None:
                with self._lock:
                    if self._closed:
                        raise StoreError("the store is closed")
                    item = self._idle.pop() if self._idle else None
                if item is None:
                    conn = self._connect()
                elif self._usable(*item):
                    conn = item[0]
                else:
                    item[0].close()
            yield conn
        finally:
            if conn is not None:
                self._give_back(conn)
            self._slots.release()

    def _usable(self, conn: psycopg.Connection[Any], since: float) -> bool:
        if conn.closed or conn.broken:
            return False
        if time.monotonic() - since < self._check_after:
            return True
        try:
            if self._guard is None:
                conn.execute("SELECT 1")
            else:
                with self._guard(conn, self._timeout):
                    conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            conn.close()
            return False

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        healthy = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        with self._lock:
            if healthy and not self._closed:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; borrowed ones close when given back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()


class PostgresStore(SQLStore):
    """The store in a PostgreSQL database (psycopg 3).

    :param url: a libpq URL or DSN (``postgresql://user@host:5432/db``); ``schema``
        and ``pool_size`` may also be given as URL query parameters.
    :param schema: the schema holding the tables (default ``public``); created if
        missing. Tests use a fresh one and drop it afterwards.
    :param pool_size: the most connections the store opens at once (plus one for
        leadership).
    """

    dialect = "postgres"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    #: Events per INSERT: one statement over arrays (`_insert_events`), not VALUES rows.
    RECEIVE_CHUNK = 1000

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        super().__init__()
        conninfo, params = split_url(url) if "://" in url else (url, {})
        self.schema = schema or params.get("schema") or "public"
        if not _IDENTIFIER.match(self.schema):
            raise StoreError(f"bad schema name {self.schema!r}: letters, digits, _ only")
        self._conninfo = conninfo
        try:
            self.timeout = float(timeout if timeout is not None else params.get("timeout") or 5.0)
            size = int(pool_size or params.get("pool_size") or 10)
        except ValueError:
            raise StoreError("bad store URL: timeout and pool_size must be numbers") from None
        if not (0 < self.timeout <= 3600 and 0 < size <= 1000):
            raise StoreError("bad store URL: timeout must be 0-3600 s and pool_size 1-1000")
        self._connect_options = _connect_options(conninfo, self.timeout, connect_timeout)
        self._watchdog = Watchdog()
        self._pool = ConnectionPool(self._connect, max_size=size, timeout=self.timeout,
                                    guard=self._watchdog.guard)
        self._lead_lock = threading.Lock()
        self._lead_conn: psycopg.Connection[Any] | None = None
        self._leading: set[str] = set()
        self._channel = f"policydesk_work_{_hash(self.schema, 4) & 0xFFFFFFFF:08x}"
        #: The payload of this store's own announcements: its listener skips them, as this
        #: process's workers were already woken in-process at commit (no second wake-up).
        self._announcer = uuid.uuid4().hex
        self._listener: Listener | None = None
        self._listener_lock = threading.Lock()
        self._migrate()

    # -- connections -------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, autocommit=True, **self._connect_options)
        with self._watchdog.guard(conn, self.timeout):
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(self.schema)))
        return conn

    @contextmanager
    def _transaction(self, write: bool, durable: bool = True) -> Iterator[Tx]:
        deadline = getattr(self._local, "deadline", self.timeout + 1.0)
        try:
            with self._pool.connection() as conn, self._watchdog.guard(conn, deadline), conn.transaction():
                tx = _PgTx(conn)
                if write and not durable:  # see Store.atomic: the commit does not wait for the WAL flush
                    tx.execute("SET LOCAL synchronous_commit = off")
                yield tx
        except psycopg.OperationalError as error:  # down, refused, timed out, cut: one line, retryable
            raise StoreUnavailable(f"PostgreSQL unavailable: {_first_line(error)}") from None

    def _lock(self, tx: Tx, key: str) -> None:
        tx.execute(
            "SELECT pg_advisory_xact_lock(?, ?)",
            (_LOCK_NAMESPACE, _hash(f"{self.schema}:{key}", 4)),
        )

    def _try_lock(self, tx: Tx, key: str) -> bool:
        rows = tx.execute(
            "SELECT pg_try_advisory_xact_lock(?, ?)",
            (_LOCK_NAMESPACE, _hash(f"{self.schema}:{key}", 4)),
        )
        return bool(rows[0][0])

    def _announce_work(self, tx: Tx) -> None:
        if isinstance(tx, _PgTx) and not tx.announced:
            tx.execute("SELECT pg_notify(?, ?)", (self._channel, self._announcer))
            tx.announced = True

    def _listen(self) -> None:
        if self._listener is not None:
            return
        with self._listener_lock:
            if self._listener is None:
                self._listener = Listener(self._connect, self._channel, self._work.notify,
                                          self._watchdog.guard, self.timeout,
                                          idle_check=max(2.0, 2 * self.timeout), own=self._announcer)
                self._listener.start()

    def _migrate(self) -> None:
        self._local.deadline = None  # a migration may take long: no client deadline
        try:
            with self._transaction(True) as tx:
                self._migration_setup(tx)
                self._lock(tx, "schema")
                if not tx.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (self.schema,)):
                    # The name is a checked identifier (letters, digits, _), quoted as such.
                    tx.execute(f'CREATE SCHEMA "{self.schema}"')
            super()._migrate()
        finally:
            del self._local.deadline

    def _migration_setup(self, tx: Tx) -> None:
        tx.execute("SET LOCAL statement_timeout = 0")

    def close(self) -> None:
        self._close_group_commit()
        if self._listener is not None:
            self._listener.stop()
        self.resign()
        self._pool.close()
        self._watchdog.stop()

    # -- values -----------------------------------------------------------------

    def _ts(self, value: dt.datetime) -> dt.datetime:
        return utc(value)

    def _from_ts(self, value: Any) -> dt.datetime:
        return utc(value) if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def _encode_json(self, value: Any) -> Any:
        return Jsonb(value)

    # Events and jobs are inserted by one statement over arrays, whatever the number of rows
    # (RECEIVE_CHUNK): psycopg converts a statement's text on every call, and the multi-row
    # VALUES of 150 events was most of a sweep's time (docs/benchmarks.md). The values were
    # checked when the events were made (`IngestSQL._event`). The arrays go in binary (``%b``):
    # psycopg's text form escapes every element in Python, and PostgreSQL parses it again.
    def _insert_events(self, tx: Tx, events: Sequence[Any]) -> list[tuple[Any, ...]]:
        return tx.execute(
            "INSERT INTO events (source, delivery_id, body, headers, received_at)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::jsonb[], %b::timestamptz[])"
            " ON CONFLICT (source, delivery_id) DO NOTHING RETURNING id, source, delivery_id",
            [[e.source for e in events], [e.delivery_id for e in events], [e.body for e in events],
             [e.headers for e in events], [e.at for e in events]],
        )

    def _insert_jobs(self, tx: Tx, events: Sequence[tuple[int, Any]]) -> list[tuple[Any, ...]]:
        return tx.execute(
            "INSERT INTO jobs (event_id, source, work_key, state, not_before, created_at, updated_at)"
            " SELECT e, s, k, 'pending', t, t, t FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::timestamptz[])"
            " AS u(e, s, k, t) RETURNING id, event_id",
            [[i for i, _ in events], [e.source for _, e in events], [e.key for _, e in events],
             [e.at for _, e in events]],
        )

    # -- leadership ----------------------------------------------------------------

    def _lead_key(self, name: str) -> int:
        return _hash(f"policydesk:{self.schema}:{name}", 8)

    def try_lead(self, name: str) -> bool:
        """Take (or confirm) the session advisory lock for ``name``.

        The lock lives on a dedicated connection, held for as long as this store
        leads; if that connection dies, PostgreSQL releases the lock and the next
        call notices, drops the leadership and tries to take it again.
        """
        with self._lead_lock:
            conn = self._lead_conn
            if conn is not None:
                try:
                    with self._watchdog.guard(conn, self.timeout):
                        conn.execute("SELECT 1")
                except psycopg.Error:
                    conn.close()
                    self._lead_conn = None
                    self._leading.clear()
            if name in self._leading:
                return True
            if self._lead_conn is None:
                self._lead_conn = self._connect()
            with self._watchdog.guard(self._lead_conn, self.timeout):
                row = self._lead_conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (self._lead_key(name),)
                ).fetchone()
            if row and row[0]:
                self._leading.add(name)
                return True
            return False

    def resign(self, name: str | None = None) -> None:
        """Release the advisory lock for ``name`` (all if ``None``)."""
        with self._lead_lock:
            names = set(self._leading) if name is None else {name} & self._leading
            conn = self._lead_conn
            for each in names:
                self._leading.discard(each)
                if conn is not None and not conn.closed:
                    try:
                        with self._watchdog.guard(conn, self.timeout):
                            conn.execute("SELECT pg_advisory_unlock(%s)", (self._lead_key(each),))
                    except psycopg.Error:
                        pass
            if not self._leading and conn is not None:
                conn.close()
                self._lead_conn = None


def _connect_options(conninfo: str, timeout: float, connect_timeout: float | None) -> dict[str, Any]:
    """libpq settings that bound every wait on the server (those the DSN sets win)."""
    from psycopg.conninfo import conninfo_to_dict

    given = conninfo_to_dict(conninfo)
    ms = int(timeout * 1000)
    wanted: dict[str, Any] = {
        "application_name": "policydesk",
        "connect_timeout": max(1, round(connect_timeout if connect_timeout is not None else timeout)),
        "keepalives": 1,
        "keepalives_idle": max(1, round(timeout)),
        "keepalives_interval": max(1, round(timeout / 3)),
        "keepalives_count": 3,
        "tcp_user_timeout": ms,
    }
    options = {k: v for k, v in wanted.items() if k not in given}
    server = f"-c statement_timeout={ms} -c idle_in_transaction_session_timeout={max(ms * 12, 60000)}"
    options["options"] = f"{given['options']} {server}" if given.get("options") else server
    return options
