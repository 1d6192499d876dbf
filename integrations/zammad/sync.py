"""``policydesk sync``: make Zammad's own configuration match the policies.

::

    client = ZammadClient.from_env()
    plan = plan_sync(policies, client, endpoint="https://policydesk.example/webhooks/zammad",
                     signature_token=token)
    print(plan.render())                  # what would change, object by object
    result = apply_plan(plan, client)     # writes only the actions, in dependency order
    print(result.render())

The plan compares only the fields policydesk sets (Zammad adds ids, timestamps, ...).
Ownership: attributes carry ``data_option.policydesk_managed``; triggers and the webhook
carry `MANAGED_MARKER` in their note; calendars and SLAs, which have no note column in
Zammad, are named ``policydesk...`` and were created by sync's own API user (Zammad sets
``created_by_id`` itself; can_cleanup_param.rb drops it from params), and an SLA counts on
a policydesk calendar.  Objects that are not policydesk's are never written,
even when their name collides (a conflict is reported instead).  policydesk's objects
that the policies no longer want are deleted, except attributes: dropping a column loses
data, so they are reported as kept.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from integrations.zammad.errors import ZammadError
from integrations.zammad.sync_values import (
    SECRET_FIELDS,
    Change,
    _hidden,
    _plain,
    _unresolved,
    diff,
    resolve,
    show,
)
from integrations.zammad.resources import iter_all
from integrations.zammad.sync_objects import (
    ATTRIBUTE_MARKER,
    KINDS,
    MANAGED_MARKER,
    MASKED_SECRET,
    NAME_PREFIX,
    Ref,
    Wanted,
    wanted_objects,
)
from plugin.model import Policies

__all__ = ["Action", "Change", "SyncPlan", "SyncResult", "apply_plan", "plan_sync", "read_current", "sync"]

#: Zammad resource of each kind, on `ZammadClient`.
RESOURCES = {"attribute": "object_manager_attributes", "calendar": "calendars", "sla": "slas",
             "webhook": "webhooks", "trigger": "triggers"}


# --------------------------------------------------------------------------- reading


@dataclass
class Current:
    """What Zammad has, by kind: lists of records as Zammad returned them."""

    records: dict[str, list[dict[str, Any]]]
    own_user_id: int

    def named(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((r for r in self.records[kind] if key_of(kind, r) == name), None)


def key_of(kind: str, record: Mapping[str, Any]) -> str:
    if kind == "attribute":
        return f"{record.get('object')}.{record.get('name')}"
    return str(record.get("name") or "")


def read_current(client: Any) -> Current:
    """Every attribute, calendar, SLA, webhook and trigger (GETs only)."""
    own = int(client.me()["id"])
    records = {kind: list(iter_all(getattr(client, RESOURCES[kind]), per_page=500)) for kind in KINDS}
    return Current(records=records, own_user_id=own)


def _has_marker(record: Mapping[str, Any]) -> bool:
    return MANAGED_MARKER in str(record.get("note") or "")


def _created_by_sync(record: Mapping[str, Any], current: Current) -> bool:
    try:
        return int(record.get("created_by_id") or 0) == current.own_user_id
    except (TypeError, ValueError):
        return False


def owned(kind: str, record: Mapping[str, Any], current: Current) -> bool:
    """Whether policydesk created ``record``."""
    name = str(record.get("name") or "")
    if kind == "attribute":
        option = record.get("data_option") or {}
        return bool(isinstance(option, Mapping) and option.get(ATTRIBUTE_MARKER))
    if kind == "calendar":
        return name.startswith(NAME_PREFIX) and _created_by_sync(record, current)
    if kind == "sla":
        calendars = {c["id"] for c in current.records["calendar"] if owned("calendar", c, current)}
        return (name.startswith(NAME_PREFIX + " ") and _created_by_sync(record, current)
                and record.get("calendar_id") in calendars)
    if "note" not in record:  # a Zammad without the column: fall back on name and creator
        return name.startswith(NAME_PREFIX) and _created_by_sync(record, current)
    return _has_marker(record)


def _foreign_reason(kind: str, record: Mapping[str, Any], current: Current) -> str:
    """Why ``record`` does not count as policydesk's, for the error line."""
    if kind in ("calendar", "sla") or "note" not in record:
        return (f"it was created by user {record.get('created_by_id')}, and sync runs as user "
                f"{current.own_user_id} (Zammad keeps no note on {kind}s, so their creator tells)")
    return f"its note lacks \"{MANAGED_MARKER}\""


# --------------------------------------------------------------------------- the plan


@dataclass
class Action:
    """One write: ``create``, ``update`` or ``delete`` of one object."""

    verb: str
    kind: str
    name: str
    #: Fields to send (create/update), possibly holding `Ref`s until applied.
    fields: dict[str, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    #: Zammad's id of the object (update/delete).
    id: int | None = None
    remarks: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f'{self.kind} "{self.name}"'

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verb": self.verb, "kind": self.kind, "name": self.name, "id": self.id}
        if self.verb == "create":
            out["fields"] = _hidden(_plain(self.fields))
        if self.verb == "update":
            out["changes"] = [{"path": c.path, "old": "(hidden)" if c.path in SECRET_FIELDS else _plain(c.old),
                               "new": "(hidden)" if c.path in SECRET_FIELDS else _plain(c.new)}
                              for c in self.changes]
        if self.remarks:
            out["remarks"] = list(self.remarks)
        return out

    def describe(self) -> list[str]:
        if self.verb == "update":
            lines = [f"update {self.label}: {self.changes[0]}"] + [f"    {c}" for c in self.changes[1:]]
        elif self.verb == "create":
            lines = [f"create {self.label}: {summary(self.kind, self.fields)}"]
        else:
            lines = [f"delete {self.label}"]
        return lines + [f"    note: {r}" for r in self.remarks]


def summary(kind: str, fields: Mapping[str, Any]) -> str:
    """The key fields of a new object, in a line."""
    if kind == "attribute":
        option = fields.get("data_option") or {}
        extra = f" options {show(list(option['options']))}" if option.get("options") else ""
        return f"{fields['data_type']} {show(fields['display'])}{extra}"
    if kind == "calendar":
        days = _week(fields["business_hours"])
        return f"{fields['timezone']}; {days}; {len(fields['public_holidays'])} holidays"
    if kind == "sla":
        return (f"first response {fields['first_response_time']} min on {show(fields['calendar_id'])}, "
                f"when {show(fields['condition'])}")
    if kind == "webhook":
        return f"{fields['endpoint']} (signed, ssl_verify)"
    if kind == "trigger":
        return f"{fields['activator']} {show(fields['condition'])} -> webhook"
    return show(fields)


def _week(hours: Mapping[str, Any]) -> str:
    """``mon-fri 06:00-19:00`` from Zammad's business_hours."""
    runs: list[tuple[list[str], str]] = []
    for day, value in hours.items():
        frames = " ".join("-".join(f) for f in value.get("timeframes") or ()) if value.get("active") else ""
        if runs and runs[-1][1] == frames:
            runs[-1][0].append(day)
        else:
            runs.append(([day], frames))
    parts = [f"{days[0]}{'-' + days[-1] if len(days) > 1 else ''} {frames}" for days, frames in runs if frames]
    return ", ".join(parts) or "never open"


@dataclass
class SyncPlan:
    actions: list[Action]
    #: Objects policydesk cannot create or fix (names taken by objects it did not create).
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Remarks on objects with no change (e.g. what Zammad cannot express).
    notes: list[str] = field(default_factory=list)
    own_user_id: int | None = None

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    @property
    def migrations_needed(self) -> bool:
        return any(a.kind == "attribute" for a in self.actions)

    @property
    def restart_needed(self) -> bool:
        """New attributes add database columns: Zammad must restart to see them
        (object_manager/attribute.rb ``migration_execute``: ``restart_manual``)."""
        return any(a.kind == "attribute" and a.verb == "create" for a in self.actions)

    def as_json(self, *, dry_run: bool = True) -> dict[str, Any]:
        """The plan, machine-readable (secret values hidden)."""
        return {
            "dry_run": dry_run,
            "changed": self.changed,
            "actions": [action.as_json() for action in self.actions],
            "migrations_needed": self.migrations_needed,
            "restart_needed": self.restart_needed,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "errors": list(self.errors),
        }

    def render(self, *, dry_run: bool = True) -> str:
        lines: list[str] = []
        for action in self.actions:
            lines += action.describe()
        if self.migrations_needed:
            lines.append("execute attribute migrations")
        if self.restart_needed:
            lines.append("then restart Zammad (new attribute columns)")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        if not self.actions:
            lines.append("no changes")
        elif dry_run:
            count = len(self.actions)
            lines.append(f"{count} change{'s' if count != 1 else ''} (dry run: nothing written)")
        return "\n".join(lines)


def _blocked_by(refs: list[Ref], blocked: set[tuple[str, str]]) -> Ref | None:
    return next((r for r in refs if (r.kind, r.name) in blocked), None)


def make_plan(wanted: list[Wanted], current: Current) -> SyncPlan:
    """Compare ``wanted`` with ``current``: the actions, conflicts and notes."""
    plan = SyncPlan(actions=[], own_user_id=current.own_user_id)
    ids: dict[tuple[str, str], int] = {}
    blocked: set[tuple[str, str]] = set()  # wanted objects that cannot be had
    for kind in KINDS:
        for record in current.records[kind]:
            if owned(kind, record, current):
                ids[(kind, key_of(kind, record))] = int(record["id"])
    wanted_keys = {(w.kind, w.name) for w in wanted}

    for want in wanted:
        record = current.named(want.kind, want.name)
        fields = resolve(want.fields, ids)
        blocker = _blocked_by(_unresolved(fields), blocked)
        if blocker is not None:
            plan.errors.append(f"{want.label} cannot be created or updated: it needs {blocker.kind} "
                               f'"{blocker.name}", which policydesk cannot have (see above)')
            blocked.add((want.kind, want.name))
            continue
        if record is None:
            plan.actions.append(Action("create", want.kind, want.name, fields=fields, remarks=list(want.remarks)))
            continue
        if not owned(want.kind, record, current):
            if want.kind == "attribute":
                same_type = _compatible(record.get("data_type"), want.fields["data_type"])
                message = (f"{want.label} exists but was not created by policydesk (no {ATTRIBUTE_MARKER} in its "
                           f"data_option): left as it is")
                if same_type:
                    plan.warnings.append(message + "; policydesk reads and writes it as it is")
                else:
                    plan.errors.append(f"{message}, but it is a {record.get('data_type')}, not a "
                                       f"{want.fields['data_type']}: rename or remove it")
                continue
            plan.errors.append(f"{want.label} exists but was not created by policydesk: left untouched; rename it "
                               f"or remove it so policydesk can create its own ("
                               f"{_foreign_reason(want.kind, record, current)})")
            blocked.add((want.kind, want.name))
            continue
        loose = want.loose
        changes: list[Change] = []
        for name, value in fields.items():
            if name == "signature_token" and record.get(name) in (None, MASKED_SECRET):
                continue  # Zammad hides the token (absent, or masked by Zammad ≥ 6.5): nothing to compare
            changes += diff(record.get(name), value, name, loose=name in loose)
        if changes:
            plan.actions.append(Action("update", want.kind, want.name, fields=fields, changes=changes,
                                       id=int(record["id"]), remarks=list(want.remarks)))
        else:
            plan.notes += [f"{want.label}: {r}" for r in want.remarks]

    deletes: list[Action] = []
    for kind in reversed(KINDS):
        for record in current.records[kind]:
            name = key_of(kind, record)
            if (kind, name) in wanted_keys or not owned(kind, record, current):
                continue
            if kind == "attribute":
                plan.notes.append(f'attribute "{name}" is no longer used by the policies: kept (deleting it would '
                                  "delete its data)")
                continue
            if kind == "calendar":
                users = [s for s in current.records["sla"] if s.get("calendar_id") == record["id"]
                         and not owned("sla", s, current)]
                if users:
                    plan.warnings.append(f'calendar "{name}" is no longer wanted but SLA "{users[0].get("name")}", '
                                         "not policydesk's, uses it: kept")
                    continue
            deletes.append(Action("delete", kind, name, id=int(record["id"])))
    plan.actions += deletes
    plan.warnings += _shadowing_slas(wanted, current)
    return plan


#: Data types holding the same text value (Zammad converts between them, too).
_TEXT_TYPES = frozenset({"input", "select", "tree_select"})


def _compatible(have: Any, want: str) -> bool:
    return have == want or (have in _TEXT_TYPES and want in _TEXT_TYPES)


def _shadowing_slas(wanted: list[Wanted], current: Current) -> list[str]:
    """Other SLAs with a condition that Zammad would try before policydesk's (by name)."""
    ours = sorted(w.name for w in wanted if w.kind == "sla")
    if not ours:
        return []
    return [f'SLA "{s.get("name")}" (not policydesk\'s) has a condition and sorts before policydesk\'s SLAs: '
            "Zammad applies it first to the tickets it matches"
            for s in current.records["sla"]
            if s.get("condition") and not owned("sla", s, current) and str(s.get("name") or "") < ours[0]]


def plan_sync(policies: Policies, client: Any, *, endpoint: str, signature_token: str,
              today: dt.date | None = None, service_user_id: int | None = None) -> SyncPlan:
    """What `apply_plan` would write to make Zammad match ``policies`` (reads only).

    ``service_user_id``: the Zammad user the policydesk service writes as, whose changes the
    triggers leave out (no loops); default: sync's own token user (the same token as the
    service's, as the README sets it up).
    """
    current = read_current(client)
    loop_guard = service_user_id if service_user_id is not None else current.own_user_id
    wanted = wanted_objects(policies, endpoint=endpoint, signature_token=signature_token,
                            own_user_id=loop_guard, today=today)
    return make_plan(wanted, current)


# --------------------------------------------------------------------------- applying


@dataclass
class SyncResult:
    plan: SyncPlan
    #: What was written, one line each.
    done: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {**self.plan.as_json(dry_run=False), "done": list(self.done),
                "restart_advice": RESTART_ADVICE if self.plan.restart_needed and self.done else None}

    def render(self) -> str:
        lines = list(self.done)
        if self.plan.restart_needed and self.done:
            lines.append(RESTART_ADVICE)
        lines += [f"note: {n}" for n in self.plan.notes]
        lines += [f"warning: {w}" for w in self.plan.warnings]
        lines += [f"error: {e}" for e in self.plan.errors]
        if not self.done:
            lines.append("no changes")
        return "\n".join(lines)


_PAST = {"create": "created", "update": "updated", "delete": "deleted"}

#: What to tell the admin after new attribute columns (object_manager/attribute.rb
#: ``migration_execute``: Zammad restarts itself only when ``APP_RESTART_CMD`` is set).
RESTART_ADVICE = (
    "restart Zammad now: the new attributes are database columns its running processes do not see until "
    "they restart (Zammad restarts itself only when APP_RESTART_CMD is set). Package install: "
    "`systemctl restart zammad`; Docker: `docker compose restart`; Kubernetes: `kubectl rollout restart` "
    "the zammad deployments. Until then Zammad refuses or ignores writes to them.")


def apply_plan(plan: SyncPlan, client: Any, *, log: Callable[[str], None] | None = None) -> SyncResult:
    """Carry out ``plan``: creates and updates in dependency order (attributes, migrations,
    calendars, SLAs, webhook, triggers), then deletes in reverse order.

    :raises ZammadError: when Zammad refuses a write (what was done so far is in the
        exception's ``sync_done`` attribute).
    """
    result = SyncResult(plan)
    ids: dict[tuple[str, str], int] = {}
    for action in plan.actions:
        if action.id is not None:
            ids[(action.kind, action.name)] = action.id

    def done(line: str) -> None:
        result.done.append(line)
        if log is not None:
            log(line)

    writes = [a for a in plan.actions if a.verb != "delete"]
    deletes = [a for a in plan.actions if a.verb == "delete"]
    try:
        for kind in KINDS:
            for action in (a for a in writes if a.kind == kind):
                resource = getattr(client, RESOURCES[kind])
                fields = resolve(copy.deepcopy(action.fields), ids)
                if _unresolved(fields):
                    raise ZammadError(f"{action.label}: unresolved reference {_unresolved(fields)[0]}")
                if action.verb == "create":
                    record = resource.create(fields)
                    ids[(kind, action.name)] = int(record["id"])
                    if kind == "attribute" and record.get("position") != fields["position"]:
                        # Zammad's controller puts every new attribute at 1550; the update places it
                        resource.update(record["id"], fields)
                else:
                    resource.update(action.id, fields)
                done(f"{_PAST[action.verb]} {action.label}" + (
                    f": {', '.join(c.path for c in action.changes)}" if action.changes else ""))
            if kind == "attribute" and plan.migrations_needed:
                client.object_manager_attributes.execute_migrations()
                done("executed attribute migrations")
        for action in deletes:  # already in reverse dependency order
            getattr(client, RESOURCES[action.kind]).destroy(action.id)
            done(f"deleted {action.label}")
    except ZammadError as exc:
        exc.sync_done = list(result.done)  # type: ignore[attr-defined]
        raise
    return result


def sync(policies: Policies, client: Any, *, endpoint: str, signature_token: str, dry_run: bool = False,
         today: dt.date | None = None) -> tuple[SyncPlan, SyncResult | None]:
    """Plan, and unless ``dry_run``, apply."""
    plan = plan_sync(policies, client, endpoint=endpoint, signature_token=signature_token, today=today)
    if dry_run:
        return plan, None
    return plan, apply_plan(plan, client)
