"""The deadline clock and its inverse, pauses as policy, the language of a request."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from support import zurich

from plugin import hookimpl
from plugin.clock import (
    ZAMMAD_PAUSE_STATES,
    business_minutes,
    deadline,
    minutes_late,
    pauses_clock,
)
from plugin.engine import Engine
from plugin.language import request_language
from plugin.manager import get_plugin_manager
from plugin.model import Organization, Ticket, Verdict


@pytest.mark.parametrize("start, minutes, pauses", [
    ("2026-11-27 21:00", 240, ()),
    ("2026-11-27 21:00", 240, (("2026-11-27 21:30", "2026-11-28 07:00"),)),
    ("2026-03-28 22:00", 600, (("2026-03-29 06:30", "2026-03-29 07:00"),)),  # across the spring DST change
    ("2026-10-24 22:30", 120, ()),  # across the autumn DST change
])
def test_business_minutes_is_the_inverse_of_deadline(bundled_policies, start, minutes, pauses):
    calendar = bundled_policies.calendars["email"]
    periods = tuple((zurich(a), zurich(b)) for a, b in pauses)
    due = deadline(calendar, zurich(start), minutes, periods)
    assert business_minutes(calendar, zurich(start), due, periods) == pytest.approx(minutes)
    assert minutes_late(calendar, due, due + dt.timedelta(minutes=30), periods) == pytest.approx(30)
    assert minutes_late(calendar, due, due - dt.timedelta(minutes=30), periods) < 0


def test_the_24_7_calendar_counts_real_minutes_across_dst(bundled_policies):
    calendar = bundled_policies.calendars["emergency"]
    # 01:00 -> 04:00 local on the spring-forward night is two real hours.
    assert business_minutes(calendar, zurich("2026-03-29 01:00"), zurich("2026-03-29 04:00")) == pytest.approx(120)


def test_an_open_pause_has_no_deadline_yet(bundled_policies):
    calendar = bundled_policies.calendars["email"]
    assert deadline(calendar, zurich("2026-11-30 10:00"), 120, ((zurich("2026-11-30 10:30"), None),)) is None


def test_pauses_follow_zammad_by_default_and_the_policy_when_it_lists_states(bundled_policies):
    assert bundled_policies.pause_states is None  # `zammad`
    assert pauses_clock(bundled_policies, "pending reminder")
    assert pauses_clock(bundled_policies, "closed")  # Zammad's seeds: ignore_escalation on closed too
    assert not pauses_clock(bundled_policies, "open")
    assert pauses_clock(bundled_policies, "waiting for parts", ignore_escalation=True)  # read from Zammad
    assert not pauses_clock(bundled_policies, "pending reminder", ignore_escalation=False)
    assert ZAMMAD_PAUSE_STATES == {"pending reminder", "pending close", "closed", "merged", "removed"}
    listed = dataclasses.replace(bundled_policies, pause_states=frozenset({"pending reminder"}))
    assert pauses_clock(listed, "pending reminder", ignore_escalation=False)
    assert not pauses_clock(listed, "pending close", ignore_escalation=True)


def test_a_paused_plus_ticket_says_the_clock_is_paused_not_that_nothing_is_guaranteed(bundled_policies):
    engine = Engine(bundled_policies, get_plugin_manager(load_entrypoints=False))
    t = Ticket(1, "email", zurich("2026-11-30 10:00"), state="pending reminder",
               paused=((zurich("2026-11-30 10:30"), None),))
    d = engine.evaluate(t, Organization(1, plan="plus"), zurich("2026-11-30 12:00"))
    assert d.first_response_due.value is None
    assert "No guaranteed response time" not in d.note_text
    assert "First-response clock paused" in d.note_text and "Plus support plan's 4h target" in d.note_text
    standard = engine.evaluate(Ticket(2, "email", zurich("2026-11-30 10:00")), Organization(2, plan="standard"),
                               zurich("2026-11-30 12:00"))
    assert "No guaranteed response time" in standard.note_text


# --------------------------------------------------------------------------- language


@pytest.mark.parametrize("attribute, article, locale, expected", [
    ("en", "de", "fr-fr", ("en", "ticket")),
    (None, "de", "fr-fr", ("de", "article")),
    ("", None, "fr_CH", ("fr", "customer")),
    (None, None, None, (None, None)),
    ("EN-us", None, None, ("en", "ticket")),
])
def test_the_request_language_comes_from_the_most_trusted_source(attribute, article, locale, expected):
    assert request_language(attribute, article, locale) == expected


def test_explain_says_where_the_language_came_from(bundled_policies):
    engine = Engine(bundled_policies, get_plugin_manager(load_entrypoints=False))
    t = Ticket(1, "phone", zurich("2026-11-28 03:00"), "infrastructure", "en", True, language_source="ticket")
    d = engine.evaluate(t, Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    assert d.language.value == "en" and "set on the ticket by an agent" in d.language.reason
    assert d.emergency.value.eligible  # a German-profile customer calling in English is served
    t = dataclasses.replace(t, language="de", language_source="customer")
    d = engine.evaluate(t, Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    assert "customer's locale" in d.language.reason and not d.emergency.value.eligible


def test_a_site_plugin_decides_the_language(bundled_policies):
    class CallerSaysFrench:
        @hookimpl
        def policydesk_language(self, request, decision):
            return Verdict("fr", "acme.ivr", "the caller chose French in the phone menu")

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(CallerSaysFrench(), name="acme.ivr")
    t = Ticket(1, "phone", zurich("2026-11-28 03:00"), "infrastructure", "de", True, language_source="customer")
    d = Engine(bundled_policies, pm).evaluate(t, Organization(1, plan="pro"), zurich("2026-11-28 03:00"))
    assert (d.language.value, d.language.source) == ("fr", "acme.ivr")
    assert d.emergency.value.eligible
