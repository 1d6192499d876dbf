"""What the schemas cannot say: references between files, time zones, holiday countries,
real dates, windows that close before they open or overlap, ranks and escalation order.

Tolerates data the schema rejected (already reported): every check looks only at values of
the right shape.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_lib
from croniter import croniter

from plugin.model import GROUP_PREFIX, OWNER
from plugin.policy.errors import PolicyError
from plugin.policy.read import Document
from plugin.policy.values import (
    DAYS,
    MAX_TARGET_MINUTES,
    _days,
    _is_date,
    _items,
    _mapping,
    _minutes,
    _percent,
    parse_duration,
)
from plugin.yamlsource import Path as DocPath
from plugin.yamlsource import did_you_mean


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _unknown(kind: str, name: str, known: list[str], where: str) -> str:
    kinds = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    listing = f"the {kinds}{where} are: {', '.join(known)}" if known else f"there are no {kinds}{where}"
    return f'unknown {kind} "{name}"{did_you_mean(name, known)}; {listing}'


class CrossChecks:
    """What the schemas cannot say. Tolerates data the schema rejected (already reported)."""

    def __init__(self, documents: Mapping[str, Document]) -> None:
        self.hours = documents["hours.yaml"]
        self.plans = documents["plans.yaml"]
        self.scope = documents["scope.yaml"]
        self.errors: list[PolicyError] = []
        #: Ids of every escalation step (for notifications.urgent).
        self.step_ids: set[str] = set()
        plans_data = _mapping(documents["plans.yaml"].data).get("plans")
        self.plan_names: list[str] | None = list(plans_data) if isinstance(plans_data, dict) else None
        calendars = _mapping(self.hours.data).get("calendars")
        #: Names other files may refer to; ``None`` when unknown (the file itself is broken).
        self.calendars: list[str] | None = list(calendars) if isinstance(calendars, dict) else None
        plans = _mapping(self.plans.data)
        roles = plans.get("roles", {}) if isinstance(self.plans.data, dict) else None
        self.roles: list[str] | None = list(roles) if isinstance(roles, dict) else None
        categories = _mapping(self.scope.data).get("categories")
        self.categories: list[str] | None = list(categories) if isinstance(categories, dict) else None

    def run(self) -> list[PolicyError]:
        self.check_hours()
        self.check_plans()
        self.check_scope()
        self.check_urgent()
        return self.errors

    def check_urgent(self) -> None:
        doc = self.plans
        for i, item in enumerate(_items(_mapping(_mapping(doc.data).get("notifications")).get("urgent"))):
            if isinstance(item, str) and item != "emergency" and item not in self.step_ids:
                known = ["emergency", *sorted(self.step_ids)]
                self.add(doc, ("notifications", "urgent", i),
                         f'unknown "{item}"{did_you_mean(item, known)}; expected emergency or a step id: '
                         f'{", ".join(known)}')

    def add(self, doc: Document, path: DocPath, message: str, *, key: bool = False) -> None:
        self.errors.append(doc.error(path, message, key=key))

    # ------------------------------------------------------------------ hours.yaml

    def check_hours(self) -> None:
        doc = self.hours
        data = _mapping(doc.data)
        self.check_timezone(doc, ("timezone",), data.get("timezone"))
        for name, calendar in _mapping(data.get("calendars")).items():
            if not isinstance(calendar, dict):
                continue
            at: DocPath = ("calendars", name)
            self.check_timezone(doc, at + ("timezone",), calendar.get("timezone"))
            well_formed, is_open = self.check_weekly(doc, at + ("weekly",), calendar.get("weekly"))
            for i, entry in enumerate(_items(calendar.get("holidays"))):
                self.check_holidays(doc, at + ("holidays", i), entry)
            for i, day in enumerate(_items(calendar.get("closed"))):
                self.check_date(doc, at + ("closed", i), day)
            first: dict[str, int] = {}
            for i, special in enumerate(_items(calendar.get("special_days"))):
                if not isinstance(special, dict):
                    continue
                day = special.get("date")
                if self.check_date(doc, at + ("special_days", i, "date"), day):
                    if day in first:
                        line = doc.line_of(at + ("special_days", first[day], "date"))
                        self.add(doc, at + ("special_days", i, "date"),
                                 f"special day {day} is already given on line {line}")
                    first.setdefault(day, i)
                ok, count = self.check_windows(doc, at + ("special_days", i, "windows"), special.get("windows"))
                well_formed &= ok
                is_open |= count > 0
            if well_formed and not is_open:
                self.add(doc, at + ("weekly",), f'calendar "{name}" is never open: it has no opening window on any day')

    def check_timezone(self, doc: Document, path: DocPath, name: Any) -> None:
        if not isinstance(name, str) or not name:
            return
        try:
            ZoneInfo(name)
            return
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        self.add(doc, path, f'unknown time zone "{name}"{did_you_mean(name, sorted(_zones()))}; '
                            'expected an IANA name like "Europe/Zurich"')

    def check_weekly(self, doc: Document, path: DocPath, weekly: Any) -> tuple[bool, bool]:
        """Check the weekly windows; returns (well formed, has an opening window)."""
        if weekly == "24/7":
            return True, True
        if not isinstance(weekly, dict):
            return False, False
        covered: dict[int, str] = {}
        well_formed, is_open = True, False
        for key, windows in weekly.items():
            days = _days(key)
            if days is None:  # not a day: the schema said so
                well_formed = False
                continue
            if not days:
                self.add(doc, path + (key,), f'day range "{key}" goes backwards; write ranges in week order '
                                             "(mon-fri, sat-sun) or list the days separately", key=True)
                well_formed = False
                continue
            clashes: dict[str, list[str]] = {}
            for day in days:
                if day in covered:
                    clashes.setdefault(covered[day], []).append(DAYS[day])
                covered.setdefault(day, key)
            for other, names in clashes.items():
                line = doc.line_of(path + (other,), key=True)
                self.add(doc, path + (key,), f"{'day' if len(names) == 1 else 'days'} {', '.join(names)} "
                                             f'already covered by "{other}" on line {line}', key=True)
            ok, count = self.check_windows(doc, path + (key,), windows)
            well_formed &= ok
            is_open |= count > 0
        return well_formed, is_open

    def check_windows(self, doc: Document, path: DocPath, windows: Any) -> tuple[bool, int]:
        """Close after open, no overlaps; returns (well formed, number of good windows)."""
        if not isinstance(windows, list):
            return False, 0
        ok = True
        good: list[tuple[int, int, int]] = []
        for i, window in enumerate(windows):
            window = _mapping(window)
            opens, closes = _minutes(window.get("open")), _minutes(window.get("close"), closing=True)
            if opens is None or closes is None:
                ok = False
                continue
            if closes <= opens:
                self.add(doc, path + (i, "close"),
                         f'closes at "{window["close"]}", {"when" if closes == opens else "before"} it opens at '
                         f'"{window["open"]}"; a window must close after it opens on the same day '
                         '(for a window past midnight, close at "24:00" and open again at "00:00")')
                ok = False
                continue
            good.append((opens, closes, i))
        good.sort()
        latest: tuple[int, int, int] | None = None
        for window in good:
            if latest is not None and window[0] < latest[1]:
                other = windows[latest[2]]
                line = doc.line_of(path + (latest[2],))
                self.add(doc, path + (window[2], "open"),
                         f'window "{windows[window[2]]["open"]}"-"{windows[window[2]]["close"]}" overlaps '
                         f'"{other["open"]}"-"{other["close"]}" (line {line})')
                ok = False
            if latest is None or window[1] > latest[1]:
                latest = window
        return ok, len(good)

    def check_holidays(self, doc: Document, path: DocPath, entry: Any) -> None:
        entry = _mapping(entry)
        country, subdivision = entry.get("country"), entry.get("subdivision")
        if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2,3}", country):
            return
        supported = holidays_lib.list_supported_countries()
        if country not in supported:
            self.add(doc, path + ("country",),
                     f'unknown holiday country "{country}"{did_you_mean(country, supported)}; expected an ISO 3166 '
                     'country code the holidays library supports, like "CH"')
            return
        if not isinstance(subdivision, str) or not subdivision:
            return
        try:
            holidays_lib.country_holidays(country, subdiv=subdivision)
        except (NotImplementedError, ValueError, KeyError):
            known = supported[country]
            listing = f"expected one of: {', '.join(known)}" if known else f"{country} has no subdivisions"
            self.add(doc, path + ("subdivision",), f'unknown subdivision "{subdivision}" of {country}; {listing}')

    def check_date(self, doc: Document, path: DocPath, text: Any) -> bool:
        """True when ``text`` is a real date; a malformed one was reported by the schema."""
        if not _is_date(text):
            return False
        try:
            dt.date.fromisoformat(text)
            return True
        except ValueError as error:
            self.add(doc, path, f'"{text}" is not a date: {error}')
            return False

    # ------------------------------------------------------------------ plans.yaml

    def check_calendar(self, doc: Document, path: DocPath, name: Any) -> None:
        if isinstance(name, str) and self.calendars is not None and name not in self.calendars:
            self.add(doc, path, _unknown("calendar", name, self.calendars, " in hours.yaml"))

    def check_category(self, doc: Document, path: DocPath, name: Any, *, key: bool = False) -> None:
        if isinstance(name, str) and self.categories is not None and name not in self.categories:
            self.add(doc, path, _unknown("category", name, self.categories, ""), key=key)

    def check_role(self, doc: Document, path: DocPath, name: Any) -> None:
        if isinstance(name, str) and self.roles is not None and name not in self.roles:
            self.add(doc, path, _unknown("role", name, self.roles, " in plans.yaml"))

    def check_plans(self) -> None:
        doc = self.plans
        data = _mapping(doc.data)
        plans = data.get("plans")
        default = data.get("default_plan")
        if isinstance(default, str) and isinstance(plans, dict) and default not in plans:
            self.add(doc, ("default_plan",), _unknown("plan", default, list(plans), ""))
        for channel, calendar in _mapping(data.get("channels")).items():
            self.check_calendar(doc, ("channels", channel), calendar)
        self.check_calendar(doc, ("default_calendar",), data.get("default_calendar"))
        for name, role in _mapping(data.get("roles")).items():
            self.check_calendar(doc, ("roles", name, "calendar"), _mapping(role).get("calendar"))
            self.check_cron(doc, ("roles", name, "digest"), _mapping(role).get("digest"), "0 9 * * mon-fri")
        escalation = _mapping(data.get("escalation"))
        self.check_cron(doc, ("escalation", "sweep"), escalation.get("sweep"), "* * * * *")
        self.check_ladder(doc, ("escalation", "ladder"), escalation.get("ladder"))
        ranks: dict[int, str] = {}
        for name, plan in _mapping(plans).items():
            if not isinstance(plan, dict):
                continue
            at: DocPath = ("plans", name)
            rank = plan.get("rank")
            if type(rank) is int:
                if rank in ranks:
                    line = doc.line_of(("plans", ranks[rank], "rank"))
                    self.add(doc, at + ("rank",), f'rank {rank} is also the rank of plan "{ranks[rank]}" '
                                                  f"(line {line}); each plan needs its own rank")
                ranks.setdefault(rank, name)
            try:
                minutes: int | None = parse_duration(plan.get("first_response"))  # type: ignore[arg-type]
            except ValueError:  # null, or malformed: the schema decides
                minutes = None
            if minutes == 0:
                self.add(doc, at + ("first_response",), "must be more than 0 minutes; use null for no guarantee")
            elif minutes is not None and minutes > MAX_TARGET_MINUTES:
                self.add(doc, at + ("first_response",),
                         f"at most {MAX_TARGET_MINUTES // 60}h (a year of round-the-clock time); got {minutes // 60}h")
            for i, role in enumerate(_items(plan.get("account_managers"))):
                self.check_role(doc, at + ("account_managers", i), role)
            for channel, calendar in _mapping(plan.get("channels")).items():
                self.check_calendar(doc, at + ("channels", channel), calendar)
            self.check_calendar(doc, at + ("default_calendar",), plan.get("default_calendar"))
            self.check_ladder(doc, at + ("escalation",), plan.get("escalation"))

    def check_cron(self, doc: Document, path: DocPath, schedule: Any, example: str) -> None:
        if isinstance(schedule, str) and not croniter.is_valid(schedule):
            self.add(doc, path, f'"{schedule}" is not a cron schedule; expected five fields like "{example}"')

    def check_ladder(self, doc: Document, path: DocPath, ladder: Any) -> None:
        previous: tuple[float, int] | None = None
        names: dict[str, int] = {}
        for i, step in enumerate(_items(ladder)):
            if not isinstance(step, dict):
                continue
            name = step.get("name")
            if isinstance(name, str) and name:
                if name in names:
                    line = doc.line_of(path + (names[name], "name"))
                    self.add(doc, path + (i, "name"), f'step "{name}" is already on the ladder (line {line})')
                names.setdefault(name, i)
            at = _percent(step.get("at"))
            if at is not None:
                if at <= 0:
                    self.add(doc, path + (i, "at"), "must be more than 0%")
                elif previous is not None and at <= previous[0]:
                    line = doc.line_of(path + (previous[1], "at"))
                    self.add(doc, path + (i, "at"), f"steps must be in increasing order of at: {step['at']} comes "
                                                    f"after {previous[0]:g}% (line {line})")
                if previous is None or at > previous[0]:
                    previous = (at, i)
            for j, target in enumerate(_items(step.get("notify"))):
                if target == OWNER:
                    continue
                if isinstance(target, str) and target.startswith(GROUP_PREFIX):
                    if not target[len(GROUP_PREFIX):].strip():
                        self.add(doc, path + (i, "notify", j), 'expected a group name after "group:"')
                    continue
                self.check_role(doc, path + (i, "notify", j), target)
            step_id = step.get("id", name)
            if isinstance(step_id, str):
                self.step_ids.add(step_id)

    # ------------------------------------------------------------------ scope.yaml

    def check_scope(self) -> None:
        doc = self.scope
        data = _mapping(doc.data)
        emergency = _mapping(data.get("emergency"))
        out_of_scope = _mapping(data.get("out_of_scope"))
        for i, category in enumerate(_items(emergency.get("categories"))):
            if not isinstance(category, str):
                continue
            if self.categories is not None and category not in self.categories:
                self.add(doc, ("emergency", "categories", i), _unknown("category", category, self.categories, ""))
            elif category in out_of_scope:
                line = doc.line_of(("out_of_scope", category), key=True)
                self.add(doc, ("emergency", "categories", i), f'category "{category}" is out of scope (line {line}) '
                                                              "and cannot qualify as an emergency")
        self.check_calendar(doc, ("emergency", "calendar"), emergency.get("calendar"))
        advice = data.get("advice")
        if isinstance(advice, dict):
            self.check_category(doc, ("advice", "category"), advice.get("category"))
            self.check_calendar(doc, ("advice", "calendar"), advice.get("calendar"))
            self.check_role(doc, ("advice", "owner_role"), advice.get("owner_role"))
        routing = _mapping(data.get("routing"))
        self.check_role(doc, ("routing", "emergency", "owner_role"), _mapping(routing.get("emergency")).get("owner_role"))
        for category, rule in _mapping(routing.get("categories")).items():
            self.check_category(doc, ("routing", "categories", category), category, key=True)
            self.check_role(doc, ("routing", "categories", category, "owner_role"), _mapping(rule).get("owner_role"))
        for plan, rule in _mapping(routing.get("plans")).items():
            if self.plan_names is not None and plan not in self.plan_names:
                self.add(doc, ("routing", "plans", plan), _unknown("plan", plan, self.plan_names, " in plans.yaml"),
                         key=True)
            self.check_role(doc, ("routing", "plans", plan, "owner_role"), _mapping(rule).get("owner_role"))
        for category in out_of_scope:
            if self.categories is not None and category not in self.categories:
                self.add(doc, ("out_of_scope", category), _unknown("category", category, self.categories, ""),
                         key=True)

