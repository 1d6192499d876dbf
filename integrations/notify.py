"""Telling people about escalations: at once, or held for a digest.

Design
======

*One escalation notification* (`Notifier.notify`) is an **internal note on the ticket
itself, addressed to the person with a Zammad mention** (``<a data-mention-user-id=..>``
in an HTML body). Zammad turns that link into a mention: it subscribes the person to the
ticket and sends them its own "you were mentioned" notification (online and e-mail,
following the person's own notification settings). We also subscribe them explicitly
through ``/mentions`` (on their behalf), so the subscription exists even on a Zammad that
does not parse article mentions. Why a note and not an e-mail from policydesk: the
person gets it where they work, with the ticket one click away; Zammad knows their
address and preferences; and the team sees on the ticket who was told, when, and why.
The note carries ``preferences.policydesk_notification = <key>`` (ticket, deadline,
step, person), so a retried job never posts it twice.

*A group notification* (`Notifier.notify_group`, a step's ``notify: [group:<name>]``) is an
internal note on the ticket addressed to the group; Zammad tells the agents of the ticket's
group of it by their own notification settings. The ticket's owner (``notify: [owner]``)
is told like a role's person: mentioned in a note.

*A digest* (`Notifier.send_digest`) gathers everything held for one person outside their
role's hours into **one Zammad ticket addressed to them**: title
``policydesk digest for <name>: <n> escalations``, owner and customer the person (Zammad
notifies an owner of a new ticket), the person mentioned, and one internal HTML note
listing every held item, grouped by ticket (number, title, link, steps and when they were
due). One ticket per person per digest tick, not one note per ticket: the person reads
one message in the morning and closes it. Items are deduplicated by their key (a job
retried after holding an item holds it twice; the digest lists it once).

`Notifier` is the protocol the scheduler uses; `ZammadNotifier` is the Zammad
implementation; the digest job re-reads every item's ticket when it sends the digest and
drops those answered or closed since (`integrations.scheduler.still_open_items`); `RecordingNotifier` keeps what it was asked (tests, demos, dry runs).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("policydesk.notify")

#: Article preference that identifies a notification note (for idempotent posting).
NOTIFICATION_PREFERENCE = "policydesk_notification"
#: Subject of notification notes and of digest articles.
NOTIFICATION_SUBJECT = "policydesk escalation"
DIGEST_SUBJECT = "policydesk digest"


class Notifier(Protocol):
    """How the scheduler reaches people. ``item`` is a JSON-able mapping with at least
    ``key`` (unique per ticket, deadline, step and person), ``ticket_id``, ``step``,
    ``role``, ``due_at`` (ISO 8601) and ``text`` (why)."""

    def notify(self, person: str, item: Mapping[str, Any]) -> None:
        """Tell ``person`` now about one escalation. Must be idempotent per ``item["key"]``."""

    def notify_group(self, group: str, item: Mapping[str, Any]) -> None:
        """Tell the agents of a Zammad group now. Must be idempotent per ``item["key"]``."""

    def send_digest(self, person: str, items: Sequence[Mapping[str, Any]], digest_id: str) -> None:
        """Send ``person`` ONE message summarising ``items`` (already deduplicated)."""


def dedupe(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Items without repeats of the same ``key``, in first-seen order."""
    seen: dict[str, Mapping[str, Any]] = {}
    for item in items:
        seen.setdefault(str(item.get("key") or id(item)), item)
    return list(seen.values())


@dataclass
class RecordingNotifier:
    """Records notifications and digests instead of sending them."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    digests: list[tuple[str, list[dict[str, Any]], str]] = field(default_factory=list)

    def notify(self, person: str, item: Mapping[str, Any]) -> None:
        if any(p == person and i.get("key") == item.get("key") for p, i in self.sent):
            return
        self.sent.append((person, dict(item)))

    def notify_group(self, group: str, item: Mapping[str, Any]) -> None:
        self.notify(f"group:{group}", item)

    def send_digest(self, person: str, items: Sequence[Mapping[str, Any]], digest_id: str) -> None:
        self.digests.append((person, [dict(i) for i in items], digest_id))


class ZammadNotifier:
    """Notifications and digests through Zammad (see the module docstring for the design).

    :param adapter: a `integrations.zammad.adapter.ZammadAdapter` (its client and user cache).
    :param digest_group: the Zammad group digest tickets are created in.
    :param base_url: the Zammad web URL for ticket links (defaults to the API's host).
    """

    def __init__(self, adapter: Any, digest_group: str = "Users", base_url: str | None = None) -> None:
        self.adapter = adapter
        self.client = adapter.client
        self.digest_group = digest_group
        if base_url is None:
            api = str(getattr(self.client, "url", "") or "")
            base_url = api.split("/api/v1")[0] if "/api/v1" in api else api.rstrip("/")
        self.base_url = base_url.rstrip("/")

    # ----------------------------------------------------------------- one notification

    def notify(self, person: str, item: Mapping[str, Any]) -> None:
        user = self.adapter.find_user(person)
        if user is None:
            log.warning("escalation for %r not sent: not a Zammad user", person)
            return
        ticket_id = int(item["ticket_id"])
        key = str(item["key"])
        if self._notification_note(ticket_id, key) is None:
            body = (
                f"<p>{_mention(user)}: escalation <b>{html.escape(str(item.get('step')))}</b>"
                f" as {html.escape(str(item.get('role_title') or item.get('role') or 'account manager'))}"
                f" (due {html.escape(str(item.get('due_at')))}).</p>"
                f"<p>{html.escape(str(item.get('text') or '')).replace(chr(10), '<br>')}</p>"
            )
            article = {
                "ticket_id": ticket_id,
                "subject": NOTIFICATION_SUBJECT,
                "body": body,
                "content_type": "text/html",
                "type": "note",
                "internal": True,
                "sender": "Agent",
                "preferences": {NOTIFICATION_PREFERENCE: key},
            }
            self.client.retry.run(
                lambda: self.client.ticket_articles.create(article),
                already_done=lambda: self._notification_note(ticket_id, key),
            )
        self._subscribe(ticket_id, int(user["id"]))

    def notify_group(self, group: str, item: Mapping[str, Any]) -> None:
        """An internal note on the ticket addressed to ``group``. Zammad itself tells the
        agents of the ticket's group of the new article, each by their notification
        settings (app/models/transaction/notification.rb: possible_recipients_of_group)."""
        ticket_id = int(item["ticket_id"])
        key = str(item["key"])
        if self._notification_note(ticket_id, key) is not None:
            return
        body = (f"<p>Group <b>{html.escape(group)}</b>: escalation <b>{html.escape(str(item.get('step')))}</b>"
                f" (due {html.escape(str(item.get('due_at')))}).</p>"
                f"<p>{html.escape(str(item.get('text') or '')).replace(chr(10), '<br>')}</p>")
        article = {"ticket_id": ticket_id, "subject": NOTIFICATION_SUBJECT, "body": body, "content_type": "text/html",
                   "type": "note", "internal": True, "sender": "Agent", "preferences": {NOTIFICATION_PREFERENCE: key}}
        self.client.retry.run(lambda: self.client.ticket_articles.create(article),
                              already_done=lambda: self._notification_note(ticket_id, key))

    def _notification_note(self, ticket_id: int, key: str) -> dict[str, Any] | None:
        for article in self.client.ticket_articles.by_ticket(ticket_id):
            if (article.get("preferences") or {}).get(NOTIFICATION_PREFERENCE) == key:
                return article
        return None

    def _subscribe(self, ticket_id: int, user_id: int) -> None:
        def mentioned() -> bool | None:
            mentions = self.client.mentions.for_ticket(ticket_id)
            return True if any(int(m.get("user_id") or 0) == user_id for m in mentions) else None

        if mentioned():
            return
        self.client.retry.run(lambda: self.client.mentions.add(ticket_id, on_behalf_of=user_id),
                              already_done=mentioned)

    # ----------------------------------------------------------------- the digest

    def send_digest(self, person: str, items: Sequence[Mapping[str, Any]], digest_id: str) -> None:
        items = dedupe(items)
        if not items:
            return
        user = self.adapter.find_user(person)
        if user is None:
            log.warning("digest %s for %r not sent: not a Zammad user", digest_id, person)
            return
        by_ticket: dict[int, list[Mapping[str, Any]]] = {}
        for item in items:
            by_ticket.setdefault(int(item["ticket_id"]), []).append(item)
        lines = [f"<p>{_mention(user)}: {len(items)} escalation(s) on {len(by_ticket)} ticket(s)"
                 " reached you outside your working hours.</p>", "<ul>"]
        for ticket_id, entries in by_ticket.items():
            number, title = self._ticket_label(ticket_id)
            steps = "; ".join(f"{html.escape(str(e.get('step')))} (due {html.escape(str(e.get('due_at')))})"
                              for e in entries)
            link = f"{self.base_url}/#ticket/zoom/{ticket_id}"
            lines.append(f'<li><a href="{html.escape(link)}">#{html.escape(number)}</a> '
                         f"{html.escape(title)}: {steps}</li>")
        lines.append("</ul>")
        name = _name(user)
        ticket = {
            "title": f"{DIGEST_SUBJECT} for {name}: {len(items)} escalation(s) [{digest_id}]",
            "group": self.digest_group,
            "customer_id": int(user["id"]),
            "owner_id": int(user["id"]),
            "article": {
                "subject": DIGEST_SUBJECT,
                "body": "\n".join(lines),
                "content_type": "text/html",
                "type": "note",
                "internal": True,
                "sender": "Agent",
                "preferences": {NOTIFICATION_PREFERENCE: f"digest:{digest_id}"},
            },
        }
        # A retried job (a create that timed out after Zammad stored it) finds its digest.
        created = self._existing_digest(int(user["id"]), digest_id) or self.client.retry.run(
            lambda: self.client.tickets.create(ticket),
            already_done=lambda: self._existing_digest(int(user["id"]), digest_id),
        )
        self._subscribe(int(created["id"]), int(user["id"]))

    def _existing_digest(self, user_id: int, digest_id: str) -> dict[str, Any] | None:
        """The digest ticket already created for ``digest_id`` (its title carries the id)."""
        from integrations.zammad.search import contains, first_ticket, is_

        marker = f"[{digest_id}]"
        # A condition search: SQL in every Zammad, with or without Elasticsearch (integrations.zammad.search).
        found = first_ticket(self.client, {"ticket.owner_id": is_(int(user_id)), "ticket.title": contains(marker)})
        return found if found is not None and marker in str(found.get("title") or "") else None

    def _ticket_label(self, ticket_id: int) -> tuple[str, str]:
        try:
            record = self.client.tickets.find(ticket_id)
        except Exception:  # a deleted ticket still appears in the digest
            return str(ticket_id), "(ticket not readable)"
        return str(record.get("number") or ticket_id), str(record.get("title") or "")


def _name(user: Mapping[str, Any]) -> str:
    name = f"{user.get('firstname') or ''} {user.get('lastname') or ''}".strip()
    return name or str(user.get("email") or user.get("login") or user.get("id"))


def _mention(user: Mapping[str, Any]) -> str:
    """Zammad's article mention markup (what its editor inserts for ``@@name``)."""
    return (f'<a data-mention-user-id="{int(user["id"])}" rel="nofollow">'
            f"{html.escape(_name(user))}</a>")


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()
