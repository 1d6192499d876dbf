"""policydesk replay: known answers by construction, the cache against the full engine,
the input format (round trips, schema, file:line errors), --compare, the CLI, and an
export from the Zammad stand-in."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import random
import shutil

import pytest
import requests

from integrations.replay import report, report_html
from integrations.replay.generate import generate
from integrations.replay.records import (
    SCHEMA_PATH,
    RecordError,
    TicketRecord,
    parse_json_line,
    read_records,
    record_to_json,
    records_to_text,
    write_records,
)
from integrations.replay.run import (
    BREACHED,
    MET,
    NO_TARGET,
    PAUSED,
    UNANSWERED,
    InputErrors,
    ProgressBar,
    Replayer,
    replay_file,
    replay_records,
    ticket_of,
)
from plugin.engine import Engine
from plugin.hooks.sla import deadline
from plugin.hookspecs import hookimpl
from plugin.manager import get_plugin_manager
from plugin.model import Organization, Verdict
from plugin.policy import load_policies

from support import POLICIES, zurich

UTC = dt.timezone.utc
AS_OF = dt.datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def policies():
    return load_policies(POLICIES)


@pytest.fixture(scope="module")
def history(policies):
    """3,000 generated tickets (seed 11)."""
    return list(generate(3000, policies, seed=11, days=60))


def rec(**fields) -> TicketRecord:
    base = dict(id="t", channel="phone", created_at=zurich("2026-03-06 18:00"), plan="pro", category="hosting",
                language="de")
    base.update(fields)
    return TicketRecord(**base)


# --------------------------------------------------------------------------- known answers


def test_hand_computed_cases(policies):
    """Pro (2 h) by phone (Mon-Fri 06-19 Zurich), created Friday 18:00: due Monday 07:00."""
    replayer = Replayer(policies, as_of=AS_OF)
    friday = zurich("2026-03-06 18:00")
    cases = [
        # (first response, status, margin, response minutes)
        (zurich("2026-03-09 07:00"), MET, 0.0, 120.0),
        (zurich("2026-03-09 07:10"), BREACHED, 10.0, 130.0),
        (zurich("2026-03-06 18:59"), MET, -61.0, 59.0),
        (zurich("2026-03-07 10:00"), MET, -60.0, 60.0),  # Saturday: phone closed, the clock stood at 60
        (zurich("2026-03-09 19:30"), BREACHED, 720.0, 840.0),  # Monday after closing: 07:00 -> 19:00
    ]
    for answered, status, margin, minutes in cases:
        o = replayer.replay(rec(created_at=friday, first_response_at=answered))
        assert o.due == zurich("2026-03-09 07:00")
        assert (o.status, o.margin_minutes, o.response_minutes) == (status, margin, minutes), answered
    # pending Friday 18:30-18:45 (15 open minutes) moves the deadline to 07:15
    paused = rec(created_at=friday, first_response_at=zurich("2026-03-09 07:10"),
                 pending=((zurich("2026-03-06 18:30"), zurich("2026-03-06 18:45")),))
    o = replayer.replay(paused)
    assert (o.due, o.status, o.margin_minutes, o.response_minutes) == (zurich("2026-03-09 07:15"), MET, -5.0, 115.0)
    # a pending period after the first response does not matter
    later = dataclasses.replace(paused, pending=((zurich("2026-03-09 08:00"), None),))
    assert replayer.replay(later).due == zurich("2026-03-09 07:00")
    # the same request by e-mail counts on Mon-Sun 06-23: Friday 18:00 + 2 h = 20:00
    o = replayer.replay(rec(created_at=friday, channel="email", first_response_at=zurich("2026-03-06 20:00")))
    assert (o.calendar, o.due, o.status, o.margin_minutes) == ("email", zurich("2026-03-06 20:00"), MET, 0.0)
    # an accepted emergency counts 24/7: 2 h after Friday 18:00 is 20:00
    o = replayer.replay(rec(created_at=friday, category="infrastructure", language="fr", emergency=True,
                            first_response_at=zurich("2026-03-06 20:30")))
    assert (o.emergency, o.calendar, o.status, o.margin_minutes) == ("accepted", "emergency", BREACHED, 30.0)
    # refused in German: normal phone hours
    o = replayer.replay(rec(created_at=friday, category="infrastructure", language="de", emergency=True))
    assert (o.emergency, o.calendar) == ("refused", "phone")
    # no answer: breached if the deadline passed before the close, else no verdict
    o = replayer.replay(rec(created_at=friday, closed_at=zurich("2026-03-09 08:00")))
    assert (o.status, o.margin_minutes) == (BREACHED, 60.0)
    o = replayer.replay(rec(created_at=friday, closed_at=zurich("2026-03-09 06:30")))
    assert (o.status, o.margin_minutes) == (UNANSWERED, None)
    # still pending when exported, target not reached: no deadline
    o = replayer.replay(rec(created_at=friday, pending=((zurich("2026-03-06 18:30"), None),)))
    assert (o.status, o.due) == (PAUSED, None)
    # standard: no guarantee, response time still measured on the counting calendar
    o = replayer.replay(rec(created_at=friday, plan="standard", first_response_at=zurich("2026-03-09 06:30")))
    assert (o.status, o.target_minutes, o.response_minutes) == (NO_TARGET, None, 90.0)
    # unknown or missing plan: the default plan, as live
    assert replayer.replay(rec(plan="platinum")).plan == "standard"
    assert replayer.replay(rec(plan=None)).plan == "standard"


@pytest.mark.parametrize("k", [0, 1, 7, 45, 300])
def test_first_response_at_due_plus_minus_k_business_minutes(policies, history, k):
    """Responses constructed exactly k business minutes (pending excluded) after / before the
    deadline: late ones breach by k, early ones meet by -k (0 is met: the deadline counts)."""
    replayer = Replayer(policies, as_of=AS_OF)
    checked = 0
    for r in history:
        rule = replayer.rule_for(r)
        if rule.minutes is None or (r.pending and r.pending[-1][1] is None):
            continue
        base = dataclasses.replace(r, first_response_at=None, closed_at=None)
        ticket = ticket_of(base)
        late = deadline(rule.calendar, ticket, rule.minutes + k)
        o = replayer.replay(dataclasses.replace(base, first_response_at=late))
        assert o.margin_minutes == pytest.approx(k, abs=1e-6), r.id
        assert o.status == (MET if k == 0 else BREACHED)
        assert o.response_minutes == pytest.approx(rule.minutes + k, abs=1e-6)
        if k <= rule.minutes:
            early = deadline(rule.calendar, ticket, rule.minutes - k)
            o = replayer.replay(dataclasses.replace(base, first_response_at=early))
            assert (o.status, o.margin_minutes) == (MET, pytest.approx(-k, abs=1e-6)), r.id
        checked += 1
    assert checked > 1000


def test_cache_equals_full_engine_on_a_large_random_sample(policies, history):
    """The cached path gives exactly what `Engine.evaluate` gives, ticket by ticket."""
    rng = random.Random(5)
    odd = []
    for r in history:  # plus unusual values the generator does not make
        odd.append(dataclasses.replace(
            r, plan=rng.choice([r.plan, None, "platinum", "enterprise"]),
            channel=rng.choice([r.channel, "fax", "sms", "phone"]),
            category=rng.choice([r.category, None, "webmastering", "infrastructure", "unknown"]),
            language=rng.choice([r.language, None, "fr", "en", "xx"]),
            emergency=rng.random() < 0.3))
    sample = history + odd
    fast = Replayer(policies, as_of=AS_OF)
    exact = Replayer(policies, as_of=AS_OF, exact=True)
    engine = Engine(policies)
    assert not fast.exact and exact.exact
    for r in sample:
        a, b = fast.replay(r), exact.replay(r)
        assert a == b, r
        decision = engine.evaluate(ticket_of(r), Organization(plan=r.plan), r.created_at)
        assert a.due == decision.first_response_due.value
        assert a.calendar == decision.calendar.value and a.plan == decision.plan.value
    assert len(fast._rules) > 50


class ShortTargets:
    """A site plugin: every ticket is due 10 minutes after creation."""

    @hookimpl
    def policydesk_first_response_due(self, request, decision):
        return Verdict(request.ticket.created_at + dt.timedelta(minutes=10), "site.short", "test")


def test_site_plugins_turn_the_cache_off(policies):
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(ShortTargets(), name="site.short")
    replayer = Replayer(policies, pm, as_of=AS_OF)
    assert replayer.exact
    o = replayer.replay(rec(created_at=zurich("2026-03-09 10:00"), first_response_at=zurich("2026-03-09 10:15")))
    assert (o.due, o.status, o.margin_minutes) == (zurich("2026-03-09 10:10"), BREACHED, 5.0)
    assert Replayer(policies, get_plugin_manager(blocked=["policydesk.scope"])).exact


# --------------------------------------------------------------------------- input format


def test_jsonl_and_csv_round_trip(tmp_path, history):
    extra = [rec(id="x1", organization="Chocolaterie Léman SA", plan=None, category=None, language=None,
                 created_at=dt.datetime(2026, 3, 6, 18, 0, 0, 123456, tzinfo=UTC),
                 pending=((zurich("2026-03-06 19:30"), zurich("2026-03-06 20:00")), (zurich("2026-03-07 09:00"), None)))]
    records = history[:500] + extra
    assert any(r.pending for r in history[:500])
    for name in ("r.jsonl", "r.csv"):
        path = tmp_path / name
        assert write_records(records, path) == len(records)
        assert list(read_records(path)) == records
    csv_text = (tmp_path / "r.csv").read_text()
    assert "2026-03-06T18:30:00Z/2026-03-06T19:00:00Z;2026-03-07T08:00:00Z/" in csv_text


def test_schema_documents_what_the_parser_accepts():
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    good = [*schema["examples"], record_to_json(rec(first_response_at=zurich("2026-03-09 07:00")))]
    bad = [
        {"channel": "phone", "created_at": "2026-03-02T08:15:00Z"},  # no id
        {"id": "1", "created_at": "2026-03-02T08:15:00Z"},  # no channel
        {"id": "1", "channel": "phone", "created_at": "2026-03-02T08:15:00"},  # no offset
        {"id": "1", "channel": "phone", "created_at": "yesterday"},
        {"id": "1", "channel": "phone", "created_at": "2026-03-02T08:15:00Z", "emergency": "yes"},
        {"id": "1", "channel": "phone", "created_at": "2026-03-02T08:15:00Z", "frist_response_at": None},
        {"id": "1", "channel": "", "created_at": "2026-03-02T08:15:00Z"},
        {"id": " ", "channel": "phone", "created_at": "2026-03-02T08:15:00Z"},
        {"id": "1", "channel": "phone", "created_at": "2026-03-02T08:15:00Z", "pending": [{"end": None}]},
        {"id": "1", "channel": "phone", "created_at": "2026-03-02T08:15:00Z", "pending": "x"},
        {"id": True, "channel": "phone", "created_at": "2026-03-02T08:15:00Z"},
    ]
    for doc in good:
        assert validator.is_valid(doc), doc
        parse_json_line(json.dumps(doc))
    for doc in bad:
        assert not validator.is_valid(doc), doc
        with pytest.raises(RecordError):
            parse_json_line(json.dumps(doc))
    with pytest.raises(RecordError, match='did you mean "first_response_at"'):
        parse_json_line(json.dumps(bad[5]))


def test_bad_lines_name_file_and_line(tmp_path, capsys):
    from integrations.cli import main

    lines = records_to_text([rec(id=str(i)) for i in range(5)]).splitlines()
    lines[1] = lines[1].replace('"created_at":"', '"created_at":"not a date')
    lines[3] = "{oops"
    lines.insert(4, "")  # blank lines are skipped, and counted in line numbers
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputErrors) as raised:
        replay_file(path, POLICIES, jobs=1, as_of=AS_OF)
    assert [(e.file, e.line) for e in raised.value.errors] == [(str(path), 2), (str(path), 4)]
    assert str(raised.value.errors[0]).startswith(f"{path}:2: created_at: ")
    assert main(["replay", str(path), "--policies", str(POLICIES), "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: created_at:" in err and f"{path}:4: not valid JSON" in err and "--skip-invalid" in err
    assert main(["replay", str(path), "--policies", str(POLICIES), "--jobs", "2", "--skip-invalid", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tickets"] == 3 and [s["line"] for s in out["skipped"]] == [2, 4]
    # CSV: a bad value, too many values, an unknown column
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text("id,channel,created_at,emergency\n1,phone,2026-03-02T08:15:00Z,maybe\n"
                        "2,phone,2026-03-02T08:15:00Z,true,extra\n3,phone,2026-03-02T08:15:00Z,\n")
    with pytest.raises(InputErrors) as raised:
        replay_file(csv_path, POLICIES, jobs=1, as_of=AS_OF)
    assert [e.line for e in raised.value.errors] == [2, 3]
    assert "emergency: expected true or false" in raised.value.errors[0].message
    (tmp_path / "h.csv").write_text("id,chanel,created_at\n")
    assert main(["replay", str(tmp_path / "h.csv"), "--policies", str(POLICIES)]) == 1
    assert f'{tmp_path / "h.csv"}:1: unknown column "chanel" (did you mean "channel"?)' in capsys.readouterr().err


# --------------------------------------------------------------------------- compare, files, CLI


def test_compare_finds_exactly_the_tickets_a_changed_target_flips(tmp_path, policies, history):
    changed = tmp_path / "policies"
    shutil.copytree(POLICIES, changed)
    plans = changed / "plans.yaml"
    text = plans.read_text()
    assert text.count("first_response: 4h") == 1
    plans.write_text(text.replace("first_response: 4h", "first_response: 3h"))
    new = load_policies(changed)
    path = tmp_path / "h.jsonl"
    write_records(history, path)
    result = replay_file(path, POLICIES, compare_dir=changed, jobs=2, as_of=AS_OF)
    # expected, ticket by ticket, from the full engine under the changed policies
    engine = Engine(new)
    before = {o.id: o for o in replay_records(history, policies, as_of=AS_OF)[1]}
    expected = set()
    for r in history:
        due = engine.evaluate(ticket_of(r), Organization(plan=r.plan), r.created_at).first_response_due.value
        end = r.first_response_at or r.closed_at or AS_OF
        breached_after = due is not None and end > due
        if breached_after and before[r.id].status != BREACHED:
            expected.add(r.id)
    assert {f.id for f in result.newly_breached} == expected
    assert len(expected) > 20
    assert all(before[i].plan == "plus" for i in expected)
    assert result.newly_passed == []
    assert [f.id for f in result.newly_breached] == [r.id for r in history if r.id in expected]  # input order
    table = report.render_table(result)
    assert f"newly breached under {changed}: {len(expected)} tickets" in table
    assert f"newly passed under {changed}: 0 tickets" in table
    data = report.result_as_json(result)
    assert {f["id"] for f in data["compare"]["newly_breached"]} == expected
    flip = data["compare"]["newly_breached"][0]
    assert flip["plan"] == "plus" and flip["channel"] and flip["margin_after"] > 0  # late: positive
    page = report_html.render_html(result)
    assert "first response after" in page and "“late” after the deadline" in page
    assert f"{abs(result.newly_breached[0].margin_after):.0f} min late" in page
    # the other way round: the same tickets pass
    back = replay_file(path, changed, compare_dir=POLICIES, jobs=1, as_of=AS_OF)
    assert {f.id for f in back.newly_passed} == expected and back.newly_breached == []


def test_cli_generate_replay_json_html_and_tickets(tmp_path, capsys):
    from integrations.cli import main

    out1, out2 = tmp_path / "a.jsonl", tmp_path / "b.csv"
    assert main(["replay", "--generate", "400", "--seed", "9", "--out", str(out1), "--policies", str(POLICIES)]) == 0
    assert main(["replay", "--generate", "400", "--seed", "9", "--out", str(out2), "--policies", str(POLICIES)]) == 0
    assert list(read_records(out1)) == list(read_records(out2))  # a seed gives the same history
    capsys.readouterr()
    html_path, tickets = tmp_path / "r.html", tmp_path / "t.jsonl"
    assert main(["replay", str(out1), "--policies", str(POLICIES), "--as-of", "2026-06-01T00:00Z", "--json",
                 "--html", str(html_path), "--tickets", str(tickets), "--jobs", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tickets"] == 400 and data["cached"] is True
    plans = {p["plan"]: p for p in data["plans"]}
    assert plans["standard"]["target_minutes"] is None and plans["pro"]["target_minutes"] == 120
    for p in plans.values():
        assert p["met"] + p["breached"] + p["no_target"] + p["unanswered"] + p["paused"] == p["tickets"]
    assert sum(p["tickets"] for p in data["groups"]) == 400
    rows = [json.loads(line) for line in tickets.read_text().splitlines()]
    assert len(rows) == 400 and {r["status"] for r in rows} <= {MET, BREACHED, NO_TARGET, UNANSWERED, PAUSED}
    assert sorted(r["id"] for r in rows if r["status"] == BREACHED) == sorted(data["breached_ids"])
    page = html_path.read_text()
    assert page.count("<svg") >= 6 and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert main(["replay", str(out1), "--policies", str(POLICIES), "--jobs", "1"]) == 0
    table = capsys.readouterr().out
    assert "achieved" in table and "24/7 emergencies requested" in table


def test_progress_bar_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = ProgressBar(1000, stream)
    bar.update(500, 10, force=True)
    bar.update(1000, 20, force=True)
    bar.close()
    assert "\r" in stream.getvalue() and "100%" in stream.getvalue()
    quiet = io.StringIO()
    ProgressBar(10, quiet).update(10, 1, force=True)
    assert quiet.getvalue() == ""


def test_clock_skips_pending_time(policies):
    """Replay's business minutes are the live clock's inverse (plugin.clock.business_minutes)."""
    from plugin.clock import business_minutes

    phone = policies.calendars["phone"]
    a, b = zurich("2026-03-09 08:00"), zurich("2026-03-09 12:00")
    assert business_minutes(phone, a, b) == 240
    assert business_minutes(phone, a, b, ((zurich("2026-03-09 07:00"), zurich("2026-03-09 09:00")),
                                          (zurich("2026-03-09 11:30"), None))) == 150


# --------------------------------------------------------------------------- Zammad


def test_history_exported_from_the_zammad_standin(tmp_path, monkeypatch, capsys):
    from integrations.replay.zammad_source import ZammadExport, export_tickets, pending_periods
    from integrations.zammad.adapter import ZammadClient
    from integrations.zammad_standin import running_standin
    from integrations.cli import main

    with running_standin() as zammad:
        api, headers = zammad.api_url, zammad.headers()

        def create(customer, kind, **extra):
            body = {"title": f"replay {customer}", "group": "Support", "customer": customer,
                    "article": {"type": kind, "sender": "Customer", "internal": False, "body": "help"}, **extra}
            response = requests.post(f"{api}/tickets", json=body, headers=headers, timeout=10)
            response.raise_for_status()
            return response.json()["id"]

        def answer(ticket_id, internal=False):
            response = requests.post(f"{api}/ticket_articles", headers=headers, timeout=10, json={
                "ticket_id": ticket_id, "type": "note" if internal else "email", "sender": "Agent",
                "internal": internal, "body": "We are on it."})
            response.raise_for_status()
            return response.json()

        answered = create("jonas.keller@uhrwerk.ch", "phone")  # Pro, de-ch
        reply = answer(answered)
        noted = create("claire.favre@choco-leman.ch", "email")  # Plus, fr-ch: only an internal note
        answer(noted, internal=True)
        emergency = create("it-ops@helvetia-retail.ch", "phone",  # Enterprise, en-us
                           policydesk_category="infrastructure", policydesk_emergency=True)
        answer(emergency)
        waiting = create("hans.meier@bergbahn-alpin.ch", "web")  # Standard
        requests.put(f"{api}/tickets/{waiting}", json={"state": "pending reminder",
                                                         "pending_time": "2030-01-01T00:00:00Z"},
                     headers=headers, timeout=10).raise_for_status()
        mine = {answered, noted, emergency, waiting}

        export = ZammadExport()
        client = ZammadClient(zammad.url, zammad.admin_token)
        records = {r.id: r for r in export_tickets(client, None, export) if int(r.id) in mine}
        assert export.history_available is True  # the stand-in has Zammad's /ticket_history
        assert not any("no /api/v1/ticket_history endpoint" in note for note in export.notes)
        a, n, e, w = (records[str(i)] for i in (answered, noted, emergency, waiting))
        assert (a.plan, a.channel, a.language, a.organization) == ("pro", "phone", "de", "Uhrwerk Digital GmbH")
        assert a.first_response_at == dt.datetime.fromisoformat(reply["created_at"].replace("Z", "+00:00"))
        assert n.first_response_at is None and (n.plan, n.channel, n.language) == ("plus", "email", "fr")
        assert (e.plan, e.category, e.emergency, e.language) == ("enterprise", "infrastructure", True, "en")
        assert w.plan == "standard" and len(w.pending) == 1 and w.pending[0][1] is None
        _, outcomes = replay_records(records.values(), load_policies(POLICIES))
        status = {o.id: (o.status, o.emergency) for o in outcomes}
        assert status[a.id] == (MET, "")
        assert status[n.id] == (UNANSWERED, "")
        assert status[e.id] == (MET, "accepted")
        assert status[w.id][0] == NO_TARGET

        # the same through the command line, saving the export
        monkeypatch.setenv("ZAMMAD_URL", zammad.url)
        monkeypatch.setenv("ZAMMAD_TOKEN", zammad.admin_token)
        saved = tmp_path / "export.jsonl"
        assert main(["replay", "--from-zammad", "--since", "1d", "--out", str(saved), "--json", "--jobs", "1",
                     "--policies", str(POLICIES)]) == 0
        captured = capsys.readouterr()
        assert "no /api/v1/ticket_history endpoint" not in captured.err
        data = json.loads(captured.out)
        assert data["tickets"] == len(list(read_records(saved))) >= 4

    # Zammad's history format (TicketsController#ticket_history): pending periods
    history = [
        {"type": "created", "object": "Ticket", "created_at": "2026-03-02T08:00:00.000Z"},
        {"type": "updated", "object": "Ticket", "attribute": "state", "value_from": "new", "value_to": "open",
         "created_at": "2026-03-02T08:05:00.000Z"},
        {"type": "updated", "object": "Ticket", "attribute": "state", "value_from": "open",
         "value_to": "pending reminder", "created_at": "2026-03-02T08:10:00.000Z"},
        {"type": "updated", "object": "Ticket", "attribute": "state", "value_from": "pending reminder",
         "value_to": "open", "created_at": "2026-03-02T09:00:00.000Z"},
        {"type": "updated", "object": "Ticket", "attribute": "state", "value_from": "open",
         "value_to": "pending close", "created_at": "2026-03-03T10:00:00.000Z"},
    ]
    t = lambda s: dt.datetime.fromisoformat(s).replace(tzinfo=UTC)  # noqa: E731
    assert pending_periods(history) == [(t("2026-03-02T08:10"), t("2026-03-02T09:00")), (t("2026-03-03T10:00"), None)]


def test_report_lists_breaches_organizations_months_and_names_the_policies(policies):
    """Known by construction: Acme has one met and one breached ticket in March, one met in April."""
    from integrations.replay.run import policy_version

    z = dt.timezone.utc
    records = [
        TicketRecord(id="a1", organization="Acme", plan="plus", channel="email",
                     created_at=dt.datetime(2026, 3, 3, 9, tzinfo=z), first_response_at=dt.datetime(2026, 3, 3, 10, tzinfo=z)),
        TicketRecord(id="a2", organization="Acme", plan="plus", channel="email",
                     created_at=dt.datetime(2026, 3, 4, 9, tzinfo=z), first_response_at=dt.datetime(2026, 3, 4, 15, tzinfo=z)),
        TicketRecord(id="b1", organization="Beta", plan="plus", channel="phone",
                     created_at=dt.datetime(2026, 4, 6, 9, tzinfo=z), first_response_at=dt.datetime(2026, 4, 6, 9, 30, tzinfo=z)),
    ]
    result, _ = replay_records(records, policies, as_of=AS_OF)
    assert result.policy_version == policy_version(policies) and len(result.policy_version) == 12
    data = report.result_as_json(result)
    assert [b["id"] for b in data["breaches"]] == ["a2"]
    assert data["breaches"][0]["organization"] == "Acme" and data["breaches"][0]["late_minutes"] == 120
    assert data["organizations"] == [{"organization": "Acme", "tickets": 2, "met": 1, "breached": 1},
                                     {"organization": "Beta", "tickets": 1, "met": 1, "breached": 0}]
    assert data["months"] == [{"month": "2026-03", "tickets": 2, "met": 1, "breached": 1},
                              {"month": "2026-04", "tickets": 1, "met": 1, "breached": 0}]
    table = report.render_table(result)
    assert "breached: 1 ticket\n  a2" in table and "Replayed 3 tickets" in table
    page = report_html.render_html(result)
    assert "Breached tickets: 1</h2>" in page and "120 min late" in page
    assert "<td>Acme</td><td class=num>2</td>" in page and 'id="trend"' in page
    assert f"policies {result.policy_version}" in page and "As of 01 Jun 2026" in page
    assert report.count(1, "arrival") == "1 arrival" and report.count(2, "arrival") == "2 arrivals"
