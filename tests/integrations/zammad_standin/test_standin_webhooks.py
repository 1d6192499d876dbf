"""Webhook deliveries as Zammad's job makes them (app/jobs/trigger_webhook_job.rb,
custom_payload*.rb, lib/user_agent.rb)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from integrations.zammad_standin.custom_payload import render_custom_payload
from integrations.zammad_standin.server import build_state


def _ticket(api: Any, **extra: Any) -> dict[str, Any]:
    body = {"title": 'Printer "on" fire', "group": "Support", "customer": "hans.meier@bergbahn-alpin.ch",
            "article": {"type": "email", "sender": "Customer", "subject": "Help", "body": "It burns."}, **extra}
    response = api.post("tickets", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _hook(api: Any, endpoint: str, **webhook: Any) -> int:
    created = api.post("webhooks", json={"name": "policydesk", "endpoint": endpoint, "signature_token": "s3cret",
                                         **webhook}).json()
    api.post("triggers", json={"name": "policydesk events",
                               "condition": {"ticket.action": {"operator": "is", "value": "create"}},
                               "perform": {"notification.webhook": {"webhook_id": created["id"]}}})
    return int(created["id"])


TEMPLATE = """{"id": "#{ticket.id}", "title": "#{ticket.title}", "updated": "#{ticket.updated_at.xmlschema}",
 "org": "#{ticket.organization.name}", "customer": "#{ticket.customer.fullname}", "pending": "#{ticket.pending_time}",
 "secret": "#{ticket.customer.password}", "nope": "#{ticket.nope}", "text": "Ticket #{ticket.number} of #{ticket.group.name}",
 "article": "#{article.id}", "internal": "#{article.internal}", "ghost": "#{notification.subject}"}"""


def test_custom_payload_renders_like_zammad() -> None:
    """custom_payload/parser.rb + validator.rb: quoted placeholders keep their JSON type, nil is "",
    denied or unknown methods render as an error text, times have TimeWithZone's methods."""
    state, _token, dispatcher = build_state()
    try:
        ticket, article = state.create_ticket(
            {"title": 'Printer "on" fire', "group": "Support", "customer": "hans.meier@bergbahn-alpin.ch",
             "article": {"type": "email", "sender": "Customer", "body": "x"}}, state.user_by("admin@example.com")["id"])
        out = render_custom_payload(state, TEMPLATE, ticket, article)
    finally:
        dispatcher.stop()
    assert out["id"] == ticket["id"] and isinstance(out["id"], int)
    assert out["title"] == 'Printer "on" fire'
    assert out["updated"] == ticket["updated_at"][:19] + "Z"
    assert out["org"] == "Bergbahn Alpin AG" and out["customer"] == "Hans Meier"
    assert out["pending"] == ""
    assert out["secret"] == "#{ticket.customer.password / no such method}"
    assert out["nope"] == "#{ticket.nope / no such method}"
    assert out["text"] == f"Ticket {ticket['number']} of Support"
    assert out["article"] == article["id"] and out["internal"] is False
    assert out["ghost"] == "#{notification / no such object}"
    without_article = render_custom_payload(state, '{"a": "#{article.id}"}', ticket, None)
    assert without_article == {"a": "#{article / no such object}"}
    assert "error" in render_custom_payload(state, '{"a": #{ticket.title}}', ticket, None)


def test_custom_payload_is_delivered_and_signed(api: Any, standin: Any, receiver: Any) -> None:
    """trigger_webhook_job.rb: customized_payload replaces the default body; the signature covers it."""
    _hook(api, receiver.url, customized_payload=True, custom_payload='{"ticket": {"id": "#{ticket.id}"}}')
    ticket = _ticket(api)
    [delivery] = standin.wait_for_deliveries(count=1)
    request = receiver.requests[0]
    assert json.loads(request["body"]) == {"ticket": {"id": ticket["id"]}}
    assert request["headers"]["X-Hub-Signature"] == "sha1=" + hmac.new(b"s3cret", request["body"], hashlib.sha1).hexdigest()
    assert delivery.status == "delivered"


def test_any_2xx_is_success_and_redirects_become_gets(api: Any, standin: Any, receiver: Any) -> None:
    """lib/user_agent.rb: Net::HTTPSuccess (202, 204 ...) succeeds; a 3xx is followed as a GET of its
    Location without body or signature; a 4xx is a failure that is retried."""
    _hook(api, receiver.url)
    receiver.statuses[:] = [202]
    _ticket(api)
    first = standin.wait_for_deliveries(count=1)[0]
    assert first.status == "delivered" and [a.status for a in first.attempts] == [202]
    receiver.statuses[:] = [302, 200]
    _ticket(api)
    second = standin.wait_for_deliveries(count=2)[1]
    assert second.status == "delivered" and len(second.attempts) == 1
    post, get = receiver.requests[1], receiver.requests[2]
    assert post["method"] == "POST" and get["method"] == "GET" and get["path"].startswith("/landed?")
    assert get["body"] == b"" and "X-Hub-Signature" not in get["headers"]
    assert get["headers"]["X-Zammad-Delivery"] == second.delivery_id
    receiver.statuses[:] = [404, 422]
    _ticket(api)
    third = standin.wait_for_deliveries(count=3)[2]
    assert [a.status for a in third.attempts] == [404, 422, 200]


def test_retry_waits_grow_by_ten_seconds_scaled(standin: Any, receiver: Any, api: Any) -> None:
    """retry_on ... attempts: 5, wait: executions * 10.seconds: the waits are 1, 2, 3, 4 x backoff."""
    _hook(api, receiver.url)
    receiver.statuses[:] = [500] * 5
    _ticket(api)
    [delivery] = standin.wait_for_deliveries(count=1, timeout=10)
    assert delivery.status == "failed" and len(delivery.attempts) == 5
    gaps = [b.started - a.started for a, b in zip(delivery.attempts, delivery.attempts[1:])]
    backoff = standin.dispatcher.backoff
    assert all(gap >= (i + 1) * backoff * 0.9 for i, gap in enumerate(gaps)), gaps
