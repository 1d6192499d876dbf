"""Group commit: one transaction (and one fsync) for every receive waiting at once.

A webhook may be acknowledged only once its event is durable, and a durable commit
costs an fsync (SQLite) or a WAL flush (PostgreSQL) — the same for one row as for a
hundred. So concurrent :meth:`~integrations.store.base.Store.receive` calls queue
here; the first to find no commit under way becomes the leader, writes everything
queued in one transaction, and hands each caller its own result (or the error) after
the commit. While it writes, the next requests queue up for the next group. Nobody is
answered before their row is committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Slot(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "done", "group", "wake")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = False
        #: Set (with ``wake``) when this slot's thread is to write the next group.
        self.group: list[_Slot[Item, Result]] | None = None
        #: Held until this slot's thread may go on: a bare lock, released once (an Event
        #: is a Condition and a lock written in Python, several times the cost per request).
        self.wake = threading.Lock()
        self.wake.acquire()


class GroupCommit(Generic[Item, Result]):
    """Batch concurrent writes into one transaction each, leader/follower style.

    :param write: writes the items in one transaction and returns one result per
        item, in order; it runs in the leader's thread.
    :param alone: errors of this type mean one item's value is at fault: the group is
        then written one item per transaction, so the others still succeed.
    :param max_group: the most items one transaction takes.
    :param lanes: groups written at the same time: 1 for SQLite (its writes are
        serialised anyway); a few on PostgreSQL, which flushes concurrent commits
        together, so the next group need not wait for the previous one's flush.
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
        self._guard = threading.Lock()
        self._queue: list[_Slot[Item, Result]] = []
        self._writing = 0
        #: Groups written and items in them (for benchmarks and tests).
        self.groups = 0
        self.items = 0

    def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; return once it is committed."""
        slot: _Slot[Item, Result] = _Slot(item)
        with self._guard:
            if self._writing < self._lanes:  # a lane is free: write ours (and anything queued) now
                group: list[_Slot[Item, Result]] | None = self._take(slot)
            else:
                self._queue.append(slot)
                group = None
        if group is None:
            slot.wake.acquire()  # each waiting thread is woken exactly once: done, or to lead
            group = slot.group
        while group is not None:  # ours is in it; afterwards hand the queue to its oldest
            try:
                self._write_group(group)
            finally:
                with self._guard:
                    self._writing -= 1
                    nxt = self._queue.pop(0) if self._queue else None
                    if nxt is not None:
                        nxt.group = self._take(nxt)
                for done in group:
                    if done is not slot:  # the leader's own slot: nobody waits on it
                        done.wake.release()
                if nxt is not None:
                    nxt.wake.release()
            group = None
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _take(self, leader: _Slot[Item, Result]) -> list[_Slot[Item, Result]]:
        """The next group: ``leader`` and the oldest queued (under the lock)."""
        others, self._queue = self._queue[: self._max_group - 1], self._queue[self._max_group - 1 :]
        self._writing += 1
        return [leader, *others]

    def _write_group(self, group: list[_Slot[Item, Result]]) -> None:
        try:
            results = self._write([slot.item for slot in group])
        except self._alone as error:
            if len(group) == 1:
                self._finish(group, error=error)
                return
            for slot in group:  # one bad value must not fail the others
                try:
                    slot.result = self._write([slot.item])[0]
                except BaseException as error:  # noqa: BLE001 - handed to its caller
                    slot.error = error
            self._finish(group)
            return
        except BaseException as error:  # noqa: BLE001 - every caller of the group gets it
            self._finish(group, error=error)
            return
        for slot, result in zip(group, results, strict=True):
            slot.result = result
        self._finish(group)

    def _finish(self, group: list[_Slot[Item, Result]], error: BaseException | None = None) -> None:
        for slot in group:
            if error is not None:
                slot.error = error
            slot.done = True
        with self._guard:
            self.groups += 1
            self.items += len(group)
