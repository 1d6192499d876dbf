"""Finding tickets in Zammad without Elasticsearch: ``condition`` searches, paged.

``tickets/search?query=organization_id:5`` is Elasticsearch syntax; a Zammad without
Elasticsearch runs a ``LIKE`` over title, number and article text instead
(app/models/ticket/search.rb) and finds nothing.  A search with a ``condition`` and no
``query`` is run as SQL by every Zammad, with or without Elasticsearch
(app/models/concerns/can_search.rb: Elasticsearch only when a query is present; the
condition goes through lib/selector/sql.rb).  So every lookup here sends a condition only:

::

    for record in open_tickets_of_organization(client, 5):   # expand=true records
        ...
    digest = first_ticket(client, {"ticket.owner_id": is_(7), "ticket.title": contains("[d-1]")})

Pages: ``POST tickets/search`` (config/routes/ticket.rb allows GET and POST; the JSON body
carries the nested condition), at most 200 a page (tickets_controller.rb#search
``paginate_with(max: 200)``), ordered by id so the pages do not shift while tickets are
updated (the default order is ``updated_at DESC``).  The cost is one call per 200 matching
tickets, plus one call (cached) for the open states.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterator, Mapping

from integrations.zammad.errors import ZammadError
from integrations.zammad.mapping import format_instant

__all__ = [
    "OPEN_STATE_TYPES",
    "after",
    "contains",
    "first_ticket",
    "is_",
    "open_state_ids",
    "open_tickets_of_organization",
    "search_tickets",
    "tickets_changed_since",
]

#: State types of an open ticket: Ticket::State.by_category(:open) (app/models/ticket/state.rb).
OPEN_STATE_TYPES = frozenset({"new", "open", "pending reminder", "pending action"})
#: State names of a Zammad whose states carry no type (fallback only).
_NOT_OPEN_NAMES = frozenset({"closed", "merged", "removed"})
#: The most tickets/search returns a page (tickets_controller.rb#search).
MAX_PER_PAGE = 200
#: Bound on pages walked: 10,000 pages of 200 tickets.
MAX_PAGES = 10_000


def is_(*values: Any) -> dict[str, Any]:
    """Condition: the attribute is one of ``values`` (selector ``is`` takes a list)."""
    return {"operator": "is", "value": [v for v in values]}


def contains(text: str) -> dict[str, Any]:
    """Condition: a text attribute contains ``text`` (SQL ``LIKE``)."""
    return {"operator": "contains", "value": text}


def after(instant: dt.datetime) -> dict[str, Any]:
    """Condition: a time attribute is at or after ``instant`` (``after (absolute)`` is ``>=``)."""
    return {"operator": "after (absolute)", "value": format_instant(instant)}


def open_state_ids(client: Any) -> list[int]:
    """Ids of the ticket states in which a ticket is open (one call, cached on the client)."""
    cached = getattr(client, "_policydesk_open_state_ids", None)
    if cached is not None:
        return list(cached)
    states = client.ticket_states._call("GET", "ticket_states", params={"expand": "true"}) or []
    ids: list[int] = []
    for state in states:
        kind = state.get("state_type")
        if isinstance(kind, Mapping):
            kind = kind.get("name")
        if kind is not None:
            if str(kind) in OPEN_STATE_TYPES:
                ids.append(int(state["id"]))
        elif str(state.get("name") or "") not in _NOT_OPEN_NAMES:
            ids.append(int(state["id"]))
    try:
        client._policydesk_open_state_ids = tuple(ids)
    except AttributeError:  # a client that takes no attributes: no cache
        pass
    return ids


def search_tickets(client: Any, condition: Mapping[str, Any], *, per_page: int = MAX_PER_PAGE,
                   order_by: str = "asc", max_pages: int = MAX_PAGES) -> Iterator[dict[str, Any]]:
    """Every ticket matching ``condition`` (expand=true records), ordered by id, page by page.

    :raises ZammadError: when Zammad refuses the search or answers something else than a list.
    """
    size = max(1, min(per_page, MAX_PER_PAGE))
    seen: set[int] = set()
    for page in range(1, max_pages + 1):
        body = {"condition": dict(condition), "page": page, "per_page": size, "sort_by": "id",
                "order_by": order_by, "expand": True}
        items = client.tickets._call("POST", "tickets/search", json=body)
        if isinstance(items, dict):  # a Zammad ignoring expand: {"tickets": [ids], "assets": {...}}
            assets = (items.get("assets") or {}).get("Ticket") or {}
            items = [assets.get(str(tid)) or {"id": tid} for tid in items.get("tickets") or []]
        if not isinstance(items, list):
            raise ZammadError(f"tickets/search: expected a list, got {type(items).__name__}")
        for record in items:
            tid = int(record["id"])
            if tid not in seen:  # a ticket that moved between pages is yielded once
                seen.add(tid)
                yield record
        if len(items) < size:
            return
    raise ZammadError(f"tickets/search: more than {max_pages} pages, giving up")


def first_ticket(client: Any, condition: Mapping[str, Any]) -> dict[str, Any] | None:
    """The newest ticket matching ``condition``, or ``None`` (one call)."""
    return next(iter(search_tickets(client, condition, per_page=1, order_by="desc", max_pages=1)), None)


def _open(client: Any) -> dict[str, Any]:
    return {"ticket.state_id": is_(*open_state_ids(client))}


def open_tickets_of_organization(client: Any, organization_id: int) -> list[dict[str, Any]]:
    """The organization's open tickets (records), with and without Elasticsearch."""
    condition = {"ticket.organization_id": is_(int(organization_id)), **_open(client)}
    return [r for r in search_tickets(client, condition) if _same(r.get("organization_id"), organization_id)]


def tickets_changed_since(client: Any, since: dt.datetime, *, open_only: bool = True) -> list[dict[str, Any]]:
    """Tickets updated at or after ``since`` (records): what a catch-up looks at."""
    condition: dict[str, Any] = {"ticket.updated_at": after(since)}
    if open_only:
        condition.update(_open(client))
    return list(search_tickets(client, condition))


def open_tickets(client: Any) -> Iterator[dict[str, Any]]:
    """Every open ticket (records): what an onboarding reconcile looks at."""
    return search_tickets(client, _open(client))


def _same(value: Any, wanted: int) -> bool:
    try:
        return value is None or int(value) == int(wanted)
    except (TypeError, ValueError):
        return False
