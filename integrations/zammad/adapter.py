"""The Zammad adapter: the engine's view of a ticket, and a Decision written back as a diff.

::

    adapter = ZammadAdapter(ZammadClient.from_env())
    ticket, organization, state = adapter.context_from_payload(webhook_payload)   # no reads
    decision = engine.evaluate(ticket, organization, now)
    changes = adapter.apply_decision(42, decision, state=state)   # empty when nothing differs

A webhook payload carries the ticket and its organization with every attribute policydesk
reads, so an event costs no read. A write is: the mentions that differ from what policydesk
contributed last time (`mapping.AppliedState`, kept by the caller), then one ticket update
carrying the priority, policydesk's attributes, the fingerprint and the internal note as its
``article`` (tickets_controller.rb#update creates it inside the same
locked update), so a retry that finds the fingerprint knows the note is there too; then the tags. Writes of
one step go in parallel.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from integrations.zammad import mapping
from integrations.zammad.client import ZammadClient, ZammadConfigError, ZammadSettings, api_url
from integrations.zammad.directory import Directory
from integrations.zammad.errors import ZammadError, ZammadValidationError
from integrations.zammad.mapping import (
    NOTE_PREFERENCE,
    NOTE_SUBJECT,
    TICKET_FINGERPRINT,
    AppliedState,
    ZammadTicketState,
)
from integrations.zammad.payload import EventRecords, records_from_payload
from plugin.model import Decision, Organization, Policies, Ticket
from plugin.tags import tag_changes

log = logging.getLogger(__name__)

__all__ = [
    "AppliedChanges",
    "ZammadAdapter",
    "ZammadClient",
    "ZammadConfigError",
    "ZammadSettings",
    "ZammadTicketState",
    "api_url",
]

#: Writes of one decision sent at once (tags and mentions are independent of each other).
PARALLEL_WRITES = 8
#: Tickets whose channel (create article type) is remembered.
_CHANNEL_CACHE = 50_000


@dataclass
class AppliedChanges:
    """What `ZammadAdapter.apply_decision` wrote; falsy when it wrote nothing."""

    ticket_id: int
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)
    #: Persons (login or e-mail) newly subscribed to the ticket.
    mentions_added: list[str] = field(default_factory=list)
    #: Persons policydesk had subscribed and no longer wants (former account managers).
    mentions_removed: list[str] = field(default_factory=list)
    #: Ticket fields written (priority, routing and policydesk attributes), with their new values.
    fields: dict[str, Any] = field(default_factory=dict)
    #: Whether the internal note went with the ticket update.
    note_posted: bool = False
    #: Persons the decision names who are not Zammad users (nothing written for them).
    unknown_persons: list[str] = field(default_factory=list)
    #: What Zammad refused while the rest was applied (e.g. a mention without group access).
    warnings: list[str] = field(default_factory=list)
    #: What the ticket holds from policydesk after this write (for the next diff).
    applied: AppliedState | None = None

    @property
    def write_calls(self) -> int:
        """HTTP write requests made (one per tag and mention; one update for fields and note)."""
        return (len(self.tags_added) + len(self.tags_removed) + len(self.mentions_added)
                + len(self.mentions_removed) + (1 if self.fields or self.note_posted else 0))

    def __bool__(self) -> bool:
        return self.write_calls > 0


class ZammadAdapter:
    """Reads tickets for the engine and writes decisions back, through one `ZammadClient`."""

    def __init__(self, client: ZammadClient, *, parallel_writes: int = PARALLEL_WRITES) -> None:
        self.client = client
        self.directory = Directory(client)
        self._pool = ThreadPoolExecutor(max_workers=max(1, parallel_writes), thread_name_prefix="zammad-write")
        self._channels: dict[int, str] = {}
        self._lock = threading.Lock()
        #: policydesk's tags (`Engine.tag_vocabulary`), for tickets decided before anything was
        #: remembered; the processor sets it from the engine.
        self.vocabulary: Callable[[], frozenset[str]] | None = None

    # ----------------------------------------------------------------- reading

    def read_state(self, ticket_id: int | str) -> ZammadTicketState:
        """The ticket (``expand=true``), its tags and its mentions: three reads."""
        record = self.client.tickets.find(ticket_id, expand=True)
        return self._with_tags(mapping.ticket_state_from_record(record, tags_known=False))

    def _with_tags(self, state: ZammadTicketState) -> ZammadTicketState:
        tid = state.ticket_id
        tags = frozenset(self.client.tags.list(tid))
        mentions = self.client.mentions.for_ticket(tid)
        user_ids = frozenset(int(m["user_id"]) for m in mentions if m.get("user_id") is not None)
        return replace(state, tags=tags, mentioned_user_ids=user_ids, tags_known=True)

    def context_from_payload(self, payload: Mapping[str, Any] | EventRecords, *,
                             applied: AppliedState | None = None) -> tuple[Ticket, Organization, ZammadTicketState]:
        """The engine's view of a webhook payload, reading Zammad only for what it lacks
        (a channel name, once per ticket; the customer's locale, cached, for emergencies).

        :raises ValueError: a field the engine needs is malformed (the caller reads the ticket).
        """
        records = payload if isinstance(payload, EventRecords) else records_from_payload(payload)
        record = dict(records.ticket)
        organization = records.organization
        if organization is None and record.get("organization_id"):
            organization = self.client.organizations.find(record["organization_id"], expand=True)
        return self._context(record, organization, records.article, applied)

    def load_context(self, ticket_id: int | str, *, record: Mapping[str, Any] | None = None,
                     organization: Mapping[str, Any] | None = None,
                     applied: AppliedState | None = None) -> tuple[Ticket, Organization, ZammadTicketState]:
        """Everything the engine needs about one ticket, plus its current state.

        ``record`` (a ticket read with ``expand=true``, e.g. from a search page) and
        ``organization`` (its organization record) save the reads.

        :raises ZammadNotFound: no such ticket.
        """
        if record is None:
            record = self.client.tickets.find(ticket_id, expand=True)
        if organization is None and record.get("organization_id"):
            organization = self.client.organizations.find(record["organization_id"], expand=True)
        return self._context(dict(record), organization, {}, applied)

    def _context(self, record: dict[str, Any], organization: Mapping[str, Any] | None, article: Mapping[str, Any],
                 applied: AppliedState | None) -> tuple[Ticket, Organization, ZammadTicketState]:
        learn = self.directory.learn_article_type
        learn(record.get("create_article_type_id"), record.get("create_article_type"))
        learn(article.get("type_id"), article.get("type"))
        if not record.get("create_article_type"):
            record["create_article_type"] = self._channel_name(record)
        customer = None
        language, _source = mapping.request_language(record, article)
        if language is None and mapping._truthy(record.get(mapping.TICKET_EMERGENCY)):
            # Only an emergency needs the language: the customer's locale is read then (cached).
            locale = self.directory.customer_locale(mapping._int_or_none(record.get("customer_id")))
            customer = {"preferences": {"locale": locale}} if locale else None
        ticket = mapping.ticket_from_record(record, customer=customer, article=article,
                                            applied_priority=applied.priority if applied is not None else None)
        state = mapping.ticket_state_from_record(record, tags_known=False, applied=applied)
        return ticket, mapping.organization_from_record(organization), state

    def _channel_name(self, record: Mapping[str, Any]) -> str | None:
        tid = mapping._int_or_none(record.get("id")) or 0
        with self._lock:
            if tid in self._channels:
                return self._channels[tid]
        name = self.directory.article_type_name(record.get("create_article_type_id"))
        if name is None and record.get("create_article_type_id") is not None and tid:
            read = self.client.tickets.find(tid, expand=True) or {}
            name = read.get("create_article_type")
            self.directory.learn_article_type(read.get("create_article_type_id"), name)
        if name:
            with self._lock:
                if len(self._channels) >= _CHANNEL_CACHE:
                    self._channels.pop(next(iter(self._channels)))
                self._channels[tid] = name
        return name

    def find_user(self, person: str | int) -> dict[str, Any] | None:
        """The Zammad user whose id, login or e-mail is ``person`` (hits and misses cached)."""
        return self.directory.find_user(person)

    def pause_states(self) -> frozenset[str] | None:
        """Ticket states in which Zammad's escalation clock stops (``ignore_escalation``)."""
        return self.directory.pause_states()

    def own_user_id(self) -> int:
        """policydesk's own API user: ``users/me`` with the service's token (cached)."""
        return int(self.client.me()["id"])

    def is_own_change(self, payload: Mapping[str, Any] | ZammadTicketState) -> bool:
        """Whether the ticket was last updated by policydesk's own API user (loop guard).

        Accepts a Zammad webhook payload (``{"ticket": {...}, ...}``), a ticket record,
        or a `ZammadTicketState`.
        """
        if isinstance(payload, ZammadTicketState):
            updated_by: Any = payload.updated_by_id
        else:
            ticket = payload.get("ticket", payload)
            if not isinstance(ticket, Mapping):
                return False
            updated_by = ticket.get("updated_by_id")
            if updated_by is None and isinstance(ticket.get("updated_by"), Mapping):
                updated_by = ticket["updated_by"].get("id")
            if updated_by is None and isinstance(ticket.get("updated_by"), str):
                return ticket["updated_by"].lower() == str(self.client.me().get("login", "")).lower()
        if updated_by is None:
            return False
        try:
            return int(updated_by) == self.own_user_id()
        except (TypeError, ValueError):
            return False

    # ----------------------------------------------------------------- writing

    def apply_decision(self, ticket_id: int | str, decision: Decision, *,
                       state: ZammadTicketState | None = None, policies: Policies | None = None) -> AppliedChanges:
        """Make the ticket match ``decision``, writing only what differs from what policydesk
        contributed before (``state.applied``), or from what the ticket shows.

        Mentions first (a mention makes the mentioned user ``updated_by``: mention.rb), then one
        ticket update with the fields, the fingerprint and the note (policydesk is ``updated_by``
        after it), then the tags (which keep ``updated_by``), so Zammad's "updated by someone
        else" trigger does not fire for them. The new `AppliedState` is stored only after all
        of it: a crash in between is finished by the next run (tags against the old memory).
        Without ``state`` the ticket, its tags and mentions are read. With ``policies``, account
        managers are mentioned only while the engine says they may hear of the ticket (a Zammad
        mention notifies at once); a mention already made stays while the person fills the role.
        """
        if state is None:
            state = self.read_state(ticket_id)
        tid = state.ticket_id
        desired = mapping.desired_state(decision, policies)
        applied = state.applied
        stale = applied is not None and applied.newer_than(state.record)
        current_fp = applied.fingerprint if stale and applied is not None else state.fingerprint
        if applied is None and state.fingerprint is not None and not state.tags_known:
            state = self._with_tags(state)  # decided before without a memory of it: look
        previously: frozenset[str] | None
        if applied is not None:
            previously, mentioned, routing = applied.tags, dict(applied.mentions), dict(applied.routing)
        elif state.fingerprint is not None:  # decided by a policydesk that kept no memory: ask the vocabulary
            previously, mentioned, routing = None, {}, {}
        else:  # never decided: policydesk contributed nothing, so it removes nothing
            previously, mentioned, routing = frozenset(), {}, {}
        changes = AppliedChanges(ticket_id=tid)

        # Without a tag read, what policydesk applied is taken as present (tags/add is idempotent).
        present = state.tags if state.tags_known else (previously or frozenset())
        vocabulary = self.vocabulary() if self.vocabulary is not None and previously is None else None
        if vocabulary is None:
            vocabulary = frozenset(t for t in present if mapping.is_owned_tag(t))
        add, remove = tag_changes(previously, present, desired.tags, vocabulary)
        tag_writes: list[Callable[[], None]] = []
        for tag in add:  # tags/add is idempotent (Tag.tag_add returns early on a present tag)
            tag_writes.append(lambda tag=tag: (self.client.retry.run(lambda: self.client.tags.add(tid, tag)),
                                           changes.tags_added.append(tag)))
        for tag in remove:
            tag_writes.append(lambda tag=tag: (self.client.tags.remove(tid, tag), changes.tags_removed.append(tag)))

        writes: list[Callable[[], None]] = []  # mentions
        wanted_mentions: dict[str, int] = {}
        for person in desired.mention_persons:
            user = self.find_user(person)
            if user is None:
                log.warning("ticket %s: %r is not a Zammad user; not mentioned", tid, person)
                changes.unknown_persons.append(person)
                continue
            uid = int(user["id"])
            wanted_mentions[person] = uid
            if uid in mentioned.values() or uid in state.mentioned_user_ids:
                continue
            writes.append(lambda person=person, uid=uid: self._mention(tid, person, uid, changes))
        for person, uid in mentioned.items():  # made earlier, outside the role's hours now: it stays
            if person in desired.manager_persons and person not in wanted_mentions:
                wanted_mentions[person] = uid
        former = {p: uid for p, uid in mentioned.items() if uid not in wanted_mentions.values()}
        if former:
            writes.append(lambda: self._unmention(tid, former, changes))
        try:
            self._run_all(writes)
        finally:  # parallel writes report in completion order
            for done in (changes.mentions_added, changes.mentions_removed):
                done.sort()

        update: dict[str, Any] = {}
        changed_decision = desired.fingerprint != current_fp
        if changed_decision and desired.priority is not None and (stale or desired.priority != state.priority):
            update.update(self._priority_field(desired.priority))
            changes.fields["priority"] = desired.priority
        routed: dict[str, Any] = {}
        if desired.routing and (dict(desired.routing) != routing):
            # Written once per routing decision: an agent's later reassignment is respected.
            routed = dict(desired.routing)
            update.update(routed)
            changes.fields.update(routed)
        if not stale:
            attributes = mapping.attribute_changes(state.record, desired.attributes)
        else:
            attributes = dict(desired.attributes) if changed_decision else {}
        update.update(attributes)
        changes.fields.update(attributes)
        if changed_decision:
            update[TICKET_FINGERPRINT] = desired.fingerprint
            changes.fields[TICKET_FINGERPRINT] = desired.fingerprint
            if desired.note:
                update["article"] = self._note(desired.fingerprint, desired.note)
        updated_at = applied.updated_at if applied is not None else None
        if update:
            try:
                answer = self._update_ticket(tid, update, desired.fingerprint if "article" in update else None)
            except ZammadValidationError as exc:
                if not routed:
                    raise
                # Zammad refused the group or owner (no such group, no agent): the rest still applies.
                warning = f"routing to {routed} refused: {exc.message}"
                log.warning("ticket %s: %s", tid, warning)
                changes.warnings.append(warning)
                for name in routed:
                    update.pop(name, None)
                    changes.fields.pop(name, None)
                answer = self._update_ticket(tid, update, desired.fingerprint if "article" in update else None) \
                    if update else None
            changes.note_posted = "article" in update
            updated_at = (answer or {}).get("updated_at") if isinstance(answer, Mapping) else None
        # Tags after the update: the ticket's updated_by is policydesk by then, so Zammad's
        # "updated by someone else" trigger stays quiet (a tag keeps updated_by: tag.rb).
        try:
            self._run_all(tag_writes)
        finally:
            changes.tags_added.sort()
            changes.tags_removed.sort()
        changes.applied = AppliedState(
            fingerprint=desired.fingerprint if changed_decision else current_fp,
            tags=desired.tags, mentions=wanted_mentions,
            routing=dict(desired.routing) if desired.routing else routing,
            updated_at=updated_at, timers=applied.timers if applied is not None else None,
            priority=desired.priority if "priority" in changes.fields or "priority_id" in update
            else (applied.priority if applied is not None else None),
        )
        if changes:
            log.info("ticket %s: applied %s", tid, _summary(changes))
        return changes

    def _run_all(self, writes: list[Callable[[], None]]) -> None:
        """Run independent writes at once; the first failure is raised after all have ended."""
        if not writes:
            return
        if len(writes) == 1:
            writes[0]()
            return
        futures = [self._pool.submit(write) for write in writes]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error

    def _mention(self, tid: int, person: str, uid: int, changes: AppliedChanges) -> None:
        try:
            self.client.retry.run(lambda: self.client.mentions.add(tid, on_behalf_of=uid),
                                  already_done=lambda: self._mentioned(tid, uid))
        except ZammadValidationError as exc:
            if "already" in exc.message.lower() or self._mentioned(tid, uid):
                return  # mentioned meanwhile ("User has already been taken")
            # lib/validations/mention_validator.rb: no agent access to the ticket's group.
            warning = f"{person} could not be mentioned: {exc.message}"
            log.warning("ticket %s: %s", tid, warning)
            changes.warnings.append(warning)
            return
        changes.mentions_added.append(person)

    def _unmention(self, tid: int, former: Mapping[str, int], changes: AppliedChanges) -> None:
        for mention in self.client.mentions.for_ticket(tid):
            uid = int(mention.get("user_id") or 0)
            person = next((p for p, u in former.items() if u == uid), None)
            if person is None:
                continue
            try:  # Zammad deletes only the current user's mention: on their behalf
                self.client.mentions.remove(mention["id"], on_behalf_of=uid)
            except ZammadError as exc:
                changes.warnings.append(f"{person}'s mention could not be removed: {exc.message}")
                continue
            changes.mentions_removed.append(person)

    def _mentioned(self, ticket_id: int, user_id: int) -> bool | None:
        mentions = self.client.mentions.for_ticket(ticket_id)
        return True if any(int(m.get("user_id") or 0) == user_id for m in mentions) else None

    def _priority_field(self, name: str) -> dict[str, Any]:
        ids = self.directory.priority_ids()
        return {"priority_id": ids[name]} if name in ids else {"priority": name}

    @staticmethod
    def _note(fingerprint: str, body: str) -> dict[str, Any]:
        return {"subject": NOTE_SUBJECT, "body": body, "content_type": "text/plain", "type": "note",
                "internal": True, "sender": "Agent", "preferences": {NOTE_PREFERENCE: fingerprint}}

    def _update_ticket(self, tid: int, update: Mapping[str, Any], fingerprint: str | None) -> Any:
        """The one ticket update. With a note it is never repeated blindly: after a failed try
        the ticket is read, and a fingerprint already there means the update (and the note) landed."""
        if fingerprint is None:
            return self.client.tickets.update(tid, update)

        def landed() -> Any:
            try:
                record = self.client.tickets.find(tid)
            except ZammadError:
                return None
            return record if (record or {}).get(TICKET_FINGERPRINT) == fingerprint else None

        return self.client.retry.run(lambda: self.client.tickets.update(tid, update, once=True), already_done=landed)

    def policydesk_notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """policydesk's internal notes on the ticket, oldest first."""
        articles = self.client.ticket_articles.by_ticket(ticket_id)
        notes = [a for a in articles if a.get("subject") == NOTE_SUBJECT and a.get("internal")]
        return sorted(notes, key=lambda a: int(a.get("id") or 0))

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _summary(changes: AppliedChanges) -> str:
    parts = [f"+{t}" for t in changes.tags_added] + [f"-{t}" for t in changes.tags_removed]
    parts += [f"@{p}" for p in changes.mentions_added] + [f"-@{p}" for p in changes.mentions_removed]
    parts += sorted(changes.fields) + (["note"] if changes.note_posted else [])
    return ", ".join(parts) or "nothing"

