"""Escalation computed as Zammad computes it, and the time events it raises.

- SLA (app/models/sla.rb#for_ticket): SLAs in name (then creation) order; the first whose
  condition matches the ticket wins; otherwise the last SLA without a condition.
- Calendar (app/models/calendar.rb#biz): the SLA's calendar's business hours per weekday
  (``{"mon": {"active": true, "timeframes": [["09:00", "17:00"]]}}``; ``23:59`` means the end of
  the day), its active, not removed public holidays (whole days) and its time zone.
- Pauses (lib/escalation/ticket_biz_break.rb): every stretch the ticket's history shows it
  in a state with ``ignore_escalation`` (pending, closed, merged ...) is a break, at minute
  granularity in the calendar's time zone; a ticket now in such a state has no escalation
  (lib/escalation.rb#escalation_disabled?).
- Fields (lib/escalation.rb): first_response_escalation_at = created_at + first_response_time
  business minutes until first_response_at is set; update_escalation_at = last customer
  contact + update_time until an agent answered; close_escalation_at = created_at +
  solution_time until close_at; escalation_at = the earliest of those still open; the
  ``*_in_min`` / ``*_diff_in_min`` statistics once the response happened.  ``n`` business
  minutes after ``t`` is the instant the n-th minute is used up (Biz: a deadline at a
  window's end is that end).  Escalation columns are written without callbacks (no history,
  no transaction).
- Time events (app/models/ticket.rb#process_escalation, run by Zammad's scheduler; here by
  ``process_escalation()`` or every ``escalation_interval`` seconds when one is set): a ticket
  whose escalation_at has passed gets an ``escalation`` event, one within the next 15 minutes
  an ``escalation_warning``; triggers with ``activator: time`` and the condition
  ``ticket.escalation_at`` ``has reached`` / ``has reached warning`` run on them; each
  trigger runs once per ticket, event and escalation instant (a ``time_trigger_performed``
  history row), as Zammad's time-trigger loop protection does.
- Pending times (app/models/ticket.rb#process_pending): 'pending close' tickets whose time
  passed are closed by user 1; 'pending reminder' ones raise ``reminder_reached``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Mapping
from zoneinfo import ZoneInfo

from integrations.zammad_standin.conditions import ticket_matches
from integrations.zammad_standin.store import format_instant, parse_instant

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WARNING_AHEAD = dt.timedelta(minutes=15)
ESCALATION_COLUMNS = ("escalation_at", "first_response_escalation_at", "update_escalation_at", "close_escalation_at")


def _clock(text: str) -> tuple[int, int]:
    hour, minute = str(text).split(":")[:2]
    return int(hour), int(minute)


def _local(day: dt.date, hhmm: str, zone: ZoneInfo) -> dt.datetime:
    hour, minute = _clock(hhmm)
    if hour >= 24:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)


class BusinessCalendar:
    """A Zammad calendar as the biz gem sees it, with ticket breaks."""

    def __init__(self, calendar: Mapping[str, Any], breaks: dict[dt.date, list[tuple[str, str]]] | None = None):
        self.zone = ZoneInfo(str(calendar.get("timezone") or "UTC"))
        self.hours: dict[int, list[tuple[str, str]]] = {}
        for index, day in enumerate(DAYS):
            meta = (calendar.get("business_hours") or {}).get(day) or {}
            if not meta.get("active") or not meta.get("timeframes"):
                continue
            frames = [(str(a), "24:00" if str(b) == "23:59" else str(b)) for a, b in meta["timeframes"] if a and b]
            if frames:
                self.hours[index] = frames
        self.holidays = {dt.date.fromisoformat(day) for day, meta in (calendar.get("public_holidays") or {}).items()
                         if meta and meta.get("active") and not meta.get("removed")}
        self.breaks = breaks or {}

    @property
    def usable(self) -> bool:
        return bool(self.hours)  # calendar.rb#biz raises "No configured hours found" otherwise

    def windows(self, start: dt.datetime) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open periods (UTC) from the local day of ``start`` on, breaks cut out, in order."""
        day = start.astimezone(self.zone).date() - dt.timedelta(days=1)
        for _ in range(3700):  # ten years of days: bounded
            day += dt.timedelta(days=1)
            if day in self.holidays or day.weekday() not in self.hours:
                continue
            for begin_text, end_text in self.hours[day.weekday()]:
                pieces = [(_local(day, begin_text, self.zone), _local(day, end_text, self.zone))]
                for break_from, break_to in self.breaks.get(day, []):
                    cut_from, cut_to = _local(day, break_from, self.zone), _local(day, break_to, self.zone)
                    pieces = [part for a, b in pieces
                              for part in ((a, min(b, cut_from)), (max(a, cut_to), b)) if part[0] < part[1]]
                for a, b in pieces:
                    a_utc, b_utc = a.astimezone(dt.timezone.utc), b.astimezone(dt.timezone.utc)
                    if b_utc > a_utc:
                        yield a_utc, b_utc

    def after(self, start: dt.datetime, minutes: int) -> dt.datetime | None:
        """Biz#time(minutes, :minutes).after(start)."""
        remaining = dt.timedelta(minutes=minutes)
        for a, b in self.windows(start):
            if b <= start:
                continue
            a = max(a, start)
            if b - a >= remaining:
                return a + remaining
            remaining -= b - a
        return None

    def minutes_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Escalation::PeriodWorkingMinutes: business minutes between two instants."""
        total = dt.timedelta()
        for a, b in self.windows(start):
            if a >= end:
                break
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += hi - lo
        return int(total.total_seconds() // 60)


class EscalationMixin:
    """Mixed into State."""

    def sla_for(self, ticket: Mapping[str, Any]) -> dict[str, Any] | None:
        """Sla.for_ticket (app/models/sla.rb)."""
        fallback = None
        for sla in sorted(self.all("slas"), key=lambda s: (str(s.get("name") or ""), str(s.get("created_at") or ""))):
            if sla.get("condition"):
                if ticket_matches(self, ticket, sla["condition"]):
                    return sla
            else:
                fallback = sla
        return fallback

    def ticket_breaks(self, ticket: Mapping[str, Any], zone: ZoneInfo) -> dict[dt.date, list[tuple[str, str]]]:
        """Escalation::TicketBizBreak: the ignore_escalation stretches of the ticket's state history."""
        ignored = {s["name"] for s in self.all("ticket_states") if s.get("ignore_escalation")}
        changes = [h for h in self.rows_with("histories", ticket["id"])
                   if h["history_object"] == "Ticket" and h["history_attribute"] == "state"]
        points = [{"value_to": changes[0]["value_from"] if changes else self.name_of("ticket_states", ticket["state_id"]),
                   "created_at": ticket["created_at"]}] + [{"value_to": h["value_to"], "created_at": h["created_at"]}
                                                          for h in changes]
        out: dict[dt.date, list[tuple[str, str]]] = {}
        for before, after in zip(points, points[1:]):
            if before["value_to"] not in ignored:
                continue
            start = parse_instant(before["created_at"]).astimezone(zone)
            end = parse_instant(after["created_at"]).astimezone(zone)
            day = start.date()
            while day <= end.date():
                key = start.strftime("%H:%M") if day == start.date() else "00:00"
                value = end.strftime("%H:%M") if day == end.date() else "24:00"
                out.setdefault(day, []).append((key, value))
                day += dt.timedelta(days=1)
        return out

    def escalation_update(self, ticket: dict[str, Any]) -> None:
        """lib/escalation.rb#calculate for one ticket (always forced: same result, simpler)."""
        state = self.find("ticket_states", ticket.get("state_id"))
        sla = self.sla_for(ticket)
        calendar = self.find("calendars", sla["calendar_id"]) if sla else None
        if (state and state.get("ignore_escalation")) or calendar is None:
            for column in ESCALATION_COLUMNS:
                ticket[column] = None
            return
        zone = ZoneInfo(str(calendar.get("timezone") or "UTC"))
        biz = BusinessCalendar(calendar, self.ticket_breaks(ticket, zone))
        if not biz.usable:
            for column in ESCALATION_COLUMNS:
                ticket[column] = None
            return
        created = parse_instant(ticket["created_at"]).replace(microsecond=0)

        def deadline(start: dt.datetime | None, span: Any) -> str | None:
            if start is None or span in (None, "") or int(span) <= 0:
                return None
            moment = biz.after(start, int(span))
            return format_instant(moment) if moment else None

        first_response = parse_instant(ticket.get("first_response_at"))
        close = parse_instant(ticket.get("close_at"))
        customer = parse_instant(ticket.get("last_contact_customer_at"))
        agent = parse_instant(ticket.get("last_contact_agent_at"))
        agent_responded = agent is not None and (customer is None or agent >= customer)
        ticket["first_response_escalation_at"] = None if first_response else deadline(created, sla.get("first_response_time"))
        ticket["update_escalation_at"] = None if agent_responded else deadline(
            customer.replace(microsecond=0) if customer else None, sla.get("update_time"))
        ticket["close_escalation_at"] = None if close else deadline(created, sla.get("solution_time"))
        candidates = [ticket["first_response_escalation_at"] if not first_response else None,
                      ticket["update_escalation_at"], ticket["close_escalation_at"] if not close else None]
        present = [c for c in candidates if c]
        ticket["escalation_at"] = min(present, key=parse_instant) if present else None
        if first_response and sla.get("first_response_time"):
            minutes = biz.minutes_between(created, first_response)
            ticket["first_response_in_min"] = minutes
            ticket["first_response_diff_in_min"] = int(sla["first_response_time"]) - minutes
        if close and sla.get("solution_time"):
            minutes = biz.minutes_between(created, close)
            ticket["close_in_min"] = minutes
            ticket["close_diff_in_min"] = int(sla["solution_time"]) - minutes

    def escalation_rebuild(self) -> None:
        """HasEscalationCalculationImpact: an SLA or calendar change recomputes the open tickets."""
        with self.lock:
            open_ids = self.state_ids("open")
            for ticket in self.all("tickets"):
                if ticket["state_id"] in open_ids:
                    self.escalation_update(ticket)

    def process_escalation(self) -> list[dict[str, Any]]:
        """Ticket.process_escalation: time events for escalated and soon escalating tickets."""
        now = self.clock.now_dt()
        events = []
        with self.lock:
            for ticket in self.all("tickets"):
                moment = parse_instant(ticket.get("escalation_at"))
                if moment is None or moment > now + WARNING_AHEAD:
                    continue
                kind = "escalation" if moment < now else "escalation_warning"
                events.append({"object": "Ticket", "type": kind, "ticket_id": ticket["id"], "article_id": None,
                               "user_id": 1, "changes": set(), "before": None, "after": dict(ticket),
                               "tags": self.tags_of("Ticket", ticket["id"]), "escalation_at": ticket["escalation_at"]})
        for event in events:
            self.transactions.append(event)
            if self.on_transaction is not None:
                self.on_transaction(event)
        return events

    def process_pending(self) -> list[dict[str, Any]]:
        """Ticket.process_pending (app/models/ticket.rb): a 'pending action' ticket whose pending_time
        passed moves to its next state (as user 1, an ordinary update); a 'pending reminder' one
        gets a ``reminder_reached`` time event."""
        now = self.clock.now_dt()
        events = []
        for ticket in list(self.all("tickets")):
            pending = parse_instant(ticket.get("pending_time"))
            if pending is None or pending > now:
                continue
            kind = self.state_type(ticket["state_id"])
            state = self.find("ticket_states", ticket["state_id"])
            if kind == "pending action" and state and state.get("next_state_id"):
                self.update_ticket(ticket["id"], {"state_id": state["next_state_id"], "pending_time": None}, 1)
            elif kind == "pending reminder":
                events.append({"object": "Ticket", "type": "reminder_reached", "ticket_id": ticket["id"],
                               "article_id": None, "user_id": 1, "changes": set(), "before": None,
                               "after": dict(ticket), "tags": self.tags_of("Ticket", ticket["id"]),
                               "escalation_at": ticket.get("pending_time")})
        for event in events:
            self.transactions.append(event)
            if self.on_transaction is not None:
                self.on_transaction(event)
        return events

    def run_time_events(self) -> list[dict[str, Any]]:
        """One run of Zammad's scheduler jobs for time: process_pending, then process_escalation."""
        return self.process_pending() + self.process_escalation()

    def time_trigger_performed(self, trigger: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
        """Loop protection of time triggers: True when this trigger already ran for this ticket, event
        type and escalation instant; otherwise records that it runs now."""
        marker = f"{trigger['id']}:{event['type']}:{event.get('escalation_at')}"
        with self.lock:
            for row in self.rows_with("histories", event["ticket_id"]):
                if row["history_type"] == "time_trigger_performed" and row["value_to"] == marker:
                    return True
            self.history_log("time_trigger_performed", event["ticket_id"], 1, value_from=trigger.get("name"),
                             value_to=marker)
        return False
