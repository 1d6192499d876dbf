"""Each account manager gets their customers' statements in Zammad, once a month.

When: on the first working day of the month, once the role's hours have begun (the first
open instant of the month in the role's calendar, e.g. Mon–Fri 09:00–18:00), for the month
that just ended.

How, exactly once (several instances included): the scheduler's sweep enqueues one job per
role and month with the delivery id ``statements:<YYYY-MM>:<role>`` — the store keeps one
job per delivery id, so a second instance, or a second sweep, adds nothing. The job creates
one Zammad ticket per person filling the role, owned by and addressed to them, whose
internal note sums up each customer's month and carries each customer's statement as a PDF
attachment (``article.attachments`` with base64 ``data``, ``filename``, ``mime-type``:
app/controllers/concerns/creates_ticket_articles.rb). A retried job skips the people already
served: each sent statement is recorded in the audit (kind `SENT`, subject
``statements:<YYYY-MM>:<person>``) right after Zammad answered.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
from collections import defaultdict
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from integrations.statement.compute import Month, Statement
from integrations.statement.pdf import render_pdf
from integrations.statement.render import percent, plan_title
from integrations.zammad import mapping
from integrations.zammad.resources import iter_all
from plugin.model import Policies

__all__ = ["KIND", "SENT", "delivery_instant", "due_deliveries", "deliver_statements"]

log = logging.getLogger(__name__)

#: The job body's ``kind`` (the scheduler's job handler dispatches on it).
KIND = "statements"
#: Audit kind of one person's statements for one month, once sent.
SENT = "statements_sent"
TITLE = "policydesk statements"


def delivery_instant(policies: Policies, role: str, month: Month) -> dt.datetime:
    """When ``role`` gets the statements of the month before ``month``: the first open
    instant of ``month`` in the role's calendar."""
    calendar = policies.calendars[policies.roles[role].calendar]
    start = month.start(ZoneInfo(policies.default_timezone))
    return calendar.next_open(start)


def due_deliveries(policies: Policies, now: dt.datetime,
                   has_people: Callable[[str], bool] = lambda role: True) -> list[tuple[str, bytes]]:
    """(delivery id, job body) for every role someone fills (``has_people``) whose delivery for
    the month that ended is due at ``now``; enqueueing one twice has no effect (the store
    dedupes delivery ids)."""
    zone = ZoneInfo(policies.default_timezone)
    current = Month.of(now, zone)
    ended = current.previous()
    due = []
    for role in sorted(policies.roles):
        if now >= delivery_instant(policies, role, current) and has_people(role):
            body = {"kind": KIND, "month": str(ended), "role": role}
            due.append((f"{KIND}:{ended}:{role}", json.dumps(body, sort_keys=True).encode()))
    return due


def _customers_by_person(client: Any, role: str) -> dict[str, list[int]]:
    attribute = mapping.ROLE_ATTRIBUTES.get(role, role)
    people: dict[str, list[int]] = defaultdict(list)
    for organization in iter_all(client.organizations):
        person = mapping._text(organization.get(attribute))
        if person and organization.get("id") is not None:
            people[person].append(int(organization["id"]))
    return dict(people)


def _note(person_name: str, month: Month, statements: list[Statement], policies: Policies) -> str:
    title = month.start(ZoneInfo(policies.default_timezone)).strftime("%B %Y")
    rows = "".join(
        f"<li><b>{html.escape(s.organization_name)}</b> ({html.escape(', '.join(plan_title(p.plan) for p in s.plans))}): "
        f"{s.total.requests} request(s), {s.total.met} of {s.total.due} first responses met ({percent(s.total)}), "
        f"{len(s.breaches)} breach(es), {s.accepted_emergencies} emergency(ies) accepted, "
        f"{s.refused_emergencies} refused</li>" for s in statements)
    return (f"<p>{html.escape(person_name)}: your customers' support statements for {html.escape(title)}. "
            "Each customer's statement is attached as a PDF to pass on.</p>"
            f"<ul>{rows}</ul><p>Policies {html.escape(statements[0].policy_version if statements else '')}.</p>")


def deliver_statements(
    body: Mapping[str, Any],
    adapter: Any,
    store: Any,
    policies: Policies,
    now: dt.datetime,
    *,
    group: str = "Users",
) -> int:
    """Carry out one ``statements`` job: one Zammad ticket per person filling the role, for
    the people not yet served; returns how many tickets were created."""
    from integrations.statement.compute import parse_month
    from integrations.statement.source import statements_from_zammad

    month, role = parse_month(str(body["month"])), str(body["role"])
    client = adapter.client
    created = 0
    waiting = {person: ids for person, ids in sorted(_customers_by_person(client, role).items())
               if not store.audit_log(f"{KIND}:{month}:{person}", SENT, limit=1)}  # else served by an earlier attempt
    # One read of Zammad's tickets for every customer of the role, not one per manager.
    wanted = sorted({i for ids in waiting.values() for i in ids})
    by_id = {s.organization: s for s in statements_from_zammad(
        client, policies, month, organization_ids=wanted, as_of=now)} if wanted else {}
    for person, organization_ids in waiting.items():
        subject = f"{KIND}:{month}:{person}"
        user = adapter.find_user(person)
        if user is None:
            log.warning("statements for %s not sent: %r is not a Zammad user", month, person)
            continue
        statements = [by_id[str(i)] for i in organization_ids]
        name = f"{user.get('firstname') or ''} {user.get('lastname') or ''}".strip() or person
        attachments = [{
            "filename": f"statement-{month}-{s.organization}.pdf",
            "data": base64.b64encode(render_pdf([s])).decode("ascii"),
            "mime-type": "application/pdf",
        } for s in statements]
        ticket = {
            "title": f"{TITLE} for {name}: {month} [{subject}]",
            "group": group,
            "customer_id": int(user["id"]),
            "owner_id": int(user["id"]),
            "article": {
                "subject": TITLE,
                "body": _note(name, month, statements, policies),
                "content_type": "text/html",
                "type": "note",
                "internal": True,
                "sender": "Agent",
                "attachments": attachments,
            },
        }
        record = client.tickets.create(ticket)
        store.audit(SENT, subject, {"ticket_id": record.get("id"), "organizations": organization_ids,
                                    "role": role}, now)
        created += 1
        log.info("statements for %s sent to %s: ticket %s, %d customer(s)", month, person, record.get("id"),
                 len(statements))
    return created
