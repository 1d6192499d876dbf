"""What the processor does with the store around Zammad: VIP codes never stored, steps never re-fired."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest

from integrations.service.app import ServiceSecrets, WebhookService
from integrations.service.metrics import Metrics
from integrations.service.processing import Processor
from integrations.signing import zammad_signature
from integrations.store import open_store
from plugin.engine import Engine
from plugin.model import Organization, Ticket
from support import zurich


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    yield s
    s.close()


def test_a_typed_vip_code_is_never_stored(store, tmp_path):
    app = WebhookService(store, ServiceSecrets("hook-token", "billing"), Metrics())
    payload = {"ticket": {"id": 7, "title": "Call", "policydesk_vip_code": "48213377"}, "article": {}}
    body = json.dumps(payload).encode()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/zammad", "CONTENT_TYPE": "application/json",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
               "HTTP_X_HUB_SIGNATURE": zammad_signature(body, "hook-token"), "HTTP_X_ZAMMAD_DELIVERY": "d-1"}
    status = {}
    app(environ, lambda s, h: status.update(s=s))
    assert status["s"].startswith("202")
    (job,) = store.claim("w", dt.datetime.now(dt.timezone.utc))
    assert b"48213377" not in job.body
    assert json.loads(job.body)["ticket"]["title"] == "Call"
    assert b"48213377" not in (tmp_path / "p.db").read_bytes()


def test_a_fired_step_does_not_fire_again_when_the_deadline_moves(store, bundled_policies):
    engine = Engine(bundled_policies)
    processor = Processor(adapter=None, engine=lambda: engine, store=store)  # type: ignore[arg-type]
    created = zurich("2026-11-27 21:00")  # Plus by e-mail: warning Sat 07:00, breach Sat 08:00
    ticket = Ticket(id=1, channel="email", created_at=created)
    org = Organization(id=1, name="Acme", plan="plus")
    processor._set_timers(1, ticket, engine.evaluate(ticket, org, created))
    fired = store.fire_due(zurich("2026-11-28 07:10"))
    assert [t.step for t in fired] == ["warning"]
    # The ticket was pending 07:20-07:50: the breach moves to 08:30, the warning stays at 07:00.
    paused = Ticket(id=1, channel="email", created_at=created,
                    paused=((zurich("2026-11-28 07:20"), zurich("2026-11-28 07:50")),))
    decision = engine.evaluate(paused, org, zurich("2026-11-28 07:55"))
    assert decision.first_response_due.value == zurich("2026-11-28 08:30")
    processor._set_timers(1, paused, decision)
    assert store.fire_due(zurich("2026-11-28 08:00")) == []  # the warning is not fired a second time
    assert [t.step for t in store.fire_due(zurich("2026-11-28 08:30"))] == ["breach"]
