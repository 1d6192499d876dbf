"""Search as Zammad runs it, with Elasticsearch and without (app/models/concerns/can_search.rb).

- The search index is used only when Elasticsearch is configured (the ``es_url`` setting;
  SearchIndexBackend.enabled?) *and* a query is given; ``*`` is removed from the query
  first (``search_build_params``), so ``query=*`` is no query.
- Otherwise the database answers: the ``condition`` selector (selector2sql) restricts the
  records, and a query is a case-insensitive LIKE ``%query%``: for tickets over title,
  number and the articles' body, from, to and subject, joined with the articles (a ticket
  without articles is never found; app/models/ticket/search.rb); for other models over
  their string columns.  So ``organization_id:5`` finds nothing without Elasticsearch.
- With Elasticsearch the stand-in understands a subset of the query_string syntax
  (``field:value`` terms ANDed, ``*`` wildcards, bare terms), and applies ``condition`` too.
- Tickets are limited to those the user may read (TicketPolicy::ReadScope); the default
  order is ``updated_at`` descending (search_default_sort_by / order_by).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from integrations.zammad_standin.conditions import ticket_matches

#: string columns searched without Elasticsearch (CanSearch#search_sql_query_extension).
USER_TEXT_COLUMNS = ("login", "firstname", "lastname", "email", "web", "phone", "fax", "mobile", "department",
                     "street", "zip", "city", "country", "address", "note", "source")
ORGANIZATION_TEXT_COLUMNS = ("name", "domain", "note")
ARTICLE_TEXT_COLUMNS = ("body", "from", "to", "subject")


def _clean_query(query: Any) -> str:
    return str(query or "").replace("*", "").strip()


def _like(needle: str, values: list[Any]) -> bool:
    low = needle.lower()
    return any(low in str(v).lower() for v in values if v is not None)


def _sort(records: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    key = str(params.get("sort_by") or "updated_at")
    descending = str(params.get("order_by") or "desc").lower() != "asc"
    return sorted(records, key=lambda r: (str(r.get(key) or ""), r["id"]), reverse=descending)


def search_tickets(state: Any, user: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Tickets matching ``query`` and ``condition`` that ``user`` may read, sorted."""
    query = _clean_query(params.get("query"))
    condition = params.get("condition") or {}
    found = []
    for ticket in state.all("tickets"):
        if not state.ticket_readable(user, ticket):
            continue
        if condition and not ticket_matches(state, ticket, condition, now=state.clock.now_dt()):
            continue
        if query:
            if state.elasticsearch:
                record = state.with_names("tickets", ticket)
                record["tags"] = state.tags_of("Ticket", ticket["id"])
                record["article"] = " ".join(f"{a.get('subject') or ''} {a.get('body') or ''}"
                                             for a in state.articles_of(ticket["id"]))
                if not query_string_matches(record, params.get("query"),
                                            ("title", "number", "note", "article", "tags", "customer", "owner",
                                             "organization")):
                    continue
            else:
                articles = state.articles_of(ticket["id"])
                if not articles:
                    continue  # .joins(:articles)
                values = [ticket.get("title"), ticket.get("number")]
                values += [a.get(c) for a in articles for c in ARTICLE_TEXT_COLUMNS]
                if not _like(query, values):
                    continue
        found.append(ticket)
    return _sort(found, params)


def search_records(state: Any, table: str, params: Mapping[str, Any], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Users or organizations matching ``query`` (the caller checks permissions)."""
    query = _clean_query(params.get("query"))
    found = []
    for record in state.all(table):
        if table == "users" and record["id"] == 1:
            continue
        if query:
            if state.elasticsearch:
                if not query_string_matches(state.with_names(table, record), params.get("query"), columns):
                    continue
            elif not _like(query, [record.get(c) for c in columns]):
                continue
        found.append(record)
    if params.get("sort_by"):
        return _sort(found, params)
    return found


def query_string_matches(record: dict[str, Any], query: Any, fields: tuple[str, ...]) -> bool:
    """A subset of Elasticsearch's query_string: terms are ANDed; ``field:value`` (``state.name:new``
    also works as ``state:new``) compares that field case-insensitively (``*`` wildcards); a bare
    term matches as a substring of any of ``fields``; ``*`` or an empty query matches everything."""
    text = str(query or "").strip()
    if text in ("", "*"):
        return True
    for term in re.findall(r'(?:[^\s"]+:"[^"]*"|"[^"]*"|\S+)', text):
        if term.upper() in ("AND", "&&"):
            continue
        key, sep, value = term.partition(":")
        if sep and key and not key.startswith('"'):
            key = key.removesuffix(".name")
            value = value.strip('"').lower()
            actual = record.get(key)
            values = actual if isinstance(actual, list) else [actual]
            pattern = re.compile("^" + re.escape(value).replace(r"\*", ".*") + "$")
            if not any(v is not None and pattern.match(str(v).lower()) for v in values):
                return False
            continue
        needle = term.strip('"').lower().replace("*", "")
        haystack = " ".join(
            " ".join(map(str, record.get(f))) if isinstance(record.get(f), list) else str(record.get(f) or "")
            for f in fields
        ).lower()
        if needle not in haystack:
            return False
    return True
