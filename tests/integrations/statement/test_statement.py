"""Statements: numbers checked against tickets whose answer is known by construction.

The month is November 2026 in Europe/Zurich (the bundled policies): Plus answers within 4 h
of the channel's opening hours (e-mail Mon–Sun 06:00–23:00, phone Mon–Fri 06:00–19:00),
Pro within 2 h. Acme AG is on Plus until 15 Nov 12:00, then on Pro.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from integrations.replay.records import TicketRecord, write_records
from integrations.statement.compute import Month, build_statement, parse_month
from integrations.statement.html import render_html
from integrations.statement.pdf import render_pdf
from integrations.statement.render import render_text, statement_as_json
from plugin.errors import UserError
from support import POLICIES, REPO

Z = ZoneInfo("Europe/Zurich")
AS_OF = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
UPGRADE = dt.datetime(2026, 11, 15, 12, 0, tzinfo=Z)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=Z)


def ticket(id: str, **values) -> TicketRecord:
    values.setdefault("organization", "Acme AG")
    values.setdefault("channel", "email")
    values.setdefault("number", f"3100{id}")
    values.setdefault("title", f"request {id}")
    return TicketRecord(id=id, **values)


RECORDS = [
    # met: 1 h after arrival
    ticket("1", plan="plus", created_at=at(3, 10), first_response_at=at(3, 11)),
    # due 08:00 next day (2 h before the 23:00 close, 2 h after the 06:00 opening); answered 09:00: 60 min late
    ticket("2", plan="plus", created_at=at(4, 21), first_response_at=at(5, 9)),
    # never answered; due 14:00, closed 15:00: 60 min late
    ticket("3", plan="plus", created_at=at(5, 10), closed_at=at(5, 15)),
    # an emergency call on Plus: refused (Plus has no 24/7), handled as a normal phone request, met
    ticket("4", plan="plus", channel="phone", category="infrastructure", language="en", emergency=True,
           created_at=at(9, 10), first_response_at=at(9, 10, 30)),
    # out of scope (webmastering): referred, and answered in time
    ticket("5", plan="plus", category="webmastering", created_at=at(10, 10), first_response_at=at(10, 10, 10)),
    # after the upgrade: Pro, 2 h, answered after 1 h 30: met
    ticket("6", plan="pro", created_at=at(16, 10), first_response_at=at(16, 11, 30)),
    # October: one met, and one of another organization that must not count
    ticket("7", plan="plus", created_at=at(20, 10, month=10), first_response_at=at(20, 10, 5, month=10)),
    ticket("8", plan="plus", organization="Other GmbH", created_at=at(6, 10), first_response_at=at(7, 10)),
    # December: outside the month and the trend
    ticket("9", plan="pro", created_at=dt.datetime(2026, 12, 1, 9, 0, tzinfo=Z)),
]
PLAN_CHANGES = [(dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), "plus"), (UPGRADE, "pro")]


@pytest.fixture(scope="module")
def statement(bundled_policies):
    return build_statement(RECORDS, Month(2026, 11), bundled_policies, organization="Acme AG",
                           policy_version="v-test", as_of=AS_OF, plan_changes=PLAN_CHANGES)


def test_totals_and_channels(statement):
    assert statement.total.requests == 6
    assert statement.total.due == 6 and statement.total.met == 4
    assert statement.total.met_share == pytest.approx(4 / 6)
    assert dict(statement.requests_by_channel) == {"email": 5, "phone": 1}


def test_mid_month_upgrade_splits_the_period(statement):
    assert [(p.plan, p.start, p.end) for p in statement.plans] == [
        ("plus", at(1, 0), UPGRADE), ("pro", UPGRADE, dt.datetime(2026, 12, 1, tzinfo=Z))]
    assert [(f.requests, f.due, f.met) for f in statement.per_plan] == [(5, 5, 3), (1, 1, 1)]


def test_each_breach_with_due_answer_and_business_lateness(statement):
    assert [(b.ticket, b.number, b.due, b.answered, b.late_minutes) for b in statement.breaches] == [
        ("2", "31002", at(5, 8), at(5, 9), 60.0),
        ("3", "31003", at(5, 14), None, 60.0),
    ]


def test_emergencies_and_referrals_with_their_reasons(statement):
    assert statement.accepted_emergencies == 0 and statement.refused_emergencies == 1
    (refused,) = statement.emergencies
    assert refused.ticket == "4" and "does not include 24/7 emergency" in " ".join(refused.reasons)
    (referral,) = statement.referrals
    assert referral.ticket == "5" and referral.category == "webmastering" and "partner" in referral.referral


def test_trend_covers_six_months_oldest_first(statement):
    assert [str(m) for m, _ in statement.trend] == ["2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    assert [(f.due, f.met) for _, f in statement.trend] == [(0, 0)] * 4 + [(1, 1), (6, 4)]


def test_plan_periods_from_tickets_when_zammad_keeps_no_history(bundled_policies):
    s = build_statement(RECORDS, Month(2026, 11), bundled_policies, organization="Acme AG",
                        policy_version="v", as_of=AS_OF)
    assert [(p.plan, p.start) for p in s.plans] == [("plus", at(1, 0)), ("pro", at(16, 10))]


def test_month_parsing():
    assert parse_month("2026-02") == Month(2026, 2) and str(Month(2026, 12).next()) == "2027-01"
    assert str(Month(2026, 1).previous()) == "2025-12"
    for bad in ("2026-13", "26-01", "2026/01", "november"):
        with pytest.raises(UserError, match="YYYY-MM"):
            parse_month(bad)


def test_text_and_json(statement):
    text = render_text(statement)
    assert "First responses: 6 due, 4 met (66.7 %)" in text
    assert "#31002" in text and "1 h 00 min late (business time)" in text
    assert "Out of scope: 1 referral" in text
    data = statement_as_json(statement)
    json.dumps(data)
    assert data["met_percent"] == 66.7 and data["policy_version"] == "v-test"
    assert [p["plan"] for p in data["plans"]] == ["plus", "pro"]
    assert data["breaches"][0]["late_business_minutes"] == 60.0


def test_pdf_text_extracted(statement):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(render_pdf([statement])))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Support statement", "Acme AG", "November 2026", "First responses due: 6, met: 4 (66.7 %)",
                     "#31002", "#31003", "refused", "webmastering", "2026-06", "Policies v-test"):
        assert expected in text, expected


def test_html_is_self_contained(statement):
    page = render_html([statement])
    assert "<svg" in page and "http://" not in page.replace('http://www.w3.org', '') and "https://" not in page
    assert "Acme AG" in page and "66.7 %" in page and "#31002" in page


def test_cli_from_file_json_html_pdf(tmp_path):
    export = tmp_path / "export.jsonl"
    write_records(RECORDS, export, "jsonl")
    html_file, pdf_file = tmp_path / "s.html", tmp_path / "s.pdf"
    result = subprocess.run(
        [sys.executable, "-m", "integrations.cli", "statement", "--from-file", str(export), "--all",
         "--month", "2026-11", "--policies", str(POLICIES), "--as-of", "2026-12-01T08:00:00Z", "--json",
         "--html", str(html_file), "--pdf", str(pdf_file)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["organization"] for d in data] == ["Acme AG", "Other GmbH"]
    assert data[0]["due"] == 6 and data[1]["due"] == 1 and len(data[0]["policy_version"]) == 12
    assert html_file.read_text().count('class="statement"') == 2
    assert pdf_file.read_bytes().startswith(b"%PDF")


def test_cli_bad_month_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "integrations.cli", "statement", "--all", "--month", "2026-13", "--from-file", "x"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "YYYY-MM" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_statement_from_the_zammad_standin(bundled_policies):
    """Two e-mails to Uhrwerk Digital (Pro, 2 h) in November, answered through Zammad's API:
    one after 1 h (met), one after 3 h (breached by 60 business minutes)."""
    from integrations.statement.source import statements_from_zammad
    from integrations.zammad.adapter import ZammadClient
    from integrations.zammad_standin import running_standin
    from zammad_api import Api

    with running_standin() as zammad:
        api = Api(zammad.url, zammad.admin_token)
        users = api.get("users", params={"per_page": 500}).json()
        jonas = next(u for u in users if u["email"] == "jonas.keller@uhrwerk.ch")
        org_id = jonas["organization_id"]
        numbers = []
        for day, answer_after in ((3, 60), (4, 180)):
            zammad.state.clock.travel_to(at(day, 10))
            ticket = api.post("tickets", json={
                "title": f"mail of {day} Nov", "group": "Users", "customer_id": jonas["id"],
                "article": {"subject": "help", "body": "please", "type": "email", "sender": "Customer",
                            "internal": False}}).json()
            numbers.append(ticket["number"])
            zammad.state.clock.travel_to(at(day, 10) + dt.timedelta(minutes=answer_after))
            answered = api.post("ticket_articles", json={
                "ticket_id": ticket["id"], "body": "on it", "type": "email", "sender": "Agent", "internal": False,
                "to": "jonas.keller@uhrwerk.ch"})
            assert answered.status_code == 201, answered.text
        zammad.state.clock.travel_to(None)
        client = ZammadClient(zammad.url, zammad.admin_token, timeout=5)
        (s,) = statements_from_zammad(client, bundled_policies, Month(2026, 11), organization_ids=[org_id], as_of=AS_OF)
    assert s.organization_name == "Uhrwerk Digital GmbH" and [p.plan for p in s.plans] == ["pro"]
    assert (s.total.requests, s.total.due, s.total.met) == (2, 2, 1)
    assert dict(s.requests_by_channel) == {"email": 2}
    (breach,) = s.breaches
    assert breach.number == numbers[1] and breach.title == "mail of 4 Nov"
    # the stand-in stamps milliseconds as the requests arrive: to the second
    assert abs((breach.due - at(4, 12)).total_seconds()) < 1 and abs((breach.answered - at(4, 13)).total_seconds()) < 1
    assert breach.late_minutes == pytest.approx(60, abs=0.05)
    assert s.account_managers == {"account_manager": "ana.keller@provider.example"}
