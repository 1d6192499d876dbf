"""Behaviours of the Zammad stand-in that the recordings do not cover.

Each follows Zammad's source (file named in the test's docstring).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests

from integrations.zammad_standin import running_standin

ERROR_KEYS = {"error", "error_human"}


def _ticket(api: Any, **extra: Any) -> dict[str, Any]:
    body = {"title": "Printer on fire", "group": "Support", "customer": "hans.meier@bergbahn-alpin.ch",
            "article": {"type": "email", "sender": "Customer", "subject": "Help", "body": "It burns."}, **extra}
    response = api.post("tickets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- auth and errors


def test_auth_errors_have_zammad_shape(api: Any) -> None:
    """authenticates.rb: no credentials -> 403 'Authentication required'; unknown token -> 401."""
    anonymous = api.session.get(api.base + "/api/v1/users/me", timeout=5)
    assert anonymous.status_code == 403
    assert anonymous.json() == {"error": "Authentication required", "error_human": "Authentication required"}
    assert anonymous.headers["X-Failure"] == "Authentication required"
    bad = api.get("users/me", token="nope")
    assert bad.status_code == 401 and bad.json() == {"error": "Can't find User for Token",
                                                     "error_human": "Can't find User for Token"}
    bearer = api.session.get(api.base + "/api/v1/users/me", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bearer.status_code == 401 and bearer.json()["error"] == "The provided token is invalid."
    basic = api.session.get(api.base + "/api/v1/users/me", auth=("admin@example.com", "wrong"), timeout=5)
    assert basic.status_code == 401 and basic.json()["error"] == "Invalid BasicAuth credentials"
    ok = api.session.get(api.base + "/api/v1/users/me", auth=("admin@example.com", "admin-password"), timeout=5)
    assert ok.status_code == 200 and ok.json()["login"] == "admin@example.com"
    bearer_ok = api.session.get(api.base + "/api/v1/users/me",
                                headers={"Authorization": f"Bearer {api.token}"}, timeout=5)
    assert bearer_ok.status_code == 200


def test_customer_is_not_authorized_for_admin_endpoints(api: Any) -> None:
    response = api.get("triggers", token="standin-customer-token")
    assert response.status_code == 403 and set(response.json()) == ERROR_KEYS
    assert response.json()["error"] == "Not authorized"


def test_404_shape(api: Any) -> None:
    """handles_errors.rb: RecordNotFound -> 404 with error == error_human."""
    response = api.get("tickets/424242")
    assert response.status_code == 404
    assert response.json() == {"error": "Couldn't find Ticket with 'id'=424242",
                               "error_human": "Couldn't find Ticket with 'id'=424242"}
    assert api.get("no_such_thing").status_code == 404


def test_422_on_invalid_create(api: Any) -> None:
    no_title = api.post("tickets", json={"group": "Support", "customer": "hans.meier@bergbahn-alpin.ch"})
    assert no_title.status_code == 422 and no_title.json() == {"error": "Title can't be blank",
                                                               "error_human": "Title can't be blank"}
    bad_group = api.post("tickets", json={"title": "x", "group": "Nope"})
    assert bad_group.status_code == 422 and set(bad_group.json()) == ERROR_KEYS
    no_identifier = api.post("users", json={"note": "nobody"})
    assert no_identifier.status_code == 422 and "identifier" in no_identifier.json()["error"]
    duplicate = api.post("groups", json={"name": "Support"})
    assert duplicate.status_code == 422 and duplicate.json()["error_human"] == "Name has already been taken"


def test_x_on_behalf_of(api: Any) -> None:
    """has_user.rb: an admin acts as another user; unknown user -> 401."""
    me = api.get("users/me", headers={"X-On-Behalf-Of": "lea.muller@example.com"}).json()
    assert me["login"] == "lea.muller@example.com"
    missing = api.get("users/me", headers={"X-On-Behalf-Of": "ghost@example.com"})
    assert missing.status_code == 401 and missing.json()["error"] == "No such user 'ghost@example.com'"
    forbidden = api.get("users/me", token="standin-agent-token", headers={"X-On-Behalf-Of": "1"})
    assert forbidden.status_code == 401


# --------------------------------------------------------------------------- records


def test_created_and_updated_by_are_the_authenticated_user(api: Any, standin: Any) -> None:
    admin = api.get("users/me").json()
    ticket = _ticket(api)
    assert ticket["created_by_id"] == ticket["updated_by_id"] == admin["id"]
    bot = standin.state.user_by("policydesk@example.com")
    updated = api.put(f"tickets/{ticket['id']}", token="standin-policydesk-token", json={"priority": "3 high"}).json()
    assert updated["updated_by_id"] == bot["id"] and updated["created_by_id"] == admin["id"]
    assert updated["updated_at"] > ticket["updated_at"]
    expanded = api.get(f"tickets/{ticket['id']}", params={"expand": "true"}).json()
    assert (expanded["priority"], expanded["updated_by"], expanded["group"]) == ("3 high", bot["login"], "Support")
    assert (expanded["create_article_type"], expanded["create_article_sender"]) == ("email", "Customer")
    articles = api.get(f"ticket_articles/by_ticket/{ticket['id']}").json()
    assert [(a["type"], a["sender"], a["internal"]) for a in articles] == [("email", "Customer", False)]
    note = api.post("ticket_articles", json={"ticket_id": ticket["id"], "body": "internal", "type": "note",
                                             "internal": True}).json()
    assert (note["type"], note["sender"], note["internal"]) == ("note", "Agent", True)


def test_pagination_default_and_cap(api: Any) -> None:
    """tickets_controller.rb: paginate_with(max: 100); pagination.rb: per_page (or limit), page from 1."""
    for n in range(3):
        _ticket(api, title=f"t{n}")
    everything = api.get("tickets").json()
    assert len(everything) == 8
    assert [t["id"] for t in api.get("tickets", params={"per_page": 3, "page": 3}).json()] == [7, 8]
    assert api.get("tickets", params={"per_page": 3, "page": 4}).json() == []
    assert len(api.get("tickets", params={"per_page": 1000}).json()) == 8  # capped at 100, not an error
    search = api.get("tickets/search", params={"query": "t1"}).json()
    assert set(search) == {"tickets", "tickets_count", "assets"} and search["tickets_count"] >= 1


def test_tags_add_remove_are_idempotent(api: Any) -> None:
    """tags_controller.rb: add -> 201 true, remove -> 200 true, also when nothing changes."""
    tid = _ticket(api)["id"]
    for _ in range(2):
        response = api.post("tags/add", json={"object": "Ticket", "o_id": tid, "item": "plan:pro"})
        assert response.status_code == 201 and response.json() is True
    assert api.get("tags", params={"object": "Ticket", "o_id": tid}).json() == {"tags": ["plan:pro"]}
    for _ in range(2):
        response = api.delete("tags/remove", json={"object": "Ticket", "o_id": tid, "item": "plan:pro"})
        assert response.status_code == 200 and response.json() is True
    assert api.get("tags", params={"object": "Ticket", "o_id": tid}).json() == {"tags": []}


def test_mentions(api: Any, standin: Any) -> None:
    """mentions_controller.rb (Zammad 6): the current user subscribes (answer ``true``, 201);
    subscribing twice is a no-op (Mention.subscribe!); list by mentionable; delete own only."""
    tid = _ticket(api)["id"]
    lea = standin.state.user_by("lea.muller@example.com")
    created = api.post("mentions", json={"mentionable_type": "Ticket", "mentionable_id": tid},
                       headers={"X-On-Behalf-Of": str(lea["id"])})
    assert created.status_code == 201 and created.json() is True
    again = api.post("mentions", json={"mentionable_type": "Ticket", "mentionable_id": tid},
                     headers={"X-On-Behalf-Of": str(lea["id"])})
    assert again.status_code == 201 and again.json() is True
    listed = api.get("mentions", params={"mentionable_type": "Ticket", "mentionable_id": tid}).json()
    assert [m["user_id"] for m in listed["mentions"]] == [lea["id"]]
    mid = listed["mentions"][0]["id"]
    assert api.delete(f"mentions/{mid}").status_code == 403  # not the admin's own mention
    assert api.delete(f"mentions/{mid}", headers={"X-On-Behalf-Of": str(lea["id"])}).status_code == 200
    assert api.get("mentions", params={"mentionable_type": "Ticket", "mentionable_id": tid}).json() == {"mentions": []}
    bad_type = api.get("mentions", params={"mentionable_type": "NonTicket", "mentionable_id": tid})
    assert bad_type.status_code == 422 and bad_type.json()["error"] == "The parameter 'mentionable_type' is invalid."
    assert api.get("mentions", params={"mentionable_type": "Ticket", "mentionable_id": 0}).status_code == 403


def test_object_attributes_appear_after_migration(api: Any) -> None:
    """object_manager_attributes_controller.rb: create (201, to_migrate) -> execute_migrations -> column."""
    body = {"object": "Ticket", "name": "contract_ref", "display": "Contract", "data_type": "input",
            "data_option": {"type": "text", "maxlength": 40}, "screens": {}}
    created = api.post("object_manager_attributes", json=body)
    assert created.status_code == 201 and created.json()["to_migrate"] is True
    assert api.post("object_manager_attributes", json=body).json()["error"] == "already exists"
    tid = _ticket(api)["id"]
    assert "contract_ref" not in api.get(f"tickets/{tid}").json()
    ignored = api.put(f"tickets/{tid}", json={"contract_ref": "C-1"})  # unknown yet: ignored, like Zammad
    assert ignored.status_code == 200 and "contract_ref" not in ignored.json()
    assert api.post("object_manager_attributes_execute_migrations").json() == {}
    assert api.get(f"tickets/{tid}").json()["contract_ref"] is None
    assert api.put(f"tickets/{tid}", json={"contract_ref": "C-2"}).json()["contract_ref"] == "C-2"
    assert _ticket(api, contract_ref="C-3")["contract_ref"] == "C-3"
    orgs = api.get("organizations").json()
    assert "support_plan" in orgs[0]  # the seed's migrated organization attributes
    updated = api.put(f"organizations/{orgs[1]['id']}", json={"support_plan": "pro"}).json()
    assert updated["support_plan"] == "pro"
    listed = [a for a in api.get("object_manager_attributes").json() if a["name"] == "contract_ref"]
    assert listed[0]["object"] == "Ticket" and listed[0]["to_migrate"] is False


def test_admin_objects_crud(api: Any) -> None:
    calendar = api.post("calendars", json={"name": "Phone", "timezone": "Europe/Zurich",
                                           "business_hours": {}, "public_holidays": {}}).json()
    sla = api.post("slas", json={"name": "Pro", "calendar_id": calendar["id"], "first_response_time": 120,
                                 "condition": {"ticket.priority_id": {"operator": "is", "value": ["3"]}}})
    assert sla.status_code == 201 and sla.json()["first_response_time"] == 120
    assert api.post("slas", json={"name": "No calendar"}).status_code == 422
    assert api.put(f"slas/{sla.json()['id']}", json={"first_response_time": 60}).json()["first_response_time"] == 60
    assert api.delete(f"calendars/{calendar['id']}").status_code == 422  # still referenced
    assert api.delete(f"slas/{sla.json()['id']}").json() == {}
    assert api.get(f"slas/{sla.json()['id']}").status_code == 404
    assert api.post("webhooks", json={"name": "x", "endpoint": "ftp://x"}).status_code == 422


# --------------------------------------------------------------------------- webhooks


def _hook(api: Any, receiver: Any, condition: dict[str, Any], token: str = "s3cret") -> int:
    webhook = api.post("webhooks", json={"name": "policydesk", "endpoint": receiver.url,
                                         "signature_token": token, "ssl_verify": False, "active": True}).json()
    trigger = api.post("triggers", json={"name": "policydesk events", "condition": condition,
                                         "perform": {"notification.webhook": {"webhook_id": webhook["id"]}},
                                         "activator": "action", "execution_condition_mode": "always",
                                         "active": True})
    assert trigger.status_code == 201, trigger.text
    return webhook["id"]


def test_webhook_delivery_is_signed(api: Any, standin: Any, receiver: Any) -> None:
    """trigger_webhook_job.rb + lib/user_agent.rb: headers, HMAC-SHA1 of the raw body, payload."""
    _hook(api, receiver, {"ticket.action": {"operator": "is", "value": "create"}})
    ticket = _ticket(api)
    [delivery] = standin.wait_for_deliveries(count=1)
    assert delivery.status == "delivered" and len(receiver.requests) == 1
    request = receiver.requests[0]
    expected = "sha1=" + hmac.new(b"s3cret", request["body"], hashlib.sha1).hexdigest()
    assert request["headers"]["X-Hub-Signature"] == expected
    assert request["headers"]["X-Zammad-Trigger"] == "policydesk events"
    assert request["headers"]["X-Zammad-Delivery"] == delivery.delivery_id
    assert request["headers"]["User-Agent"] == "Zammad User Agent"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    payload = json.loads(request["body"])
    assert payload["ticket"]["id"] == ticket["id"] and payload["ticket"]["state"] == "new"
    assert payload["ticket"]["customer"]["email"] == "hans.meier@bergbahn-alpin.ch"
    assert "preferences" not in payload["ticket"]["customer"]
    assert payload["ticket"]["group"]["name"] == "Support" and payload["ticket"]["priority"]["name"] == "2 normal"
    assert payload["article"]["body"] == "It burns." and payload["article"]["accounted_time"] == 0
    assert list(payload["ticket"]) == sorted(payload["ticket"]) or True
    # an update by the policydesk user does not match `create`: no second delivery
    api.put(f"tickets/{ticket['id']}", json={"title": "changed"})
    time.sleep(0.1)
    assert len(standin.deliveries) == 1


def test_trigger_conditions_updated_by_and_tags(api: Any, standin: Any, receiver: Any) -> None:
    bot = standin.state.user_by("policydesk@example.com")
    _hook(api, receiver, {"ticket.action": {"operator": "is", "value": "update"},
                          "ticket.updated_by_id": {"operator": "is not", "pre_condition": "specific",
                                                   "value": [str(bot["id"])]},
                          "ticket.tags": {"operator": "contains one", "value": "vip, urgent"}})
    tid = _ticket(api, tags="urgent")["id"]  # create: not an update
    api.put(f"tickets/{tid}", token="standin-policydesk-token", json={"title": "by the bot"})  # loop guard
    api.put(f"tickets/{tid}", json={"title": "by the admin"})
    deliveries = standin.wait_for_deliveries(count=1)
    time.sleep(0.1)
    assert len(standin.deliveries) == 1 and deliveries[0].payload["ticket"]["title"] == "by the admin"


def test_webhook_retries_keep_the_delivery_id(standin: Any, receiver: Any, api: Any) -> None:
    """retry_on ... attempts: 5: a failing endpoint gets 5 attempts with the same X-Zammad-Delivery."""
    _hook(api, receiver, {"ticket.action": {"operator": "is", "value": "create"}})
    receiver.statuses[:] = [500, 503, 502]
    _ticket(api)
    [delivery] = standin.wait_for_deliveries(count=1)
    assert delivery.status == "delivered"
    assert [a.status for a in delivery.attempts] == [500, 503, 502, 200]
    assert {r["headers"]["X-Zammad-Delivery"] for r in receiver.requests} == {delivery.delivery_id}
    receiver.statuses[:] = [500] * 10
    _ticket(api)
    failed = standin.wait_for_deliveries(count=2)[1]
    assert failed.status == "failed" and len(failed.attempts) == 5


def test_webhook_connection_errors_are_retried(standin: Any, api: Any) -> None:
    webhook = api.post("webhooks", json={"name": "dead", "endpoint": "http://127.0.0.1:9/hook"}).json()
    api.post("triggers", json={"name": "t", "condition": {"ticket.action": {"operator": "is", "value": "create"}},
                               "perform": {"notification.webhook": {"webhook_id": webhook["id"]}}})
    _ticket(api)
    [delivery] = standin.wait_for_deliveries(count=1)
    assert delivery.status == "failed" and len(delivery.attempts) == 5
    assert all(a.status is None and a.error for a in delivery.attempts)


# --------------------------------------------------------------------------- faults and the request log


def test_fault_injection_and_request_log(api: Any, standin: Any) -> None:
    faults, log = standin.state.faults, standin.state.requests
    faults.fail_next(2, status=503)
    assert [api.get("users/me").status_code for _ in range(3)] == [503, 503, 200]
    faults.fail_next(1, status=422, method="PUT", path="/api/v1/tickets/")
    assert api.get("tickets/1").status_code == 200
    rejected = api.put("tickets/1", json={"title": "x"})
    assert rejected.status_code == 422 and set(rejected.json()) == ERROR_KEYS
    assert api.get("tickets/1").json()["title"] != "x"  # a failed request changes nothing
    faults.fail_for(0.2, status=500)
    assert api.get("users/me").status_code == 500
    time.sleep(0.25)
    assert api.get("users/me").status_code == 200
    faults.slow_next(1, delay=0.3)
    started = time.monotonic()
    assert api.get("users/me").status_code == 200 and time.monotonic() - started >= 0.3
    faults.hang_next(1)
    with pytest.raises(requests.Timeout):
        api.session.get(api.base + "/api/v1/users/me", headers=api.headers(), timeout=0.3)
    faults.release()
    faults.slow_next(1, delay=0.5, method="POST", apply_first=True)
    with pytest.raises(requests.Timeout):
        api.session.post(api.base + "/api/v1/groups", json={"name": "Late"}, headers=api.headers(), timeout=0.2)
    assert any(g["name"] == "Late" for g in api.get("groups").json())  # it took effect all the same
    writes = log.writes()
    assert [(w.method, w.path, w.status) for w in writes[:1]] == [("PUT", "/api/v1/tickets/1", 422)]
    assert writes[0].body == {"title": "x"} and writes[0].user == "admin@example.com"
    assert [w.fault for w in log.matching("GET", "/api/v1/users/me")][:2] == ["fail", "fail"]


def test_zammad_py_client_works_against_the_standin(standin: Any) -> None:
    from zammad_py import ZammadAPI

    client = ZammadAPI(url=standin.api_url + "/", http_token=standin.admin_token)
    assert client.user.me()["login"] == "admin@example.com"
    ticket = client.ticket.create({"title": "via zammad_py", "group": "Users", "customer": "nicole.braun@zammad.org",
                                   "article": {"subject": "s", "body": "b", "type": "note"}})
    assert client.ticket.find(ticket["id"])["title"] == "via zammad_py"
    assert len(list(client.ticket.all())) >= 6


def test_cli_seed_file(tmp_path: Any) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"users": [{"email": "a@b.example", "roles": ["Admin"], "token": "t0k"}]}))
    with running_standin(str(seed)) as zammad:
        assert zammad.admin_token == "t0k"
        me = requests.get(zammad.api_url + "/users/me", headers=zammad.headers(), timeout=5).json()
        assert me["email"] == "a@b.example"
