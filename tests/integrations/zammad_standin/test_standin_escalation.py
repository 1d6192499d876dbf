"""Escalation as Zammad computes it (lib/escalation.rb, lib/escalation/*, app/models/sla.rb,
app/models/calendar.rb, app/models/ticket.rb#process_escalation)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator

import pytest

from integrations.zammad_standin.escalation import BusinessCalendar
from integrations.zammad_standin.server import build_state
from integrations.zammad_standin.store import parse_instant

UTC = dt.timezone.utc
WEEKDAYS = {day: {"active": True, "timeframes": [["09:00", "17:00"]]} for day in ("mon", "tue", "wed", "thu", "fri")}
ALWAYS = {day: {"active": True, "timeframes": [["00:00", "23:59"]]}
          for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _calendar(hours: dict[str, Any], holidays: dict[str, Any] | None = None, tz: str = "Europe/Zurich") -> dict[str, Any]:
    return {"timezone": tz, "business_hours": hours, "public_holidays": holidays or {}}


def test_business_minutes_skip_nights_weekends_and_holidays() -> None:
    """calendar.rb#biz + Biz: minutes count only inside the windows, in the calendar's zone."""
    biz = BusinessCalendar(_calendar(WEEKDAYS, {"2026-12-07": {"active": True, "summary": "closure"},
                                                "2026-12-08": {"active": False}}))
    friday = dt.datetime(2026, 12, 4, 15, 30, tzinfo=UTC)  # 16:30 in Zurich
    assert biz.after(friday, 60) == dt.datetime(2026, 12, 8, 8, 30, tzinfo=UTC)  # Tue 09:30 (Mon closed)
    assert biz.after(dt.datetime(2026, 12, 4, 15, 0, tzinfo=UTC), 60) == dt.datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert biz.minutes_between(friday, dt.datetime(2026, 12, 8, 8, 30, tzinfo=UTC)) == 60


def test_last_minute_of_the_day_and_dst() -> None:
    """calendar.rb: '23:59' is the end of the day; a day's window is local wall time, so the spring
    DST day is 23 real hours long."""
    biz = BusinessCalendar(_calendar(ALWAYS))
    start = dt.datetime(2026, 3, 28, 22, 0, tzinfo=UTC)  # Sat 23:00 CET
    assert biz.after(start, 180) == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    autumn = dt.datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # Sun 00:00 CEST
    assert biz.after(autumn, 25 * 60) == dt.datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # Mon 00:00 CET


@pytest.fixture
def desk() -> Iterator[Any]:
    state, _token, dispatcher = build_state(escalation_interval=0)
    try:
        yield state
    finally:
        dispatcher.stop()


def _admin(state: Any) -> int:
    return int(state.user_by("admin@example.com")["id"])


def _sla(state: Any, name: str, minutes: int, condition: dict[str, Any] | None = None,
         hours: dict[str, Any] = WEEKDAYS) -> dict[str, Any]:
    calendar = state.create_generic("calendars", {"name": f"cal {name}", **_calendar(hours)}, _admin(state))
    return state.create_generic("slas", {"name": name, "calendar_id": calendar["id"], "first_response_time": minutes,
                                         "solution_time": minutes * 10, "condition": condition or {}}, _admin(state))


def _ticket(state: Any, **extra: Any) -> dict[str, Any]:
    ticket, _article = state.create_ticket({"title": "x", "group": "Support", "customer": "hans.meier@bergbahn-alpin.ch",
                                            "article": {"type": "email", "sender": "Customer", "body": "b"}, **extra},
                                           _admin(state))
    return ticket


def test_sla_selection_by_condition_then_name(desk: Any) -> None:
    """sla.rb#for_ticket: SLAs in name order, first matching condition, else the last without one."""
    high = desk.by_name("ticket_priorities", "3 high")["id"]
    _sla(desk, "b fallback", 240)
    _sla(desk, "c high", 30, {"ticket.priority_id": {"operator": "is", "value": [str(high)]}})
    _sla(desk, "a fallback", 120)
    urgent = _ticket(desk, priority="3 high")
    normal = _ticket(desk)
    assert desk.sla_for(urgent)["name"] == "c high"
    assert desk.sla_for(normal)["name"] == "b fallback"


def test_escalation_fields_follow_the_sla_calendar(desk: Any) -> None:
    """lib/escalation.rb: first response / close from created_at; escalation_at the earliest open one."""
    _sla(desk, "std", 60)
    ticket = _ticket(desk)
    ticket["created_at"] = "2026-12-04T15:30:12.345Z"  # Fri 16:30 in Zurich
    desk.escalation_update(ticket)
    assert ticket["first_response_escalation_at"] == "2026-12-07T08:30:12.000Z"  # Mon 09:30:12
    assert ticket["escalation_at"] == ticket["first_response_escalation_at"]
    assert parse_instant(ticket["close_escalation_at"]) > parse_instant(ticket["first_response_escalation_at"])
    ticket["first_response_at"] = "2026-12-04T15:50:00.000Z"
    desk.escalation_update(ticket)
    assert ticket["first_response_escalation_at"] is None and ticket["escalation_at"] == ticket["close_escalation_at"]
    assert ticket["first_response_in_min"] == 19 and ticket["first_response_diff_in_min"] == 41


def test_ignore_escalation_states_pause_the_clock(desk: Any) -> None:
    """ticket_biz_break.rb: time spent in an ignore_escalation state is a break (minute granularity);
    while in it the ticket has no escalation."""
    _sla(desk, "always", 120, hours=ALWAYS)
    ticket = _ticket(desk)
    admin = _admin(desk)
    desk.update_ticket(ticket["id"], {"state": "pending reminder", "pending_time": "2026-12-31T00:00:00Z"}, admin)
    assert ticket["escalation_at"] is None and ticket["first_response_escalation_at"] is None
    desk.clock.offset += 30 * 60
    desk.update_ticket(ticket["id"], {"state": "open"}, admin)
    reopened = [h for h in desk.ticket_history(ticket["id"]) if h["attribute"] == "state"][-1]
    resume = parse_instant(reopened["created_at"]).replace(second=0, microsecond=0)
    assert parse_instant(ticket["first_response_escalation_at"]) == resume + dt.timedelta(minutes=120)


def test_sla_change_recomputes_open_tickets(desk: Any) -> None:
    """HasEscalationCalculationImpact: editing an SLA rebuilds the open tickets' escalation."""
    sla = _sla(desk, "std", 60, hours=ALWAYS)
    ticket = _ticket(desk)
    before = parse_instant(ticket["first_response_escalation_at"])
    desk.update_generic("slas", sla["id"], {"first_response_time": 90}, _admin(desk))
    assert parse_instant(ticket["first_response_escalation_at"]) - before == dt.timedelta(minutes=30)


def test_time_events_fire_time_triggers_once(desk: Any) -> None:
    """ticket.rb#process_escalation: escalation_warning within 15 minutes, escalation once passed;
    each time trigger runs once per ticket, event and escalation instant."""
    _sla(desk, "always", 60, hours=ALWAYS)
    admin = _admin(desk)
    hook = desk.create_generic("webhooks", {"name": "w", "endpoint": "http://127.0.0.1:9/x"}, admin)
    for name, operator in (("esc", "has reached"), ("warn", "has reached warning")):
        desk.create_generic("triggers", {"name": name, "activator": "time",
                                         "condition": {"ticket.escalation_at": {"operator": operator}},
                                         "perform": {"notification.webhook": {"webhook_id": hook["id"]}}}, admin)
    ticket = _ticket(desk)

    def events() -> list[str]:  # the seed's own tickets escalate too
        return [e["type"] for e in desk.process_escalation() if e["ticket_id"] == ticket["id"]]

    assert events() == []
    desk.clock.offset += 50 * 60
    assert events() == ["escalation_warning"]
    desk.process_escalation()
    desk.clock.offset += 15 * 60
    assert events() == ["escalation"]
    desk.process_escalation()
    fired = [d.trigger_name for d in desk.deliveries if d.ticket_id == ticket["id"]]
    assert fired == ["warn", "esc"]


def test_a_tag_that_selects_another_sla_changes_the_escalation(standin: Any, api: Any) -> None:
    """ticket/escalation.rb (after_commit, also on the touch of a tag change) + sla.rb#for_ticket:
    SLA conditions on ticket.tags apply as soon as the tag is added, over the API."""
    calendar = api.post("calendars", json={"name": "always", "timezone": "Europe/Zurich", "business_hours": ALWAYS,
                                           "public_holidays": {}}).json()
    api.post("slas", json={"name": "a pro", "calendar_id": calendar["id"], "first_response_time": 120,
                           "condition": {"ticket.tags": {"operator": "contains all", "value": "plan:pro"}}})
    ticket = api.post("tickets", json={"title": "x", "group": "Support", "customer": "hans.meier@bergbahn-alpin.ch",
                                       "article": {"type": "email", "sender": "Customer", "body": "b"}}).json()
    assert ticket["first_response_escalation_at"] is None  # no SLA matches yet
    api.post("tags/add", json={"object": "Ticket", "o_id": ticket["id"], "item": "plan:pro"})
    due = api.get(f"tickets/{ticket['id']}").json()["first_response_escalation_at"]
    created = parse_instant(ticket["created_at"]).replace(microsecond=0)
    assert parse_instant(due) == created + dt.timedelta(minutes=120)


def test_pending_times_are_processed(desk: Any) -> None:
    """ticket.rb#process_pending: 'pending close' moves to closed when its time passed; 'pending
    reminder' raises reminder_reached."""
    admin = _admin(desk)
    closing, reminded = _ticket(desk), _ticket(desk)
    soon = (desk.clock.now_dt() + dt.timedelta(minutes=5)).isoformat()
    desk.update_ticket(closing["id"], {"state": "pending close", "pending_time": soon}, admin)
    desk.update_ticket(reminded["id"], {"state": "pending reminder", "pending_time": soon}, admin)
    assert desk.process_pending() == []
    desk.clock.offset += 6 * 60
    assert [e["ticket_id"] for e in desk.process_pending()] == [reminded["id"]]
    assert desk.name_of("ticket_states", closing["state_id"]) == "closed" and closing["close_at"] is not None
    assert closing["updated_by_id"] == 1
