"""The core of the SQL store: transactions, migrations and the dialect hooks.

The store's logic is written once in SQL common to SQLite and PostgreSQL, one module
per table family (:mod:`.ingest`, :mod:`.queue`, :mod:`.timers`, :mod:`.pauses`,
:mod:`.audit`, :mod:`.accounts`, :mod:`.notifications`, :mod:`.housekeeping`), each a
mixin of :class:`SQLCore`; :class:`integrations.store.sqlstore.SQLStore` composes them.

A dialect subclass supplies transactions (:meth:`SQLCore._transaction`), value
conversions, and the two places where locking differs:

* :attr:`SQLCore.SKIP_LOCKED` — ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; empty on
  SQLite, where every write transaction is ``BEGIN IMMEDIATE`` and so already holds
  the database's single write lock;
* :meth:`SQLCore._lock` — a transaction-scoped advisory lock on PostgreSQL; nothing
  on SQLite, for the same reason.

and one place where planning differs: :meth:`SQLCore._using` names the index a query
over the queue must use. SQLite plans without statistics and prefers an equality on
``jobs_state`` to a range on the partial index made for the query, then reads and sorts
every pending job (a claim took 6.3 ms at 10,000 queued, holding the write lock); with
``INDEXED BY`` it reads only what it returns. PostgreSQL plans from its statistics.

SQL here uses ``?`` placeholders; the PostgreSQL subclass translates them.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from integrations.store import schema
from integrations.store.records import StoreError
from integrations.store.values import check_json
from integrations.store.wakeup import WorkSignal

UTC = dt.timezone.utc


def utc(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware one")
    return value.astimezone(UTC)


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Split ``items`` into slices of at most ``size`` (for ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


class Tx(abc.ABC):
    """One open transaction: run statements, get all rows back as tuples."""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` (``?`` placeholders) and return its rows (``[]`` if none)."""


class SQLCore:
    """Transactions, migrations and the dialect hooks every table family builds on."""

    dialect: ClassVar[schema.Dialect]
    #: Appended to the sub-selects that pick rows to claim.
    SKIP_LOCKED: ClassVar[str] = ""
    #: Whether ``FROM table INDEXED BY name`` is understood (SQLite; see `_using`).
    INDEXED_BY: ClassVar[bool] = False

    def __init__(self) -> None:
        self._local = threading.local()
        self._work = WorkSignal()

    # -- dialect hooks -------------------------------------------------------------

    def _using(self, index: str) -> str:
        """`` INDEXED BY index`` after a table name where the dialect takes a hint (an
        unusable index is then an error, not a slow plan), else nothing."""
        return f" INDEXED BY {index}" if self.INDEXED_BY else ""

    @abc.abstractmethod
    def _transaction(self, write: bool, durable: bool = True) -> Any:
        """A context manager: a new transaction on a connection of this thread,
        yielding a :class:`Tx`; committed on success, rolled back on error.
        ``durable=False``: committed without waiting for the disk (see :meth:`atomic`)."""

    def _lock(self, tx: Tx, key: str) -> None:
        """Serialise transactions that pass the same ``key`` (until commit)."""

    def lock(self, key: str) -> None:
        with self._tx() as tx:
            self._lock(tx, key)

    @abc.abstractmethod
    def _ts(self, value: dt.datetime) -> Any:
        """A UTC datetime as a query parameter."""

    @abc.abstractmethod
    def _from_ts(self, value: Any) -> dt.datetime:
        """A stored timestamp as an aware UTC datetime."""

    def _ots(self, value: Any) -> dt.datetime | None:
        return None if value is None else self._from_ts(value)

    def _json(self, value: Any, field: str = "data") -> Any:
        """A JSON value as a query parameter; :class:`StoreValueError` (naming ``field``)
        if the store cannot hold it."""
        return self._encode_json(check_json(value, field))

    def _encode_json(self, value: Any) -> Any:
        """A checked JSON value as this dialect's query parameter."""
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    def _from_json(self, value: Any) -> Any:
        """A stored JSON value as Python."""
        return json.loads(value) if isinstance(value, (str, bytes)) else value

    def _claim_sql(self, table: str, ready: str, order: str, assign: str, returning: str, using: str = "") -> str:
        """One statement that picks up to ``LIMIT ?`` ready rows, oldest first, and
        updates them, returning ``returning``.

        Parameters, in order: those of ``ready``, the limit, those of ``assign``, those
        of ``ready`` again (re-checked on the picked rows). ``using``: `_using`'s hint for
        the pick.

        The pick is a materialised CTE joined with ``UPDATE ... FROM``: PostgreSQL
        must run the locking sub-select exactly once (as ``WHERE id IN (...)`` it may
        re-run it per row, and skip the rows this very statement just updated,
        exceeding the limit).
        """
        return (
            f"WITH picked AS MATERIALIZED (SELECT id AS pick_id FROM {table}{using} WHERE {ready}"
            f" ORDER BY {order} LIMIT ?{self.SKIP_LOCKED})"
            f" UPDATE {table} SET {assign} FROM picked"
            f" WHERE {table}.id = picked.pick_id AND ({ready}) RETURNING {returning}"
        )

    def _migration_setup(self, tx: Tx) -> None:
        """Prepare the migration's transaction (PostgreSQL: no statement timeout)."""

    def _try_lock(self, tx: Tx, key: str) -> bool:
        """Like :meth:`_lock` without waiting: ``False`` if another transaction holds it."""
        return True

    def _announce_work(self, tx: Tx) -> None:
        """Tell other processes, at commit, that work may be ready (PostgreSQL: NOTIFY)."""

    # -- transactions ---------------------------------------------------------

    @contextmanager
    def _outermost(self, write: bool, durable: bool = True) -> Iterator[Tx]:
        """A new transaction; the callbacks :meth:`_on_commit` registered in it run
        after it committed (never after a rollback)."""
        callbacks: list[Callable[[], None]] = []
        self._local.on_commit = callbacks
        self._local.durable = durable
        try:
            with self._transaction(write, durable) as tx:
                yield tx
        finally:
            self._local.on_commit = None
            self._local.durable = True
        for callback in callbacks:
            callback()

    def _on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the current transaction has committed."""
        callbacks: list[Callable[[], None]] | None = getattr(self._local, "on_commit", None)
        if callbacks is None:
            callback()
        elif callback not in callbacks:
            callbacks.append(callback)

    def _work_arrived(self, tx: Tx) -> None:
        """Work becomes ready when ``tx`` commits: wake this process's waiting workers
        then, and announce it to the other processes."""
        self._announce_work(tx)
        self._on_commit(self._work.notify)

    @contextmanager
    def _tx(self, write: bool = True, durable: bool = True) -> Iterator[Tx]:
        """The thread's current :meth:`atomic` transaction (as durable as that block
        is), or a new one."""
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self._outermost(write, durable) as tx:
            yield tx

    def _in_relaxed_block(self) -> bool:
        """Inside ``atomic(durable=False)``: what is written here may not be promised to anyone."""
        return getattr(self._local, "tx", None) is not None and not getattr(self._local, "durable", True)

    @contextmanager
    def atomic(self, durable: bool = True) -> Iterator[None]:
        if getattr(self._local, "tx", None) is not None:
            if durable and self._in_relaxed_block():
                raise StoreError("a durable atomic() block cannot join an atomic(durable=False) one")
            yield
            return
        with self._outermost(True, durable) as tx:
            self._local.tx = tx
            try:
                yield
            finally:
                self._local.tx = None

    def _migrate(self) -> None:
        """Create or upgrade the schema (serialised across processes)."""
        with self._transaction(True) as tx:
            self._migration_setup(tx)
            self._lock(tx, "schema")
            tx.execute(schema.render(schema.SCHEMA_VERSION_TABLE, self.dialect))
            current = tx.execute("SELECT MAX(version) FROM schema_version")[0][0] or 0
            if current > schema.LATEST:
                raise StoreError(
                    f"the database schema is at version {current}, newer than this"
                    f" code's {schema.LATEST}: upgrade policydesk"
                )
            for version, description, statements in schema.MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    tx.execute(schema.render(statement, self.dialect))
                tx.execute(
                    "INSERT INTO schema_version (version, description, applied_at)"
                    " VALUES (?, ?, ?)",
                    (version, description, self._ts(utcnow())),
                )

    def ping(self) -> None:
        with self._tx(write=False) as tx:
            tx.execute("SELECT 1")

    def schema_version(self) -> int:
        with self._tx(write=False) as tx:
            return int(tx.execute("SELECT MAX(version) FROM schema_version")[0][0] or 0)

    @staticmethod
    def _owner(worker: str | None) -> tuple[str, tuple[Any, ...]]:
        """A ``claimed_by`` condition for ``worker`` (none for ``None``)."""
        if worker is None:
            return "", ()
        return " AND claimed_by = ?", (worker,)
