"""Columns, validations, permissions and transactions of the stand-in, each following the
Zammad file named in the test's docstring."""

from __future__ import annotations

from typing import Any

from integrations.zammad_standin import running_standin
from integrations.zammad_standin.app import ZammadApp
from integrations.zammad_standin.server import build_state
from zammad_api import Api

CUSTOMER = "hans.meier@bergbahn-alpin.ch"


def _ticket(api: Any, **extra: Any) -> dict[str, Any]:
    body = {"title": "Printer on fire", "group": "Support", "customer": CUSTOMER,
            "article": {"type": "email", "sender": "Customer", "subject": "Help", "body": "It burns."}, **extra}
    response = api.post("tickets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- columns


def test_calendar_has_no_note_column(api: Any) -> None:
    """db/migrate/20120101000001_create_base.rb: calendars have no note; can_cleanup_param.rb drops it."""
    body = {"name": "Support hours", "timezone": "Europe/Zurich", "business_hours": {}, "public_holidays": {},
            "note": "managed by policydesk", "colour": "red"}
    created = api.post("calendars", json=body)
    assert created.status_code == 201, created.text
    assert "note" not in created.json() and "colour" not in created.json()
    assert "note" not in api.get(f"calendars/{created.json()['id']}").json()
    updated = api.put(f"calendars/{created.json()['id']}", json={"note": "again", "timezone": "Europe/Berlin"})
    assert updated.status_code == 200 and "note" not in updated.json()
    assert updated.json()["timezone"] == "Europe/Berlin"


def test_sla_and_webhook_columns(api: Any) -> None:
    """db/migrate/20120101000010_create_ticket.rb (slas: no note) and app/models/webhook.coffee
    (webhooks: note, no bearer_token): unknown keys are dropped silently."""
    calendar = api.post("calendars", json={"name": "C", "timezone": "Europe/Zurich"}).json()
    sla = api.post("slas", json={"name": "S", "calendar_id": calendar["id"], "first_response_time": 60,
                                 "note": "x", "condition": {}})
    assert sla.status_code == 201 and "note" not in sla.json() and sla.json()["first_response_time"] == 60
    hook = api.post("webhooks", json={"name": "W", "endpoint": "http://127.0.0.1:9/x", "note": "kept",
                                      "bearer_token": "dropped"})
    assert hook.status_code == 201 and hook.json()["note"] == "kept" and "bearer_token" not in hook.json()


def test_ticket_states_carry_ignore_escalation(api: Any) -> None:
    """db/migrate/20120101000010_create_ticket.rb + UpdateTicketState: pending, closed, merged and
    removed states ignore escalation; new and open do not."""
    states = {s["name"]: s for s in api.get("ticket_states").json()}
    assert {n for n, s in states.items() if s["ignore_escalation"]} == {
        "pending reminder", "closed", "merged", "removed", "pending close"}
    assert states["pending close"]["next_state_id"] == states["closed"]["id"]


# --------------------------------------------------------------------------- tags


def test_tags_need_change_access_and_tag_new(standin: Any, api: Any) -> None:
    """tags_controller_policy.rb (agent change access) and tag.rb#tag_allowed? (tag_new setting)."""
    tid = _ticket(api, group="Infrastructure")["id"]
    lea = Api(standin.url, "standin-agent-token")  # Support and Users only
    denied = lea.post("tags/add", json={"object": "Ticket", "o_id": tid, "item": "vip"})
    assert denied.status_code == 403 and denied.json()["error"] == "Not authorized"
    own = _ticket(api)["id"]
    standin.state.settings["tag_new"] = False
    new_tag = lea.post("tags/add", json={"object": "Ticket", "o_id": own, "item": "brand-new"})
    assert new_tag.status_code == 403
    assert api.post("tags/add", json={"object": "Ticket", "o_id": own, "item": "brand-new"}).status_code == 201
    known = lea.post("tags/add", json={"object": "Ticket", "o_id": tid, "item": "brand-new"})
    assert known.status_code == 403  # still no change access to Infrastructure
    assert lea.post("tags/add", json={"object": "Ticket", "o_id": own, "item": "brand-new"}).status_code == 201


def test_tag_add_touches_without_changing_updated_by(standin: Any, api: Any) -> None:
    """tag.rb: touch_reference_by_params touches the ticket (updated_by kept) and the change runs an
    update transaction; a duplicate (case-insensitive, Tag.tags_include?) writes nothing."""
    ticket = _ticket(api)
    other = Api(standin.url, "standin-policydesk-token")
    before = len(standin.state.transactions)
    assert other.post("tags/add", json={"object": "Ticket", "o_id": ticket["id"], "item": "Plan::Pro"}).json() is True
    after = api.get(f"tickets/{ticket['id']}").json()
    assert after["updated_by_id"] == ticket["updated_by_id"] and after["updated_at"] > ticket["updated_at"]
    assert len(standin.state.transactions) == before + 1
    assert standin.state.transactions[-1]["type"] == "update" and standin.state.transactions[-1]["changes"] == {"tags"}
    assert other.post("tags/add", json={"object": "Ticket", "o_id": ticket["id"], "item": "plan::pro"}).json() is True
    assert len(standin.state.transactions) == before + 1
    assert api.get("tags", params={"object": "Ticket", "o_id": ticket["id"]}).json() == {"tags": ["Plan::Pro"]}


# --------------------------------------------------------------------------- mentions


def test_mention_refused_for_user_without_group_access(standin: Any, api: Any) -> None:
    """mention_validator.rb: 422 for a mentioned user without agent access; mentions_controller_policy.rb:
    403 when that user subscribes themself (X-On-Behalf-Of)."""
    tid = _ticket(api, group="Users")["id"]
    ana = standin.state.user_by("marco.rossi@example.com")  # Support and Infrastructure only
    refused = api.post("mentions", json={"mentionable_type": "Ticket", "mentionable_id": tid, "user_id": ana["id"]})
    assert refused.status_code == 422
    assert refused.json() == {"error": "A mentioned user has no agent access to this ticket",
                              "error_human": "A mentioned user has no agent access to this ticket"}
    behalf = api.post("mentions", json={"mentionable_type": "Ticket", "mentionable_id": tid},
                      headers={"X-On-Behalf-Of": str(ana["id"])})
    assert behalf.status_code == 403
    assert standin.state.all("mentions") == []


def test_mention_makes_creator_updated_by_and_runs_transaction(standin: Any, api: Any) -> None:
    """mention.rb#update_mentionable: the ticket is updated with updated_by = the mention's creator."""
    ticket = _ticket(api)
    ana = standin.state.user_by("ana.keller@provider.example")
    before = len(standin.state.transactions)
    created = api.post("mentions", json={"mentionable_type": "Ticket", "mentionable_id": ticket["id"]},
                       headers={"X-On-Behalf-Of": str(ana["id"])})
    assert created.status_code == 201
    assert api.get(f"tickets/{ticket['id']}").json()["updated_by_id"] == ana["id"]
    assert len(standin.state.transactions) == before + 1
    assert standin.state.transactions[-1]["changes"] == {"updated_by_id"}


def test_ticket_create_with_refused_mention_rolls_back(standin: Any, api: Any) -> None:
    """tickets_controller.rb#create: Mention.subscribe! inside Transaction.execute -> 422, no ticket."""
    ana = standin.state.user_by("marco.rossi@example.com")  # Support and Infrastructure only
    count = len(standin.state.all("tickets"))
    response = api.post("tickets", json={"title": "x", "group": "Users", "customer": CUSTOMER,
                                         "mentions": [ana["id"]]})
    assert response.status_code == 422 and response.json()["error"] == "A mentioned user has no agent access to this ticket"
    assert len(standin.state.all("tickets")) == count


# --------------------------------------------------------------------------- core workflow, errors


def test_required_field_of_edit_screen(api: Any) -> None:
    """checks_core_workflow.rb#check_mandatory: 422 "Missing required value for field 'x'!"."""
    body = {"object": "Ticket", "name": "contract_ref", "display": "Contract", "data_type": "input",
            "data_option": {"type": "text", "maxlength": 40},
            "screens": {"edit": {"ticket.agent": {"shown": True, "required": True}}}}
    assert api.post("object_manager_attributes", json=body).status_code == 201
    api.post("object_manager_attributes_execute_migrations")
    tid = _ticket(api)["id"]  # create_middle does not require it
    refused = api.put(f"tickets/{tid}", json={"priority": "3 high"})
    assert refused.status_code == 422
    assert refused.json()["error"] == "Missing required value for field 'contract_ref'!"
    assert api.put(f"tickets/{tid}", json={"priority": "3 high", "contract_ref": "C-1"}).status_code == 200


def test_contention_fault_is_a_422_without_effect(standin: Any, api: Any) -> None:
    """handles_errors.rb: ActiveRecord::StatementInvalid -> 422; the transaction was rolled back."""
    tid = _ticket(api)["id"]
    standin.state.faults.contention_next(1, method="PUT", path="/api/v1/tickets/")
    response = api.put(f"tickets/{tid}", json={"title": "changed"})
    assert response.status_code == 422 and "error_human" not in response.json()
    assert "deadlock detected" in response.json()["error"]  # admins see the database's message
    assert api.get(f"tickets/{tid}").json()["title"] == "Printer on fire"
    standin.state.faults.contention_next(1, method="GET")
    agent = Api(standin.url, "standin-agent-token").get(f"tickets/{tid}")
    assert agent.status_code == 422 and agent.json()["error"].startswith("Error ID ")


# --------------------------------------------------------------------------- history


def test_history_keeps_a_cleared_custom_value(api: Any) -> None:
    """concerns/has_history.rb: every changed column is logged, so a cleared value stays visible."""
    body = {"object": "Ticket", "name": "vip_code", "display": "VIP code", "data_type": "input",
            "data_option": {"type": "text", "maxlength": 40}, "screens": {}}
    api.post("object_manager_attributes", json=body)
    api.post("object_manager_attributes_execute_migrations")
    tid = _ticket(api)["id"]
    api.put(f"tickets/{tid}", json={"vip_code": "TIGER-42"})
    api.put(f"tickets/{tid}", json={"vip_code": None, "state": "open"})
    history = api.get(f"ticket_history/{tid}").json()["history"]
    vip = [h for h in history if h["attribute"] == "vip_code"]
    assert [(h["value_from"], h["value_to"]) for h in vip] == [("", "TIGER-42"), ("TIGER-42", "")]
    state = [h for h in history if h["attribute"] == "state"]
    assert state[0]["value_from"] == "new" and state[0]["value_to"] == "open" and state[0]["id_to"] == 2
    assert history[0]["type"] == "created" and history[0]["object"] == "Ticket"
    assert not [h for h in history if h["attribute"] in ("updated_at", "article_count", "preferences")]


# --------------------------------------------------------------------------- latency and counts


def test_call_delay_is_spent_on_every_api_request(monkeypatch: Any) -> None:
    """The realistic benchmark's per-call latency: ``call_delay`` seconds before each API answer."""
    import io

    import integrations.zammad_standin.app as app_module

    slept: list[float] = []
    monkeypatch.setattr(app_module.time, "sleep", slept.append)
    state, token, dispatcher = build_state()
    try:
        app = ZammadApp(state, call_delay=0.03)
        for path in ("/api/v1/users/me", "/api/v1/tickets", "/favicon.ico"):
            environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
                       "HTTP_AUTHORIZATION": f"Token token={token}", "wsgi.input": io.BytesIO(b"")}
            app(environ, lambda *_a: None)
    finally:
        dispatcher.stop()
    assert slept == [0.03, 0.03]
    assert state.requests.counts() == {"GET /api/v1/users/me": 1, "GET /api/v1/tickets": 1, "GET /favicon.ico": 1}


def test_request_counts_by_kind(api: Any, standin: Any) -> None:
    """The request log counts calls by method and path kind (numeric ids as ``{id}``)."""
    tid = _ticket(api)["id"]
    start = len(standin.state.requests)
    api.get(f"tickets/{tid}")
    api.get(f"tickets/{tid}")
    api.put(f"tickets/{tid}", json={"title": "x"})
    assert standin.state.requests.counts(since=start) == {"GET /api/v1/tickets/{id}": 2, "PUT /api/v1/tickets/{id}": 1}


def test_seed_setting_turns_elasticsearch_off() -> None:
    """lib/search_index_backend.rb#enabled?: no es_url, no search index."""
    with running_standin({"settings": {"es_url": ""}}) as zammad:
        assert zammad.state.elasticsearch is False
    with running_standin("empty", elasticsearch=False) as zammad:
        assert zammad.state.elasticsearch is False


def test_masked_webhook_secret_is_kept_when_sent_back(standin: Any, api: Any) -> None:
    """Newer Zammad answers a webhook's signature token masked and takes the mask back as 'unchanged'."""
    standin.state.settings["mask_webhook_secrets"] = True
    hook = api.post("webhooks", json={"name": "W", "endpoint": "http://127.0.0.1:9/x", "signature_token": "s3cret"})
    assert hook.json()["signature_token"] == "**********"
    api.put(f"webhooks/{hook.json()['id']}", json={"signature_token": "**********", "name": "W2"})
    assert standin.state.get("webhooks", hook.json()["id"])["signature_token"] == "s3cret"
    api.put(f"webhooks/{hook.json()['id']}", json={"signature_token": "new"})
    assert standin.state.get("webhooks", hook.json()["id"])["signature_token"] == "new"
