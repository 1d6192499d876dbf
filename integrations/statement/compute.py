"""What a statement says: one organization's month, computed with the live engine.

Every figure comes from replaying the organization's tickets through `integrations.replay`
(the engine, calendars and deadline clock the live service uses), never from a second
implementation:

- a ticket belongs to the month in which it was *created* (in the policies' time zone);
- "due" counts the tickets that had a guaranteed first response whose verdict is known:
  met (answered at or before the deadline) or breached (answered after it, or still
  unanswered when the deadline passed); "met %" is met / due;
- lateness is business minutes of the counting calendar from the deadline to the answer
  (to the close or the as-of instant for one never answered), pending time excluded;
- the plan periods: the organization's plan as the Zammad history of its ``support_plan``
  attribute says, else the plan each ticket was evaluated under (a mid-month upgrade
  splits the month; each period gets its own figures);
- the trend: the same "due / met" figures for the month and the five before it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import pluggy

from integrations.replay.outcome import ACCEPTED, BREACHED, MET, REFUSED, Outcome
from integrations.replay.records import TicketRecord
from integrations.replay.run import Replayer
from plugin.errors import UserError
from plugin.model import Policies

__all__ = [
    "Month", "PlanPeriod", "Breach", "EmergencyLine", "Referral", "Figures", "Statement",
    "parse_month", "build_statement", "TREND_MONTHS",
]

#: Months in the trend, the statement's own month included.
TREND_MONTHS = 6


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month in the policies' time zone."""

    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def start(self, zone: ZoneInfo) -> dt.datetime:
        return dt.datetime(self.year, self.month, 1, tzinfo=zone)

    def end(self, zone: ZoneInfo) -> dt.datetime:
        return self.next().start(zone)

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    @classmethod
    def of(cls, instant: dt.datetime, zone: ZoneInfo) -> "Month":
        local = instant.astimezone(zone)
        return cls(local.year, local.month)


def parse_month(text: str) -> Month:
    """``YYYY-MM`` -> `Month`; a `UserError` saying what is expected otherwise."""
    parts = text.strip().split("-")
    if len(parts) == 2 and len(parts[0]) == 4 and len(parts[1]) == 2 and all(p.isdigit() for p in parts):
        year, month = int(parts[0]), int(parts[1])
        if 1 <= month <= 12 and year >= 1970:
            return Month(year, month)
    raise UserError(f"--month: expected a month like 2026-11 (YYYY-MM), not {text!r}")


@dataclass(frozen=True)
class PlanPeriod:
    plan: str
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Breach:
    ticket: str
    number: str | None
    title: str | None
    plan: str
    channel: str
    created_at: dt.datetime
    due: dt.datetime
    #: The first response; ``None``: never answered (late counted to the close or as-of).
    answered: dt.datetime | None
    late_minutes: float


@dataclass(frozen=True)
class EmergencyLine:
    ticket: str
    number: str | None
    accepted: bool
    #: Why accepted or refused, as the engine said it (one sentence each).
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Referral:
    ticket: str
    number: str | None
    category: str | None
    referral: str | None


@dataclass(frozen=True)
class Figures:
    """First responses due and met over some tickets."""

    requests: int = 0
    due: int = 0
    met: int = 0

    @property
    def breached(self) -> int:
        return self.due - self.met

    @property
    def met_share(self) -> float | None:
        return self.met / self.due if self.due else None

    def add(self, outcome: Outcome) -> "Figures":
        judged = outcome.status in (MET, BREACHED)
        return Figures(self.requests + 1, self.due + judged, self.met + (outcome.status == MET))


@dataclass(frozen=True)
class Statement:
    """One organization's statement for one month."""

    organization: str
    organization_name: str
    month: Month
    timezone: str
    policy_version: str
    as_of: dt.datetime
    plans: tuple[PlanPeriod, ...]
    #: Figures per plan period, in the order of ``plans``.
    per_plan: tuple[Figures, ...]
    total: Figures
    requests_by_channel: Mapping[str, int]
    breaches: tuple[Breach, ...]
    emergencies: tuple[EmergencyLine, ...]
    referrals: tuple[Referral, ...]
    #: (month, figures) for the month and the five before it, oldest first.
    trend: tuple[tuple[Month, Figures], ...]
    account_managers: Mapping[str, str] = field(default_factory=dict)

    @property
    def accepted_emergencies(self) -> int:
        return sum(1 for e in self.emergencies if e.accepted)

    @property
    def refused_emergencies(self) -> int:
        return sum(1 for e in self.emergencies if not e.accepted)


def _plan_periods(month: Month, zone: ZoneInfo, changes: Sequence[tuple[dt.datetime, str]],
                  outcomes: Sequence[tuple[TicketRecord, Outcome]], fallback: str) -> tuple[PlanPeriod, ...]:
    """The plans in force during ``month``: from plan changes (instant, new plan) when known,
    else from the plan each of the month's tickets was evaluated under."""
    start, end = month.start(zone), month.end(zone)
    points: list[tuple[dt.datetime, str]] = []
    if changes:
        ordered = sorted(changes)
        before = [plan for at, plan in ordered if at <= start]
        points.append((start, before[-1] if before else ordered[0][1]))
        points += [(at, plan) for at, plan in ordered if start < at < end]
    else:
        for record, outcome in sorted(outcomes, key=lambda pair: pair[0].created_at):
            if start <= record.created_at < end and (not points or points[-1][1] != outcome.plan):
                points.append((max(start, record.created_at) if points else start, outcome.plan))
    if not points:
        points = [(start, fallback)]
    periods = []
    for index, (at, plan) in enumerate(points):
        until = points[index + 1][0] if index + 1 < len(points) else end
        if periods and periods[-1].plan == plan:
            periods[-1] = PlanPeriod(plan, periods[-1].start, until)
        elif until > at:
            periods.append(PlanPeriod(plan, at, until))
    return tuple(periods)


def build_statement(
    records: Iterable[TicketRecord],
    month: Month,
    policies: Policies,
    *,
    organization: str,
    organization_name: str = "",
    organization_key: str | None = None,
    policy_version: str,
    as_of: dt.datetime,
    plan_changes: Sequence[tuple[dt.datetime, str]] = (),
    account_managers: Mapping[str, str] | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Statement:
    """The statement of ``organization`` for ``month`` from its tickets' records.

    ``records`` may hold other organizations' tickets and other months: only the tickets
    whose ``organization`` is ``organization_key`` (default: ``organization``) created in the
    trend's six months count.
    """
    key = organization_key if organization_key is not None else organization
    zone = ZoneInfo(policies.default_timezone)
    first_month = month
    for _ in range(TREND_MONTHS - 1):
        first_month = first_month.previous()
    window_start, window_end = first_month.start(zone), month.end(zone)
    replayer = Replayer(policies, pm, exact=True, as_of=as_of)
    evaluated: list[tuple[TicketRecord, Outcome, Any]] = []
    for record in records:
        if record.organization != key or not window_start <= record.created_at < window_end:
            continue
        outcome, decision = replayer.replay_with_decision(record)
        evaluated.append((record, outcome, decision))

    in_month = [(r, o, d) for r, o, d in evaluated if Month.of(r.created_at, zone) == month]
    periods = _plan_periods(month, zone, plan_changes, [(r, o) for r, o, _ in in_month], policies.default_plan)
    per_plan = []
    for period in periods:
        figures = Figures()
        for record, outcome, _ in in_month:
            if period.start <= record.created_at < period.end:
                figures = figures.add(outcome)
        per_plan.append(figures)
    total = Figures()
    for _, outcome, _ in in_month:
        total = total.add(outcome)

    breaches = tuple(
        Breach(r.id, r.number, r.title, o.plan, o.channel, r.created_at, o.due, o.first_response_at,
               o.margin_minutes or 0.0)
        for r, o, _ in sorted(in_month, key=lambda item: item[0].created_at)
        if o.status == BREACHED and o.due is not None
    )
    emergencies = tuple(
        EmergencyLine(r.id, r.number, o.emergency == ACCEPTED,
                      tuple(d.emergency.value.reasons) if d.emergency is not None else ())
        for r, o, d in in_month if o.emergency in (ACCEPTED, REFUSED)
    )
    referrals = tuple(
        Referral(r.id, r.number, d.scope.value.category, d.scope.value.referral)
        for r, o, d in in_month if d.scope is not None and not d.scope.value.in_scope
    )
    trend_figures: dict[Month, Figures] = {}
    cursor = first_month
    for _ in range(TREND_MONTHS):
        trend_figures[cursor] = Figures()
        cursor = cursor.next()
    for record, outcome, _ in evaluated:
        key = Month.of(record.created_at, zone)
        trend_figures[key] = trend_figures[key].add(outcome)
    return Statement(
        organization=organization,
        organization_name=organization_name or organization,
        month=month,
        timezone=policies.default_timezone,
        policy_version=policy_version,
        as_of=as_of,
        plans=periods,
        per_plan=tuple(per_plan),
        total=total,
        requests_by_channel=dict(sorted(Counter(r.channel for r, _, _ in in_month).items())),
        breaches=breaches,
        emergencies=emergencies,
        referrals=referrals,
        trend=tuple(trend_figures.items()),
        account_managers=dict(account_managers or {}),
    )
