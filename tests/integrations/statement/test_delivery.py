"""Monthly statements for account managers: when they are due, and sent once, into Zammad.

Against the Zammad stand-in and its seeded desk: Uhrwerk Digital (Pro) has Ana Keller as
account manager, Helvetia Retail (Enterprise) Marc Dubois and, as technical account
manager, Tom Meier; both have seeded tickets (created now, so this month is the month the
statements cover here).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from integrations.statement.compute import Month
from integrations.statement.delivery import KIND, SENT, deliver_statements, delivery_instant, due_deliveries
from integrations.store import open_store
from integrations.zammad.adapter import ZammadAdapter, ZammadClient
from integrations.zammad_standin import running_standin

Z = ZoneInfo("Europe/Zurich")


def test_due_on_the_first_working_day_once_the_role_hours_began(bundled_policies):
    # 1 Nov 2026 is a Sunday: the account managers' first working day is Monday 2 Nov, from 09:00
    first = delivery_instant(bundled_policies, "account_manager", Month(2026, 11))
    assert first == dt.datetime(2026, 11, 2, 9, 0, tzinfo=Z)
    assert due_deliveries(bundled_policies, first - dt.timedelta(minutes=1)) == []
    due = dict(due_deliveries(bundled_policies, first))
    assert set(due) == {f"{KIND}:2026-10:account_manager", f"{KIND}:2026-10:technical_account_manager"}
    assert due_deliveries(bundled_policies, first, has_people=lambda role: role == "account_manager")[0][0] == \
        f"{KIND}:2026-10:account_manager"


def test_one_ticket_per_manager_with_each_customers_pdf_and_never_twice(tmp_path, bundled_policies):
    with running_standin() as zammad, open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        client = ZammadClient(zammad.url, zammad.admin_token, timeout=5)
        adapter = ZammadAdapter(client)
        now = dt.datetime.now(dt.timezone.utc)
        body = {"kind": KIND, "month": str(Month.of(now, Z)), "role": "account_manager"}
        assert deliver_statements(body, adapter, store, bundled_policies, now) == 2  # Ana and Marc
        assert deliver_statements(body, adapter, store, bundled_policies, now) == 0  # a retried job sends nothing
        tickets = [t for t in client.tickets.all() if str(t.get("title", "")).startswith("policydesk statements")]
        assert sorted(t["title"].split(":")[0] for t in tickets) == [
            "policydesk statements for Ana Keller", "policydesk statements for Marc Dubois"]
        ana = next(t for t in tickets if "Ana Keller" in t["title"])
        owner = adapter.find_user("ana.keller@provider.example")
        assert ana["owner_id"] == owner["id"] and ana["customer_id"] == owner["id"]
        (article,) = client.ticket_articles.by_ticket(ana["id"])
        assert article["internal"] is True and "Uhrwerk Digital GmbH" in article["body"]
        assert "Helvetia" not in article["body"]  # only Ana's customers
        entries = store.audit_log(f"{KIND}:{body['month']}:ana.keller@provider.example", SENT)
        assert len(entries) == 1 and entries[0].data["ticket_id"] == ana["id"]


@pytest.mark.parametrize("role, people", [("technical_account_manager", ["Tom Meier"])])
def test_the_technical_account_manager_gets_their_own(tmp_path, bundled_policies, role, people):
    with running_standin() as zammad, open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        client = ZammadClient(zammad.url, zammad.admin_token, timeout=5)
        now = dt.datetime.now(dt.timezone.utc)
        body = {"kind": KIND, "month": str(Month.of(now, Z)), "role": role}
        assert deliver_statements(body, ZammadAdapter(client), store, bundled_policies, now) == len(people)
        titles = [t["title"] for t in client.tickets.all() if "policydesk statements" in str(t.get("title"))]
        assert [title.split(" for ")[1].split(":")[0] for title in titles] == people
