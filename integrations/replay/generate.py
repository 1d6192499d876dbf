"""Realistic synthetic ticket histories, for demos, tests and benchmarks.

``generate(n, seed=...)`` yields `TicketRecord`s, oldest first, over ``days`` days ending
at ``until`` (default 2026-01-01T00:00Z, so a seed always gives the same file). The model:

- arrivals by hour of week in the policies' time zone: busy weekday mornings and early
  afternoons, a quieter evening, little at night, a thin weekend (`hour_weights`);
- channels depend on the hour: phone mostly while the phone line is open, written channels
  (e-mail, web form, chat, social) around the clock;
- a customer base of organizations on every plan (standard-heavy; premium organizations
  write more per organization), a few with no plan set;
- categories (some out of scope), languages (fr, en, de, it), emergency requests (more on
  Pro and Enterprise, mostly infrastructure, some refused: wrong plan, category or language);
- first response after a log-normal number of business minutes of the counting calendar,
  centred a little under each plan's target (so most, not all, are met), faster for
  accepted emergencies; ~3% never answered, a few still open at the end;
- ~12% of tickets wait in a pending state (customer asked for details) before the first
  response, and some after it; the clock skips those periods exactly as live.

Business time goes through the same engine and calendars as replay (`Replayer.rule_for`,
`plugin.hooks.sla.deadline`), so the generated response instants are consistent with the
policies used to generate them.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from bisect import bisect
from itertools import accumulate
from typing import Iterator, Sequence
from zoneinfo import ZoneInfo

from integrations.replay.records import TicketRecord
from plugin.hooks.sla import deadline
from plugin.model import Policies, Ticket

__all__ = ["generate", "hour_weights", "DEFAULT_UNTIL"]

DEFAULT_UNTIL = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)

PLANS: Sequence[tuple[str | None, float]] = (("standard", 45), ("plus", 25), ("pro", 18), ("enterprise", 10), (None, 2))
#: Organizations per plan; premium ones write more tickets each.
ORGANIZATIONS = {"standard": 600, "plus": 120, "pro": 50, "enterprise": 15, None: 20}
CATEGORIES = (("hosting", 22), ("email", 20), ("domain", 12), ("infrastructure", 10), ("storage", 6),
              ("billing", 12), ("other", 10), ("third-party-application", 4), ("webmastering", 3), (None, 1))
LANGUAGES = (("fr", 38), ("de", 30), ("en", 27), ("it", 5))
OPEN_PHONE = (("phone", 30), ("email", 45), ("web", 17), ("chat", 6), ("twitter", 1), ("facebook", 1))
CLOSED_PHONE = (("phone", 3), ("email", 62), ("web", 26), ("chat", 6), ("twitter", 2), ("facebook", 1))
#: Median first response as a share of the plan's target (log-normal, sigma below).
RESPONSE_SHARE = {"plus": 0.45, "pro": 0.5, "enterprise": 0.55}
RESPONSE_SIGMA = 0.65
NO_TARGET_MEDIAN = 240.0  # business minutes, plans without a guarantee
EMERGENCY_MEDIAN = 18.0


def hour_weights() -> list[float]:
    """Relative arrivals for each of the 168 hours of the week (Monday 00:00 first)."""
    weekday = [0.12, 0.08, 0.06, 0.06, 0.1, 0.3, 1.0, 2.2, 4.0, 4.2, 3.9, 3.4, 2.4, 2.8,
               3.6, 3.5, 3.1, 2.4, 1.6, 1.1, 0.9, 0.7, 0.5, 0.25]
    weekend = [0.1, 0.08, 0.06, 0.05, 0.05, 0.08, 0.15, 0.3, 0.5, 0.7, 0.8, 0.8, 0.7, 0.7,
               0.7, 0.7, 0.7, 0.7, 0.6, 0.6, 0.5, 0.4, 0.3, 0.15]
    weights = []
    for day in range(7):
        factor = (1.15 if day == 0 else 0.9 if day == 4 else 1.0)
        weights += [w * factor for w in (weekday if day < 5 else weekend)]
    return weights


class _Picker:
    def __init__(self, items: Sequence[tuple[object, float]]) -> None:
        self.values = [v for v, _ in items]
        self.cum = list(accumulate(w for _, w in items))

    def __call__(self, rng: random.Random) -> object:
        return self.values[bisect(self.cum, rng.random() * self.cum[-1])]


def generate(
    n: int,
    policies: Policies,
    *,
    seed: int = 0,
    days: int = 90,
    until: dt.datetime = DEFAULT_UNTIL,
) -> Iterator[TicketRecord]:
    """``n`` synthetic tickets created over ``days`` days before ``until``, oldest first."""
    from integrations.replay.run import Replayer

    rng = random.Random(seed)
    zone = ZoneInfo(policies.default_timezone)
    replayer = Replayer(policies)  # for the counting calendar and target, from the engine
    weights = hour_weights()
    start_local = (until - dt.timedelta(days=days)).astimezone(zone)
    first_monday = (start_local - dt.timedelta(days=start_local.weekday())).date()
    weeks = days // 7 + 2
    # every hour slot of the period, weighted by its hour of week
    slots: list[dt.datetime] = []
    slot_weights: list[float] = []
    lo, hi = until - dt.timedelta(days=days), until
    for week in range(weeks):
        for how in range(168):
            day = first_monday + dt.timedelta(days=week * 7 + how // 24)
            at = dt.datetime(day.year, day.month, day.day, how % 24, tzinfo=zone)
            if lo <= at < hi:
                slots.append(at)
                slot_weights.append(weights[how])
    cum = list(accumulate(slot_weights))
    arrivals = sorted(
        slots[bisect(cum, rng.random() * cum[-1])] + dt.timedelta(seconds=rng.randrange(3600)) for _ in range(n))
    plan_pick = _Picker(PLANS)  # type: ignore[arg-type]
    category_pick = _Picker(CATEGORIES)  # type: ignore[arg-type]
    language_pick = _Picker(LANGUAGES)
    open_pick, closed_pick = _Picker(OPEN_PHONE), _Picker(CLOSED_PHONE)
    phone = policies.calendars.get("phone")
    for i, local in enumerate(arrivals):
        created = local.astimezone(dt.timezone.utc)
        plan = plan_pick(rng)
        organization = f"{plan or 'noplan'}-{rng.randrange(ORGANIZATIONS[plan]) + 1:03d}"  # type: ignore[index]
        phone_open = phone.is_open(created) if phone is not None else local.weekday() < 5 and 6 <= local.hour < 19
        channel = (open_pick if phone_open else closed_pick)(rng)
        premium_emergency = plan in ("pro", "enterprise")
        emergency = rng.random() < (0.06 if premium_emergency else 0.012) * (2.5 if not phone_open else 1.0)
        if emergency:
            category = "infrastructure" if rng.random() < 0.75 else category_pick(rng)
            language = "fr" if rng.random() < 0.45 else "en" if rng.random() < 0.6 else language_pick(rng)
            if rng.random() < 0.7:
                channel = "phone"
        else:
            category = category_pick(rng)
            language = language_pick(rng)
        record = TicketRecord(id=str(100_000 + i), channel=str(channel), created_at=created, plan=plan,  # type: ignore[arg-type]
                              category=category, language=language, emergency=emergency,  # type: ignore[arg-type]
                              organization=organization)
        rule = replayer.rule_for(record)
        # pending before the first response (customer asked for details)
        pending: list[tuple[dt.datetime, dt.datetime | None]] = []
        if rng.random() < 0.12:
            start = created + dt.timedelta(minutes=rng.uniform(3, 90))
            pending.append((start, start + dt.timedelta(minutes=rng.lognormvariate(math.log(150), 1.0))))
        # business minutes to the first response
        if rule.emergency == "accepted":
            minutes = rng.lognormvariate(math.log(EMERGENCY_MEDIAN), 0.7)
        elif rule.minutes is None:
            minutes = rng.lognormvariate(math.log(NO_TARGET_MEDIAN), 0.9)
        else:
            minutes = rng.lognormvariate(math.log(rule.minutes * RESPONSE_SHARE.get(rule.plan, 0.5)), RESPONSE_SIGMA)
        minutes = round(max(0.5, minutes), 1)
        answered: dt.datetime | None = deadline(rule.calendar, Ticket(
            id=None, channel=record.channel, created_at=created, paused=tuple(pending)), minutes)
        answered = None if answered is None else answered.astimezone(dt.timezone.utc).replace(microsecond=0)
        roll = rng.random()
        closed: dt.datetime | None
        if roll < 0.03 or answered is None:  # never answered: the customer closed it, or it is still waiting
            answered = None
            closed = created + dt.timedelta(hours=rng.lognormvariate(math.log(6), 1.2))
        else:
            assert answered is not None
            closed = answered + dt.timedelta(hours=rng.lognormvariate(math.log(20), 1.1))
            if rng.random() < 0.2:  # waiting for the customer after the answer
                start = answered + dt.timedelta(minutes=rng.uniform(1, 30))
                end = start + dt.timedelta(hours=rng.lognormvariate(math.log(8), 1.0))
                if pending and start < (pending[-1][1] or start):
                    start = pending[-1][1]  # type: ignore[assignment]
                    end = max(end, start)
                pending.append((start, end))
                closed = max(closed, end + dt.timedelta(minutes=5))
        if closed is not None and closed >= until:
            closed = None  # still open at the end of the period
            if pending and pending[-1][1] is not None and pending[-1][1] >= until:
                pending[-1] = (pending[-1][0], None) if pending[-1][0] < until else pending[-1]
            pending = [p for p in pending if p[0] < until]
        if answered is not None and answered >= until:
            answered = None
        yield TicketRecord(
            id=record.id, channel=record.channel, created_at=created, plan=plan, category=category,  # type: ignore[arg-type]
            language=language, emergency=emergency, first_response_at=answered,  # type: ignore[arg-type]
            pending=tuple((_second(s), None if e is None else _second(e)) for s, e in pending),
            closed_at=None if closed is None else _second(closed), organization=organization,
        )


def _second(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.timezone.utc).replace(microsecond=0)
