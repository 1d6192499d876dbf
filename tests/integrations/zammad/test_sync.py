"""``policydesk sync`` against the Zammad stand-in over real HTTP."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import socket
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from integrations.zammad.adapter import ZammadClient
from integrations.zammad.commands import run
from integrations.zammad_standin import running_standin
from integrations.zammad.sync import make_plan, plan_sync, read_current
from integrations.zammad.sync_objects import (
    ATTRIBUTE_MARKER,
    business_hours,
    public_holidays,
    wanted_objects,
)
from plugin.policy import load_policies

from support import POLICIES
WEBHOOK_TOKEN = "hook-signing-secret"
PUBLIC_URL = "https://policydesk.example"


@pytest.fixture
def zammad(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Zammad's calendars have no note column (db/migrate/20120101000001_create_base.rb);
    # drop it here too in case the stand-in still has one.
    from integrations.zammad_standin import state as standin_state

    if hasattr(standin_state, "CALENDAR_COLUMNS"):  # an older stand-in still had a note column
        monkeypatch.delitem(standin_state.CALENDAR_COLUMNS, "note", raising=False)
    with running_standin("empty", webhook_backoff=0.02) as standin:
        yield standin


def env_for(zammad: Any, **extra: str) -> dict[str, str]:
    return {"ZAMMAD_URL": zammad.url, "ZAMMAD_TOKEN": zammad.admin_token, "ZAMMAD_RETRY_ATTEMPTS": "1",
            "ZAMMAD_TIMEOUT": "3", "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
            "POLICYDESK_PUBLIC_URL": PUBLIC_URL, **extra}


def sync(zammad: Any, capsys: Any, *args: str, policies: Path = POLICIES, **env: str) -> tuple[int, str, str]:
    code = run(["sync", "--policies", str(policies), *args], env_for(zammad, **env))
    out, err = capsys.readouterr()
    return code, out, err


def writes(zammad: Any) -> list[Any]:
    return zammad.state.requests.writes()


def named(zammad: Any, table: str, name: str) -> dict[str, Any]:
    record = zammad.state.by_name(table, name)
    assert record is not None, f"no {table} named {name!r}"
    return record


def policy_copy(tmp_path: Path, edit: Any) -> Path:
    """A copy of the bundled policies with ``edit(documents)`` applied to the parsed YAML."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    docs = {name: yaml.safe_load((target / name).read_text()) for name in ("hours.yaml", "plans.yaml")}
    edit(docs)
    for name, data in docs.items():
        (target / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return target


# --------------------------------------------------------------------------- the whole sync


def test_sync_creates_everything_then_nothing_changes(zammad: Any, capsys: Any) -> None:
    code, out, err = sync(zammad, capsys)
    assert code == 0, err
    assert 'created calendar "policydesk: phone"' in out and "executed attribute migrations" in out

    phone = named(zammad, "calendars", "policydesk: phone")
    assert phone["timezone"] == "Europe/Zurich"
    assert phone["business_hours"]["mon"] == {"active": True, "timeframes": [["06:00", "19:00"]]}
    assert phone["business_hours"]["sat"] == {"active": False, "timeframes": []}
    assert phone["ical_url"] == "" and phone["public_holidays"] == {}
    emergency = named(zammad, "calendars", "policydesk: emergency")
    assert all(day == {"active": True, "timeframes": [["00:00", "23:59"]]}
               for day in emergency["business_hours"].values())

    pro_phone = named(zammad, "slas", "policydesk 20 pro phone")
    assert pro_phone["first_response_time"] == 120 and pro_phone["calendar_id"] == phone["id"]
    assert pro_phone["condition"] == {"ticket.tags": {"operator": "contains all", "value": "plan:pro, hours:phone"}}
    pro_emergency = named(zammad, "slas", "policydesk 10 pro emergency")
    assert pro_emergency["calendar_id"] == emergency["id"] and pro_emergency["first_response_time"] == 120
    assert named(zammad, "slas", "policydesk 20 enterprise email")["first_response_time"] == 60
    assert named(zammad, "slas", "policydesk 20 plus phone")["first_response_time"] == 240
    sla_names = sorted(s["name"] for s in zammad.state.all("slas"))
    assert all("standard" not in n for n in sla_names)  # no guarantee, no SLA
    assert [n for n in sla_names if "pro" in n] == ["policydesk 10 pro emergency", "policydesk 20 pro email",
                                                    "policydesk 20 pro phone"]  # Zammad's name order

    webhook = named(zammad, "webhooks", "policydesk")
    assert webhook["endpoint"] == PUBLIC_URL + "/webhooks/zammad"
    assert webhook["signature_token"] == WEBHOOK_TOKEN and webhook["ssl_verify"] is True and webhook["active"]
    own_id = zammad.state.tokens[zammad.admin_token]
    triggers = {t["name"]: t for t in zammad.state.all("triggers")}
    assert sorted(triggers) == ["policydesk 10 ticket created", "policydesk 20 ticket updated",
                                "policydesk 30 escalation", "policydesk 40 escalation warning"]
    for trigger in triggers.values():
        assert trigger["perform"] == {"notification.webhook": {"webhook_id": webhook["id"]}}
    created = triggers["policydesk 10 ticket created"]
    assert created["condition"]["ticket.updated_by_id"] == {"operator": "is not", "pre_condition": "specific",
                                                           "value": [str(own_id)]}
    assert triggers["policydesk 30 escalation"]["activator"] == "time"
    assert triggers["policydesk 40 escalation warning"]["condition"] == {
        "ticket.escalation_at": {"operator": "has reached warning"}}

    attributes = {(zammad.state.attribute_object(a), a["name"]): a for a in zammad.state.all("attributes")}
    plan_attr = attributes[("Organization", "support_plan")]
    assert plan_attr["data_type"] == "select" and plan_attr["position"] == 1510
    assert plan_attr["data_option"]["options"] == {"standard": "Standard support", "plus": "Plus support",
                                                   "pro": "Pro support", "enterprise": "Enterprise support"}
    assert attributes[("Ticket", "policydesk_category")]["data_option"]["options"]["webmastering"]
    assert attributes[("Ticket", "policydesk_fingerprint")]["screens"] == {}
    assert attributes[("Ticket", "policydesk_first_response_due")]["data_type"] == "datetime"
    assert {"support_plan", "partner", "commitment_end"} <= set(zammad.state.custom_columns["organizations"])
    assert "policydesk_vip_code" in zammad.state.custom_columns["tickets"]  # migrated

    before = len(writes(zammad))
    code, out, err = sync(zammad, capsys, "--dry-run")
    assert (code, out.strip()) == (0, "no changes"), err
    code, out, err = sync(zammad, capsys)
    assert (code, out.strip()) == (0, "no changes"), err
    assert len(writes(zammad)) == before  # neither wrote anything


def test_dry_run_on_empty_zammad_lists_everything_and_writes_nothing(zammad: Any, capsys: Any) -> None:
    code, out, _ = sync(zammad, capsys, "--dry-run", "--webhook-url", "http://10.0.0.5:8080/hooks/in")
    assert code == 0
    assert writes(zammad) == []
    assert 'create calendar "policydesk: phone": Europe/Zurich; mon-fri 06:00-19:00; 0 holidays' in out
    assert 'create sla "policydesk 20 pro phone": first response 120 min on <id of calendar "policydesk: phone">' in out
    assert 'create webhook "policydesk": http://10.0.0.5:8080/hooks/in' in out
    assert out.strip().endswith("31 changes (dry run: nothing written)")


def test_a_changed_window_updates_only_that_calendar(zammad: Any, capsys: Any, tmp_path: Path) -> None:
    assert sync(zammad, capsys)[0] == 0

    def later_phone(docs: dict[str, Any]) -> None:
        docs["hours.yaml"]["calendars"]["phone"]["weekly"] = {"mon-fri": [{"open": "07:00", "close": "19:00"}]}

    policies = policy_copy(tmp_path, later_phone)
    before = len(writes(zammad))
    code, out, err = sync(zammad, capsys, "--dry-run", policies=policies)
    assert code == 0, err
    assert len(writes(zammad)) == before
    lines = out.strip().splitlines()
    assert lines[0] == ('update calendar "policydesk: phone": business_hours.mon.timeframes '
                        '[["06:00","19:00"]] -> [["07:00","19:00"]]')
    assert lines[1:5] == [f'    business_hours.{d}.timeframes [["06:00","19:00"]] -> [["07:00","19:00"]]'
                          for d in ("tue", "wed", "thu", "fri")]
    assert lines[5:] == ["1 change (dry run: nothing written)"]

    phone_id = named(zammad, "calendars", "policydesk: phone")["id"]
    code, out, err = sync(zammad, capsys, policies=policies)
    assert code == 0, err
    assert out.strip() == ('updated calendar "policydesk: phone": business_hours.mon.timeframes, '
                           'business_hours.tue.timeframes, business_hours.wed.timeframes, '
                           'business_hours.thu.timeframes, business_hours.fri.timeframes')
    assert [(w.method, w.path) for w in writes(zammad)[before:]] == [("PUT", f"/api/v1/calendars/{phone_id}")]
    assert named(zammad, "calendars", "policydesk: phone")["business_hours"]["wed"]["timeframes"] == [["07:00", "19:00"]]
    assert sync(zammad, capsys, "--dry-run", policies=policies)[1].strip() == "no changes"


def test_a_removed_calendar_and_its_slas_are_deleted(zammad: Any, capsys: Any, tmp_path: Path) -> None:
    def with_sms_hours(docs: dict[str, Any]) -> None:
        docs["hours.yaml"]["calendars"]["sms"] = {"weekly": {"mon-sat": [{"open": "08:00", "close": "24:00"}]},
                                                  "closed": ["2026-12-24"]}
        docs["plans.yaml"]["channels"]["sms"] = "sms"

    first = policy_copy(tmp_path / "a", with_sms_hours)
    code, out, err = sync(zammad, capsys, policies=first)
    assert code == 0, err
    sms = named(zammad, "calendars", "policydesk: sms")
    assert sms["business_hours"]["sat"] == {"active": True, "timeframes": [["08:00", "23:59"]]}
    assert sms["public_holidays"] == {"2026-12-24": {"active": True, "summary": "Closed"}}
    assert named(zammad, "slas", "policydesk 20 pro sms")["calendar_id"] == sms["id"]

    before = len(writes(zammad))
    code, out, err = sync(zammad, capsys)  # the bundled policies: no sms calendar
    assert code == 0, err
    assert out.strip().splitlines() == [
        'deleted sla "policydesk 20 enterprise sms"', 'deleted sla "policydesk 20 plus sms"',
        'deleted sla "policydesk 20 pro sms"', 'deleted calendar "policydesk: sms"']
    assert all(w.method == "DELETE" for w in writes(zammad)[before:])

    code, out, err = sync(zammad, capsys, "--dry-run", POLICYDESK_ZAMMAD_WEBHOOK_TOKEN="rotated-secret")
    assert out.strip().splitlines()[0] == ('update webhook "policydesk": signature_token (hidden) -> '
                                           '(hidden, from the environment)')
    assert WEBHOOK_TOKEN not in out and "rotated-secret" not in out
    assert zammad.state.by_name("calendars", "policydesk: sms") is None
    assert not [s for s in zammad.state.all("slas") if s["name"].endswith(" sms")]
    assert zammad.state.by_name("calendars", "policydesk: phone") is not None


def test_objects_policydesk_did_not_create_are_left_untouched(zammad: Any, capsys: Any) -> None:
    state = zammad.state
    foreign_calendar = state.create_generic("calendars", {
        "name": "policydesk: phone", "timezone": "Europe/Berlin", "note": "made by hand",
        "business_hours": {"mon": {"active": True, "timeframes": [["10:00", "12:00"]]}}}, 1)
    foreign_trigger = state.create_generic("triggers", {
        "name": "policydesk 20 ticket updated", "condition": {"ticket.action": {"operator": "is", "value": "update"}},
        "perform": {"ticket.priority_id": {"value": "3"}}}, 1)
    unmarked = state.add_attribute({"object": "Organization", "name": "partner", "display": "Partner?",
                                    "data_type": "boolean", "data_option": {"options": {"true": "y", "false": "n"},
                                                                            "default": False}}, 1)
    state.execute_migrations()
    snapshot = copy.deepcopy([foreign_calendar, foreign_trigger, unmarked])

    code, out, err = sync(zammad, capsys)
    assert code == 1
    assert 'error: calendar "policydesk: phone" exists but was not created by policydesk: left untouched' in out
    assert 'error: trigger "policydesk 20 ticket updated" exists but was not created by policydesk' in out
    assert 'error: sla "policydesk 20 pro phone" cannot be created or updated: it needs calendar "policydesk: phone"' in out
    assert 'warning: attribute "Organization.partner" exists but was not created by policydesk' in out
    assert "could not be synced" in err and "Traceback" not in err
    assert [foreign_calendar, foreign_trigger, unmarked] == snapshot
    touched = {w.path for w in writes(zammad)}
    assert not any(p.endswith((f"/calendars/{foreign_calendar['id']}", f"/triggers/{foreign_trigger['id']}",
                               f"/object_manager_attributes/{unmarked['id']}")) for p in touched)
    # everything else was synced
    assert named(zammad, "slas", "policydesk 20 pro email")["first_response_time"] == 120
    assert named(zammad, "triggers", "policydesk 10 ticket created")
    assert zammad.state.by_name("slas", "policydesk 20 pro phone") is None

    # a policydesk-looking calendar not in the policies is not policydesk's either: never deleted
    state.create_generic("calendars", {"name": "policydesk: old", "timezone": "UTC", "business_hours": {}}, 1)
    sync(zammad, capsys)
    assert state.by_name("calendars", "policydesk: old") is not None


def test_the_default_demo_desk_keeps_its_own_attributes_and_calendars() -> None:
    with running_standin() as standin:  # seed.yaml: attributes and calendars made by hand
        client = ZammadClient(standin.url, standin.admin_token)
        plan = plan_sync(load_policies(POLICIES), client, endpoint=PUBLIC_URL + "/webhooks/zammad",
                         signature_token=WEBHOOK_TOKEN)
        # all hand-made ones are used as they are; only the attributes newer than the seed may be new
        new = {"Organization.support_code", "Ticket.policydesk_support_code", "Ticket.policydesk_language"}
        assert {a.name for a in plan.actions if a.kind == "attribute"} <= new
        assert not [a for a in plan.actions if a.verb != "create"]
        assert sum("exists but was not created by policydesk" in w for w in plan.warnings) == 11
        assert standin.state.requests.writes() == []


# --------------------------------------------------------------------------- the command line


def test_unreachable_zammad_is_a_clear_error(zammad: Any, capsys: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, err = sync(zammad, capsys, "--zammad-url", f"http://127.0.0.1:{port}")
    assert code == 1
    assert err.startswith(f"policydesk sync: cannot reach Zammad at http://127.0.0.1:{port}")
    assert "Traceback" not in err and out == ""


def test_a_refused_token_is_a_clear_error(zammad: Any, capsys: Any) -> None:
    code, out, err = sync(zammad, capsys, ZAMMAD_TOKEN="not-a-token")
    assert code == 1
    assert "refused the token (401 Can't find User for Token)" in err and "Traceback" not in err
    assert writes(zammad) == []


def test_settings_and_policy_errors(zammad: Any, capsys: Any, tmp_path: Path) -> None:
    code, _, err = sync(zammad, capsys, POLICYDESK_ZAMMAD_WEBHOOK_TOKEN="")
    assert code == 1 and "no webhook signing token" in err
    (tmp_path / "token").write_text(WEBHOOK_TOKEN + "\n")
    code, out, err = sync(zammad, capsys, "--dry-run", POLICYDESK_ZAMMAD_WEBHOOK_TOKEN="",
                          POLICYDESK_ZAMMAD_WEBHOOK_TOKEN_FILE=str(tmp_path / "token"))
    assert code == 0, err
    code, _, err = sync(zammad, capsys, POLICYDESK_PUBLIC_URL="")
    assert code == 1 and "--webhook-url" in err
    code, _, err = sync(zammad, capsys, ZAMMAD_TOKEN="")
    assert code == 1 and "ZAMMAD_TOKEN" in err

    broken = policy_copy(tmp_path, lambda docs: docs["plans.yaml"]["plans"]["pro"].update(first_response="soon"))
    code, _, err = sync(zammad, capsys, policies=broken)
    assert code == 1 and "invalid policies" in err and "plans.yaml:" in err and "Traceback" not in err
    assert writes(zammad) == []

    with pytest.raises(SystemExit) as usage:
        run(["sync", "--no-such-option"], env_for(zammad))
    assert usage.value.code == 2


# --------------------------------------------------------------------------- Zammad's formats


def spec(**fields: Any) -> Any:
    from plugin.model import CalendarSpec

    return CalendarSpec(**{"name": "test", "title": "Test", "timezone": "Europe/Zurich", "weekly": {}, **fields})


def test_business_hours_format() -> None:
    from plugin.model import Window

    assert business_hours(spec(weekly={5: (Window(0, 1440),), 6: (Window(0, 1440),),
                                       0: (Window(480, 720), Window(780, 1020))})) == {
        "mon": {"active": True, "timeframes": [["08:00", "12:00"], ["13:00", "17:00"]]},
        **{d: {"active": False, "timeframes": []} for d in ("tue", "wed", "thu", "fri")},
        "sat": {"active": True, "timeframes": [["00:00", "23:59"]]},
        "sun": {"active": True, "timeframes": [["00:00", "23:59"]]},
    }
    assert business_hours(spec(always_open=True))["wed"] == {"active": True, "timeframes": [["00:00", "23:59"]]}


def test_public_holidays_cover_three_years_and_special_days_are_remarked() -> None:
    from plugin.model import Window

    calendar = spec(holidays=(("CH", "ZH"),), closed=(dt.date(2026, 12, 24),),
                    special_days={dt.date(2026, 12, 31): (Window(360, 720),), dt.date(2027, 1, 4): (),
                                  dt.date(2026, 8, 1): (Window(540, 660),)})
    days, remarks = public_holidays(calendar, dt.date(2026, 3, 1))
    assert days["2026-12-25"] == {"active": True, "summary": "Christmas Day (CH-ZH)"}
    assert "2028-12-25" in days and "2029-01-01" not in days and "2025-12-25" not in days
    assert days["2026-12-24"] == {"active": True, "summary": "Closed"}
    assert days["2027-01-04"] == {"active": True, "summary": "Closed"}
    assert "2026-08-01" not in days  # the National Day special opening wins over the holiday
    assert "2026-12-31" not in days
    assert len(remarks) == 2 and remarks[1].startswith("special day 2026-12-31 opens 06:00-12:00")


def test_special_days_show_in_the_plan(zammad: Any) -> None:
    from dataclasses import replace

    from plugin.model import Window

    policies = load_policies(POLICIES)
    phone = replace(policies.calendar_specs["phone"], special_days={dt.date(2026, 12, 31): (Window(360, 720),)})
    policies = replace(policies, calendar_specs={**policies.calendar_specs, "phone": phone})
    client = ZammadClient(zammad.url, zammad.admin_token)
    current = read_current(client)
    wanted = wanted_objects(policies, endpoint=PUBLIC_URL, signature_token="t", own_user_id=current.own_user_id,
                            today=dt.date(2026, 1, 1))
    calendar = next(w for w in wanted if w.name == "policydesk: phone")
    assert "note" not in calendar.fields  # Zammad's calendars have no note
    assert calendar.remarks[0].startswith("special day 2026-12-31 opens 06:00-12:00")
    rendered = make_plan(wanted, current).render()
    assert "    note: special day 2026-12-31 opens 06:00-12:00: Zammad cannot express it" in rendered
    assert all(w.fields["data_option"][ATTRIBUTE_MARKER] for w in wanted if w.kind == "attribute")


# --------------------------------------------------------------------------- against Zammad's schema


def test_second_sync_without_calendar_notes_makes_no_write_calls(zammad: Any, capsys: Any) -> None:
    assert "note" not in zammad.state.columns("calendars")
    code, out, err = sync(zammad, capsys)
    assert code == 0, err
    assert all("note" not in c for c in zammad.state.all("calendars"))  # dropped, as Zammad drops it
    before = len(writes(zammad))
    code, out, err = sync(zammad, capsys)
    assert (code, out.strip()) == (0, "no changes"), out + err
    code, out, err = sync(zammad, capsys, "--dry-run")
    assert (code, out.strip()) == (0, "no changes"), out + err
    assert len(writes(zammad)) == before


def test_calendars_of_another_user_are_not_policydesks(zammad: Any, capsys: Any) -> None:
    assert sync(zammad, capsys)[0] == 0
    phone = named(zammad, "calendars", "policydesk: phone")
    phone["created_by_id"] = 1  # as if made by hand by the system user
    code, out, err = sync(zammad, capsys, "--dry-run")
    assert code == 1
    assert ('error: calendar "policydesk: phone" exists but was not created by policydesk: left untouched; '
            "rename it or remove it so policydesk can create its own (it was created by user 1") in out


def test_a_masked_signature_token_counts_as_unchanged(zammad: Any, capsys: Any) -> None:
    assert sync(zammad, capsys)[0] == 0
    # Zammad >= 6.5 shows "**********" (can_sensitive_assets.rb, lib/sensitive_params_helper.rb)
    zammad.state.settings["mask_webhook_secrets"] = True
    api_view = ZammadClient(zammad.url, zammad.admin_token).webhooks.find(named(zammad, "webhooks", "policydesk")["id"])
    assert api_view["signature_token"] == "**********"
    before = len(writes(zammad))
    code, out, err = sync(zammad, capsys)
    assert (code, out.strip()) == (0, "no changes"), out + err
    assert len(writes(zammad)) == before
    assert named(zammad, "webhooks", "policydesk")["signature_token"] == WEBHOOK_TOKEN


def test_sync_tells_the_admin_to_restart_zammad_after_new_attributes(zammad: Any, capsys: Any) -> None:
    code, out, err = sync(zammad, capsys, "--dry-run")
    assert "then restart Zammad (new attribute columns)" in out
    code, out, err = sync(zammad, capsys)
    assert code == 0, err
    assert "restart Zammad now" in out and "APP_RESTART_CMD" in out and "systemctl restart zammad" in out
    code, out, err = sync(zammad, capsys)
    assert "restart" not in out  # nothing created: nothing to restart


def test_dry_run_json_is_a_machine_readable_plan(zammad: Any, capsys: Any) -> None:
    import json

    code, out, err = sync(zammad, capsys, "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dry_run"] is True and plan["changed"] is True and plan["restart_needed"] is True
    assert len(plan["actions"]) == 31 and writes(zammad) == []
    webhook = next(a for a in plan["actions"] if a["kind"] == "webhook")
    assert webhook["verb"] == "create" and webhook["fields"]["signature_token"] == "(hidden)"
    assert WEBHOOK_TOKEN not in out
    sla = next(a for a in plan["actions"] if a["name"] == "policydesk 20 pro phone")
    assert sla["fields"]["first_response_time"] == 120
    assert sla["fields"]["calendar_id"] == '<id of calendar "policydesk: phone">'

    assert sync(zammad, capsys)[0] == 0
    code, out, err = sync(zammad, capsys, "--dry-run", "--json")
    assert json.loads(out) == {"dry_run": True, "changed": False, "actions": [], "migrations_needed": False,
                               "restart_needed": False, "notes": [], "warnings": [], "errors": []}


def test_webhook_payload_carries_no_article_body_nor_codes(zammad: Any, capsys: Any) -> None:
    import json

    assert sync(zammad, capsys)[0] == 0
    webhook = named(zammad, "webhooks", "policydesk")
    assert webhook["customized_payload"] is True
    template = json.loads(webhook["custom_payload"])  # Zammad requires valid JSON (app/models/webhook.rb)
    text = webhook["custom_payload"]
    assert "body" not in text and "title" not in text
    codes = [v for v in template["ticket"].values() if "vip_code" in v or "support_code" in v]
    assert codes and all(v.endswith(".present?}") for v in codes)  # whether one was typed, never the code
    assert "preferences" not in text
    assert template["ticket"]["updated_by_id"] == "#{ticket.updated_by_id}"
    assert template["ticket"]["state"] == "#{ticket.state.name}"
    assert template["ticket"]["policydesk_category"] == "#{ticket.policydesk_category}"
    assert template["organization"]["support_plan"] == "#{ticket.organization.support_plan}"
    assert template["policydesk_payload"] == "1"


def test_the_loop_guard_names_the_service_user(zammad: Any, capsys: Any) -> None:
    from zammad_api import Api

    api = Api(zammad.url, zammad.admin_token)
    response = api.post("users", json={"login": "service@example.com", "email": "service@example.com",
                                       "firstname": "policydesk", "roles": ["Agent"]})
    assert response.status_code == 201, response.text
    service_id = response.json()["id"]
    code, out, err = sync(zammad, capsys, "--service-user", "service@example.com")
    assert code == 0, err
    updated = named(zammad, "triggers", "policydesk 20 ticket updated")
    assert updated["condition"]["ticket.updated_by_id"]["value"] == [str(service_id)]
    code, out, err = sync(zammad, capsys, "--service-user", "nobody@example.com")
    assert code == 1 and "--service-user: Zammad has no user 'nobody@example.com'" in err
