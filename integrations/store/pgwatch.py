"""A deadline for every conversation with PostgreSQL, even when the network drops it.

``statement_timeout`` only helps while the server can still answer, and TCP keepalives
and ``tcp_user_timeout`` only while nothing acknowledges the packets. A path that
silently swallows traffic (a black-holing firewall or proxy) leaves libpq waiting for an
answer for ever, and with it the request thread, the pool slot and /healthz. So each
transaction runs under a :class:`Watchdog` guard: past its deadline the watchdog shuts
the connection's socket down, libpq sees the connection end, psycopg raises
``OperationalError`` (a 503 for a webhook, a retry for a worker) and the pool drops the
connection.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("policydesk.store")


class Watchdog:
    """One thread per store, checking the guarded connections a few times a second."""

    def __init__(self, tick: float = 0.2) -> None:
        self._tick = tick
        self._lock = threading.Lock()
        self._guarded: dict[int, tuple[Any, float]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._next = 0
        #: Connections cut so far (for tests and the log).
        self.cut = 0

    @contextmanager
    def guard(self, conn: Any, seconds: float | None) -> Iterator[None]:
        """Cut ``conn`` if the block has not finished within ``seconds`` (``None``: no deadline)."""
        if seconds is None:
            yield
            return
        with self._lock:
            self._next += 1
            ticket = self._next
            self._guarded[ticket] = (conn, time.monotonic() + seconds)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="policydesk-store-watchdog", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:  # under the lock: never cut a connection already given back
                self._guarded.pop(ticket, None)

    def _run(self) -> None:
        while not self._stopped.wait(self._tick):
            now = time.monotonic()
            with self._lock:
                overdue = [t for t, (_c, deadline) in self._guarded.items() if deadline <= now]
                for ticket in overdue:
                    conn, _deadline = self._guarded.pop(ticket)
                    if _cut(conn):
                        self.cut += 1
                        log.warning("store: no answer from PostgreSQL in time; connection dropped")

    def stop(self) -> None:
        self._stopped.set()


def _cut(conn: Any) -> bool:
    """Shut the connection's socket down (both directions), so a blocked read returns."""
    try:
        fd = conn.pgconn.socket
    except Exception:  # noqa: BLE001 - already closed: nothing to cut
        return False
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.close()
    return True
