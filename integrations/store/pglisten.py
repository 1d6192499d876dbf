"""Hearing other processes' work: PostgreSQL ``LISTEN`` turned into a local wake-up.

Every transaction that makes work ready sends ``NOTIFY`` on the store's channel (at
commit; PostgreSQL folds repeats within a transaction into one). A store whose workers
wait starts one :class:`Listener` thread: a dedicated connection that ``LISTEN``\\ s and
calls ``on_work`` for every notification. When the connection is lost it reconnects
with a growing delay, one log line per attempt, and calls ``on_work`` once it is back
(announcements may have been missed meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import psycopg
from psycopg import sql as pgsql

log = logging.getLogger("policydesk.store")


class Listener:
    """A daemon thread listening on ``channel``.

    :param connect: a new autocommit connection.
    :param guard: ``guard(conn, seconds)``, a deadline for a statement (the watchdog).
    :param idle_check: seconds of silence after which the connection is checked.
    :param own: the payload of this process's own announcements, which are not passed on
        (its workers were woken in-process already).
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        channel: str,
        on_work: Callable[[], None],
        guard: Callable[[Any, float], AbstractContextManager[None]],
        timeout: float,
        idle_check: float = 10.0,
        own: str | None = None,
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._on_work = on_work
        self._guard = guard
        self._own = own
        self._timeout = timeout
        self._idle_check = idle_check
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policydesk-store-listen", daemon=True)
        #: Times it (re)connected and LISTENed (for tests).
        self.connects = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        delay, failed = 0.5, False
        while not self._stopped.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = self._connect()
                with self._guard(conn, self._timeout):
                    conn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self._channel)))
                self.connects += 1
                if failed:
                    log.info("store: hearing work announcements again")
                    self._on_work()
                delay, failed = 0.5, False
                self._listen(conn)
            except psycopg.Error as error:
                failed = True
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                log.warning("store: cannot hear work announcements (%s); retrying in %.1f s", reason, delay)
                self._stopped.wait(delay)
                delay = min(delay * 2, 10.0)
            finally:
                if conn is not None:
                    conn.close()

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        silent = 0.0
        while not self._stopped.is_set():
            got = heard = False
            for note in conn.notifies(timeout=1.0, stop_after=1):
                got, heard = True, heard or note.payload != self._own
            if got:
                silent = 0.0
                if heard:
                    self._on_work()
                continue
            silent += 1.0
            if silent >= self._idle_check:  # a dropped connection delivers nothing: check it
                silent = 0.0
                with self._guard(conn, self._timeout):
                    conn.execute("SELECT 1")
