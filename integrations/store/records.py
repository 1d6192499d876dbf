"""The plain values the store returns (frozen dataclasses) and its error types.

Every datetime in them is aware, in UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from plugin.errors import UserError

__all__ = [
    "AuditEntry",
    "HeldNotification",
    "Job",
    "JobState",
    "ReceiveResult",
    "StoreError",
    "StoreUnavailable",
    "StoreValueError",
    "Subscription",
    "Timer",
    "VipHash",
    "JOB_STATES",
    "ticket_key",
]

JobState = Literal["pending", "claimed", "done", "parked"]
#: Every state a job can be in, in the order :meth:`Store.counts` reports them.
JOB_STATES: tuple[JobState, ...] = ("pending", "claimed", "done", "parked")


def ticket_key(ticket_id: int | str) -> str:
    """The one spelling of a ticket's job key: ``ticket:<id>``."""
    return f"ticket:{ticket_id}"


class StoreError(UserError):
    """The store cannot be opened or used as asked (bad URL, schema too new, ...)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or did not answer in time (down, dropped, timed
    out): nothing was done; retry later (HTTP 503, a worker's retry)."""


class StoreValueError(UserError, ValueError):
    """A value the database cannot hold (a NUL character, a lone surrogate, an integer
    out of range): the caller's input is wrong, so retrying cannot help (HTTP 422).

    The message names the field, never the value (it may be huge or hostile).
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """What :meth:`Store.receive` did.

    :ivar new: ``False`` when the (source, delivery id) was already stored; then
        nothing was stored or enqueued.
    :ivar event_id: the stored event's id (the earlier one for a duplicate).
    :ivar job_id: the job enqueued for it, ``None`` for a duplicate.
    """

    new: bool
    event_id: int
    job_id: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of work: process one received event.

    :ivar attempts: failed attempts so far (each :meth:`Store.retry` adds one).
    :ivar claims: how often it was claimed, including re-claims after an expired
        lease; a job whose claims keep growing without attempts is crashing workers.
    :ivar not_before: earliest time it may be claimed (the backoff).
    :ivar lease_until: while claimed, when the claim expires and it becomes
        claimable again.
    :ivar key: what the job is about (``ticket:<id>``, see :func:`ticket_key`): jobs of
        one key are never claimed at once; ``None`` for no such constraint.
    :ivar coalesced: how many older queued jobs of the same key and source were folded
        into this one when it was claimed (they are done, "coalesced into <id>").
    """

    id: int
    event_id: int
    source: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]
    attempts: int
    claims: int
    not_before: dt.datetime
    state: JobState
    last_error: str | None = None
    claimed_by: str | None = None
    lease_until: dt.datetime | None = None
    received_at: dt.datetime | None = None
    key: str | None = None
    coalesced: int = 0


@dataclass(frozen=True, slots=True)
class Timer:
    """One escalation step of one ticket's deadline."""

    ticket_id: str
    deadline_key: str
    step: str
    due_at: dt.datetime
    fired_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit record: a decision, a plan change, a refusal, ..."""

    id: int
    at: dt.datetime
    kind: str
    subject: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Subscription:
    """An organization's current plan, as the billing system last told us."""

    org_ref: str
    plan: str
    started_at: dt.datetime
    commitment_end: dt.datetime | None
    billing_period: str | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class VipHash:
    """An organization's salted VIP-code hash. The code itself is never stored."""

    org_ref: str
    salt: bytes
    digest: bytes
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class HeldNotification:
    """A notification held for a person's digest."""

    id: int
    person: str
    payload: dict[str, Any]
    release_at: dt.datetime
    released_at: dt.datetime | None = None
