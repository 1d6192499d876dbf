"""Ticket search with and without Elasticsearch (app/models/concerns/can_search.rb,
app/models/ticket/search.rb, app/models/ticket/selector/sql.rb)."""

from __future__ import annotations

from typing import Any

from zammad_api import Api


def _ticket(api: Any, title: str, customer: str, body: str = "It burns.", **extra: Any) -> dict[str, Any]:
    payload = {"title": title, "group": "Support", "customer": customer,
               "article": {"type": "email", "sender": "Customer", "subject": "Help", "body": body}, **extra}
    response = api.post("tickets", json=payload)
    assert response.status_code == 201, response.text
    return response.json()


def _ids(response: Any, mine: Any = None) -> list[int]:
    """The ticket ids found (only those of ``mine`` when given: the seed has tickets of its own)."""
    assert response.status_code == 200, response.text
    ids = response.json()["tickets"]
    return ids if mine is None else [i for i in ids if i in {t["id"] for t in mine}]


def _customer(api: Any, name: str) -> str:
    """A customer of a new organization of its own."""
    org = api.post("organizations", json={"name": f"Org {name}"}).json()
    email = f"{name}@example.net"
    assert api.post("users", json={"email": email, "firstname": name, "organization_id": org["id"]}).status_code == 201
    return email


def test_query_syntax_only_with_elasticsearch(standin_any_search: Any) -> None:
    """can_search.rb: the index answers a query only when ES is on; the database runs a LIKE over
    title, number and article body/from/to/subject (ticket/search.rb), so ``organization_id:N``
    finds nothing there."""
    zammad = standin_any_search
    api = Api(zammad.url, zammad.admin_token)
    first = _ticket(api, "Printer on fire", _customer(api, "toner"), body="toner everywhere")
    second = _ticket(api, "Mail down", "claire.favre@choco-leman.ch")
    by_org = _ids(api.get("tickets/search", params={"query": f"organization_id:{first['organization_id']}"}))
    by_body = _ids(api.get("tickets/search", params={"query": "TONER"}))
    everything = _ids(api.get("tickets/search", params={"query": "*", "per_page": 200}), [first, second])
    if zammad.state.elasticsearch:
        assert by_org == [first["id"]]
    else:
        assert by_org == []
    assert by_body == [first["id"]]
    assert everything == [second["id"], first["id"]]  # updated_at desc


def test_like_needs_an_article(standin_no_es: Any) -> None:
    """ticket/search.rb joins the articles: without ES a ticket without articles is not found by query."""
    api = Api(standin_no_es.url, standin_no_es.admin_token)
    bare = api.post("tickets", json={"title": "No article here", "group": "Support",
                                     "customer": "hans.meier@bergbahn-alpin.ch"}).json()
    assert _ids(api.get("tickets/search", params={"query": "article here"})) == []
    condition = {"ticket.title": {"operator": "contains", "value": "article here"}}
    assert _ids(api.post("tickets/search", json={"condition": condition})) == [bare["id"]]


def test_condition_search_works_without_elasticsearch(standin_any_search: Any) -> None:
    """can_search.rb#search_sql_base: the selector condition (selector2sql) restricts the tickets;
    GET bracket parameters and a POST body both carry it; order is updated_at desc."""
    zammad = standin_any_search
    api = Api(zammad.url, zammad.admin_token)
    customer = _customer(api, "cond")
    first = _ticket(api, "One", customer)
    second = _ticket(api, "Two", customer)
    third = _ticket(api, "Three", "claire.favre@choco-leman.ch")
    org = first["organization_id"]
    condition = {"ticket.organization_id": {"operator": "is", "value": [org]},
                 "ticket.state_id": {"operator": "is", "value": [1, 2]}}
    assert _ids(api.post("tickets/search", json={"condition": condition})) == [second["id"], first["id"]]
    params = {"condition[ticket.organization_id][operator]": "is",
              "condition[ticket.organization_id][value][]": str(org)}
    assert sorted(_ids(api.get("tickets/search", params=params))) == [first["id"], second["id"]]
    expert = {"operator": "AND", "conditions": [
        {"name": "ticket.organization_id", "operator": "is", "value": [org]},
        {"name": "ticket.title", "operator": "is", "value": "One"}]}
    assert _ids(api.post("tickets/search", json={"condition": expert})) == [first["id"]]
    owner = {"ticket.owner_id": {"operator": "is", "value": [1]}}
    found = api.post("tickets/search", json={"condition": owner, "sort_by": "id", "order_by": "asc", "per_page": 200})
    assert _ids(found, [first, second, third]) == [first["id"], second["id"], third["id"]]


def test_search_is_limited_to_readable_tickets(standin_any_search: Any) -> None:
    """TicketPolicy::ReadScope: an agent finds only tickets of groups they may read."""
    zammad = standin_any_search
    api = Api(zammad.url, zammad.admin_token)
    infra = _ticket(api, "Infra", "hans.meier@bergbahn-alpin.ch", group="Infrastructure")
    support = _ticket(api, "Support", "hans.meier@bergbahn-alpin.ch")
    lea = Api(zammad.url, "standin-agent-token")  # Support and Users groups only
    found = lea.get("tickets/search", params={"query": "*", "per_page": 200}).json()["tickets"]
    assert support["id"] in found and infra["id"] not in found
    groups = {t["group_id"] for t in lea.get("tickets").json()}
    assert groups <= {g["id"] for g in api.get("groups").json() if g["name"] in ("Support", "Users")}


def test_user_search_without_elasticsearch_is_a_like(standin_any_search: Any) -> None:
    """can_search.rb: users are searched over their string columns without ES; ``email:x`` is ES syntax."""
    zammad = standin_any_search
    api = Api(zammad.url, zammad.admin_token)
    plain = [u["email"] for u in api.get("users/search", params={"query": "claire.favre"}).json()]
    syntax = [u["email"] for u in api.get("users/search", params={"query": "email:claire.favre@choco-leman.ch"}).json()]
    assert plain == ["claire.favre@choco-leman.ch"]
    assert syntax == (["claire.favre@choco-leman.ch"] if zammad.state.elasticsearch else [])
