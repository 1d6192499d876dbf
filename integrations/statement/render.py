"""A statement as text for the terminal and as JSON for scripts.

The JSON shape (one object per organization; ``policydesk statement --json`` prints a list)::

    {"organization": "3", "organization_name": "Acme AG", "month": "2026-11",
     "timezone": "Europe/Zurich", "policy_version": "5f2c0d1e9a7b", "as_of": "2026-12-01T08:00:00+00:00",
     "plans": [{"plan": "pro", "start": "...", "end": "...", "requests": 4, "due": 3, "met": 3, "met_percent": 100.0}],
     "requests": 5, "due": 4, "met": 3, "met_percent": 75.0,
     "requests_by_channel": {"email": 3, "phone": 2},
     "breaches": [{"ticket": "7", "number": "31007", "title": "...", "plan": "pro", "channel": "email",
                   "created_at": "...", "due": "...", "answered": "...", "late_business_minutes": 45.0}],
     "emergencies": {"accepted": 1, "refused": 1, "items": [{"ticket": "8", "number": "31008",
                     "accepted": false, "reasons": ["..."]}]},
     "out_of_scope": [{"ticket": "9", "number": "31009", "category": "webmastering", "referral": "..."}],
     "trend": [{"month": "2026-06", "requests": 0, "due": 0, "met": 0, "met_percent": null}, ...],
     "account_managers": {"account_manager": "ana@provider.example"}}
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from integrations.statement.compute import Figures, Statement

__all__ = ["statement_as_json", "render_text", "percent", "local", "plan_title"]


def percent(figures: Figures) -> str:
    share = figures.met_share
    return "—" if share is None else f"{share * 100:.1f} %"


def local(instant: dt.datetime | None, zone: str, *, with_date: bool = True) -> str:
    if instant is None:
        return "—"
    value = instant.astimezone(ZoneInfo(zone))
    return value.strftime("%a %d %b %H:%M") if with_date else value.strftime("%H:%M")


def plan_title(plan: str) -> str:
    return plan.replace("_", " ").capitalize()


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _iso(instant: dt.datetime | None) -> str | None:
    return None if instant is None else instant.isoformat()


def _pct(figures: Figures) -> float | None:
    return None if figures.met_share is None else round(figures.met_share * 100, 1)


def statement_as_json(s: Statement) -> dict[str, Any]:
    """The statement as one JSON object (see the module docstring)."""
    return {
        "organization": s.organization,
        "organization_name": s.organization_name,
        "month": str(s.month),
        "timezone": s.timezone,
        "policy_version": s.policy_version,
        "as_of": _iso(s.as_of),
        "plans": [
            {"plan": p.plan, "start": _iso(p.start), "end": _iso(p.end), "requests": f.requests, "due": f.due,
             "met": f.met, "met_percent": _pct(f)}
            for p, f in zip(s.plans, s.per_plan, strict=True)
        ],
        "requests": s.total.requests,
        "due": s.total.due,
        "met": s.total.met,
        "met_percent": _pct(s.total),
        "requests_by_channel": dict(s.requests_by_channel),
        "breaches": [
            {"ticket": b.ticket, "number": b.number, "title": b.title, "plan": b.plan, "channel": b.channel,
             "created_at": _iso(b.created_at), "due": _iso(b.due), "answered": _iso(b.answered),
             "late_business_minutes": round(b.late_minutes, 1)}
            for b in s.breaches
        ],
        "emergencies": {
            "accepted": s.accepted_emergencies,
            "refused": s.refused_emergencies,
            "items": [{"ticket": e.ticket, "number": e.number, "accepted": e.accepted, "reasons": list(e.reasons)}
                      for e in s.emergencies],
        },
        "out_of_scope": [{"ticket": r.ticket, "number": r.number, "category": r.category, "referral": r.referral}
                         for r in s.referrals],
        "trend": [{"month": str(m), "requests": f.requests, "due": f.due, "met": f.met, "met_percent": _pct(f)}
                  for m, f in s.trend],
        "account_managers": dict(s.account_managers),
    }


def _late(minutes: float) -> str:
    whole = round(minutes)
    return f"{whole // 60} h {whole % 60:02d} min" if whole >= 60 else f"{whole} min"


def _ticket_label(number: str | None, ticket: str) -> str:
    return f"#{number}" if number else f"ticket {ticket}"


def render_text(s: Statement) -> str:
    """The statement for a terminal (plain text, one line per fact)."""
    zone = s.timezone
    month_name = s.month.start(ZoneInfo(zone)).strftime("%B %Y")
    lines = [
        f"Statement for {s.organization_name} (organization {s.organization}), {month_name}",
        f"policies {s.policy_version} · times in {zone} · as of {local(s.as_of, zone)}",
        "",
        "Plan: " + "; ".join(
            f"{plan_title(p.plan)} {p.start.astimezone(ZoneInfo(zone)):%d %b}–"
            f"{(p.end - dt.timedelta(seconds=1)).astimezone(ZoneInfo(zone)):%d %b}" for p in s.plans),
        f"Requests: {s.total.requests}"
        + (" (" + ", ".join(f"{channel} {n}" for channel, n in s.requests_by_channel.items()) + ")"
           if s.requests_by_channel else ""),
        f"First responses: {s.total.due} due, {s.total.met} met ({percent(s.total)})",
    ]
    if len(s.plans) > 1:
        for period, figures in zip(s.plans, s.per_plan, strict=True):
            lines.append(f"  {plan_title(period.plan):<12} {figures.due} due, {figures.met} met ({percent(figures)})")
    lines.append("")
    lines.append(f"Breaches: {len(s.breaches)}")
    for b in s.breaches:
        answered = f"answered {local(b.answered, zone)}" if b.answered else "not answered"
        lines.append(f"  {_ticket_label(b.number, b.ticket)} {b.title or ''!s:.40}  {b.channel}, due {local(b.due, zone)}, "
                     f"{answered}, {_late(b.late_minutes)} late (business time)")
    lines.append(f"Emergencies: {s.accepted_emergencies} accepted, {s.refused_emergencies} refused")
    for e in s.emergencies:
        if not e.accepted:
            lines.append(f"  {_ticket_label(e.number, e.ticket)} refused: {' '.join(e.reasons)}")
    lines.append(f"Out of scope: {_count(len(s.referrals), 'referral')}")
    for r in s.referrals:
        lines.append(f"  {_ticket_label(r.number, r.ticket)} {r.category or ''}: {r.referral or ''}")
    lines.append("")
    lines.append("Last six months (first responses met of due):")
    for month, figures in s.trend:
        lines.append(f"  {month}  {figures.met:>4} of {figures.due:<4} {percent(figures):>8}  "
                     f"({_count(figures.requests, 'request')})")
    return "\n".join(lines) + "\n"
