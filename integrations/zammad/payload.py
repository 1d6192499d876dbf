"""A Zammad webhook payload -> the ticket, organization and article records the adapter reads.

Two shapes arrive: Zammad's default payload (app/jobs/trigger_webhook_job/record_payload/
ticket.rb: the ticket's ``attributes_with_association_names`` with owner, customer,
created_by, updated_by, organization, priority and group replaced by their records) and the
custom payload ``sync`` configures (`integrations.zammad.sync_objects.webhook_payload_template`:
every value a string, what Zammad could not render left as ``"#{...}"``; custom_payload.rb).
Both become the form ``GET tickets/<id>?expand=true`` answers, so the mapping has one input.
Pure: no HTTP here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: The key that marks sync's custom payload (`sync_objects.PAYLOAD_MARKER`).
PAYLOAD_MARKER = "policydesk_payload"
#: Association fields the default payload replaces by a record; the record's name is kept.
_NAMED = ("priority", "state", "group", "owner", "customer", "created_by", "updated_by")
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})
#: Fields of the custom payload holding whole numbers.
_IDS = ("id", "state_id", "group_id", "owner_id", "customer_id", "organization_id", "create_article_type_id",
        "updated_by_id", "priority_id", "created_by_id")


def absent(value: Any) -> bool:
    """Nothing there: missing, empty, or a placeholder Zammad could not render (``#{...}``)."""
    return value is None or (isinstance(value, str) and (not value.strip() or value.lstrip().startswith("#{")))


@dataclass(frozen=True)
class EventRecords:
    """What one delivery says about the ticket, in ``expand=true`` form."""

    ticket: dict[str, Any]
    #: The ticket's organization with its attributes; ``None`` when the payload has none
    #: (then the ticket has no organization, or it must be read).
    organization: dict[str, Any] | None
    article: dict[str, Any] = field(default_factory=dict)
    #: ``True`` for sync's custom payload.
    custom: bool = False

    @property
    def ticket_id(self) -> int:
        return int(self.ticket["id"])


def _clean(record: Mapping[str, Any], *, numbers: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if absent(value):
            out[key] = None
        elif key in numbers and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            out[key] = int(value)
        else:
            out[key] = value
    return out


def records_from_payload(payload: Mapping[str, Any]) -> EventRecords:
    """The ticket (with names for state, priority, ...), its organization and the article.

    :raises ValueError: the payload has no usable ticket id.
    """
    ticket_in = payload.get("ticket")
    if not isinstance(ticket_in, Mapping):
        raise ValueError("payload has no ticket object")
    custom = PAYLOAD_MARKER in payload
    ticket = _clean(ticket_in, numbers=_IDS)
    organization: dict[str, Any] | None = None
    nested = ticket_in.get("organization")
    if isinstance(nested, Mapping):  # the default payload: the organization record itself
        organization = _clean(nested, numbers=("id",)) if nested else None
    elif isinstance(payload.get("organization"), Mapping):  # the custom payload
        organization = _clean(payload["organization"], numbers=("id",))
        if organization.get("id") is None:
            organization = None
    for name in _NAMED:  # the default payload: {"priority": {...}} -> "2 normal"
        value = ticket_in.get(name)
        if isinstance(value, Mapping):
            ticket[name] = value.get("name") if name in ("priority", "state", "group") else value.get("login")
            if value.get("id") is not None and ticket.get(f"{name}_id") is None:
                ticket[f"{name}_id"] = value.get("id")
    ticket.pop("organization", None)
    if organization is not None:
        ticket["organization"] = organization.get("name")
        if ticket.get("organization_id") is None:
            ticket["organization_id"] = organization.get("id")
    ticket_id = ticket.get("id")
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id <= 0:
        raise ValueError(f"payload ticket id {ticket_in.get('id')!r} is not a positive whole number")
    article_in = payload.get("article")
    article = _clean(article_in, numbers=("id", "type_id", "sender_id")) if isinstance(article_in, Mapping) else {}
    if isinstance(article.get("internal"), str):
        text = article["internal"].strip().lower()
        article["internal"] = True if text in _TRUE else False if text in _FALSE else None
    return EventRecords(ticket=ticket, organization=organization, article=article, custom=custom)


def boolean(value: Any) -> bool:
    """A payload boolean (``true``, ``"true"``, ``"1"``) -> bool; absent is False."""
    if absent(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in _TRUE
    return bool(value)
