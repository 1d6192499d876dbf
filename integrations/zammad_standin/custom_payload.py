"""A webhook's custom payload, rendered as Zammad renders it.

Follows app/jobs/trigger_webhook_job/custom_payload.rb, custom_payload/parser.rb and
custom_payload/validator.rb (Zammad 6.x):

- placeholders are ``#{object.method.method}`` with ``[a-z_.?!]`` only; the objects are
  the job's tracks: ``ticket`` and, when the event has one, ``article``
  (``notification`` is not modelled by the stand-in: it renders as "no such object");
- each method must be allowed for the class reached so far: a record's columns (custom
  attributes included; a User's last_login, login_failed, password, preferences,
  group_ids and authorization_ids are denied) plus the track's associations (Ticket:
  created_by, customer, group, organization, owner, priority, state, updated_by;
  Article: created_by, updated_by, type, sender, origin_by; User: fullname); on a time
  (ActiveSupport::TimeWithZone) any method it has (the stand-in knows xmlschema,
  iso8601, to_s, to_i);
- a nil value renders as ``""``; a value of another class, an unknown method or object
  renders as the text ``#{ticket.x / no such method}`` (or ``/ no such object``,
  ``/ missing method``);
- replacement: a placeholder that is a whole JSON string (``"#{ticket.id}"``) becomes a
  JSON string for strings and times and the JSON value otherwise (a number, true/false);
  inside a longer string it is inserted as escaped text;
- the result must parse as JSON, else the payload is ``{"error": <message>}``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from integrations.zammad_standin.store import parse_instant

_PLACEHOLDER = re.compile(r"#\{([a-z_.?!]+)\}")
DENIED_USER_ATTRIBUTES = frozenset({"last_login", "login_failed", "password", "preferences", "group_ids",
                                    "authorization_ids"})
#: track class -> association method -> (table, class)
ASSOCIATIONS: dict[str, dict[str, tuple[str, str]]] = {
    "Ticket": {"created_by": ("users", "User"), "updated_by": ("users", "User"), "customer": ("users", "User"),
               "owner": ("users", "User"), "group": ("groups", "Group"),
               "organization": ("organizations", "Organization"), "priority": ("ticket_priorities", "Ticket::Priority"),
               "state": ("ticket_states", "Ticket::State")},
    "Ticket::Article": {"created_by": ("users", "User"), "updated_by": ("users", "User"),
                        "origin_by": ("users", "User"), "type": ("article_types", "Ticket::Article::Type"),
                        "sender": ("article_senders", "Ticket::Article::Sender")},
}
TIME_METHODS = ("xmlschema", "iso8601", "to_s", "to_i")


class _Time:
    """A timestamp column as ActiveSupport::TimeWithZone."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment.astimezone(dt.timezone.utc)

    def call(self, method: str) -> Any:
        if method in ("xmlschema", "iso8601"):
            return self.moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if method == "to_s":
            return self.moment.strftime("%Y-%m-%d %H:%M:%S UTC")
        return int(self.moment.timestamp())

    def __str__(self) -> str:
        return self.call("to_s")


def _is_time_column(name: str) -> bool:
    return name.endswith("_at") or name in ("pending_time", "last_login", "last_sync")


class _Record:
    def __init__(self, state: Any, table: str, klass: str, record: dict[str, Any]) -> None:
        self.state, self.table, self.klass, self.record = state, table, klass, record

    def allowed(self, method: str) -> bool:
        if method in ASSOCIATIONS.get(self.klass, {}):
            return True
        if self.klass == "User" and method == "fullname":
            return True
        if self.klass == "User" and method in DENIED_USER_ATTRIBUTES:
            return False
        return method in self.state.columns(self.table)

    def call(self, method: str) -> Any:
        association = ASSOCIATIONS.get(self.klass, {}).get(method)
        if association is not None:
            table, klass = association
            target = self.state.find(table, self.record.get(f"{method}_id"))
            return _Record(self.state, table, klass, target) if target is not None else None
        if method == "fullname":
            name = f"{self.record.get('firstname') or ''} {self.record.get('lastname') or ''}".strip()
            return name or self.record.get("email") or self.record.get("login")
        value = self.record.get(method)
        if value not in (None, "") and _is_time_column(method):
            moment = parse_instant(value)
            return _Time(moment) if moment else value
        return value


def _resolve(variable: str, tracks: dict[str, Any]) -> Any:
    """The value of one placeholder, or Zammad's error text for it."""
    methods = variable.split(".")
    obj = methods.pop(0)
    if not obj:
        return "#{no object provided}"
    if obj not in tracks:
        return f"#{{{obj} / no such object}}"
    if not methods:
        return f"#{{{obj} / missing method}}"
    reference, display = tracks[obj], obj
    for index, method in enumerate(methods):
        display = f"{display}.{method}"
        if not method:
            return f"#{{{display} / missing method}}"
        if isinstance(reference, _Time):
            if method not in TIME_METHODS:
                return f"#{{{display} / no such method}}"
            value: Any = reference.call(method)
        elif isinstance(reference, _Record):
            if not reference.allowed(method):
                return f"#{{{display} / no such method}}"
            value = reference.call(method)
        else:
            return f"#{{{display} / no such method}}"  # methods of plain values are not modelled
        if value is None:
            return ""
        if index == len(methods) - 1:
            if isinstance(value, (_Record,)):
                return f"#{{{display} / no such method}}"
            return value
        reference = value
    return ""


def _escape(value: Any) -> str:
    text = str(value)
    for raw, escaped in (('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\f", "\\f"), ("\v", "\\v")):
        text = text.replace(raw, escaped)
    return text


def render_custom_payload(state: Any, template: str | None, ticket: dict[str, Any] | None,
                          article: dict[str, Any] | None) -> Any:
    """The JSON value Zammad posts for a webhook with ``customized_payload``."""
    if not template:
        return {}
    tracks: dict[str, Any] = {}
    if ticket is not None:
        tracks["ticket"] = _Record(state, "tickets", "Ticket", ticket)
    if article is not None:
        tracks["article"] = _Record(state, "articles", "Ticket::Article", article)
    text = str(template)
    for variable in dict.fromkeys(_PLACEHOLDER.findall(text)):
        value = _resolve(variable, tracks)
        string_like = isinstance(value, (str, _Time))
        pattern = re.compile(r'("#\{' + re.escape(variable) + r'\}"|#\{' + re.escape(variable) + r"\})")

        def replace(match: re.Match[str], value: Any = value, string_like: bool = string_like) -> str:
            if match.group(0).startswith('"'):
                return f'"{_escape(value)}"' if string_like else json.dumps(value)
            return _escape(value)

        text = pattern.sub(replace, text)
    try:
        return json.loads(text)
    except ValueError as exc:
        return {"error": str(exc)}
