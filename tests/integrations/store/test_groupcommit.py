"""Group commit: waiting receives share one transaction; each answer after its commit."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence

import pytest

from integrations.store import Store, StoreValueError
from integrations.store.groupcommit import GroupCommit
from store_fixtures import open_same, pg_dsn, pg_schema, store  # noqa: F401

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_requests_arriving_during_a_commit_share_the_next_one() -> None:
    first_started, release = threading.Event(), threading.Event()
    groups: list[list[int]] = []
    committed: set[int] = set()

    def write(items: Sequence[int]) -> list[int]:
        groups.append(list(items))
        if len(groups) == 1:
            first_started.set()
            release.wait(10)
        committed.update(items)
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    answers: dict[int, int] = {}

    def submit(n: int) -> None:
        answers[n] = group.submit(n)
        assert n in committed  # never answered before its commit

    leader = threading.Thread(target=submit, args=(0,))
    leader.start()
    assert first_started.wait(10)
    followers = [threading.Thread(target=submit, args=(n,)) for n in range(1, 6)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while len(group._queue) < 5 and time.monotonic() < deadline:  # all five queued behind the commit
        time.sleep(0.001)
    release.set()
    for thread in [leader, *followers]:
        thread.join(10)
    assert groups[0] == [0] and sorted(groups[1]) == [1, 2, 3, 4, 5] and len(groups) == 2
    assert answers == {n: n * 10 for n in range(6)}


def test_a_group_is_never_larger_than_max_group_and_nobody_is_left_behind() -> None:
    sizes: list[int] = []

    def write(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        time.sleep(0.01)
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write, max_group=3)
    answers: dict[int, int] = {}
    threads = [threading.Thread(target=lambda n=n: answers.__setitem__(n, group.submit(n))) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == {n: n for n in range(20)} and max(sizes) <= 3 and sum(sizes) == 20


def test_several_lanes_write_groups_at_the_same_time() -> None:
    inside, most = [0], [0]
    lock = threading.Lock()

    def write(items: Sequence[int]) -> list[int]:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write, lanes=3)
    threads = [threading.Thread(target=group.submit, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert 1 < most[0] <= 3


def test_one_bad_value_fails_only_its_own_request() -> None:
    release = threading.Event()
    sizes: list[int] = []

    def write(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        if items == [0]:
            release.wait(10)  # the first commit holds the lane while three others queue
        if any(i < 0 for i in items):
            raise StoreValueError("n", "negative")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write, alone=StoreValueError)
    results: dict[int, object] = {}

    def submit(n: int) -> None:
        try:
            results[n] = group.submit(n)
        except StoreValueError as error:
            results[n] = error

    first = threading.Thread(target=submit, args=(0,))
    first.start()
    while not sizes:
        time.sleep(0.001)
    threads = [threading.Thread(target=submit, args=(n,)) for n in (1, -2, 3)]
    for thread in threads:
        thread.start()
    while len(group._queue) < 3:
        time.sleep(0.001)
    release.set()
    for thread in [first, *threads]:
        thread.join(10)
    assert sizes[:2] == [1, 3]  # the three as one group, then each alone
    assert results[0] == 0 and results[1] == 1 and results[3] == 3 and isinstance(results[-2], StoreValueError)


def test_a_failed_commit_fails_every_request_of_the_group() -> None:
    def write(items: Sequence[int]) -> list[int]:
        raise OSError("disk full")

    group: GroupCommit[int, int] = GroupCommit(write, alone=StoreValueError)
    with pytest.raises(OSError):
        group.submit(1)
    assert group.groups == 1


def test_concurrent_receives_are_each_stored_once(open_same: Callable[..., Store]) -> None:
    store = open_same()
    results: list[tuple[str, bool, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def send(index: int) -> None:
        barrier.wait()
        for n in range(25):
            delivery = f"g-{n % 20}"  # many duplicates across threads and within groups
            r = store.receive("zammad", delivery, b"{}", {}, NOW, key=f"ticket:{n % 5}")
            with lock:
                results.append((delivery, r.new, r.event_id))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    new = [r for r in results if r[1]]
    group = store._group  # type: ignore[attr-defined]
    print(f"\n{store.dialect}: 200 receives, {len(new)} new, {group.items} items in {group.groups} commits")
    assert len(results) == 200 and sorted(d for d, _n, _e in new) == sorted(f"g-{n}" for n in range(20))
    assert len({e for d, _n, e in results}) == 20  # duplicates got the first event's id
    assert store.counts()["pending"] == 20


def test_a_callback_is_called_after_the_commit_from_the_committer() -> None:
    committed: list[int] = []
    answers: list[tuple[int | None, BaseException | None, bool, str]] = []
    done = threading.Event()

    def write(items: Sequence[int]) -> list[int]:
        if any(i < 0 for i in items):
            raise OSError("disk full")
        committed.extend(items)
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(write)

    def answered(result: int | None, error: BaseException | None) -> None:
        answers.append((result, error, bool(committed), threading.current_thread().name))
        if len(answers) == 3:
            done.set()

    group.submit_nowait(1, answered)
    group.submit_nowait(-1, answered)
    group.submit_nowait(2, answered)
    assert done.wait(10)
    group.close()
    ok = [a for a in answers if a[1] is None]
    assert sorted(a[0] for a in ok) == [10, 20] and all(a[2] for a in ok)  # each after its commit
    assert [type(a[1]) for a in answers if a[1] is not None] == [OSError]
    assert all(a[3].startswith("group-commit") for a in answers)


def test_closing_writes_what_is_queued_and_then_refuses() -> None:
    release = threading.Event()
    written: list[int] = []

    def write(items: Sequence[int]) -> list[int]:
        release.wait(10)
        written.extend(items)
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write)
    answers: list[int | None] = []
    for n in range(5):
        group.submit_nowait(n, lambda result, error: answers.append(result))
    closer = threading.Thread(target=group.close)
    closer.start()
    release.set()
    closer.join(10)
    assert sorted(written) == [0, 1, 2, 3, 4] and sorted(answers) == [0, 1, 2, 3, 4]  # type: ignore[type-var]
    from integrations.store.groupcommit import GroupCommitClosed

    with pytest.raises(GroupCommitClosed):
        group.submit(9)


def test_a_failing_callback_does_not_stop_the_committer() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: list(items))

    def broken(result: int | None, error: BaseException | None) -> None:
        raise ValueError("a caller's bug")

    group.submit_nowait(1, broken)
    answered = threading.Event()
    group.submit_nowait(2, lambda result, error: answered.set())
    assert answered.wait(10)  # the committer lived on to write the next item
    group.close()


def test_receive_nowait_answers_once_durable(open_same: Callable[..., Store]) -> None:
    store = open_same()
    answered = threading.Event()
    got: list[object] = []

    def done(result: object, error: BaseException | None) -> None:
        got.append(error or result)
        answered.set()

    store.receive_nowait("zammad", "d-1", b"{}", {}, NOW, "ticket:1", done)
    assert answered.wait(10)
    result = got[0]
    assert getattr(result, "new", None) is True
    other = open_same()  # what was answered is committed: another connection sees it
    assert other.receive("zammad", "d-1", b"{}", {}, NOW).new is False
    with pytest.raises(StoreValueError):  # refused before anything is queued
        store.receive_nowait("zammad", "d-\x00", b"{}", {}, NOW, None, done)
    from integrations.store import StoreError

    with store.atomic(), pytest.raises(StoreError):
        store.receive_nowait("zammad", "d-2", b"{}", {}, NOW, None, done)
    store.close()
    with pytest.raises(StoreError):
        store.receive_nowait("zammad", "d-3", b"{}", {}, NOW, None, done)
