"""Ticket conditions, as triggers, SLAs and the condition search evaluate them.

One evaluator for Zammad's classic ``{"ticket.x": {"operator", "value"}}`` map and the
expert ``{"operator": "AND"|"OR"|"NOT", "conditions": [...]}`` tree (app/models/ticket/
selector/base.rb and selector/sql.rb build SQL from the same structure; the stand-in
evaluates it on the records):

- attributes: ``ticket.action`` (create/update), ``ticket.<column>`` (ids, names such as
  ``ticket.state``, custom attributes), ``ticket.tags``, ``article.<column>``,
  ``customer.<column>``, ``organization.<column>``, ``owner.<column>``;
- operators: ``is``, ``is not``, ``contains``, ``contains not``, ``starts with``,
  ``ends with``, ``contains all``, ``contains one``, ``contains all not``, ``contains one not``
  (tags), ``has changed``, ``is set``/``not set``, ``before (absolute)``/``after (absolute)``,
  ``before (relative)``/``after (relative)``, ``within last (relative)``/``within next (relative)``;
- ``pre_condition`` on user/organization ids: ``specific`` (default), ``current_user.id``,
  ``current_user.organization_id``, ``not_set``.
- triggers (app/models/ticket/perform_triggers... / trigger.rb): ``execution_condition_mode:
  selective`` runs an update trigger only when an attribute its conditions name changed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Mapping

from integrations.zammad_standin.store import parse_instant

log = logging.getLogger(__name__)

_RELATIVE_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400,
                   "year": 365 * 86400}

_SPECIAL = {"ticket.action", "ticket.tags", "article.action"}


def _flatten(condition: Any) -> list[tuple[str, dict[str, Any]]]:
    """All (attribute, spec) leaves of a condition (classic or expert)."""
    if isinstance(condition, dict) and "conditions" in condition and "operator" in condition:
        out: list[tuple[str, dict[str, Any]]] = []
        for child in condition["conditions"] or []:
            out.extend(_flatten(child))
        return out
    if isinstance(condition, dict) and "name" in condition and "operator" in condition:
        return [(condition["name"], condition)]
    if isinstance(condition, dict):
        return [(k, v) for k, v in condition.items() if isinstance(v, dict)]
    return []


@dataclass
class Context:
    action: str
    ticket: dict[str, Any]
    article: dict[str, Any] | None
    user: dict[str, Any] | None
    changes: set[str]
    before: dict[str, Any] | None
    tags: list[str]
    state: Any
    now: dt.datetime | None = None

    def value(self, attribute: str) -> Any:
        obj, _, column = attribute.partition(".")
        if attribute == "ticket.action":
            return self.action
        if attribute == "ticket.tags":
            return self.tags
        if obj == "ticket":
            return self.ticket.get(column)
        if obj == "article":
            return (self.article or {}).get(column)
        if obj in ("customer", "owner"):
            user = self.state.find("users", self.ticket.get(f"{obj}_id"))
            return (self.state.with_names("users", user) if user else {}).get(column)
        if obj == "organization":
            org = self.state.find("organizations", self.ticket.get("organization_id"))
            return (self.state.with_names("organizations", org) if org else {}).get(column)
        if obj == "session" and self.user:
            return self.user.get(column)
        return None

    def changed(self, attribute: str) -> bool:
        obj, _, column = attribute.partition(".")
        if attribute == "ticket.tags":
            return "tags" in self.changes
        if obj == "ticket":
            base = column[:-3] if column.endswith("_id") else column
            return column in self.changes or f"{base}_id" in self.changes
        if obj == "article":
            return self.article is not None
        return False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _check(ctx: Context, attribute: str, spec: Mapping[str, Any]) -> bool:
    operator = str(spec.get("operator") or "is").lower()
    current = ctx.value(attribute)
    wanted = spec.get("value")
    pre = spec.get("pre_condition")
    if pre == "current_user.id":
        wanted = [ctx.user["id"]] if ctx.user else []
    elif pre == "current_user.organization_id":
        wanted = [ctx.user.get("organization_id")] if ctx.user else []
    elif pre == "not_set":
        wanted = [None]
    if attribute == "ticket.tags":
        tags = {t.lower() for t in ctx.tags}
        values = {v.strip().lower() for v in (wanted.split(",") if isinstance(wanted, str) else _as_list(wanted))
                  if str(v).strip()}
        if operator in ("contains all", "contains"):
            return values <= tags
        if operator == "contains one":
            return bool(values & tags)
        if operator in ("contains all not", "contains not"):
            return not (values <= tags) if operator == "contains all not" else not (values & tags)
        if operator == "contains one not":
            return not (values & tags)
        if operator == "has changed":
            return ctx.changed(attribute)
        return False
    if operator == "has changed":
        return ctx.changed(attribute)
    if operator in ("has reached", "has reached warning"):
        # time events (ticket.rb#process_escalation): escalation_at -> escalation(_warning),
        # pending_time -> reminder_reached
        if attribute == "ticket.pending_time":
            return ctx.action == "reminder_reached"
        return ctx.action == ("escalation" if operator == "has reached" else "escalation_warning")
    if operator in ("is set",):
        return current not in (None, "", [])
    if operator in ("not set", "is not set"):
        return current in (None, "", [])
    candidates = {_text(v) for v in _as_list(wanted)}
    if operator == "is":
        return _text(current) in candidates if candidates else current in (None, "")
    if operator == "is not":
        return _text(current) not in candidates if candidates else current not in (None, "")
    text = _text(current).lower()
    needles = [_text(v).lower() for v in _as_list(wanted)]
    if operator == "contains":
        return any(n in text for n in needles)
    if operator == "contains not":
        return not any(n in text for n in needles)
    if operator == "starts with":
        return any(text.startswith(n) for n in needles)
    if operator == "ends with":
        return any(text.endswith(n) for n in needles)
    if operator in ("contains all", "contains one", "contains all not", "contains one not"):
        have = {_text(v).lower() for v in _as_list(current)}
        want = set(needles)
        return {"contains all": want <= have, "contains one": bool(want & have),
                "contains all not": not want <= have, "contains one not": not want & have}[operator]
    if operator.endswith("(absolute)") or operator.endswith("(relative)"):
        return _check_time(ctx, operator, current, spec)
    log.warning("trigger condition operator %r is not supported by the stand-in; treated as false", operator)
    return False


def evaluate(ctx: Context, condition: Any) -> bool:
    if isinstance(condition, dict) and "conditions" in condition and "operator" in condition \
            and "name" not in condition:
        results = [evaluate(ctx, child) for child in condition["conditions"] or []]
        op = str(condition["operator"]).upper()
        if op == "OR":
            return any(results)
        if op == "NOT":
            return not any(results)
        return all(results)
    if isinstance(condition, dict) and "name" in condition and "operator" in condition:
        return _check(ctx, condition["name"], condition)
    return all(_check(ctx, attr, spec) for attr, spec in _flatten(condition))


TIME_EVENTS = frozenset({"escalation", "escalation_warning", "reminder_reached"})


def trigger_applies(ctx: Context, trigger: Mapping[str, Any]) -> bool:
    """Action triggers run on create/update transactions, time triggers on time events."""
    activator = trigger.get("activator", "action")
    if not trigger.get("active") or activator != ("time" if ctx.action in TIME_EVENTS else "action"):
        return False
    condition = trigger.get("condition") or {}
    if ctx.action == "update" and trigger.get("execution_condition_mode", "selective") == "selective":
        attrs = [a for a, _spec in _flatten(condition) if a not in ("ticket.action", "article.action")]
        if attrs and not any(ctx.changed(a) for a in attrs):
            return False
    return evaluate(ctx, condition)



def _check_time(ctx: Context, operator: str, current: Any, spec: Mapping[str, Any]) -> bool:
    """Time operators of app/models/ticket/selector/sql.rb: absolute instants, or a range of
    ``value`` ``range`` units (minute, hour, day, week, month, year) before/after now."""
    moment = parse_instant(current) if current not in (None, "") else None
    if moment is None:
        return False
    now = ctx.now or dt.datetime.now(dt.timezone.utc)
    if operator.endswith("(absolute)"):
        limit = parse_instant(spec.get("value"))
        if limit is None:
            return False
        return moment <= limit if operator.startswith("before") else moment >= limit  # selector/sql.rb: <= / >=
    seconds = float(spec.get("value") or 0) * _RELATIVE_UNITS.get(str(spec.get("range") or "day"), 86400)
    delta = dt.timedelta(seconds=seconds)
    if operator == "before (relative)":
        return moment < now - delta
    if operator == "after (relative)":
        return moment > now + delta
    if operator == "within last (relative)":
        return now - delta <= moment <= now
    if operator == "within next (relative)":
        return now <= moment <= now + delta
    return False


def ticket_context(state: Any, ticket: Mapping[str, Any], *, now: dt.datetime | None = None) -> Context:
    """A context for evaluating a condition on a stored ticket (SLA selection, condition search)."""
    return Context(action="", ticket=state.with_names("tickets", ticket), article=None, user=None, changes=set(),
                   before=None, tags=state.tags_of("Ticket", ticket["id"]), state=state, now=now)


def ticket_matches(state: Any, ticket: Mapping[str, Any], condition: Any, *, now: dt.datetime | None = None) -> bool:
    """Whether a stored ticket meets a selector condition (an empty condition matches all)."""
    if not condition:
        return True
    return evaluate(ticket_context(state, ticket, now=now), condition)
