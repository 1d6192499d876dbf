"""The SQLite store: the single-instance default, one file, no set-up.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode ``FULL`` fsyncs the
WAL at every commit, so a transaction that returned is on disk and survives a crash
of the process *and* of the machine (power loss). ``NORMAL`` would only survive a
process crash: after a power loss the last commits could be gone — yet the webhook
was already acknowledged. The price is one fsync per commit (here 0.4 ms with the
write lock held, 0.18 ms of CPU, against 0.03 ms for ``NORMAL``). Bookkeeping that is
redone when lost (``atomic(durable=False)``: claims, leases, completions) commits with
``NORMAL``: the WAL is one file written in order, so the next ``FULL`` commit's fsync
makes it durable too, and a power loss can only cut the log's end. Readers never
block the writer and vice versa (WAL).

Concurrency: one connection per thread. Every write transaction starts with
``BEGIN IMMEDIATE``, taking the database's single write lock up front, so claims and
timer sweeps are serialised (no ``SKIP LOCKED`` needed) and a transaction never has
to upgrade a read lock (which fails with ``SQLITE_BUSY`` regardless of the timeout).
Waiting for the lock is bounded by ``busy_timeout``. Several processes may share the
file on a local disk (not a network file system). Within one process, write
transactions first take a `threading.Lock` per database file: threads queue on it and
get it the moment it frees, so only other processes ever wait in SQLite's busy handler.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from integrations.store.base import StoreError, StoreValueError
from integrations.store.sqlstore import UTC, SQLStore, Tx, utc
from integrations.store.values import check_params

__all__ = ["SQLiteStore"]


#: Real path of a database file -> the lock its write transactions take in this process
#: (shared by every `SQLiteStore` on that file).
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    key = os.path.realpath(path)
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(key)
        if lock is None:
            lock = _WRITE_LOCKS[key] = threading.Lock()
        return lock


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C type cannot), knowing its
    ``PRAGMA synchronous`` (set per connection, outside a transaction only)."""

    synchronous = "FULL"


class _SQLiteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        check_params(params)  # what PostgreSQL cannot hold is refused here too
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except OverflowError:
            raise StoreValueError("a number", "integer out of range") from None


class SQLiteStore(SQLStore):
    """The store in one SQLite file (WAL, ``synchronous=FULL``), created on first use.

    :param path: the database file; missing parent directories are created.
    :param busy_timeout: seconds a transaction waits for the write lock (then it fails
        and the webhook answers 503: a stuck writer never hangs the service).
    """

    dialect = "sqlite"
    SKIP_LOCKED = ""  # BEGIN IMMEDIATE already holds the only write lock.
    INDEXED_BY = True

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        super().__init__()
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file::memory:"):
            raise StoreError("SQLite store needs a file path (an in-memory database is not durable)")
        self.path = Path(text)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout = busy_timeout
        # Weak: a thread's connection goes (and closes) with the thread.
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._guard = threading.Lock()
        self._write_lock = _write_lock(self.path)
        self._closed = False
        self._migrate()

    # -- connections -------------------------------------------------------------

    def _connect(self) -> _Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # so close() may close it from another thread
            factory=_Connection,
        )
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"{self.path}: cannot use WAL journal mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        return conn

    def _conn(self) -> _Connection:
        conn: _Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._guard:
                if self._closed:
                    raise StoreError("the store is closed")
                conn = self._connect()
                self._connections.add(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _transaction(self, write: bool, durable: bool = True) -> Iterator[Tx]:
        conn = self._conn()
        if not write:
            conn.execute("BEGIN")
            try:
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return
        # Threads of this process queue here and are handed the lock as soon as it is
        # free; only other processes meet SQLite's busy handler (which sleeps in steps
        # of up to 100 ms instead of waking when the lock frees).
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise sqlite3.OperationalError(f"database is locked (waited {self.busy_timeout:g} s in this process)")
        try:
            level = "FULL" if durable else "NORMAL"  # NORMAL: in the WAL, fsynced by the next FULL commit
            if conn.synchronous != level:
                conn.execute(f"PRAGMA synchronous={level}")
                conn.synchronous = level
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteTx(conn)
                conn.execute("COMMIT")  # synchronous=FULL: on disk when this returns
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            self._write_lock.release()

    def close(self) -> None:
        self._close_group_commit()
        with self._guard:
            self._closed = True
            connections = list(self._connections)
            self._connections = weakref.WeakSet()
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    # -- values -----------------------------------------------------------------

    def _ts(self, value: dt.datetime) -> str:
        # Fixed width, so text order is time order.
        return utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

    def _from_ts(self, value: Any) -> dt.datetime:
        return dt.datetime.fromisoformat(str(value).removesuffix("Z")).replace(tzinfo=UTC)

    # -- leadership ----------------------------------------------------------------

    def try_lead(self, name: str) -> bool:
        """Always ``True``: a SQLite store serves a single instance, which leads.

        (Timers still fire once even if two processes share the file: ``fire_due``
        is a claim under the write lock.)
        """
        return True

    def resign(self, name: str | None = None) -> None:
        """Nothing to give up (see :meth:`try_lead`)."""
