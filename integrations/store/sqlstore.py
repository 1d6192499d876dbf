"""The SQL store: every table family's mixin composed over :class:`~.sqlcore.SQLCore`.

Which module holds what:

========================  ==============================================================
:mod:`.sqlcore`           transactions, migrations, dialect hooks, shared helpers
:mod:`.ingest`            received events (``events``) and their jobs, one or in batches
:mod:`.queue`             the work queue (``jobs``): claims, leases, retries, parking
:mod:`.timers`            escalation timers (``timers``)
:mod:`.pauses`            pending periods, the SLA clock pauses (``pending_periods``)
:mod:`.audit`             the audit trail (``audit``)
:mod:`.accounts`          subscriptions, account managers, VIP-code hashes
:mod:`.notifications`     notifications held for digests (``held_notifications``)
:mod:`.housekeeping`      retention (purge)
========================  ==============================================================

The dialects (:mod:`.sqlite`, :mod:`.postgres`) subclass :class:`SQLStore`.
"""

from __future__ import annotations

from integrations.store.accounts import AccountsSQL
from integrations.store.audit import AuditSQL
from integrations.store.base import Store
from integrations.store.housekeeping import HousekeepingSQL
from integrations.store.ingest import IngestSQL
from integrations.store.notifications import NotificationsSQL
from integrations.store.pauses import PausesSQL
from integrations.store.queue import JobQueueSQL
from integrations.store.sqlcore import UTC, SQLCore, Tx, iter_chunks, utc, utcnow
from integrations.store.timers import TimersSQL

__all__ = ["UTC", "SQLStore", "Tx", "iter_chunks", "utc", "utcnow"]


class SQLStore(
    IngestSQL,
    JobQueueSQL,
    TimersSQL,
    PausesSQL,
    AuditSQL,
    AccountsSQL,
    NotificationsSQL,
    HousekeepingSQL,
    SQLCore,
    Store,
):
    """Everything of :class:`~integrations.store.base.Store` on top of a few dialect hooks."""
