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
    __slots__ = ("item", "result", "error", "done")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[Item, Result]):
    """Batch concurrent writes into one transaction each, leader/follower style.

    :param write: writes the items in one transaction and returns one result per
        item, in order; it runs in the leader's thread.
    :param alone: errors of this type mean one item's value is at fault: the group is
        then written one item per transaction, so the others still succeed.
    :param max_group: the most items one transaction takes.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Sequence[Result]],
        alone: type[BaseException] = Exception,
        max_group: int = 256,
    ) -> None:
        self._write = write
        self._alone = alone
        self._max_group = max_group
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[_Slot[Item, Result]] = []
        self._writing = False
        #: Groups written and items in them (for benchmarks and tests).
        self.groups = 0
        self.items = 0

    def submit(self, item: Item) -> Result:
        """Write ``item`` with whatever else is waiting; return once it is committed."""
        slot: _Slot[Item, Result] = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            while not slot.done and self._writing:
                self._cond.wait()
            if not slot.done:  # nobody writing: lead the next group (ours included)
                group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
                self._writing = True
        if not slot.done:
            try:
                self._write_group(group)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

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
        with self._cond:
            for slot in group:
                if error is not None:
                    slot.error = error
                slot.done = True
            self.groups += 1
            self.items += len(group)
            self._cond.notify_all()

