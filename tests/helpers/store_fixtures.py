"""Fixtures for tests that need a store, on SQLite and on PostgreSQL.

Import them into a test module::

    from store_fixtures import pg_dsn, pg_schema, store, open_same  # noqa: F401

``store`` is parametrised over ``sqlite`` (a fresh file per test) and ``postgres``
(a fresh schema per test module, emptied before each test and dropped afterwards).

PostgreSQL comes from ``POLICYDESK_TEST_PG`` or 127.0.0.1:5432, database ``test``
(users ``postgres``, then ``root``). If it cannot be reached, the PostgreSQL tests
skip locally with the reason — and FAIL when the ``CI`` environment variable is set,
so CI never passes without having tested PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.store import Store, open_store
from integrations.store.schema import TABLES

_CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


def _find_pg() -> tuple[str | None, str]:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a test dependency
        return None, f"psycopg is not installed: {exc}"
    env = os.environ.get("POLICYDESK_TEST_PG")
    errors = []
    for dsn in (env,) if env else _CANDIDATES:
        try:
            with psycopg.connect(dsn, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return dsn, ""
        except psycopg.Error as exc:
            errors.append(f"{dsn}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    return None, "PostgreSQL unreachable (" + "; ".join(errors) + ")"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """A reachable PostgreSQL DSN; skip (locally) or fail (``CI`` set) without one."""
    dsn, reason = _find_pg()
    if dsn is None:
        if os.environ.get("CI"):
            pytest.fail(
                f"{reason}. CI is set, so the PostgreSQL store tests must run: start the"
                " server (.ci/run does) or set POLICYDESK_TEST_PG.",
                pytrace=False,
            )
        pytest.skip(f"{reason}; set CI=1 to make this a failure")
    return dsn


@pytest.fixture(scope="module")
def pg_schema(pg_dsn: str) -> Iterator[str]:
    """A fresh schema for this test module, dropped (with everything in it) after."""
    import psycopg

    name = f"test_store_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _empty_pg(dsn: str, schema: str) -> None:
    import psycopg

    tables = ", ".join(f'"{schema}".{t}' for t in TABLES if t != "schema_version")
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists and conn.execute(
            "SELECT to_regclass(%s)", (f'"{schema}".events',)
        ).fetchone()[0]:
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def open_same(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """A function opening another store on the same database as ``store``
    (each call: new connections). Every store it opened is closed after the test."""
    opened: list[Store] = []
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        options: dict[str, Any] = {}
    else:
        dsn = request.getfixturevalue("pg_dsn")
        schema = request.getfixturevalue("pg_schema")
        _empty_pg(dsn, schema)
        url, options = dsn, {"schema": schema}

    def opener(**extra: Any) -> Store:
        store = open_store(url, **{**options, **extra})
        opened.append(store)
        return store

    opener.url = url  # type: ignore[attr-defined]
    opener.options = options  # type: ignore[attr-defined]
    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_same: Callable[..., Store]) -> Store:
    """A store on an empty database (SQLite file or PostgreSQL schema)."""
    return open_same()
