"""What Zammad configuration the policies want: object attributes, calendars, SLAs, the
webhook and its triggers.  Pure: no HTTP here (`integrations.zammad.sync` reads, diffs
and writes).

Zammad formats, from its source:

- calendars (app/models/calendar.rb): ``business_hours`` is ``{"mon": {"active": true,
  "timeframes": [["06:00", "19:00"]]}, ...}``; the UI's "last minute of the day" ``"23:59"``
  is what Zammad turns into biz's ``"24:00"`` (``business_hours_to_hash``), so a window
  closing at ``24:00`` is written ``"23:59"`` and 24/7 is ``[["00:00", "23:59"]]`` on every
  day.  ``public_holidays`` is ``{"2026-12-25": {"active": true, "summary": "..."}}``
  (``feed`` is only set on dates fetched from an iCal feed; ``removed`` marks a feed date
  switched off); ``validate_hours`` needs at least one active day.
- SLAs (app/models/sla.rb, ``Sla.for_ticket``): ``all.order(:name, :created_at)``, the first
  whose ``condition`` matches wins, an SLA without condition is only the fallback.  Tag
  conditions (lib/selector/sql.rb) take a comma-separated string: ``{"ticket.tags":
  {"operator": "contains all", "value": "plan:pro, hours:phone"}}``.
- time-event triggers (app/models/transaction/time_based_trigger.rb, lib/selector/sql.rb
  ``time_based_trigger?``): ``activator: "time"``, condition ``ticket.escalation_at`` with
  operator ``has reached`` (transaction type ``escalation``) or ``has reached warning``
  (``escalation_warning``).
- object attributes (app/controllers/object_manager_attributes_controller.rb,
  app/models/object_manager/attribute/data_option_validator.rb): input needs
  ``type``/``maxlength``, select/boolean need ``default`` and ``options``, datetime needs
  ``future``/``past``; ``position`` is forced to 1550 on create (set by a later update).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

import holidays as holidays_lib

from integrations.support_code import ORG_SUPPORT_CODE, TICKET_SUPPORT_CODE
from integrations.zammad import mapping
from plugin.model import CalendarSpec, Policies
from plugin.tags import sla_tags

#: Every object policydesk owns has a name starting with this.
NAME_PREFIX = "policydesk"
#: Written into the ``note`` of the triggers and webhook policydesk owns.  Calendars and
#: SLAs have no ``note`` column (db/migrate/20120101000001_create_base.rb) and Zammad drops
#: unknown params (application_model/can_cleanup_param.rb): they are policydesk's when
#: named so and created by sync's own API user (``created_by_id``, set by Zammad).
MANAGED_MARKER = "Managed by policydesk sync"
#: Key in an attribute's ``data_option`` marking it as policydesk's (attributes have no note).
ATTRIBUTE_MARKER = "policydesk_managed"
WEBHOOK_NAME = "policydesk"
WEBHOOK_PATH = "/webhooks/zammad"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Years of public holidays written into a calendar: this one and the next two.
HOLIDAY_YEARS = 3

KINDS = ("attribute", "calendar", "sla", "webhook", "trigger")


@dataclass(frozen=True)
class Ref:
    """The id of another object policydesk wants, known once that object exists."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f'<id of {self.kind} "{self.name}">'


@dataclass
class Wanted:
    """One Zammad object the policies want, with the fields policydesk sets."""

    kind: str
    #: The name policydesk knows it by (``Organization.support_plan`` for attributes).
    name: str
    fields: dict[str, Any]
    #: Fields compared key by key, ignoring keys Zammad adds (attribute ``data_option``).
    loose: frozenset[str] = frozenset()
    #: Things Zammad cannot express, shown in the plan.
    remarks: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f'{self.kind} "{self.name}"'


def calendar_name(name: str) -> str:
    return f"{NAME_PREFIX}: {name}"


def webhook_endpoint(url: str) -> str:
    """The URL Zammad posts to: a bare service URL gets ``/webhooks/zammad`` appended."""
    from urllib.parse import urlsplit

    text = url.strip()
    if urlsplit(text).path in ("", "/"):
        return text.rstrip("/") + WEBHOOK_PATH
    return text


# --------------------------------------------------------------------------- attributes

_AGENT_ONLY = {"shown": True, "required": False}
_HIDDEN = {"shown": False, "required": False}


def _org_screens() -> dict[str, Any]:
    edit = {"ticket.agent": dict(_AGENT_ONLY), "admin.organization": dict(_AGENT_ONLY)}
    return {"create": dict(edit), "edit": dict(edit),
            "view": {"ticket.agent": {"shown": True}, "ticket.customer": {"shown": False}}}


def _ticket_screens(*, customer_creates: bool = False) -> dict[str, Any]:
    customer = dict(_AGENT_ONLY) if customer_creates else dict(_HIDDEN)
    return {
        "create_middle": {"ticket.agent": {**_AGENT_ONLY, "item_class": "column"},
                          "ticket.customer": {**customer, "item_class": "column"}},
        "edit": {"ticket.agent": dict(_AGENT_ONLY), "ticket.customer": dict(_HIDDEN)},
    }


def _input(maxlength: int) -> dict[str, Any]:
    return {"type": "text", "maxlength": maxlength, "default": "", "null": True}


def _select(options: Mapping[str, str]) -> dict[str, Any]:
    return {"options": dict(options), "default": "", "null": True, "nulloption": True, "maxlength": 255}


def _boolean() -> dict[str, Any]:
    return {"options": {"true": "yes", "false": "no"}, "default": False, "null": True}


def _date() -> dict[str, Any]:
    return {"future": True, "past": True, "diff": None, "default": None, "null": True}


def _attribute(obj: str, name: str, display: str, data_type: str, data_option: dict[str, Any],
               screens: dict[str, Any], position: int) -> Wanted:
    return Wanted(
        kind="attribute",
        name=f"{obj}.{name}",
        fields={"object": obj, "name": name, "display": display, "data_type": data_type,
                "data_option": {**data_option, ATTRIBUTE_MARKER: True}, "screens": screens,
                "active": True, "position": position},
        loose=frozenset({"data_option"}),
    )


def wanted_attributes(policies: Policies) -> list[Wanted]:
    plans = sorted(policies.plans.values(), key=lambda p: p.rank)
    plan_options = {p.name: p.title for p in plans}
    org, ticket = _org_screens(), _ticket_screens()
    return [
        _attribute("Organization", mapping.ORG_SUPPORT_PLAN, "Support plan", "select", _select(plan_options),
                   org, 1510),
        _attribute("Organization", mapping.ORG_ACCOUNT_MANAGER, "Account manager", "input", _input(120), org, 1520),
        _attribute("Organization", mapping.ORG_TECHNICAL_ACCOUNT_MANAGER, "Technical account manager", "input",
                   _input(120), org, 1530),
        _attribute("Organization", mapping.ORG_COMMITMENT_END, "Commitment end", "date", _date(), org, 1540),
        _attribute("Organization", mapping.ORG_PARTNER, "Partner", "boolean", _boolean(), org, 1550),
        _attribute("Organization", ORG_SUPPORT_CODE, "Support code", "input", _input(32), org, 1560),
        _attribute("Ticket", mapping.TICKET_PLAN, "Plan (policydesk)", "select", _select(plan_options),
                   ticket, 1510),
        _attribute("Ticket", mapping.TICKET_FIRST_RESPONSE_DUE, "First response due (policydesk)", "datetime",
                   _date(), ticket, 1520),
        _attribute("Ticket", mapping.TICKET_CATEGORY, "Category", "select", _select(policies.scope.categories),
                   _ticket_screens(customer_creates=True), 1530),
        _attribute("Ticket", mapping.TICKET_EMERGENCY, "Customer requests 24/7 emergency handling", "boolean",
                   _boolean(), _ticket_screens(customer_creates=True), 1540),
        _attribute("Ticket", TICKET_VIP_CODE, "VIP code given by the caller", "input", _input(64), ticket, 1550),
        _attribute("Ticket", mapping.TICKET_FINGERPRINT, "policydesk fingerprint", "input", _input(120), {}, 1560),
        _attribute("Ticket", TICKET_SUPPORT_CODE, "Support code given by the caller", "input", _input(32), ticket,
                   1570),
        # What an agent sets for a phone call (the request's language wins over the customer's locale).
        _attribute("Ticket", mapping.TICKET_LANGUAGE, "Language of the request (e.g. fr, en)", "input", _input(8),
                   ticket, 1580),
    ]


TICKET_VIP_CODE = mapping.TICKET_VIP_CODE


# --------------------------------------------------------------------------- calendars


def _hhmm(minutes: int) -> str:
    return "23:59" if minutes >= 1440 else f"{minutes // 60:02d}:{minutes % 60:02d}"


def business_hours(spec: CalendarSpec) -> dict[str, Any]:
    """A policy calendar's weekly windows -> Zammad's ``business_hours``."""
    if spec.always_open:
        return {day: {"active": True, "timeframes": [["00:00", "23:59"]]} for day in DAYS}
    hours: dict[str, Any] = {day: {"active": False, "timeframes": []} for day in DAYS}
    for weekday, windows in spec.weekly.items():
        frames = [[_hhmm(w.open), _hhmm(w.close)] for w in windows]
        hours[DAYS[weekday]] = {"active": bool(frames), "timeframes": frames}
    return hours


def public_holidays(spec: CalendarSpec, today: dt.date) -> tuple[dict[str, Any], list[str]]:
    """Zammad's ``public_holidays`` for this year and the next two, and remarks on what
    Zammad cannot express (special days with their own windows)."""
    years = list(range(today.year, today.year + HOLIDAY_YEARS))
    days: dict[str, dict[str, Any]] = {}
    for country, subdivision in spec.holidays:
        found = holidays_lib.country_holidays(country, subdiv=subdivision, years=years)
        where = country + (f"-{subdivision}" if subdivision else "")
        for date, summary in sorted(found.items()):
            days.setdefault(date.isoformat(), {"active": True, "summary": f"{summary} ({where})"})
    for date in spec.closed:
        days[date.isoformat()] = {"active": True, "summary": "Closed"}
    remarks = []
    for date, windows in sorted(spec.special_days.items()):
        if not windows:
            days[date.isoformat()] = {"active": True, "summary": "Closed"}
            continue
        days.pop(date.isoformat(), None)  # a special day wins over holidays: it is open, on its own windows
        opening = ", ".join(f"{_hhmm(w.open)}-{_hhmm(w.close)}" for w in windows)
        remarks.append(f"special day {date.isoformat()} opens {opening}: Zammad cannot express it; its SLA "
                       "clock uses the weekly hours that day")
    return dict(sorted(days.items())), remarks


def wanted_calendars(policies: Policies, today: dt.date) -> list[Wanted]:
    """One Zammad calendar per policy calendar, from the typed ``policies.calendar_specs``."""
    out = []
    for name, spec in policies.calendar_specs.items():
        holidays_, remarks = public_holidays(spec, today)
        # No note: Zammad's calendars have no such column (ownership is by name and creator).
        out.append(Wanted(
            kind="calendar",
            name=calendar_name(name),
            fields={"name": calendar_name(name), "timezone": spec.timezone or policies.default_timezone,
                    "business_hours": business_hours(spec), "public_holidays": holidays_, "ical_url": ""},
            remarks=remarks,
        ))
    return out


# --------------------------------------------------------------------------- SLAs


def _tags_condition(*tags: str) -> dict[str, Any]:
    return {"ticket.tags": {"operator": "contains all", "value": ", ".join(tags)}}


def wanted_slas(policies: Policies) -> list[Wanted]:
    """One SLA per paid plan and counting calendar, plus emergency for 24/7 plans.

    Names sort emergency SLAs first (``policydesk 10 ...``) before the calendar ones
    (``policydesk 20 ...``), as Zammad takes the first match by name.
    """
    out = []
    tags = sla_tags(policies)  # the tags the decisions write (plugin.tags): SLAs select by them
    emergency_calendar = policies.scope.emergency_calendar
    for plan in sorted(policies.plans.values(), key=lambda p: p.rank):
        if not plan.paid or plan.first_response_minutes is None:
            continue
        if plan.emergency_24_7:
            name = f"{NAME_PREFIX} 10 {plan.name} emergency"
            out.append(Wanted("sla", name, {
                "name": name, "calendar_id": Ref("calendar", calendar_name(emergency_calendar)),
                "first_response_time": plan.first_response_minutes,
                "condition": _tags_condition(tags.plans[plan.name], tags.emergency),
            }))
        calendars = dict.fromkeys([*plan.channel_calendars.values(), plan.default_calendar])
        for calendar in sorted(calendars):
            name = f"{NAME_PREFIX} 20 {plan.name} {calendar}"
            out.append(Wanted("sla", name, {
                "name": name, "calendar_id": Ref("calendar", calendar_name(calendar)),
                "first_response_time": plan.first_response_minutes,
                "condition": _tags_condition(tags.plans[plan.name], tags.calendars[calendar]),
            }))
    return sorted(out, key=lambda w: w.name)


# --------------------------------------------------------------------------- webhook and triggers


#: Key of the custom payload saying it is policydesk's (the adapter tells it from Zammad's default).
PAYLOAD_MARKER = "policydesk_payload"
#: What Zammad shows instead of a webhook's signature token (Zammad ≥ 6.5:
#: app/models/concerns/can_sensitive_assets.rb, lib/sensitive_params_helper.rb SENSITIVE_MASK).
MASKED_SECRET = "**********"

_TICKET_FIELDS = ("id", "number", "state_id", "group_id", "owner_id", "customer_id", "organization_id",
                  "create_article_type_id", "updated_by_id")
#: Times go through ``xmlschema`` (ISO 8601, UTC): a bare TimeWithZone renders as
#: ``"2026-12-01 19:12:46 UTC"``; a method of an allowed Rails class may be called.
_TICKET_TIMES = ("created_at", "updated_at", "first_response_at", "first_response_escalation_at",
                 "escalation_at", "pending_time", mapping.TICKET_FIRST_RESPONSE_DUE)
#: Ticket attributes that never travel: what an agent types from a caller (VIP or support code).
_SECRET_TICKET_ATTRIBUTES = frozenset({mapping.TICKET_VIP_CODE, TICKET_SUPPORT_CODE})
#: A Date is no class Zammad lets a payload render (custom_payload/validator.rb): not sent.
_UNRENDERABLE_ORG_ATTRIBUTES = frozenset({mapping.ORG_COMMITMENT_END})


def webhook_payload_template() -> str:
    """The webhook's custom payload: ids, state, times and the fields the engine reads.

    Zammad replaces each ``#{object.method}`` textually (app/jobs/trigger_webhook_job/
    custom_payload.rb) in a template that must be valid JSON (app/models/webhook.rb), so
    every value is a string; what Zammad cannot render comes as ``"#{... / reason}"`` (or
    ``""`` for nil in newer versions).  No title, article body, VIP or support code: nothing
    a customer typed travels or lands in Zammad's HttpLog.
    """
    ticket: dict[str, str] = {name: f"#{{ticket.{name}}}" for name in _TICKET_FIELDS}
    ticket.update({name: f"#{{ticket.{name}.xmlschema}}" for name in _TICKET_TIMES})
    ticket["state"] = "#{ticket.state.name}"
    ticket["priority"] = "#{ticket.priority.name}"
    ticket["group"] = "#{ticket.group.name}"
    ticket["owner"] = "#{ticket.owner.login}"
    # Whether a code was typed, never the code (String#present?: any method of an allowed class).
    for name in sorted(_SECRET_TICKET_ATTRIBUTES):
        ticket[f"{name}_typed"] = f"#{{ticket.{name}.present?}}"
    for name in mapping.TICKET_ATTRIBUTES:
        if name not in _SECRET_TICKET_ATTRIBUTES and name not in ticket:
            ticket[name] = f"#{{ticket.{name}}}"
    organization = {name: f"#{{ticket.organization.{name}}}" for name in ("id", *mapping.ORGANIZATION_ATTRIBUTES)
                    if name not in _UNRENDERABLE_ORG_ATTRIBUTES}
    # The type's id and name: the adapter learns the channel names from them (Zammad's API
    # has no list of article types), so a new ticket's channel costs no read.
    article = {"id": "#{article.id}", "type": "#{article.type.name}", "type_id": "#{article.type_id}",
               "sender": "#{article.sender.name}", "internal": "#{article.internal}"}
    payload = {PAYLOAD_MARKER: "1", "ticket": ticket, "organization": organization, "article": article}
    return json.dumps(payload, indent=2, sort_keys=True)


def wanted_webhook(endpoint: str, signature_token: str) -> Wanted:
    return Wanted("webhook", WEBHOOK_NAME, {
        "name": WEBHOOK_NAME, "endpoint": endpoint, "signature_token": signature_token, "ssl_verify": True,
        "customized_payload": True, "custom_payload": webhook_payload_template(), "active": True,
        "note": f"{MANAGED_MARKER}: Zammad tells policydesk about ticket changes and escalations.",
    })


#: Zammad's escalation time events: they arrive whoever updated the ticket last, and are
#: processed even when that was policydesk (see `wanted_triggers`).
ESCALATION_TRIGGER = f"{NAME_PREFIX} 30 escalation"
ESCALATION_WARNING_TRIGGER = f"{NAME_PREFIX} 40 escalation warning"
TIME_EVENT_TRIGGERS = frozenset({ESCALATION_TRIGGER, ESCALATION_WARNING_TRIGGER})


def wanted_triggers(own_user_id: int) -> list[Wanted]:
    """The triggers calling the webhook.

    Create and update exclude changes made by policydesk's own API user (no loops).  The
    time events do not: ``ticket.updated_by_id`` is the ticket's last updater, which is
    usually policydesk itself, so the exclusion would silence every escalation.
    """
    not_ours = {"ticket.updated_by_id": {"operator": "is not", "pre_condition": "specific",
                                         "value": [str(own_user_id)]}}
    perform = {"notification.webhook": {"webhook_id": Ref("webhook", WEBHOOK_NAME)}}
    specs = [
        ("10 ticket created", "action", "selective",
         {"ticket.action": {"operator": "is", "value": "create"}, **not_ours}),
        ("20 ticket updated", "action", "always",
         {"ticket.action": {"operator": "is", "value": "update"}, **not_ours}),
        (ESCALATION_TRIGGER, "time", "selective", {"ticket.escalation_at": {"operator": "has reached"}}),
        (ESCALATION_WARNING_TRIGGER, "time", "selective",
         {"ticket.escalation_at": {"operator": "has reached warning"}}),
    ]
    out = []
    for suffix, activator, mode, condition in specs:
        name = suffix if suffix.startswith(NAME_PREFIX) else f"{NAME_PREFIX} {suffix}"
        out.append(Wanted("trigger", name, {
            "name": name, "activator": activator, "execution_condition_mode": mode, "condition": condition,
            "perform": perform, "disable_notification": True, "active": True,
            "note": f"{MANAGED_MARKER}: sends the ticket to policydesk.",
        }))
    return out


def wanted_objects(policies: Policies, *, endpoint: str, signature_token: str, own_user_id: int,
                   today: dt.date | None = None) -> list[Wanted]:
    """Everything the policies want in Zammad, in dependency order."""
    today = today or dt.date.today()
    return [*wanted_attributes(policies), *wanted_calendars(policies, today), *wanted_slas(policies),
            wanted_webhook(endpoint, signature_token), *wanted_triggers(own_user_id)]
