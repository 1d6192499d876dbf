"""What a replay adds up to: counts and response times per plan x channel, emergencies,
arrivals by hour of week, breached tickets, flips between two policy directories."""

from __future__ import annotations

import datetime as dt
import math
from array import array
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence
from zoneinfo import ZoneInfo

from integrations.replay.outcome import ACCEPTED, BREACHED, MET, STATUSES, Outcome
from integrations.replay.records import RecordError

#: Breaches kept with their details (the ids of all are kept in ``breached_ids``).
BREACH_DETAILS = 2000


class Breach(NamedTuple):
    """A breached ticket as the report lists it; margin in business minutes past the deadline."""

    id: str
    organization: str | None
    plan: str
    channel: str
    created_at: dt.datetime
    due: dt.datetime | None
    first_response_at: dt.datetime | None
    margin_minutes: float | None



def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); ``None`` if empty."""
    n = len(sorted_values)
    if n == 0:
        return None
    pos = (n - 1) * p
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class GroupStats:
    """Counts and response times of one plan × channel group."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    #: Business minutes to the first response of every answered ticket.
    responses: array = field(default_factory=lambda: array("d"))

    @property
    def tickets(self) -> int:
        return sum(self.counts.values())

    @property
    def judged(self) -> int:
        return self.counts[MET] + self.counts[BREACHED]

    @property
    def achievement(self) -> float | None:
        """Share of met among met + breached; ``None`` when no ticket had a verdict."""
        return self.counts[MET] / self.judged if self.judged else None

    def merge(self, other: "GroupStats") -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        self.responses.extend(other.responses)


@dataclass
class Summary:
    """Everything the reports show about one replay, mergeable across chunks."""

    groups: dict[tuple[str, str], GroupStats] = field(default_factory=dict)
    #: plan -> [requested, accepted, refused]
    emergencies: dict[str, list[int]] = field(default_factory=dict)
    #: calendar -> 168 arrival counts by hour of week (Monday 00:00 first), in the policies' zone.
    arrivals: dict[str, list[int]] = field(default_factory=dict)
    #: plan -> target minutes (None: no guarantee)
    targets: dict[str, int | None] = field(default_factory=dict)
    first_created: dt.datetime | None = None
    last_created: dt.datetime | None = None
    #: ids of breached tickets (in input order).
    breached_ids: list[str] = field(default_factory=list)
    #: The first `BREACH_DETAILS` breaches with what a support manager reads of them.
    breaches: list[Breach] = field(default_factory=list)
    #: organization (or "" for none) -> [tickets, met, breached]
    organizations: dict[str, list[int]] = field(default_factory=dict)
    #: "YYYY-MM" of creation (in the policies' zone) -> [tickets, met, breached]
    months: dict[str, list[int]] = field(default_factory=dict)

    def add(self, o: Outcome, zone: ZoneInfo) -> None:
        group = self.groups.get((o.plan, o.channel))
        if group is None:
            group = self.groups[(o.plan, o.channel)] = GroupStats()
        group.counts[o.status] += 1
        if o.response_minutes is not None:
            group.responses.append(o.response_minutes)
        if o.status == BREACHED:
            self.breached_ids.append(o.id)
            if len(self.breaches) < BREACH_DETAILS:
                self.breaches.append(Breach(o.id, o.organization, o.plan, o.channel, o.created_at, o.due,
                                            o.first_response_at, o.margin_minutes))
        judged = (o.status == MET, o.status == BREACHED)
        org = self.organizations.get(o.organization or "")
        if org is None:
            org = self.organizations[o.organization or ""] = [0, 0, 0]
        org[0] += 1
        org[1] += judged[0]
        org[2] += judged[1]
        self.targets[o.plan] = o.target_minutes
        if o.emergency:
            e = self.emergencies.get(o.plan)
            if e is None:
                e = self.emergencies[o.plan] = [0, 0, 0]
            e[0] += 1
            e[1 if o.emergency == ACCEPTED else 2] += 1
        local = o.created_at.astimezone(zone)
        month_key = f"{local.year:04d}-{local.month:02d}"
        month = self.months.get(month_key)
        if month is None:
            month = self.months[month_key] = [0, 0, 0]
        month[0] += 1
        month[1] += judged[0]
        month[2] += judged[1]
        hours = self.arrivals.get(o.calendar)
        if hours is None:
            hours = self.arrivals[o.calendar] = [0] * 168
        hours[local.weekday() * 24 + local.hour] += 1
        if self.first_created is None or o.created_at < self.first_created:
            self.first_created = o.created_at
        if self.last_created is None or o.created_at > self.last_created:
            self.last_created = o.created_at

    def merge(self, other: "Summary") -> None:
        for key, group in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = group
            else:
                mine.merge(group)
        for plan, counts in other.emergencies.items():
            mine_e = self.emergencies.setdefault(plan, [0, 0, 0])
            for i in range(3):
                mine_e[i] += counts[i]
        for name, hours in other.arrivals.items():
            mine_h = self.arrivals.setdefault(name, [0] * 168)
            for i, n in enumerate(hours):
                mine_h[i] += n
        self.targets.update(other.targets)
        for t in (other.first_created, other.last_created):
            if t is not None:
                if self.first_created is None or t < self.first_created:
                    self.first_created = t
                if self.last_created is None or t > self.last_created:
                    self.last_created = t
        self.breached_ids.extend(other.breached_ids)
        self.breaches.extend(other.breaches[:max(0, BREACH_DETAILS - len(self.breaches))])
        for table, theirs in ((self.organizations, other.organizations), (self.months, other.months)):
            for key, counts in theirs.items():
                mine_c = table.setdefault(key, [0, 0, 0])
                for i in range(3):
                    mine_c[i] += counts[i]

    @property
    def tickets(self) -> int:
        return sum(g.tickets for g in self.groups.values())

    def by_plan(self) -> dict[str, GroupStats]:
        plans: dict[str, GroupStats] = {}
        for (plan, _channel), group in sorted(self.groups.items()):
            plans.setdefault(plan, GroupStats()).merge(group)
        return plans

    def total(self) -> GroupStats:
        total = GroupStats()
        for group in self.groups.values():
            total.merge(group)
        return total


class Flip(NamedTuple):
    """A ticket whose verdict differs between the two policy directories."""

    id: str
    before: str
    after: str
    margin_before: float | None
    margin_after: float | None
    organization: str | None = None
    plan: str = ""
    channel: str = ""


@dataclass
class ReplayResult:
    """The outcome of a replay (and, with ``--compare``, of the second policy directory)."""

    summary: Summary
    source: str
    policies: str
    compare: Summary | None = None
    compare_policies: str | None = None
    #: Tickets breached under ``compare`` but not under ``policies``.
    newly_breached: list[Flip] = field(default_factory=list)
    #: Tickets breached under ``policies`` but not under ``compare``.
    newly_passed: list[Flip] = field(default_factory=list)
    #: Bad input lines (file:line: message), skipped with ``skip_invalid``.
    skipped: list[RecordError] = field(default_factory=list)
    #: Whether the cache was used (False: full engine for every ticket).
    cached: bool = True
    seconds: float = 0.0
    as_of: dt.datetime | None = None
    #: Timezone hours-of-week are counted in, and the policies' calendars (for the report).
    timezone: str = "UTC"
    calendars: dict[str, Any] = field(default_factory=dict, repr=False)
    #: Short digests naming the policies (see `integrations.replay.run.policy_version`).
    policy_version: str = ""
    compare_policy_version: str = ""

    @property
    def tickets(self) -> int:
        return self.summary.tickets


class InputErrors(Exception):
    """Bad input lines and skipping was not asked for."""

    def __init__(self, errors: list[RecordError], total: int) -> None:
        super().__init__(errors)
        self.errors = errors
        self.total = total


