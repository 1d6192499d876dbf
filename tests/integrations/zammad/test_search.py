"""Finding tickets without Elasticsearch: condition searches against the stand-in, in both modes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator

import pytest

from integrations.zammad import search
from integrations.zammad.adapter import ZammadClient
from integrations.zammad.resources import RetryPolicy
from integrations.zammad_standin import running_standin
from zammad_api import Api

UTC = dt.timezone.utc


@pytest.fixture(params=["with Elasticsearch", "without Elasticsearch"])
def zammad(request: Any) -> Iterator[Any]:
    # Zammad searches its index only when es_url is set (lib/search_index_backend.rb enabled?)
    with running_standin("empty", webhook_backoff=0.02,
                         elasticsearch=request.param == "with Elasticsearch") as standin:
        yield standin


def client_of(standin: Any) -> ZammadClient:
    return ZammadClient(standin.url, standin.admin_token, retry=RetryPolicy(attempts=1))


def a_group(api: Api) -> str:
    """A group the API user has full access to (a ticket search finds only readable tickets)."""
    groups = api.get("groups").json()
    if groups:
        group = groups[0]
    else:
        response = api.post("groups", json={"name": "Support"})
        assert response.status_code == 201, response.text
        group = response.json()
    me = api.get("users/me").json()
    response = api.put(f"users/{me['id']}", json={"group_ids": {str(group["id"]): ["full"]}})
    assert response.status_code == 200, response.text
    return group["name"]


def make_desk(standin: Any) -> dict[str, Any]:
    """Two organizations; org A has 5 open tickets (new, open, pending), 1 closed; org B one
    open ticket whose title names org A the way an Elasticsearch query would."""
    api = Api(standin.url, standin.admin_token)
    ids: dict[str, Any] = {}
    for name in ("Org A", "Org B"):
        response = api.post("organizations", json={"name": name})
        assert response.status_code == 201, response.text
        ids[name] = response.json()["id"]
    a, b = ids["Org A"], ids["Org B"]
    customers = {}
    for name, org in (("a", a), ("b", b)):
        response = api.post("users", json={"login": f"{name}@example.com", "email": f"{name}@example.com",
                                           "firstname": name, "organization_id": org, "roles": ["Customer"]})
        assert response.status_code == 201, response.text
        customers[name] = response.json()["id"]
    group = a_group(api)

    def ticket(customer: str, title: str, state: str = "new") -> int:
        response = api.post("tickets", json={
            "title": title, "group": group, "customer_id": customers[customer], "state": state,
            "article": {"type": "email", "sender": "Customer", "subject": title, "body": "text", "internal": False}})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    open_a = [ticket("a", f"A{i}", state) for i, state in enumerate(["new", "open", "new", "pending reminder",
                                                                     "open"])]
    closed_a = ticket("a", "A closed", "closed")
    other = ticket("b", f"mentions organization_id:{a} in its title")
    return {"org_a": a, "org_b": b, "open_a": open_a, "closed_a": closed_a, "other": other}


def searches(standin: Any) -> list[Any]:
    return [r for r in standin.state.requests.all() if r.path.endswith("/tickets/search")]


def test_open_tickets_of_an_organization_are_found_paged(zammad: Any) -> None:
    desk = make_desk(zammad)
    client = client_of(zammad)
    before = len(searches(zammad))
    found = search.open_tickets_of_organization(client, desk["org_a"])
    assert [int(t["id"]) for t in found] == desk["open_a"]  # by id, closed and org B's left out
    assert len(searches(zammad)) - before == 1

    # paged: 5 tickets at 2 a page are 3 calls, each ticket once
    records = list(search.search_tickets(client, {"ticket.organization_id": search.is_(desk["org_a"]),
                                                  "ticket.state_id": search.is_(*search.open_state_ids(client))},
                                         per_page=2))
    assert [int(t["id"]) for t in records] == desk["open_a"]
    assert len(searches(zammad)) - before == 4
    bodies = [r.body if isinstance(r.body, dict) else json.loads(r.body or b"{}") for r in searches(zammad)]
    assert all(r.method == "POST" for r in searches(zammad)) and not any("query" in b for b in bodies)


def test_the_elasticsearch_query_finds_nothing_without_elasticsearch(zammad: Any) -> None:
    """Why policydesk sends conditions: ``organization_id:N`` is query syntax only Elasticsearch knows."""
    desk = make_desk(zammad)
    api = Api(zammad.url, zammad.admin_token)
    found = api.get("tickets/search", params={"query": f"organization_id:{desk['org_a']}", "expand": "true"}).json()
    ids = {int(t["id"]) for t in found}
    if zammad.state.settings.get("es_url"):
        assert set(desk["open_a"]) <= ids
    else:  # a LIKE over title, number and article text (app/models/ticket/search.rb)
        assert ids == {desk["other"]}
    # the condition search finds the same in both modes
    assert [int(t["id"]) for t in search.open_tickets_of_organization(client_of(zammad), desk["org_a"])] == \
        desk["open_a"]


def test_digest_lookup_by_owner_and_title(zammad: Any) -> None:
    api = Api(zammad.url, zammad.admin_token)
    me = api.get("users/me").json()
    group = a_group(api)
    made = []
    for digest in ("d-1", "d-2"):
        response = api.post("tickets", json={
            "title": f"Escalation digest for me [{digest}]", "group": group, "customer_id": me["id"],
            "owner_id": me["id"], "article": {"type": "note", "sender": "Agent", "body": "x", "internal": True}})
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    client = client_of(zammad)
    found = search.first_ticket(client, {"ticket.owner_id": search.is_(me["id"]),
                                         "ticket.title": search.contains("[d-2]")})
    assert found is not None and int(found["id"]) == made[1]
    assert search.first_ticket(client, {"ticket.owner_id": search.is_(me["id"]),
                                        "ticket.title": search.contains("[d-3]")}) is None


def test_tickets_changed_since(zammad: Any) -> None:
    desk = make_desk(zammad)
    client = client_of(zammad)
    later = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    assert search.tickets_changed_since(client, later) == []
    earlier = dt.datetime.now(UTC) - dt.timedelta(hours=1)
    changed = {int(t["id"]) for t in search.tickets_changed_since(client, earlier, open_only=False)}
    assert {desk["closed_a"], desk["other"], *desk["open_a"]} <= changed
    open_changed = {int(t["id"]) for t in search.tickets_changed_since(client, earlier)}
    assert desk["closed_a"] not in open_changed and set(desk["open_a"]) <= open_changed


# --------------------------------------------------------------------------- the requests themselves


class FakeTickets:
    def __init__(self, pages: list[Any]) -> None:
        self.pages = pages
        self.bodies: list[dict[str, Any]] = []

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        assert (method, path) == ("POST", "tickets/search")
        self.bodies.append(kwargs["json"])
        return self.pages[len(self.bodies) - 1]


class FakeStates:
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return [{"id": 1, "name": "new", "state_type": "new"}, {"id": 2, "name": "open", "state_type": "open"},
                {"id": 3, "name": "pending close", "state_type": "pending action"},
                {"id": 4, "name": "closed", "state_type": "closed"}, {"id": 5, "name": "merged",
                                                                       "state_type": "merged"}]


class FakeClient:
    def __init__(self, pages: list[Any]) -> None:
        self.tickets = FakeTickets(pages)
        self.ticket_states = FakeStates()


def test_condition_bodies_and_paging() -> None:
    client = FakeClient([[{"id": 1}, {"id": 2}], [{"id": 2}, {"id": 3}], [{"id": 4}]])
    records = list(search.search_tickets(client, {"ticket.organization_id": search.is_(9)}, per_page=2))
    assert [r["id"] for r in records] == [1, 2, 3, 4]  # a ticket seen on two pages once
    assert [b["page"] for b in client.tickets.bodies] == [1, 2, 3]
    assert client.tickets.bodies[0] == {"condition": {"ticket.organization_id": {"operator": "is", "value": [9]}},
                                        "page": 1, "per_page": 2, "sort_by": "id", "order_by": "asc",
                                        "expand": True}
    assert search.open_state_ids(FakeClient([])) == [1, 2, 3]  # Ticket::State.by_category(:open)


def test_changed_since_condition_is_an_absolute_time() -> None:
    client = FakeClient([[]])
    search.tickets_changed_since(client, dt.datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    condition = client.tickets.bodies[0]["condition"]
    assert condition["ticket.updated_at"] == {"operator": "after (absolute)", "value": "2026-12-01T10:00:00.000Z"}
    assert condition["ticket.state_id"] == {"operator": "is", "value": [1, 2, 3]}
