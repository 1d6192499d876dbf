"""The Zammad adapter: read what the engine needs, write a Decision back as a diff.

::

    client = ZammadClient.from_env()            # ZAMMAD_URL + ZAMMAD_TOKEN / ZAMMAD_TOKEN_FILE
    adapter = ZammadAdapter(client)
    ticket, organization, state = adapter.load_context(42)
    decision = engine.evaluate(ticket, organization, now)
    changes = adapter.apply_decision(42, decision, state=state)   # empty when nothing differs

Writes are idempotent or checked (the note), so a retried job has one effect.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from zammad_py import ZammadAPI

from integrations.zammad import mapping
from integrations.zammad.errors import ZammadError, ZammadNotFound, ZammadValidationError
from integrations.zammad.mapping import (
    NOTE_PREFERENCE,
    NOTE_SUBJECT,
    TICKET_FINGERPRINT,
    ZammadTicketState,
)
from integrations.zammad.resources import (
    Calendars,
    Groups,
    Mentions,
    ObjectManagerAttributes,
    Organizations,
    RetryPolicy,
    SLAs,
    TagList,
    Tags,
    TicketArticles,
    TicketPriorities,
    Tickets,
    TicketStates,
    Triggers,
    Users,
    Webhooks,
    ZammadSession,
    iter_all,
)
from plugin.errors import UserError
from plugin.model import Decision, Organization, Ticket

log = logging.getLogger(__name__)

__all__ = [
    "AppliedChanges",
    "ZammadAdapter",
    "ZammadClient",
    "ZammadSettings",
    "ZammadTicketState",
    "api_url",
]

# --------------------------------------------------------------------------- settings


class ZammadConfigError(UserError, ValueError):
    """The Zammad URL or token is missing or unreadable."""


def api_url(url: str) -> str:
    """``https://desk.example`` -> ``https://desk.example/api/v1/`` (an API URL is kept)."""
    base = url.strip().rstrip("/")
    if not base.endswith("/api/v1"):
        base += "/api/v1"
    return base + "/"


@dataclass(frozen=True)
class ZammadSettings:
    """Where Zammad is and how to talk to it.  Never read from policy YAML."""

    url: str
    token: str = field(repr=False)
    #: Seconds for connecting and for each read, on every request.
    timeout: float = 10.0
    retry_attempts: int = 4
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, config_file: str | os.PathLike | None = None) -> "ZammadSettings":
        """From the environment, falling back to a TOML config file's ``[zammad]`` table.

        Environment: ``ZAMMAD_URL``, ``ZAMMAD_TOKEN`` or ``ZAMMAD_TOKEN_FILE``,
        ``ZAMMAD_TIMEOUT``, ``ZAMMAD_RETRY_ATTEMPTS``; the config file is ``config_file``
        or ``$POLICYDESK_CONFIG`` and may hold ``url``, ``token_file`` (or ``token``),
        ``timeout``, ``retry_attempts``, ``retry_base_delay``, ``retry_max_delay``.
        """
        env = os.environ if environ is None else environ
        file_values: dict[str, Any] = {}
        path = config_file or env.get("POLICYDESK_CONFIG")
        if path:
            try:
                with open(path, "rb") as fh:
                    file_values = dict(tomllib.load(fh).get("zammad") or {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ZammadConfigError(f"{path}: cannot read Zammad settings: {exc}") from exc

        url = env.get("ZAMMAD_URL") or file_values.get("url")
        if not url:
            raise ZammadConfigError("ZAMMAD_URL is not set (nor `url` under [zammad] in the config file)")
        from integrations.settings import ConfigError, optional_secret

        try:
            token = optional_secret(env, "ZAMMAD_TOKEN")
        except ConfigError as exc:
            raise ZammadConfigError(str(exc)) from None
        token_file = None
        if not token:
            token, token_file = file_values.get("token"), file_values.get("token_file")
        if not token and token_file:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise ZammadConfigError(f"{token_file}: cannot read the Zammad token: {exc}") from exc
        if not token:
            raise ZammadConfigError("no Zammad token: set ZAMMAD_TOKEN or ZAMMAD_TOKEN_FILE")

        def number(env_name: str, key: str, default: float) -> float:
            raw = env.get(env_name) if env_name else None
            raw = raw if raw not in (None, "") else file_values.get(key, default)
            try:
                return float(raw)
            except (TypeError, ValueError) as exc:
                raise ZammadConfigError(f"{env_name or key}: expected a number, got {raw!r}") from exc

        return cls(
            url=str(url),
            token=str(token),
            timeout=number("ZAMMAD_TIMEOUT", "timeout", 10.0),
            retry_attempts=int(number("ZAMMAD_RETRY_ATTEMPTS", "retry_attempts", 4)),
            retry_base_delay=number("", "retry_base_delay", 0.5),
            retry_max_delay=number("", "retry_max_delay", 8.0),
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=max(1, self.retry_attempts), base_delay=self.retry_base_delay, max_delay=self.retry_max_delay
        )


# --------------------------------------------------------------------------- client


class ZammadClient(ZammadAPI):
    """zammad-py's API object with typed errors, timeouts, retries and more resources.

    The zammad-py property names (``ticket``, ``user``, ...) return the typed resources
    too, so code written for zammad-py keeps working.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, retry: RetryPolicy | None = None) -> None:
        super().__init__(url=api_url(url), http_token=token)
        self.retry = retry or RetryPolicy()
        session = ZammadSession(timeout=timeout, retry=self.retry)
        session.headers.update(self.session.headers)
        session.headers["User-Agent"] = "policydesk (zammad-py)"
        self.session.close()
        self.session = session
        self._me: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: ZammadSettings) -> "ZammadClient":
        return cls(settings.url, settings.token, timeout=settings.timeout, retry=settings.retry_policy())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, config_file: str | None = None) -> "ZammadClient":
        return cls.from_settings(ZammadSettings.load(environ, config_file))

    def me(self) -> dict[str, Any]:
        """``users/me``: policydesk's own API user (cached)."""
        if self._me is None:
            self._me = self.users.me()
        return self._me

    # Typed versions of zammad-py's resources, under their zammad-py names and plural ones.
    tickets = ticket = property(lambda self: Tickets(connection=self))  # type: ignore[assignment]
    ticket_articles = ticket_article = property(lambda self: TicketArticles(connection=self))  # type: ignore[assignment]
    users = user = property(lambda self: Users(connection=self))  # type: ignore[assignment]
    organizations = organization = property(lambda self: Organizations(connection=self))  # type: ignore[assignment]
    groups = group = property(lambda self: Groups(connection=self))  # type: ignore[assignment]
    ticket_priorities = ticket_priority = property(lambda self: TicketPriorities(connection=self))  # type: ignore[assignment]
    ticket_states = ticket_state = property(lambda self: TicketStates(connection=self))  # type: ignore[assignment]
    tags = ticket_tag = property(lambda self: Tags(connection=self))  # type: ignore[assignment]
    taglist = tag_list = property(lambda self: TagList(connection=self))  # type: ignore[assignment]
    # Resources zammad-py lacks.
    mentions = property(lambda self: Mentions(connection=self))
    object_manager_attributes = property(lambda self: ObjectManagerAttributes(connection=self))
    calendars = property(lambda self: Calendars(connection=self))
    slas = property(lambda self: SLAs(connection=self))
    triggers = property(lambda self: Triggers(connection=self))
    webhooks = property(lambda self: Webhooks(connection=self))


# --------------------------------------------------------------------------- adapter


@dataclass
class AppliedChanges:
    """What `ZammadAdapter.apply_decision` wrote; falsy when it wrote nothing."""

    ticket_id: int
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)
    #: Persons (login or e-mail) newly subscribed to the ticket.
    mentions_added: list[str] = field(default_factory=list)
    #: Ticket fields written (priority and policydesk attributes), with their new values.
    fields: dict[str, Any] = field(default_factory=dict)
    #: Id of the internal note posted, when one was.
    note_article_id: int | None = None
    #: Persons the decision names who are not Zammad users (nothing written for them).
    unknown_persons: list[str] = field(default_factory=list)

    @property
    def note_posted(self) -> bool:
        return self.note_article_id is not None

    @property
    def write_calls(self) -> int:
        """HTTP write requests made (one per tag, mention and note; one for all fields)."""
        return (
            len(self.tags_added) + len(self.tags_removed) + len(self.mentions_added)
            + (1 if self.fields else 0) + (1 if self.note_posted else 0)
        )

    def __bool__(self) -> bool:
        return self.write_calls > 0


class ZammadAdapter:
    """Reads tickets for the engine and writes decisions back, through one `ZammadClient`."""

    def __init__(self, client: ZammadClient) -> None:
        self.client = client
        self._users: dict[str, dict[str, Any] | None] = {}
        self._priority_ids: dict[str, int] | None = None

    # ----------------------------------------------------------------- reading

    def read_state(self, ticket_id: int | str) -> ZammadTicketState:
        """The ticket (``expand=true``), its tags and its mentions."""
        record = self.client.tickets.find(ticket_id, expand=True)
        return self._state(record)

    def _state(self, record: Mapping[str, Any]) -> ZammadTicketState:
        ticket_id = record["id"]
        tags = frozenset(self.client.tags.list(ticket_id))
        mentions = self.client.mentions.for_ticket(ticket_id)
        user_ids = frozenset(int(m["user_id"]) for m in mentions if m.get("user_id") is not None)
        return mapping.ticket_state_from_record(record, tags=tags, mentioned_user_ids=user_ids)

    def load_context(self, ticket_id: int | str) -> tuple[Ticket, Organization, ZammadTicketState]:
        """Everything the engine needs about one ticket, plus its current state.

        :raises ZammadNotFound: no such ticket.
        """
        state = self.read_state(ticket_id)
        record = state.record
        organization_record = None
        if record.get("organization_id"):
            organization_record = self.client.organizations.find(record["organization_id"], expand=True)
        customer = None
        if record.get("customer_id"):
            try:
                customer = self.client.users.find(record["customer_id"], expand=True)
            except ZammadNotFound:
                log.warning("ticket %s: customer %s not found", ticket_id, record["customer_id"])
        ticket = mapping.ticket_from_record(record, tags=state.tags, customer=customer)
        return ticket, mapping.organization_from_record(organization_record), state

    def find_user(self, person: str | int) -> dict[str, Any] | None:
        """The Zammad user whose id, login or e-mail is ``person`` (cached), or ``None``."""
        key = str(person).strip().lower()
        if key in self._users:
            return self._users[key]
        user: dict[str, Any] | None = None
        if key.isdigit():
            try:
                user = self.client.users.find(int(key))
            except ZammadNotFound:
                user = None
        else:
            def matches(candidate: Mapping[str, Any]) -> bool:
                return key in (str(candidate.get("login") or "").lower(), str(candidate.get("email") or "").lower())

            try:
                user = next((u for u in self.client.users.search_exact(key) if matches(u)), None)
            except ZammadNotFound:
                user = None
            if user is None:  # search may be fuzzy or index-lagged: walk the user list
                user = next((u for u in iter_all(self.client.users) if matches(u)), None)
        if user is not None:  # someone not found yet may be created in Zammad later
            self._users[key] = user
        return user

    def own_user_id(self) -> int:
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

    def apply_decision(
        self, ticket_id: int | str, decision: Decision, *, state: ZammadTicketState | None = None
    ) -> AppliedChanges:
        """Make the ticket match ``decision``, writing only what differs.

        ``state`` (from `load_context`) saves a read but should be fresh; it is re-read
        when omitted.  Order: tags, mentions, note, then one ticket update carrying the
        priority, policydesk's attributes and the decision fingerprint, so a crash before
        the end leaves the fingerprint old and the next run finishes the job.
        """
        if state is None:
            state = self.read_state(ticket_id)
        tid = state.ticket_id
        desired = mapping.desired_state(decision)
        changes = AppliedChanges(ticket_id=tid)
        retry = self.client.retry

        add, remove = mapping.tag_changes(state.tags, desired.tags)
        for tag in add:  # Zammad's tags/add is idempotent: plain retry is safe
            retry.run(lambda tag=tag: self.client.tags.add(tid, tag))
            changes.tags_added.append(tag)
        for tag in remove:
            self.client.tags.remove(tid, tag)
            changes.tags_removed.append(tag)

        for person in desired.mention_persons:
            user = self.find_user(person)
            if user is None:
                log.warning("ticket %s: %r is not a Zammad user; not mentioned", tid, person)
                changes.unknown_persons.append(person)
                continue
            if int(user["id"]) in state.mentioned_user_ids:
                continue
            try:
                retry.run(
                    lambda user=user: self.client.mentions.add(tid, on_behalf_of=user["id"]),
                    already_done=lambda user=user: self._mentioned(tid, int(user["id"])),
                )
            except ZammadValidationError as exc:
                # Another worker applying an event of the same ticket mentioned them
                # between our read and this POST: Zammad answers 422 ("User has already
                # been taken"). The ticket is right; any other 422 is still an error.
                if exc.status != 422 or not self._mentioned(tid, int(user["id"])):
                    raise
                log.info("ticket %s: %r was mentioned meanwhile (concurrent update)", tid, person)
                continue
            changes.mentions_added.append(person)

        update: dict[str, Any] = {}
        if desired.priority is not None and desired.priority != state.priority:
            update.update(self._priority_field(desired.priority))
            changes.fields["priority"] = desired.priority
        attributes = mapping.attribute_changes(state.record, desired.attributes)
        update.update(attributes)
        changes.fields.update(attributes)
        if desired.fingerprint != state.fingerprint:
            if desired.note:
                article = self._post_note_once(tid, desired.fingerprint, desired.note)
                if article is not None:
                    changes.note_article_id = int(article["id"])
            update[TICKET_FINGERPRINT] = desired.fingerprint
            changes.fields[TICKET_FINGERPRINT] = desired.fingerprint
        if update:
            self.client.tickets.update(tid, update)
        if changes:
            log.info("ticket %s: applied %s", tid, changes)
        return changes

    def _mentioned(self, ticket_id: int, user_id: int) -> bool | None:
        mentions = self.client.mentions.for_ticket(ticket_id)
        return True if any(int(m.get("user_id") or 0) == user_id for m in mentions) else None

    def _priority_field(self, name: str) -> dict[str, Any]:
        if self._priority_ids is None:
            try:
                self._priority_ids = {p["name"]: int(p["id"]) for p in iter_all(self.client.ticket_priorities)}
            except ZammadError as exc:
                log.warning("cannot list ticket priorities (%s); writing the priority by name", exc)
                self._priority_ids = {}
        if name in self._priority_ids:
            return {"priority_id": self._priority_ids[name]}
        return {"priority": name}

    def policydesk_notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """policydesk's internal notes on the ticket, oldest first."""
        articles = self.client.ticket_articles.by_ticket(ticket_id)
        notes = [a for a in articles if a.get("subject") == NOTE_SUBJECT and a.get("internal")]
        return sorted(notes, key=lambda a: int(a.get("id") or 0))

    def _existing_note(self, ticket_id: int, fingerprint: str, body: str) -> dict[str, Any] | None:
        """The latest policydesk note, if it already explains this decision."""
        notes = self.policydesk_notes(ticket_id)
        if not notes:
            return None
        last = notes[-1]
        recorded = (last.get("preferences") or {}).get(NOTE_PREFERENCE)
        if recorded is not None:
            return last if recorded == fingerprint else None
        return last if (last.get("body") or "").strip() == body.strip() else None

    def _post_note_once(self, ticket_id: int, fingerprint: str, body: str) -> dict[str, Any] | None:
        """Post the internal note unless it is already there (a retried job, a timed-out POST).

        Returns the article this call posted (found again if a timed-out try had in fact
        posted it), or ``None`` when the note was already there before this call.
        """
        if self._existing_note(ticket_id, fingerprint, body) is not None:
            return None
        article = {
            "ticket_id": ticket_id,
            "subject": NOTE_SUBJECT,
            "body": body,
            "content_type": "text/plain",
            "type": "note",
            "internal": True,
            "sender": "Agent",
            "preferences": {NOTE_PREFERENCE: fingerprint},
        }
        return self.client.retry.run(
            lambda: self.client.ticket_articles.create(article),
            already_done=lambda: self._existing_note(ticket_id, fingerprint, body),
        )
