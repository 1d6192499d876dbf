"""Build the `Policies` from documents that passed every check (so nothing is checked here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import holidays as holidays_lib

from plugin.model import (
    AdviceRules,
    CalendarSpec,
    EscalationStep,
    OutOfScope,
    Plan,
    PlanChanges,
    Policies,
    Role,
    RouteRule,
    RoutingRules,
    ScopeRules,
    Window,
)
from plugin.policy.values import _days, _minutes, parse_duration

FILES = ("hours.yaml", "plans.yaml", "scope.yaml")


#: Reply texts used when scope.yaml gives none (the policies normally do).
_NO_REPLIES: Mapping[str, Mapping[str, str]] = {}


def build(source: str, documents: Mapping[str, Any], version: str = "") -> Policies:
    """The `Policies` from documents that passed every check (so no checking here)."""
    hours, plans, scope = (documents[name] for name in FILES)
    timezone = hours["timezone"]
    roles = {
        name: Role(name=name, title=role["title"], calendar=role["calendar"], pool=tuple(role.get("pool", ())),
                   capacity=role.get("capacity"), digest=role.get("digest"), group=role.get("group"))
        for name, role in plans.get("roles", {}).items()
    }
    clock = plans.get("clock", {})
    pause_states = clock.get("pause_states", "zammad")
    advice = scope.get("advice")
    routing = scope.get("routing", {})
    escalation = plans.get("escalation", {})
    default_ladder = _ladder(escalation.get("ladder", []))
    channels = dict(plans.get("channels", {}))
    emergency = scope["emergency"]
    return Policies(
        source=source,
        default_timezone=timezone,
        calendars={name: _calendar(name, cal, timezone) for name, cal in hours["calendars"].items()},
        default_plan=plans["default_plan"],
        plans={
            name: _plan(name, plan, channels, plans["default_calendar"], default_ladder)
            for name, plan in plans["plans"].items()
        },
        roles=roles,
        scope=ScopeRules(
            categories=dict(scope["categories"]),
            emergency_categories=frozenset(emergency["categories"]),
            emergency_languages=frozenset(emergency["languages"]),
            emergency_calendar=emergency["calendar"],
            emergency_priority=emergency["priority"],
            out_of_scope={
                category: OutOfScope(category=category, referral=rule["referral"])
                for category, rule in scope.get("out_of_scope", {}).items()
            },
            emergency_channels=frozenset(emergency.get("channels", ("phone",))),
            emergency_replies={lang: dict(texts) for lang, texts in emergency.get("replies", _NO_REPLIES).items()},
            reply_fallback_language=emergency.get("reply_fallback_language", "en"),
            advice=None if advice is None else AdviceRules(advice["category"], advice["calendar"],
                                                           advice.get("group"), advice.get("owner_role")),
        ),
        plan_changes=PlanChanges(**plans["plan_changes"]),
        escalation_sweep=escalation.get("sweep", "* * * * *"),
        documents=dict(documents),
        pause_states=None if pause_states == "zammad" else frozenset(pause_states),
        urgent=frozenset(plans.get("notifications", {}).get("urgent", ("emergency",))),
        routing=RoutingRules(
            emergency=_route(routing.get("emergency")),
            categories={name: _route(rule) for name, rule in routing.get("categories", {}).items()},  # type: ignore[misc]
            plans={name: _route(rule) for name, rule in routing.get("plans", {}).items()},  # type: ignore[misc]
        ),
        calendar_specs={name: _calendar_spec(name, cal, timezone) for name, cal in hours["calendars"].items()},
        version=version,
    )


def _route(rule: Mapping[str, Any] | None) -> RouteRule | None:
    return None if rule is None else RouteRule(rule.get("group"), rule.get("owner_role"))


def _calendar_spec(name: str, calendar: Mapping[str, Any], default_timezone: str) -> CalendarSpec:
    weekly_spec = calendar["weekly"]
    weekly: dict[int, tuple[Window, ...]] = {}
    if weekly_spec == "24/7":
        weekly = {day: (Window(0, 1440),) for day in range(7)}
    else:
        for key, windows in weekly_spec.items():
            for day in _days(key) or ():
                weekly[day] = _windows(windows)
    return CalendarSpec(
        name=name,
        title=calendar.get("title", name),
        timezone=calendar.get("timezone", default_timezone),
        weekly=weekly,
        always_open=weekly_spec == "24/7",
        holidays=tuple((h["country"], h.get("subdivision")) for h in calendar.get("holidays", ())),
        closed=tuple(dt.date.fromisoformat(d) for d in calendar.get("closed", ())),
        special_days={dt.date.fromisoformat(d["date"]): _windows(d["windows"])
                      for d in calendar.get("special_days", ())},
    )


def _plan(name: str, plan: Mapping[str, Any], channels: Mapping[str, str], default_calendar: str,
          default_ladder: tuple[EscalationStep, ...]) -> Plan:
    first_response = plan["first_response"]
    return Plan(
        name=name,
        title=plan["title"],
        rank=plan["rank"],
        paid=plan["paid"],
        first_response_minutes=None if first_response is None else parse_duration(first_response),
        emergency_24_7=plan.get("emergency_24_7", False),
        account_manager_roles=tuple(plan.get("account_managers", ())),
        customised_advice=plan.get("customised_advice", False),
        open_to_partners=plan.get("open_to_partners", False),
        vip_code=plan.get("vip_code", False),
        minimum_commitment_months=plan.get("minimum_commitment_months", 0),
        channel_calendars={**channels, **plan.get("channels", {})},
        default_calendar=plan.get("default_calendar", default_calendar),
        priority=plan["priority"],
        escalation=_ladder(plan["escalation"]) if "escalation" in plan else default_ladder,
    )


def _ladder(steps: Iterable[Mapping[str, Any]]) -> tuple[EscalationStep, ...]:
    return tuple(
        EscalationStep(
            name=step["name"],
            at_percent=float(step["at"].rstrip("%")),
            tags=tuple(step.get("tags", ())),
            priority=step.get("priority"),
            notify=tuple(step.get("notify", ())),
            id=step.get("id", ""),
        )
        for step in steps
    )


def _windows(windows: Iterable[Mapping[str, str]]) -> tuple[Window, ...]:
    return tuple(Window(_minutes(w["open"]), _minutes(w["close"], closing=True)) for w in windows)  # type: ignore[arg-type]


def _calendar(name: str, calendar: Mapping[str, Any], default_timezone: str) -> Any:
    from plugin.calendar import (
        BusinessCalendar,  # imported late: tests may stand in for it
    )

    weekly_spec = calendar["weekly"]
    weekly: dict[int, tuple[Window, ...]] = {}
    if weekly_spec == "24/7":
        weekly = {day: (Window(0, 1440),) for day in range(7)}
    else:
        for key, windows in weekly_spec.items():
            for day in _days(key) or ():
                weekly[day] = _windows(windows)
    closed_dates = frozenset(dt.date.fromisoformat(d) for d in calendar.get("closed", ()))
    public_holidays = tuple(
        holidays_lib.country_holidays(entry["country"], subdiv=entry.get("subdivision"))
        for entry in calendar.get("holidays", ())
    )
    special_days = {
        dt.date.fromisoformat(special["date"]): _windows(special["windows"])
        for special in calendar.get("special_days", ())
    }
    return BusinessCalendar(
        calendar.get("timezone", default_timezone),
        weekly,
        closed=_closed(closed_dates, public_holidays),
        special_days=special_days,
        name=name,
    )


def _closed(dates: frozenset[dt.date], public_holidays: tuple[Any, ...]) -> Callable[[dt.date], bool]:
    """Closed on the listed dates and on public holidays (holiday years expand lazily on ``in``)."""

    def closed(day: dt.date) -> bool:
        return day in dates or any(day in h for h in public_holidays)

    return closed
