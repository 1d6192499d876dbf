"""Waking idle workers when work arrives, instead of polling the queue.

One :class:`WorkSignal` per store: every commit that makes work ready (a received
event, a retry, a requeue, a released ticket key) calls :meth:`WorkSignal.notify`
after it committed; :meth:`WorkSignal.wait` returns as soon as that happened since the
calling thread last returned from it. On PostgreSQL a listener thread
(:mod:`integrations.store.pglisten`) turns other processes' ``NOTIFY`` into the same
call, so one mechanism covers both.
"""

from __future__ import annotations

import threading


class WorkSignal:
    """A generation counter under a condition: no wake-up is lost between a worker's
    empty claim and its wait, because each thread remembers the generation it saw."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._generation = 0
        self._seen = threading.local()

    def notify(self) -> None:
        """Work may be ready: wake every waiting thread (and the next to wait)."""
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Block until :meth:`notify` was called since this thread's last return from
        here (at once if it was), or ``timeout`` seconds; ``True`` if notified.

        A thread's first call returns ``True`` at once (it has seen nothing yet).
        """
        seen = getattr(self._seen, "generation", None)
        with self._cond:
            if seen is None or self._generation != seen:
                notified = True
            else:
                notified = self._cond.wait_for(lambda: self._generation != seen, max(0.0, timeout))
            self._seen.generation = self._generation
        return notified
