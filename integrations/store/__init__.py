"""policydesk's durable store: SQLite by default, PostgreSQL for several instances.

::

    store = open_store("sqlite:///var/lib/policydesk/state.db")   # or a plain path
    store = open_store("postgresql://policydesk@db/policydesk?schema=policydesk")

    result = store.receive("zammad", delivery_id, body, headers, now)  # then answer 2xx
    for job in store.claim("worker-1", now, limit=10):
        ...; store.complete(job.id, worker="worker-1")

See :class:`integrations.store.base.Store` for every method.
"""

from __future__ import annotations

import os
from typing import Any

from integrations.store.base import (
    JOB_STATES,
    AuditEntry,
    HeldNotification,
    Job,
    ReceiveResult,
    Store,
    StoreError,
    StoreUnavailable,
    StoreValueError,
    Subscription,
    Timer,
    VipHash,
    ticket_key,
)

__all__ = [
    "JOB_STATES",
    "AuditEntry",
    "HeldNotification",
    "Job",
    "ReceiveResult",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoreValueError",
    "Subscription",
    "Timer",
    "VipHash",
    "ticket_key",
    "open_store",
    "sqlite_path",
]


def sqlite_path(url: str) -> str:
    """The file path of a SQLite store URL.

    ``sqlite:///abs/path.db`` (like ``file:///``) is ``/abs/path.db``;
    ``sqlite:relative/path.db`` is relative to the working directory; anything
    without a scheme is a plain path. (``sqlite:////abs`` is accepted too.)
    """
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        if not rest.startswith("/"):
            raise StoreError(
                f"bad SQLite URL {url!r}: use sqlite:///absolute/path.db or sqlite:relative.db"
            )
        return "/" + rest.lstrip("/")
    if url.startswith("sqlite:"):
        return url[len("sqlite:"):]
    return url


def open_store(url: str | os.PathLike[str], **options: Any) -> Store:
    """Open (creating or migrating as needed) the store at ``url``.

    * ``postgresql://...`` / ``postgres://...`` (or a ``key=value`` DSN starting with
      ``host=``/``dbname=``): :class:`~integrations.store.postgres.PostgresStore`;
      options ``schema=`` and ``pool_size=`` (also accepted as URL parameters).
    * ``sqlite:///path/to/file.db``, ``sqlite:relative.db`` or a plain path:
      :class:`~integrations.store.sqlite.SQLiteStore` (WAL, created on first use);
      option ``busy_timeout=`` (seconds).
    """
    text = os.fspath(url)
    if text.startswith(("postgresql://", "postgres://")) or (
        "=" in text and text.split("=", 1)[0].strip() in ("host", "dbname", "user", "port")
    ):
        from integrations.store.postgres import PostgresStore

        return PostgresStore(text, **options)
    from integrations.store.sqlite import SQLiteStore

    return SQLiteStore(sqlite_path(text), **options)
