"""Zammad records <-> policydesk values, and a Decision -> the ticket state it asks for.

Pure: no HTTP here.  The names of every Zammad attribute and tag policydesk owns are
defined once in this module; ``sync`` creates the attributes from these constants.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from plugin import language as plugin_language
from plugin import timefmt
from plugin.model import Decision, Organization, Policies, Ticket
from plugin.notification import managers_to_mention

# --------------------------------------------------------------------------- attribute names

#: Organization attributes policydesk reads (created by ``sync``).
ORG_SUPPORT_PLAN = "support_plan"
ORG_ACCOUNT_MANAGER = "account_manager"
ORG_TECHNICAL_ACCOUNT_MANAGER = "technical_account_manager"
ORG_COMMITMENT_END = "commitment_end"
ORG_PARTNER = "partner"
ORGANIZATION_ATTRIBUTES = (
    ORG_SUPPORT_PLAN, ORG_ACCOUNT_MANAGER, ORG_TECHNICAL_ACCOUNT_MANAGER, ORG_COMMITMENT_END, ORG_PARTNER,
)
#: Account-manager role (as in policies) -> the organization attribute naming the person
#: (a Zammad user login or e-mail address).
ROLE_ATTRIBUTES: Mapping[str, str] = {
    "account_manager": ORG_ACCOUNT_MANAGER,
    "technical_account_manager": ORG_TECHNICAL_ACCOUNT_MANAGER,
}

#: Ticket attributes policydesk writes (created by ``sync``).
TICKET_PLAN = "policydesk_plan"
TICKET_FIRST_RESPONSE_DUE = "policydesk_first_response_due"
#: Fingerprint of the decision the last note explained (see `decision_fingerprint`).
TICKET_FINGERPRINT = "policydesk_fingerprint"
#: Ticket attributes policydesk reads (filled by agents or the customer form).
TICKET_CATEGORY = "policydesk_category"
TICKET_EMERGENCY = "policydesk_emergency"
#: Where an agent types the VIP code a caller gives; policydesk checks and clears it.
TICKET_VIP_CODE = "policydesk_vip_code"
#: The request's language, set by an agent (a phone call) -- first of the language sources.
TICKET_LANGUAGE = "policydesk_language"
TICKET_ATTRIBUTES = (TICKET_PLAN, TICKET_FIRST_RESPONSE_DUE, TICKET_FINGERPRINT, TICKET_CATEGORY, TICKET_EMERGENCY,
                     TICKET_VIP_CODE, TICKET_LANGUAGE)

# --------------------------------------------------------------------------- tags

#: Tags with these prefixes belong to policydesk's decision: it removes them when no longer
#: wanted. (``vip:verified`` / ``vip:mismatch`` are written by the VIP check,
#: `integrations.vip.check_vip_entry`, not by a decision, so the decision diff leaves them.)
OWNED_TAG_PREFIXES = ("plan:", "hours:", "sla:")
#: Single tags that belong to policydesk.
OWNED_TAGS = frozenset({"emergency", "out-of-scope"})


def is_owned_tag(tag: str) -> bool:
    """Whether policydesk may remove ``tag`` (other tags are never touched)."""
    return tag in OWNED_TAGS or tag.startswith(OWNED_TAG_PREFIXES)


# --------------------------------------------------------------------------- notes

#: Subject of policydesk's internal notes (how they are recognised).
NOTE_SUBJECT = "policydesk"
#: Key under the article's ``preferences`` holding the decision fingerprint.
NOTE_PREFERENCE = "policydesk_fingerprint"

# --------------------------------------------------------------------------- channels

#: policydesk channel names.
CHANNELS = ("phone", "email", "web", "chat", "sms", "twitter", "facebook", "telegram", "other")
_EXACT_CHANNELS = {"phone": "phone", "email": "email", "web": "web", "chat": "chat", "sms": "sms", "fax": "other"}
_PREFIX_CHANNELS = (("twitter", "twitter"), ("facebook", "facebook"), ("telegram", "telegram"))


def channel_of(article_type: str | None) -> str:
    """Zammad's ``create_article_type`` name -> policydesk channel.

    ``"twitter status"`` -> ``twitter``, ``"facebook feed post"`` -> ``facebook``,
    ``"telegram personal-message"`` -> ``telegram``; unknown or missing -> ``other``.
    """
    name = (article_type or "").strip().lower()
    if name in _EXACT_CHANNELS:
        return _EXACT_CHANNELS[name]
    for prefix, channel in _PREFIX_CHANNELS:
        if name.startswith(prefix):
            return channel
    return "other"


def language_of(locale: str | None) -> str | None:
    """Zammad locale (``fr-fr``, ``en-us``, ``de_CH``) -> ISO 639-1 code (``fr``)."""
    if not locale:
        return None
    code = str(locale).replace("_", "-").split("-", 1)[0].strip().lower()
    return code or None


# --------------------------------------------------------------------------- values


#: Zammad ticket states in which a ticket is no longer open (no deadline runs, nobody is
#: notified): db/seeds/ticket_state_types.rb's "closed", "merged" and "removed" types.
CLOSED_STATES = frozenset({"closed", "merged", "removed"})


def parse_instant(value: Any) -> dt.datetime | None:
    """Zammad timestamp (``2026-01-05T09:00:00.000Z``) -> aware datetime, UTC if unzoned."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    text = str(value).strip()
    if text.endswith(" UTC"):  # Ruby's TimeWithZone#to_s, in a custom payload
        text = text[:-4].replace(" ", "T") + "+00:00"
    return timefmt.parse_instant(text, dt.timezone.utc)


def format_instant(value: dt.datetime | None) -> str | None:
    """Aware datetime -> Zammad's UTC form, ``2026-01-05T09:00:00.000Z``."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: policydesk only writes aware instants")
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _instant_field(record: Mapping[str, Any], name: str) -> dt.datetime | None:
    try:
        return parse_instant(record.get(name))
    except (TypeError, ValueError):
        raise ValueError(f"ticket {record.get('id')}: {name} {str(record.get(name))[:40]!r} is not a time") from None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# --------------------------------------------------------------------------- records -> model


def organization_from_record(record: Mapping[str, Any] | None) -> Organization:
    """A Zammad organization (with policydesk's attributes) -> `Organization`."""
    if not record:
        return Organization()
    managers = {
        role: person for role, attribute in ROLE_ATTRIBUTES.items() if (person := _text(record.get(attribute)))
    }
    return Organization(
        id=record.get("id"),
        name=record.get("name") or "",
        plan=_text(record.get(ORG_SUPPORT_PLAN)),
        account_managers=managers,
        partner=_truthy(record.get(ORG_PARTNER)),
        commitment_end=parse_date(record.get(ORG_COMMITMENT_END)),
    )


def customer_locale(customer: Mapping[str, Any] | None) -> str | None:
    if not customer:
        return None
    preferences = customer.get("preferences") or {}
    return preferences.get("locale") if isinstance(preferences, Mapping) else None


def request_language(record: Mapping[str, Any], article: Mapping[str, Any] | None = None,
                     customer: Mapping[str, Any] | None = None) -> tuple[str | None, str | None]:
    """The request's language and where it came from (`plugin.language.request_language`): the
    ticket attribute agents set (a phone call), else the article's detected language, else the
    customer's locale."""
    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value.strip() and not value.startswith("#{") else None

    return plugin_language.request_language(text(record.get(TICKET_LANGUAGE)),
                                            text((article or {}).get("detected_language")),
                                            text(customer_locale(customer)))


def ticket_from_record(
    record: Mapping[str, Any], *, tags: frozenset[str] | None = None, customer: Mapping[str, Any] | None = None,
    article: Mapping[str, Any] | None = None, applied_priority: str | None = None,
) -> Ticket:
    """A Zammad ticket read with ``expand=true`` -> `Ticket`.

    :raises ValueError: a field the engine needs is malformed (the message names it).
    """
    created_at = _instant_field(record, "created_at")
    if created_at is None:
        raise ValueError(f"ticket {record.get('id')}: no created_at")
    # Whole seconds: the API answers milliseconds, a custom payload's xmlschema seconds; the
    # decision (and its fingerprint) must not depend on which one was read.
    created_at = created_at.replace(microsecond=0)
    first_response_at = _instant_field(record, "first_response_at")
    if first_response_at is not None:
        first_response_at = first_response_at.replace(microsecond=0)
    language, language_source = request_language(record, article, customer)
    return Ticket(
        id=record.get("id"),
        channel=channel_of(record.get("create_article_type")),
        created_at=created_at,
        category=_text(record.get(TICKET_CATEGORY)),
        language=language,
        language_source=language_source,
        applied_priority=applied_priority,
        group=_text(record.get("group")),
        owner=_text(record.get("owner")) if record.get("owner") not in ("-",) else None,
        emergency_requested=_truthy(record.get(TICKET_EMERGENCY)),
        state=record.get("state") or "new",
        first_response_at=first_response_at,
        tags=tags if tags is not None else frozenset(),
        priority=record.get("priority"),
    )


@dataclass(frozen=True)
class ZammadTicketState:
    """What a ticket has now, in the terms `apply_decision` compares against."""

    ticket_id: int
    tags: frozenset[str]
    priority: str | None
    #: Users subscribed to the ticket (Zammad mentions).
    mentioned_user_ids: frozenset[int]
    plan: str | None
    first_response_due: dt.datetime | None
    #: Fingerprint of the decision the last policydesk note explained.
    fingerprint: str | None
    updated_by_id: int | None
    customer_id: int | None = None
    organization_id: int | None = None
    #: The ticket as Zammad returned it (``expand=true``).
    record: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Whether ``tags`` and ``mentioned_user_ids`` were read (a webhook payload has neither).
    tags_known: bool = True
    #: What policydesk contributed to the ticket by its last write (from the store), if known.
    applied: "AppliedState | None" = field(default=None, compare=False)


@dataclass(frozen=True)
class AppliedState:
    """What policydesk's last write gave a ticket: kept so the next write is a diff without
    reading tags and mentions back, and so only what policydesk contributed is ever removed."""

    fingerprint: str | None
    tags: frozenset[str] = frozenset()
    #: Person (login or e-mail) -> Zammad user id, for each mention policydesk made.
    mentions: Mapping[str, int] = field(default_factory=dict)
    #: Routing fields policydesk wrote (``group_id``, ``owner_id``); agents may change them since.
    routing: Mapping[str, Any] = field(default_factory=dict)
    #: The ticket's ``updated_at`` Zammad answered to that write (orders it against payloads).
    updated_at: str | None = None
    #: The timer signature last set (see `Processor`), so unchanged decisions skip the store.
    timers: str | None = None
    #: The priority policydesk wrote last (the engine returns a step-raised priority to the plan's).
    priority: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "tags": sorted(self.tags), "mentions": dict(self.mentions),
                "routing": dict(self.routing), "updated_at": self.updated_at, "timers": self.timers,
                "priority": self.priority}

    @classmethod
    def from_json(cls, data: Any) -> "AppliedState | None":
        if not isinstance(data, Mapping):
            return None
        mentions = data.get("mentions") if isinstance(data.get("mentions"), Mapping) else {}
        return cls(
            fingerprint=data.get("fingerprint"), tags=frozenset(data.get("tags") or ()),
            mentions={str(k): int(v) for k, v in mentions.items() if str(v).isdigit()},
            routing=dict(data.get("routing") or {}), updated_at=data.get("updated_at"), timers=data.get("timers"),
            priority=data.get("priority"),
        )

    def newer_than(self, record: Mapping[str, Any]) -> bool:
        """Whether this write is later than the ticket state ``record`` shows (a stale payload)."""
        try:
            ours, theirs = parse_instant(self.updated_at), parse_instant(record.get("updated_at"))
        except (TypeError, ValueError):
            return True  # the record's time is unreadable: trust what we wrote
        return ours is not None and (theirs is None or ours > theirs)


def ticket_state_from_record(
    record: Mapping[str, Any], *, tags: frozenset[str] = frozenset(), mentioned_user_ids: frozenset[int] = frozenset(),
    tags_known: bool = True, applied: AppliedState | None = None,
) -> ZammadTicketState:
    return ZammadTicketState(
        ticket_id=int(record["id"]),
        tags=tags,
        priority=record.get("priority"),
        mentioned_user_ids=mentioned_user_ids,
        plan=_text(record.get(TICKET_PLAN)),
        first_response_due=_lenient_instant(record.get(TICKET_FIRST_RESPONSE_DUE)),
        fingerprint=_text(record.get(TICKET_FINGERPRINT)),
        updated_by_id=_int_or_none(record.get("updated_by_id")),
        customer_id=_int_or_none(record.get("customer_id")),
        organization_id=_int_or_none(record.get("organization_id")),
        record=record,
        tags_known=tags_known,
        applied=applied,
    )


def _lenient_instant(value: Any) -> dt.datetime | None:
    try:
        return parse_instant(value)
    except (TypeError, ValueError):
        return None  # only compared against: an unreadable value is rewritten


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- decision -> desired


def decision_fingerprint(decision: Decision) -> str:
    """A short hash of what a decision decides (not of why, nor of ``now``).

    Two decisions with the same plan, calendar, due time, emergency eligibility, scope,
    account managers, escalation step, priority and tags have the same fingerprint; the
    explaining note is written only when it changes.
    """
    def value(verdict: Any) -> Any:
        return None if verdict is None else verdict.value

    emergency = value(decision.emergency)
    scope = value(decision.scope)
    escalation = value(decision.escalation)
    managers = value(decision.account_managers)
    due = value(decision.first_response_due)
    material = {
        "plan": value(decision.plan),
        "calendar": value(decision.calendar),
        "due": format_instant(due) if due is not None else None,
        "emergency": None if emergency is None else [emergency.requested, emergency.eligible],
        "scope": None if scope is None else [scope.in_scope, scope.category],
        "managers": None if managers is None else sorted(managers.items()),
        "escalation": None if escalation is None or escalation.step is None else escalation.step.name,
        "priority": value(decision.priority),
        "tags": sorted(decision.tag_names),
    }
    routing = routing_fields(decision)
    if routing:  # only when the engine routes, so older fingerprints stay valid
        material["routing"] = sorted((k, str(v)) for k, v in routing.items())
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DesiredTicketState:
    """What a Decision asks the ticket to have.  ``None`` fields mean "leave as is"."""

    #: Tags the decision wants present.
    tags: frozenset[str]
    priority: str | None
    #: Logins or e-mails of the people to subscribe (mention) now: the account managers the
    #: engine says may hear of the ticket at this instant (`plugin.notification.managers_to_mention`).
    mention_persons: tuple[str, ...]
    #: Ticket attributes to hold these values (wire format; ``None`` clears).
    attributes: Mapping[str, Any]
    fingerprint: str
    #: The decision asked for: its explaining note (`note`) is written only when read.
    decision: Decision | None = field(default=None, repr=False, compare=False)
    #: Routing fields the decision asks for (``group``, ``owner``...), empty when it routes nothing.
    routing: Mapping[str, Any] = field(default_factory=dict)
    #: Everyone filling one of the plan's manager roles: a mention policydesk made of one of them
    #: stays (outside their hours too); a mention of anyone else it made is a former manager's.
    manager_persons: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        """The internal note explaining the decision (read only when the fingerprint changed:
        the engine writes a decision's notes when first read)."""
        return self.decision.note_text if self.decision is not None else ""


def routing_fields(decision: Decision) -> dict[str, Any]:
    """The ticket fields a routing decision sets (``decision.routing``: group and owner by
    name, which Zammad's association_name_to_id_convert looks up); parts left ``None`` stay."""
    verdict = getattr(decision, "routing", None)
    value = getattr(verdict, "value", None)
    if value is None:
        return {}
    fields_: dict[str, Any] = {}
    for name in ("group", "owner"):
        item = value.get(name) if isinstance(value, Mapping) else getattr(value, name, None)
        if item not in (None, ""):
            fields_[name] = item
    return fields_


def desired_state(decision: Decision, policies: Policies | None = None) -> DesiredTicketState:
    """What ``decision`` asks of the ticket; with ``policies``, managers are mentioned only when
    the engine says they may hear of it now (their hours, or urgent), else all of them."""
    attributes: dict[str, Any] = {}
    if decision.plan is not None:
        attributes[TICKET_PLAN] = decision.plan.value
    if decision.first_response_due is not None:
        attributes[TICKET_FIRST_RESPONSE_DUE] = format_instant(decision.first_response_due.value)
    managers = decision.account_managers.value if decision.account_managers is not None else {}
    persons = tuple(dict.fromkeys(p for p in managers.values() if p))
    now = managers_to_mention(policies, decision) if policies is not None else persons
    return DesiredTicketState(
        tags=frozenset(decision.tag_names),
        priority=decision.priority.value if decision.priority is not None else None,
        mention_persons=now,
        manager_persons=persons,
        attributes=attributes,
        fingerprint=decision_fingerprint(decision),
        decision=decision,
        routing=routing_fields(decision),
    )


def tag_changes(current: frozenset[str], wanted: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(tags to add, tags to remove): only policydesk's own tags are ever removed."""
    add = tuple(sorted(wanted - current))
    remove = tuple(sorted(t for t in current - wanted if is_owned_tag(t)))
    return add, remove


def attribute_changes(record: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of ``wanted`` whose value differs from ``record``'s."""
    changed: dict[str, Any] = {}
    for name, value in wanted.items():
        if not _same_value(record.get(name), value):
            changed[name] = value
    return changed


def _same_value(current: Any, wanted: Any) -> bool:
    if current in (None, "") and wanted in (None, ""):
        return True
    if current in (None, "") or wanted in (None, ""):
        return False
    if isinstance(wanted, str) and isinstance(current, str) and wanted.endswith("Z") and "T" in wanted:
        try:
            return parse_instant(current) == parse_instant(wanted)
        except ValueError:
            return False
    return current == wanted
