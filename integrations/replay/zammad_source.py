"""Past tickets read from a Zammad, through the adapter's client (``--from-zammad``).

For every ticket created since ``since`` (``GET /api/v1/tickets?expand=true``, paged with
`iter_all`) we read:

- the organization's plan: the ticket's own ``policydesk_plan`` as first set (the plan
  the live engine decided when the ticket came in, from the ticket history), else the
  ticket's current ``policydesk_plan``, else the organization's current ``support_plan``;
- channel, category, emergency and language exactly as the live service sees them: the
  record goes through the same `integrations.zammad.mapping.ticket_from_record`;
- the first response: Zammad's ``first_response_at``; when it is empty, the first
  public article by an agent after the one that opened the ticket
  (``GET /api/v1/ticket_articles/by_ticket/ID``);
- pending periods: from ``GET /api/v1/ticket_history/ID`` (Zammad's
  ``TicketsController#ticket_history``: ``{"history": [{"type": "updated", "object":
  "Ticket", "attribute": "state", "value_from": "open", "value_to": "pending reminder",
  "created_at": ...}, ...], "assets": {...}}``): a period runs from a change into a state
  whose name starts with ``pending`` to the next change out of it;
- the close time: Zammad's ``close_at``, else the last change into ``closed`` in the
  history, else (no history) ``updated_at`` of a closed ticket.

When the history endpoint is missing (404 on the first ticket: the stand-in has none),
`ZammadExport.notes` says what could not be derived: pending periods (a ticket pending
now gets one open-ended period from its last update), plan-at-the-time and close times.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from integrations.replay.records import TicketRecord
from integrations.zammad import mapping
from integrations.zammad.errors import ZammadNotFound
from integrations.zammad.resources import iter_all

__all__ = ["ZammadExport", "parse_since", "export_tickets", "pending_periods"]

_SINCE = re.compile(r"([0-9]+)\s*([dhw])")


def parse_since(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``90d`` / ``12w`` / ``36h`` before now, or an ISO date / date-time (UTC if unzoned)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    match = _SINCE.fullmatch(text.strip())
    if match:
        n, unit = int(match[1]), match[2]
        return now - {"d": dt.timedelta(days=n), "h": dt.timedelta(hours=n), "w": dt.timedelta(weeks=n)}[unit]
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since: expected e.g. 90d, 12w, 36h or a date such as 2026-01-01, not {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclass
class ZammadExport:
    """What the export read and what it had to approximate."""

    tickets: int = 0
    history_available: bool | None = None
    first_response_from_articles: int = 0
    closed_from_updated_at: int = 0
    pending_from_current_state: int = 0
    plan_from_organization: int = 0
    notes: list[str] = field(default_factory=list)

    def finish(self) -> None:
        if self.history_available is False:
            self.notes.append(
                "this Zammad has no /api/v1/ticket_history endpoint: pending periods could not be read "
                f"({self.pending_from_current_state} ticket(s) pending now got an open-ended period from their last "
                "update), the plan at the time could not be read from the ticket's history, and close times "
                "fall back to updated_at")
        if self.first_response_from_articles:
            self.notes.append(f"{self.first_response_from_articles} ticket(s) had no first_response_at: taken from "
                              "the first public agent article")
        if self.closed_from_updated_at:
            self.notes.append(f"{self.closed_from_updated_at} closed ticket(s) had no close_at: updated_at used")
        if self.plan_from_organization:
            self.notes.append(f"{self.plan_from_organization} ticket(s) had no policydesk_plan: the organization's "
                              "current support_plan used (a plan changed since then is not seen)")


def pending_periods(history: list[Mapping[str, Any]], initial_state: str = "new") -> list[tuple[dt.datetime, dt.datetime | None]]:
    """Pending periods from a Zammad ticket history (oldest entry first or not)."""
    changes = [h for h in history if h.get("attribute") == "state" and h.get("type") in ("updated", None)]
    changes.sort(key=lambda h: (str(h.get("created_at")), h.get("id") or 0))
    periods: list[tuple[dt.datetime, dt.datetime | None]] = []
    state = str(changes[0].get("value_from") or initial_state) if changes else initial_state
    start: dt.datetime | None = None
    if state.startswith("pending"):
        start = None  # pending since before the history: unknown start, nothing to add
    for h in changes:
        at = mapping.parse_instant(h.get("created_at"))
        new = str(h.get("value_to") or "")
        if at is None:
            continue
        if new.startswith("pending") and not state.startswith("pending"):
            start = at
        elif state.startswith("pending") and not new.startswith("pending") and start is not None:
            periods.append((start, at))
            start = None
        state = new
    if start is not None:
        periods.append((start, None))
    return periods


def _first_value(history: list[Mapping[str, Any]], attribute: str) -> str | None:
    for h in sorted(history, key=lambda h: (str(h.get("created_at")), h.get("id") or 0)):
        if h.get("attribute") == attribute:
            return (h.get("value_from") or h.get("value_to") or None)
    return None


def _last_change_to(history: list[Mapping[str, Any]], state: str) -> dt.datetime | None:
    found = None
    for h in history:
        if h.get("attribute") == "state" and h.get("value_to") == state:
            at = mapping.parse_instant(h.get("created_at"))
            if at is not None and (found is None or at > found):
                found = at
    return found


def export_tickets(client: Any, since: dt.datetime | None = None, report: ZammadExport | None = None,
                   organization_ids: set[int] | None = None) -> Iterator[TicketRecord]:
    """Every ticket created at or after ``since`` (of these organizations, when given), as a
    `TicketRecord`, in id order."""
    report = report if report is not None else ZammadExport()
    plans: dict[Any, str | None] = {}
    for org in iter_all(client.organizations):
        plans[org.get("id")] = (str(org.get(mapping.ORG_SUPPORT_PLAN)).strip() or None) if org.get(mapping.ORG_SUPPORT_PLAN) else None
    customers: dict[Any, Mapping[str, Any] | None] = {}
    for record in iter_all(client.tickets):
        created = mapping.parse_instant(record.get("created_at"))
        if created is None or (since is not None and created < since):
            continue
        if organization_ids is not None and record.get("organization_id") not in organization_ids:
            continue
        yield _ticket(client, record, created, plans, customers, report)
        report.tickets += 1
    report.finish()


def _ticket(client: Any, record: Mapping[str, Any], created: dt.datetime, plans: Mapping[Any, str | None],
            customers: dict[Any, Mapping[str, Any] | None], report: ZammadExport) -> TicketRecord:
    tid = record["id"]
    history: list[Mapping[str, Any]] = []
    if report.history_available is not False:
        try:
            answer = client.tickets._call("GET", f"ticket_history/{tid}")
            history = list((answer or {}).get("history") or []) if isinstance(answer, Mapping) else list(answer or [])
            report.history_available = True
        except ZammadNotFound:
            if report.history_available is None:
                report.history_available = False
    state = str(record.get("state") or "")
    # the plan at the time
    plan = _first_value(history, mapping.TICKET_PLAN) if history else None
    plan = plan or mapping._text(record.get(mapping.TICKET_PLAN))
    if plan is None:
        plan = plans.get(record.get("organization_id"))
        report.plan_from_organization += 1
    # language: the customer's locale
    customer_id = record.get("customer_id")
    if customer_id not in customers:
        try:
            customers[customer_id] = client.users.find(customer_id, expand=True) if customer_id else None
        except ZammadNotFound:
            customers[customer_id] = None
    # the engine's view of the ticket, built as the live service builds it (one mapping)
    live = mapping.ticket_from_record(record, customer=customers[customer_id])
    # first response
    first = mapping.parse_instant(record.get("first_response_at"))
    if first is None:
        first = _first_agent_article(client, tid, created)
        if first is not None:
            report.first_response_from_articles += 1
    # pending periods
    if history:
        pending = pending_periods(history)
    elif state.startswith("pending"):
        since = mapping.parse_instant(record.get("updated_at")) or created
        pending = [(max(since, created), None)]
        report.pending_from_current_state += 1
    else:
        pending = []
    # close
    closed = mapping.parse_instant(record.get("close_at"))
    if closed is None and state == "closed":
        closed = _last_change_to(history, "closed") if history else None
        if closed is None:
            closed = mapping.parse_instant(record.get("updated_at"))
            report.closed_from_updated_at += 1
    if closed is not None and closed < created:
        closed = created
    if first is not None and first < created:
        first = created
    if pending and pending[-1][1] is None and closed is not None:
        pending[-1] = (pending[-1][0], max(closed, pending[-1][0]))
    return TicketRecord(
        id=str(tid),
        channel=live.channel,
        created_at=created,
        plan=plan,
        category=live.category,
        language=live.language,
        emergency=live.emergency_requested,
        first_response_at=first,
        pending=tuple(pending),
        closed_at=closed,
        organization=mapping._text(record.get("organization")) or (
            None if record.get("organization_id") is None else str(record.get("organization_id"))),
        number=mapping._text(record.get("number")),
        title=mapping._text(record.get("title")),
    )


def _first_agent_article(client: Any, ticket_id: Any, created: dt.datetime) -> dt.datetime | None:
    articles = client.ticket_articles.by_ticket(ticket_id)
    ordered = sorted(articles, key=lambda a: (str(a.get("created_at")), a.get("id") or 0))
    for index, article in enumerate(ordered):
        if index == 0:
            continue  # the article that opened the ticket (a phone call an agent typed in is not a response)
        sender = article.get("sender") or ""
        kind = article.get("type") or ""
        if sender == "Agent" and not article.get("internal") and kind != "note" and \
                article.get("subject") != mapping.NOTE_SUBJECT:
            at = mapping.parse_instant(article.get("created_at"))
            if at is not None and at >= created:
                return at
    return None
