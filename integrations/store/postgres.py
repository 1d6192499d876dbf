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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

from integrations.store.base import StoreError
from integrations.store.sqlstore import UTC, SQLStore, Tx, utc

__all__ = ["ConnectionPool", "PostgresStore", "split_url"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: First key of every transaction-scoped advisory lock the store takes ("pold").
_LOCK_NAMESPACE = 0x706F6C64


def _hash(text: str, size: int) -> int:
    """A stable signed integer of ``size`` bytes from ``text``."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big", signed=True)


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Split the store's own parameters (``schema``, ``pool_size``) off a DSN URL.

    Returns the URL psycopg should see and the store parameters.
    """
    parts = urlsplit(url)
    mine: dict[str, str] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        (mine.__setitem__(key, value) if key in ("schema", "pool_size") else rest.append((key, value)))
    return urlunsplit(parts._replace(query=urlencode(rest))), mine


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))  # type: ignore[arg-type]
        return cur.fetchall() if cur.description is not None else []


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
    ) -> None:
        self._connect = connect
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
            conn.execute("SELECT 1")
            return True
        except psycopg.Error:
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

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int | None = None,
        connect_timeout: int = 10,
    ) -> None:
        super().__init__()
        conninfo, params = split_url(url) if "://" in url else (url, {})
        self.schema = schema or params.get("schema") or "public"
        if not _IDENTIFIER.match(self.schema):
            raise StoreError(f"bad schema name {self.schema!r}: letters, digits, _ only")
        self._conninfo = conninfo
        self._connect_timeout = connect_timeout
        size = pool_size or int(params.get("pool_size") or 10)
        self._pool = ConnectionPool(self._connect, max_size=size)
        self._lead_lock = threading.Lock()
        self._lead_conn: psycopg.Connection[Any] | None = None
        self._leading: set[str] = set()
        self._migrate()

    # -- connections -------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name="policydesk",
        )
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(self.schema)))
        return conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Tx]:
        with self._pool.connection() as conn, conn.transaction():
            yield _PgTx(conn)

    def _lock(self, tx: Tx, key: str) -> None:
        tx.execute(
            "SELECT pg_advisory_xact_lock(?, ?)",
            (_LOCK_NAMESPACE, _hash(f"{self.schema}:{key}", 4)),
        )

    def _migrate(self) -> None:
        with self._transaction(True) as tx:
            self._lock(tx, "schema")
            if not tx.execute("SELECT 1 FROM pg_namespace WHERE nspname = ?", (self.schema,)):
                # The name is a checked identifier (letters, digits, _), quoted as such.
                tx.execute(f'CREATE SCHEMA "{self.schema}"')
        super()._migrate()

    def close(self) -> None:
        self.resign()
        self._pool.close()

    # -- values -----------------------------------------------------------------

    def _ts(self, value: dt.datetime) -> dt.datetime:
        return utc(value)

    def _from_ts(self, value: Any) -> dt.datetime:
        return utc(value) if value.tzinfo is not None else value.replace(tzinfo=UTC)

    def _json(self, value: Any) -> Any:
        return Jsonb(value)

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
                    conn.execute("SELECT 1")
                except psycopg.Error:
                    conn.close()
                    self._lead_conn = None
                    self._leading.clear()
            if name in self._leading:
                return True
            if self._lead_conn is None:
                self._lead_conn = self._connect()
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
                        conn.execute("SELECT pg_advisory_unlock(%s)", (self._lead_key(each),))
                    except psycopg.Error:
                        pass
            if not self._leading and conn is not None:
                conn.close()
                self._lead_conn = None
