"""Load, validate and cross-check ``policies/*.yaml`` into a `plugin.model.Policies`.

Every policy file goes through one function, `_load_document`, with its JSON Schema
(Draft 2020-12, ``policies/<name>.schema.json``, checked against the metaschema). Then
`_CrossChecks` checks what a schema cannot: references between files, time zones,
holiday countries, real dates, windows that close before they open or overlap, ranks and
escalation order. Every problem becomes a `PolicyError` that points at a file, a line and
a column::

    policies/plans.yaml:89:21: $.plans.pro.first_response: expected a duration like "2h", ...

`validate_policies` returns all of them; `load_policies` raises them together as
`PolicyErrors`, or builds the `Policies` when there are none.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holidays_lib
from croniter import croniter
from jsonschema import Draft202012Validator

from plugin.errors import UserError
from plugin.model import (
    EscalationStep,
    OutOfScope,
    Plan,
    PlanChanges,
    Policies,
    Role,
    ScopeRules,
    Window,
)
from plugin.yamlsource import (
    Source,
    YamlSyntaxError,
    did_you_mean,
    expected,
    json_path,
    load_yaml,
    schema_problems,
)
from plugin.yamlsource import Path as DocPath

__all__ = ["PolicyError", "PolicyErrors", "load_policies", "parse_duration", "validate_policies", "SCHEMA_DIR"]

#: The policy files, in the order they are read.
FILES = ("hours.yaml", "plans.yaml", "scope.yaml")
#: Where the schemas live: they describe what this code accepts, so they ship with it.
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "policies"

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DURATION = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")


# --------------------------------------------------------------------------- errors


class PolicyError(Exception):
    """One problem in a policy file, pointing at the file, line and column (1-based)."""

    def __init__(self, file: str, line: int, column: int, path: str, message: str) -> None:
        super().__init__(file, line, column, path, message)
        self.file = file
        self.line = line
        self.column = column
        #: JSON path of the value concerned, e.g. ``$.plans.pro.first_response``.
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"

    def __repr__(self) -> str:
        return f"PolicyError({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyError) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.path, self.message)


class PolicyErrors(UserError):
    """Raised by `load_policies`: every problem found, sorted by file and line."""

    def __init__(self, errors: Iterable[PolicyError]) -> None:
        self.errors: list[PolicyError] = _sorted(errors)
        super().__init__(self.errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _sorted(errors: Iterable[PolicyError]) -> list[PolicyError]:
    unique = list(dict.fromkeys(errors))  # a problem found twice is reported once
    return sorted(unique, key=lambda e: (e.file, e.line, e.column))


# --------------------------------------------------------------------------- public API


#: The longest first-response target a policy may set: a year of 24/7 open time. Larger
#: ones are typos, and would run past the calendar's horizon.
MAX_TARGET_MINUTES = 366 * 24 * 60


def parse_duration(text: str) -> int:
    """Minutes in a duration: ``"4h"`` -> 240, ``"90m"`` -> 90, ``"1h30m"`` -> 90.

    :raises ValueError: if ``text`` is not hours and/or minutes in that form.
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise ValueError(f'expected a duration like "2h", "90m" or "1h30m"; got {text!r}')
    hours, minutes = match.groups()
    return int(hours or 0) * 60 + int(minutes or 0)


def validate_policies(directory: str | os.PathLike[str]) -> list[PolicyError]:
    """Every problem in the policy directory, sorted by file and line; ``[]`` when valid."""
    return _check(directory)[1]


def load_policies(directory: str | os.PathLike[str]) -> Policies:
    """Read ``hours.yaml``, ``plans.yaml`` and ``scope.yaml`` from ``directory``.

    :raises PolicyErrors: listing every problem, when there is any.
    """
    documents, errors = _check(directory)
    if errors:
        raise PolicyErrors(errors)
    return _build(os.fspath(directory), {name: doc.data for name, doc in documents.items()})


# --------------------------------------------------------------------------- one file


@dataclass
class _Document:
    """One policy file as read: where it is, and its YAML (``None`` if unreadable)."""

    name: str
    file: str
    source: Source | None = None

    @property
    def data(self) -> Any:
        return self.source.data if self.source is not None else None

    def error(self, path: DocPath, message: str, *, key: bool = False) -> PolicyError:
        line, column = self.source.position(path, key=key) if self.source is not None else (1, 1)
        return PolicyError(self.file, line, column, json_path(path), message)

    def line_of(self, path: DocPath, *, key: bool = False) -> int:
        return self.error(path, "", key=key).line


@lru_cache(maxsize=None)
def _schema(name: str) -> tuple[dict[str, Any], Draft202012Validator]:
    """The schema for policy file ``name``, checked against the Draft 2020-12 metaschema."""
    from plugin.bundled import schema_text  # a package resource: works from a wheel too

    schema = json.loads(schema_text(name))
    Draft202012Validator.check_schema(schema)  # a broken schema is a bug: let it raise
    return schema, Draft202012Validator(schema)


def _load_document(directory: str, name: str) -> tuple[_Document, list[PolicyError]]:
    """Read, parse and schema-check one policy file; never raises for a bad file."""
    doc = _Document(name, os.path.join(directory, name))
    schema, validator = _schema(name)
    try:
        raw = Path(doc.file).read_bytes()
    except FileNotFoundError:
        where = "" if os.path.isdir(directory) else f" (there is no directory {directory})"
        return doc, [doc.error((), f"file not found{where}")]
    except OSError as error:
        return doc, [doc.error((), f"cannot read the file: {error.strerror or error}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        return doc, [PolicyError(doc.file, line, column, "$", "not UTF-8 text; save the file as UTF-8")]
    try:
        doc.source = load_yaml(text)
    except YamlSyntaxError as error:
        return doc, [PolicyError(doc.file, error.line, error.column, "$", error.message)]
    if doc.source.root is None:
        return doc, [doc.error((), f"the file is empty; expected {expected(schema)}")]
    problems = doc.source.problems + schema_problems(doc.source, validator)
    return doc, [PolicyError(doc.file, p.line, p.column, json_path(p.path), p.message) for p in problems]


# --------------------------------------------------------------------------- checks across values and files


def _check(directory: str | os.PathLike[str]) -> tuple[dict[str, _Document], list[PolicyError]]:
    directory = os.fspath(directory)
    documents: dict[str, _Document] = {}
    errors: list[PolicyError] = []
    for name in FILES:
        documents[name], found = _load_document(directory, name)
        errors.extend(found)
    errors.extend(_CrossChecks(documents).run())
    return documents, _sorted(errors)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _minutes(text: Any, *, closing: bool = False) -> int | None:
    """``"06:30"`` -> 390; ``"24:00"`` -> 1440 for a closing time; ``None`` if malformed."""
    if not isinstance(text, str):
        return None
    if closing and text == "24:00":
        return 1440
    match = _TIME.fullmatch(text)
    return int(match[1]) * 60 + int(match[2]) if match else None


def _days(key: str) -> list[int] | None:
    """``"mon-fri"`` -> [0..4]; ``None`` if not a day or range; [] for a backwards range."""
    first, _, last = key.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        return None
    start, end = DAYS.index(first), DAYS.index(last or first)
    return list(range(start, end + 1))


def _percent(text: Any) -> float | None:
    match = _PERCENT.fullmatch(text) if isinstance(text, str) else None
    return float(match[1]) if match else None


def _is_date(text: Any) -> bool:
    return isinstance(text, str) and _DATE.fullmatch(text) is not None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _unknown(kind: str, name: str, known: list[str], where: str) -> str:
    kinds = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
    listing = f"the {kinds}{where} are: {', '.join(known)}" if known else f"there are no {kinds}{where}"
    return f'unknown {kind} "{name}"{did_you_mean(name, known)}; {listing}'


class _CrossChecks:
    """What the schemas cannot say. Tolerates data the schema rejected (already reported)."""

    def __init__(self, documents: Mapping[str, _Document]) -> None:
        self.hours = documents["hours.yaml"]
        self.plans = documents["plans.yaml"]
        self.scope = documents["scope.yaml"]
        self.errors: list[PolicyError] = []
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
        return self.errors

    def add(self, doc: _Document, path: DocPath, message: str, *, key: bool = False) -> None:
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

    def check_timezone(self, doc: _Document, path: DocPath, name: Any) -> None:
        if not isinstance(name, str) or not name:
            return
        try:
            ZoneInfo(name)
            return
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        self.add(doc, path, f'unknown time zone "{name}"{did_you_mean(name, sorted(_zones()))}; '
                            'expected an IANA name like "Europe/Zurich"')

    def check_weekly(self, doc: _Document, path: DocPath, weekly: Any) -> tuple[bool, bool]:
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

    def check_windows(self, doc: _Document, path: DocPath, windows: Any) -> tuple[bool, int]:
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

    def check_holidays(self, doc: _Document, path: DocPath, entry: Any) -> None:
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

    def check_date(self, doc: _Document, path: DocPath, text: Any) -> bool:
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

    def check_calendar(self, doc: _Document, path: DocPath, name: Any) -> None:
        if isinstance(name, str) and self.calendars is not None and name not in self.calendars:
            self.add(doc, path, _unknown("calendar", name, self.calendars, " in hours.yaml"))

    def check_role(self, doc: _Document, path: DocPath, name: Any) -> None:
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
                minutes: int | None = parse_duration(plan.get("first_response"))
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

    def check_cron(self, doc: _Document, path: DocPath, schedule: Any, example: str) -> None:
        if isinstance(schedule, str) and not croniter.is_valid(schedule):
            self.add(doc, path, f'"{schedule}" is not a cron schedule; expected five fields like "{example}"')

    def check_ladder(self, doc: _Document, path: DocPath, ladder: Any) -> None:
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
            for j, role in enumerate(_items(step.get("notify"))):
                self.check_role(doc, path + (i, "notify", j), role)

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
        for category in out_of_scope:
            if self.categories is not None and category not in self.categories:
                self.add(doc, ("out_of_scope", category), _unknown("category", category, self.categories, ""),
                         key=True)


# --------------------------------------------------------------------------- building Policies


def _build(source: str, documents: Mapping[str, Any]) -> Policies:
    """The `Policies` from documents that passed every check (so no checking here)."""
    hours, plans, scope = (documents[name] for name in FILES)
    timezone = hours["timezone"]
    roles = {
        name: Role(name=name, title=role["title"], calendar=role["calendar"], pool=tuple(role.get("pool", ())),
                   capacity=role.get("capacity"), digest=role.get("digest"))
        for name, role in plans.get("roles", {}).items()
    }
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
        ),
        plan_changes=PlanChanges(**plans["plan_changes"]),
        escalation_sweep=escalation.get("sweep", "* * * * *"),
        documents=dict(documents),
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
        )
        for step in steps
    )


def _windows(windows: Iterable[Mapping[str, str]]) -> tuple[Window, ...]:
    return tuple(Window(_minutes(w["open"]), _minutes(w["close"], closing=True)) for w in windows)  # type: ignore[arg-type]


def _calendar(name: str, calendar: Mapping[str, Any], default_timezone: str) -> Any:
    from plugin.calendar import BusinessCalendar  # imported late: tests may stand in for it

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
