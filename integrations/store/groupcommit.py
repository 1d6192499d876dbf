"""Group commit: one transaction (and one fsync) for every receive waiting at once.

A webhook may be acknowledged only once its event is durable, and a durable commit
costs an fsync (SQLite) or a WAL flush (PostgreSQL) — the same for one row as for a
hundred. So receives queue here, and a committer thread writes everything queued in
one transaction, then answers each: a thread blocked in `GroupCommit.submit` is woken,
a callback given to `GroupCommit.submit_nowait` (the service's event loop) is called.
While it writes, the next receives queue up for the next group. Nobody is answered
before their row is committed.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from integrations.store.records import StoreError

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger("policydesk.store")


class GroupCommitClosed(StoreError):
    """The store is closing: nothing more is written."""


class _Slot(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "done", "wake")

    def __init__(self, item: Item, done: Callable[[Result | None, BaseException | None], None] | None) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = done
        #: A blocked submitter's: held until its group is committed; a bare lock released
        #: once (an Event is a Condition and a lock written in Python, several times the cost).
        self.wake: threading.Lock | None = None
        if done is None:
            self.wake = threading.Lock()
            self.wake.acquire()


class GroupCommit(Generic[Item, Result]):
    """Batch concurrent writes into one transaction each, written by committer threads.

    :param write: writes the items in one transaction and returns one result per
        item, in order; it runs in a committer thread.
    :param alone: errors of this type mean one item's value is at fault: the group is
        then written one item per transaction, so the others still succeed.
    :param max_group: the most items one transaction takes.
    :param lanes: committer threads, each writing its own group: 1 for SQLite (its
        writes are serialised anyway); a few on PostgreSQL, which flushes concurrent
        commits together, so the next group need not wait for the previous one's flush.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Result]],
        alone: type[BaseException] = Exception,
        max_group: int = 256,
        lanes: int = 1,
    ) -> None:
        self._write = write
        self._alone = alone
        self._max_group = max_group
        self._lanes = max(1, lanes)
        self._ready = threading.Condition(threading.Lock())
        self._queue: deque[_Slot[Item, Result]] = deque()
        self._committers: list[threading.Thread] = []
        self._idle = 0
        self._closed = False
        #: Groups written and items in them (for benchmarks and tests).
        self.groups = 0
        self.items = 0

    def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; return once it is committed."""
        slot: _Slot[Item, Result] = _Slot(item, None)
        self._put(slot)
        assert slot.wake is not None
        slot.wake.acquire()  # released once, by the committer, after the commit
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def submit_nowait(self, item: Item, done: Callable[[Result | None, BaseException | None], None]) -> None:
        """Queue ``item``; ``done(result, None)`` or ``done(None, error)`` is called from a
        committer thread after its commit (it must be quick and must not raise)."""
        self._put(_Slot(item, done))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the committers."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            committers = list(self._committers)
        for thread in committers:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _put(self, slot: _Slot[Item, Result]) -> None:
        with self._ready:
            if self._closed:
                raise GroupCommitClosed("the store is closed")
            self._queue.append(slot)
            if self._idle:
                self._ready.notify()
            elif len(self._committers) < self._lanes:
                thread = threading.Thread(target=self._commit_forever, daemon=True,
                                          name=f"group-commit-{len(self._committers)}")
                self._committers.append(thread)
                thread.start()

    def _commit_forever(self) -> None:
        while True:
            with self._ready:
                while not self._queue:
                    if self._closed:
                        return
                    self._idle += 1
                    self._ready.wait()
                    self._idle -= 1
                queue = self._queue
                group = [queue.popleft() for _ in range(min(len(queue), self._max_group))]
            self._write_group(group)
            with self._ready:
                self.groups += 1
                self.items += len(group)
            for slot in group:
                if slot.wake is not None:
                    slot.wake.release()
                    continue
                try:
                    slot.done(slot.result, slot.error)  # type: ignore[misc]
                except Exception:  # noqa: BLE001 - a caller's bug must not stop the committer
                    log.exception("group commit: a completion callback failed")

    def _write_group(self, group: list[_Slot[Item, Result]]) -> None:
        try:
            results = self._write([slot.item for slot in group])
        except self._alone as error:
            if len(group) == 1:
                group[0].error = error
                return
            for slot in group:  # one bad value must not fail the others
                try:
                    slot.result = self._write([slot.item])[0]
                except BaseException as error:  # noqa: BLE001 - handed to its caller
                    slot.error = error
            return
        except BaseException as error:  # noqa: BLE001 - every caller of the group gets it
            for slot in group:
                slot.error = error
            return
        for slot, result in zip(group, results, strict=True):
            slot.result = result
