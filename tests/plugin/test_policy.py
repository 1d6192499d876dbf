"""Policy loading and validation: good policies load to the right values, bad ones get exact messages.

``tests/plugin/policies/valid/<case>/`` must load. ``tests/plugin/policies/invalid/<case>/`` holds
only what the case breaks -- a patch of one bundled file, a replacement, or a removal (see
``tests/helpers/policy_overlay.py``) -- applied over the bundled ``policies/`` in a temporary
directory, so a case cannot drift from the policies it breaks; and ``expected.txt``: the
exact error lines, with the temporary directory written as the case's own directory
(``tests/plugin/policies/invalid/<case>/plans.yaml:12:7: ...``).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import plugin.calendar
from plugin.model import EscalationStep, Window
from plugin.policy import (
    PolicyError,
    PolicyErrors,
    load_policies,
    parse_duration,
    validate_policies,
)

from policy_overlay import OverlayError, apply_patch, materialise, overlay_files
from support import POLICIES, REPO, zurich

CASES = Path(__file__).resolve().parent / "policies"
INVALID = sorted(p.name for p in (CASES / "invalid").iterdir() if p.is_dir())
VALID = sorted(p.name for p in (CASES / "valid").iterdir() if p.is_dir())
FILES = ("hours.yaml", "plans.yaml", "scope.yaml")


class RecordingCalendar:
    """Stands in for `BusinessCalendar` to see exactly what the loader passes it."""

    def __init__(self, timezone, weekly, *, closed=(), special_days=None, name=""):
        self.timezone = timezone
        self.weekly = weekly
        self.closed = closed
        self.special_days = special_days
        self.name = name


@pytest.fixture
def recorded(monkeypatch):
    monkeypatch.setattr(plugin.calendar, "BusinessCalendar", RecordingCalendar)


def _messages(directory: str) -> str:
    return "".join(f"{error}\n" for error in validate_policies(directory))


# --------------------------------------------------------------------------- parse_duration


@pytest.mark.parametrize("text, minutes", [("4h", 240), ("90m", 90), ("1h30m", 90), ("0h45m", 45), ("100h", 6000)])
def test_parse_duration(text, minutes):
    assert parse_duration(text) == minutes


@pytest.mark.parametrize("text", ["", "4", "4 hours", "1.5h", "30m1h", "h", "m", " 4h", "-1h", None, 4])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


# --------------------------------------------------------------------------- the bundled policies


def test_bundled_policies_load_with_the_seed_values(recorded):
    policies = load_policies(POLICIES)
    assert policies.source == str(POLICIES)
    assert policies.default_timezone == "Europe/Zurich"
    assert policies.default_plan == "standard"
    assert list(policies.plans) == ["standard", "plus", "pro", "enterprise"]
    minutes = {name: plan.first_response_minutes for name, plan in policies.plans.items()}
    assert minutes == {"standard": None, "plus": 240, "pro": 120, "enterprise": 60}
    assert [p.rank for p in policies.plans.values()] == [0, 1, 2, 3]
    pro, enterprise = policies.plans["pro"], policies.plans["enterprise"]
    assert pro.emergency_24_7 and not policies.plans["plus"].emergency_24_7
    assert pro.account_manager_roles == ("account_manager",)
    assert enterprise.account_manager_roles == ("account_manager", "technical_account_manager")
    assert enterprise.customised_advice and not pro.customised_advice
    assert policies.plans["plus"].open_to_partners
    assert [p.vip_code for p in policies.plans.values()] == [False, True, True, True]
    assert [p.minimum_commitment_months for p in policies.plans.values()] == [0, 6, 6, 6]
    assert pro.channel_calendars["phone"] == "phone" and pro.channel_calendars["whatsapp"] == "email"
    assert pro.default_calendar == "email" and pro.priority == "2 normal"
    assert pro.escalation == (
        EscalationStep("warning", 75.0, ("sla:warning",), None, ("owner", "account_manager"), "warning"),
        EscalationStep("breach", 100.0, ("sla:breached",), "3 high", ("owner", "account_manager",
                                                                        "technical_account_manager"), "breach"),
    )
    assert policies.roles["technical_account_manager"].calendar == "account_manager"
    assert policies.roles["account_manager"].title == "Account manager"
    assert policies.roles["account_manager"].pool[0] == "ana.keller@provider.example"
    assert policies.roles["account_manager"].capacity == 40
    assert policies.roles["technical_account_manager"].digest == "0 9 * * mon-fri"
    assert policies.plan_changes.upgrade == "immediate" and policies.plan_changes.downgrade == "never"
    assert policies.plan_changes.cancel == "after_commitment"
    assert policies.escalation_sweep == "* * * * *"
    scope = policies.scope
    assert scope.emergency_categories == {"infrastructure"} and scope.emergency_languages == {"fr", "en"}
    assert scope.emergency_calendar == "emergency" and scope.emergency_priority == "3 high"
    assert set(scope.out_of_scope) == {"third-party-application", "webmastering"}
    assert scope.out_of_scope["webmastering"].referral.startswith("Building or maintaining websites")
    assert "infrastructure" in scope.categories
    assert set(policies.documents) == set(FILES)
    assert policies.documents["plans.yaml"]["plans"]["pro"]["first_response"] == "2h"

    calendars = policies.calendars
    assert list(calendars) == ["phone", "email", "account_manager", "emergency"]
    phone = calendars["phone"]
    assert (phone.name, phone.timezone) == ("phone", "Europe/Zurich")
    assert phone.weekly == {day: (Window(360, 1140),) for day in range(5)}
    assert calendars["email"].weekly == {day: (Window(360, 1380),) for day in range(7)}
    assert calendars["account_manager"].weekly == {day: (Window(540, 1080),) for day in range(5)}
    assert calendars["emergency"].weekly == {day: (Window(0, 1440),) for day in range(7)}
    assert phone.special_days == {}
    assert not phone.closed(dt.date(2026, 12, 25))  # the seed names no holidays


def test_bundled_calendars_are_real_business_calendars(bundled_policies):
    phone = bundled_policies.calendars["phone"]
    assert isinstance(phone, plugin.calendar.BusinessCalendar)
    assert phone.is_open(zurich("2026-11-27 18:59"))  # Friday
    assert not phone.is_open(zurich("2026-11-27 19:00"))
    assert not phone.is_open(zurich("2026-11-28 10:00"))  # Saturday
    assert bundled_policies.calendars["email"].is_open(zurich("2026-11-28 22:00"))
    assert bundled_policies.calendars["emergency"].is_open(zurich("2026-11-29 03:00"))


def test_bundled_policies_validate_clean():
    assert validate_policies(POLICIES) == []
    assert validate_policies(str(POLICIES) + "/") == []


# --------------------------------------------------------------------------- the other valid examples


def test_every_valid_example_loads():
    assert "holidays-special-days" in VALID
    for case in VALID:
        assert validate_policies(CASES / "valid" / case) == [], case
        load_policies(CASES / "valid" / case)


def test_holidays_special_days_overrides_and_24_00(recorded):
    policies = load_policies(CASES / "valid" / "holidays-special-days")
    phone = policies.calendars["phone"]
    assert phone.weekly == {
        **{day: (Window(360, 720), Window(780, 1140)) for day in range(4)},
        4: (Window(360, 1020),),
    }
    assert phone.special_days == {dt.date(2026, 12, 27): (Window(600, 840),), dt.date(2026, 12, 28): ()}
    closed = phone.closed
    assert closed(dt.date(2026, 12, 24)) and closed(dt.date(2026, 12, 31))  # listed (unquoted and quoted)
    assert closed(dt.date(2026, 12, 25))  # Christmas, a Swiss public holiday
    assert closed(dt.date(2026, 12, 26))  # St Stephen's Day: a Zurich holiday, not a national one
    assert closed(dt.date(2031, 8, 1))  # Swiss National Day, years ahead (holidays expand lazily)
    assert not closed(dt.date(2026, 12, 23)) and not closed(dt.date(2026, 12, 29))

    email = policies.calendars["email"]
    assert email.timezone == "Europe/London"
    assert email.weekly[0] == (Window(360, 1440),)
    assert email.weekly[6] == (Window(0, 120), Window(480, 1440))
    assert policies.calendars["emergency"].weekly == {day: (Window(0, 1440),) for day in range(7)}
    assert policies.calendars["account_manager"].timezone == "Europe/Zurich"

    premium, basic = policies.plans["premium"], policies.plans["basic"]
    assert premium.first_response_minutes == 90 and basic.first_response_minutes is None
    assert premium.channel_calendars == {"phone": "phone", "email": "email", "web": "phone", "chat": "emergency"}
    assert basic.channel_calendars == {"phone": "phone", "email": "email", "web": "email"}
    assert premium.default_calendar == "phone" and basic.default_calendar == "email"
    assert premium.escalation == (EscalationStep("heads-up", 33.5, (), None, ("account_manager",)),)
    assert [s.name for s in basic.escalation] == ["warning", "breach"]
    assert basic.escalation[1].priority == "3 high"
    # optional keys take their documented defaults
    assert not basic.emergency_24_7 and basic.account_manager_roles == () and not basic.vip_code
    assert basic.minimum_commitment_months == 0 and premium.minimum_commitment_months == 12
    assert policies.escalation_sweep == "*/5 * * * *"
    manager = policies.roles["account_manager"]
    assert manager.pool == ("ana@provider.example", "ben@provider.example")
    assert (manager.capacity, manager.digest) == (40, "0 9 * * mon-fri")
    assert policies.plan_changes.downgrade == "after_commitment"


def test_holidays_and_special_days_in_the_real_calendar():
    phone = load_policies(CASES / "valid" / "holidays-special-days").calendars["phone"]
    assert phone.is_open(zurich("2026-12-22 12:59")) is False  # lunch break
    assert phone.is_open(zurich("2026-12-22 13:00"))
    assert not phone.is_open(zurich("2026-12-24 10:00"))  # closed date
    assert not phone.is_open(zurich("2026-12-25 10:00"))  # public holiday
    assert phone.is_open(zurich("2026-12-27 10:00"))  # a Sunday opened as a special day
    assert not phone.is_open(zurich("2026-12-28 10:00"))  # a Monday closed as a special day
    assert phone.is_open(zurich("2026-12-29 10:00"))


# --------------------------------------------------------------------------- invalid examples: exact messages


REQUIRED_CASES = {
    "unquoted-time", "close-before-open", "unknown-calendar-in-plan", "unknown-role", "duplicate-key",
    "additional-property", "bad-duration", "wrong-type", "empty-file", "yaml-syntax-error", "missing-required-key",
    "unknown-time-zone", "unknown-holiday-country", "overlapping-windows", "several-errors-in-one-file",
    "invalid-date",
}


def test_the_required_invalid_cases_exist():
    assert REQUIRED_CASES <= set(INVALID)


def _case_messages(case: str, tmp_path: Path) -> tuple[str, str, Path]:
    """(what validate says, what load_policies raises) for a case, paths written as the case's."""
    directory = materialise(CASES / "invalid" / case, tmp_path / case)
    shown = f"tests/plugin/policies/invalid/{case}"
    validated = _messages(str(directory)).replace(str(directory), shown)
    with pytest.raises(PolicyErrors) as raised:
        load_policies(directory)
    loaded = "".join(f"{e}\n" for e in raised.value.errors).replace(str(directory), shown)
    assert str(raised.value).replace(str(directory), shown) == loaded.rstrip("\n")
    return validated, loaded, directory


@pytest.mark.parametrize("case", INVALID)
def test_invalid_policies_give_exactly_the_expected_errors(case, tmp_path):
    expected = (CASES / "invalid" / case / "expected.txt").read_text(encoding="utf-8")
    assert expected.strip(), "an invalid case must expect at least one error"
    validated, loaded, _ = _case_messages(case, tmp_path)
    assert validated == expected
    assert loaded == expected


@pytest.mark.parametrize("case", INVALID)
def test_invalid_cases_hold_only_what_they_break(case, tmp_path):
    directory = CASES / "invalid" / case
    overlays = overlay_files(directory)
    allowed = {"expected.txt"} | {name + suffix for name in FILES for suffix in ("", ".patch", ".removed")}
    assert {p.name for p in directory.iterdir()} <= allowed
    assert overlays, "a case overlays at least one policy file"
    built = materialise(directory, tmp_path / case)
    for name, kind in overlays.items():
        if kind == "remove":
            assert not (built / name).exists()
        else:  # a patch or replacement that changes nothing would test the bundled file
            assert (built / name).read_text() != (POLICIES / name).read_text(), name


def test_a_patch_that_no_longer_fits_fails_loudly():
    patch = "--- a/plans.yaml\n+++ b/plans.yaml\n@@ -1,2 +1,2 @@\n default_plan: standard\n-no_such_line: 1\n+x: 2\n"
    with pytest.raises(OverlayError, match="found 0 times"):
        apply_patch((POLICIES / "plans.yaml").read_text(), patch, "case/plans.yaml")


def test_a_patch_still_fits_when_a_nearby_comment_changed():
    text = "# old comment\nsweep: a\nkeep: 1\n"
    patch = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n # old comment\n-sweep: a\n+sweep: b\n keep: 1\n"
    assert apply_patch(text.replace("old", "new"), patch) == "# new comment\nsweep: b\nkeep: 1\n"


def test_the_expected_file_points_at_real_lines(tmp_path):
    # a message's line:column must point into the overlaid file (guards hand-edited expected.txt files)
    for case in INVALID:
        built = materialise(CASES / "invalid" / case, tmp_path / case)
        for line in (CASES / "invalid" / case / "expected.txt").read_text().splitlines():
            file, number, column = line.split(":")[:3]
            path = built / Path(file).name
            if path.exists():
                lines = path.read_text().splitlines() or [""]
                assert 1 <= int(number) <= len(lines), line
                assert 1 <= int(column) <= len(lines[int(number) - 1]) + 1, line


# --------------------------------------------------------------------------- errors as values


def test_policy_error_fields_and_format():
    error = PolicyError("policies/plans.yaml", 12, 7, "$.plans.pro.first_response", 'expected a duration like "2h"')
    assert (error.file, error.line, error.column) == ("policies/plans.yaml", 12, 7)
    assert error.path == "$.plans.pro.first_response" and error.message == 'expected a duration like "2h"'
    assert str(error) == 'policies/plans.yaml:12:7: $.plans.pro.first_response: expected a duration like "2h"'


def test_errors_are_sorted_by_file_then_line(tmp_path):
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    _replace(tmp_path / "scope.yaml", "calendar: emergency", "calendar: nowhere")
    _replace(tmp_path / "plans.yaml", "rank: 3", "rank: high")
    _replace(tmp_path / "plans.yaml", "default_plan: standard", "default_plan: gold")
    _replace(tmp_path / "hours.yaml", "timezone: Europe/Zurich", "timezone: Mars/Olympus")
    errors = validate_policies(tmp_path)
    assert [(Path(e.file).name, e.line) for e in errors] == [
        ("hours.yaml", _line_of(tmp_path / "hours.yaml", "timezone: Mars/Olympus")),
        ("plans.yaml", _line_of(tmp_path / "plans.yaml", "default_plan: gold")),
        ("plans.yaml", _line_of(tmp_path / "plans.yaml", "rank: high")),
        ("scope.yaml", _line_of(tmp_path / "scope.yaml", "calendar: nowhere"))]


def test_file_path_is_reported_as_given(tmp_path, monkeypatch):
    shutil.copytree(POLICIES, tmp_path / "policies")
    _replace(tmp_path / "policies" / "plans.yaml", "first_response: 2h", "first_response: soon")
    monkeypatch.chdir(tmp_path)
    (error,) = validate_policies("policies")
    line = _line_of(tmp_path / "policies" / "plans.yaml", "first_response: soon")
    assert str(error).startswith(f"policies/plans.yaml:{line}:21: $.plans.pro.first_response: expected a duration")


def test_missing_directory_is_an_error_per_file(tmp_path):
    errors = validate_policies(tmp_path / "nowhere")
    assert [str(e) for e in errors] == [
        f"{tmp_path / 'nowhere' / name}:1:1: $: file not found (there is no directory {tmp_path / 'nowhere'})"
        for name in FILES
    ]


def test_not_utf8_is_an_error_with_its_line(tmp_path):
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    (tmp_path / "scope.yaml").write_bytes(b"categories:\n  other: caf\xe9\n")
    (error,) = validate_policies(tmp_path)
    assert (error.line, error.column, error.message) == (2, 13, "not UTF-8 text; save the file as UTF-8")


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("rank: 2\n", "rank: 2\n    rank: 5\n", 'duplicate key "rank" (first defined on line {line of rank: 2})'),
        ("first_response: 2h", "first_response: 2h0m", None),
        ("first_response: 2h", "first_response: 0m", "must be more than 0 minutes; use null for no guarantee"),
        ("first_response: 2h", "first_response: 99999h", "at most 8784h (a year of round-the-clock time); got 99999h"),
        ("first_response: 2h", "first_response:", None),  # empty is null: no guarantee, as documented
        ("    title: Pro support", "    title:", "expected a text; got nothing (the value is empty)"),
        ("    title: Pro support", "    title: 2026", 'expected a text; YAML read 2026 as the number 2026 — put it in '
                                                    'quotes: "2026"'),
        ("      at: 75%", "      at: 75", "expected a percentage like 75%; got the number 75 — write it as 75%"),
        ("      at: 75%", "      at: 0%", "must be more than 0%"),
        ("    digest: \"0 9 * * mon-fri\"\n  technical", "    digest: at nine\n  technical",
         '"at nine" is not a cron schedule; expected five fields like "0 9 * * mon-fri"'),
        ("    capacity: 40\n", "    capacity: 0\n",
         "expected at least 1; got the number 0"),
        ("    - name: breach", "    - name: warning", 'step "warning" is already on the ladder (line {line of - name: warning})'),
        ("notify: [owner, account_manager]", "notify: [owner, account_manager, account_manager]",
         '"account_manager" is listed twice'),
        ("plans:\n  standard:", "plans:\n  <<: 5\n  standard:", "<< must merge a mapping or a list of mappings"),
        ("escalation:\n", "escalation: !include escalation.yaml\nx:\n",
         "unsupported YAML tag !include; policy files are plain YAML"),
        ("notify: [owner, account_manager]", "notify: [owner, \"group:\"]", 'expected a group name after "group:"'),
        ("notify: [owner, account_manager]", "notify: [owner, \"group:Support leads\"]", None),
        ("notify: [owner, account_manager]", "notify: [ownr]",
         'unknown role "ownr"; the roles in plans.yaml are: account_manager, technical_account_manager'),
        ("  urgent: [emergency]", "  urgent: [emergency, breech]",
         'unknown "breech" (did you mean "breach"?); expected emergency or a step id: emergency, breach, warning'),
        ("  urgent: [emergency]", "  urgent: [emergency, breach]", None),
        ("  pause_states: zammad", "  pause_states: [pending reminder]", None),
        ("  pause_states: zammad", "  pause_states: all",
         "expected zammad, or a list of state names like [pending reminder, pending close]; got \"all\""),
        ("      id: breach", "      id: Breach!",
         'expected an identifier like "breach" (lower-case letters, digits, _ . -); got "Breach!"'),
    ],
)
def test_single_problems_in_plans(tmp_path, old, new, message):
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    if message and "{line of " in message:  # line numbers of the bundled file, found rather than hard-coded
        needle = message.split("{line of ", 1)[1].split("}", 1)[0]
        message = message.replace("{line of " + needle + "}", str(_line_of(tmp_path / "plans.yaml", needle)))
    _replace(tmp_path / "plans.yaml", old, new)
    messages = [e.message for e in validate_policies(tmp_path)]
    assert (message in messages) if message else messages == []


@pytest.mark.parametrize(
    "old, new, message",
    [
        ('{open: "09:00", close: "18:00"}', '{open: "9:00", close: "18:00"}',
         'expected a quoted time like "08:00"; got "9:00" — write "09:00"'),
        ('{open: "06:00", close: "23:00"}', '{open: "06:00", close: 24:00}',
         'expected a quoted time like "18:00" (or "24:00" for midnight); YAML read 24:00 as the number 1440 '
         '(base 60) — put the time in quotes: "24:00"'),
        ('{open: "06:00", close: "23:00"}', '{open: "06:00", close: "24:00"}', None),
        ('{open: "06:00", close: "23:00"}', '{open: "00:00", close: "24:00"}', None),
        ('{open: "06:00", close: "19:00"}', '{open: "06:00", close: "06:00"}',
         'closes at "06:00", when it opens at "06:00"; a window must close after it opens on the same day '
         '(for a window past midnight, close at "24:00" and open again at "00:00")'),
        ('{open: "06:00", close: "19:00"}', '{open: "06:00", close: "12:00"}\n        - {open: "12:00", close: "19:00"}',
         None),
        ("      mon-sun:", "      sat-sun: []\n      mon-fri:", None),
        ("      mon-sun:", "      mon-sun: []\n      sat:", 'day sat already covered by "mon-sun" on line 31'),
        ('    weekly: "24/7"', '    weekly: "24/7"\n    holidays: [{country: CH, subdivision: GE}]', None),
        ('    weekly: "24/7"', '    weekly: "24/7"\n    special_days: [{date: "2026-12-31", windows: []}, '
                               '{date: "2026-12-31", windows: []}]', "special day 2026-12-31 is already given on line 43"),
        ('    weekly: "24/7"', "    weekly: {}", 'calendar "emergency" is never open: it has no opening window on any day'),
        ('    weekly: "24/7"', '    weekly: {}\n    special_days: [{date: "2026-12-31", windows: [{open: "06:00", '
                               'close: "12:00"}]}]', None),
        ("timezone: Europe/Zurich", "timezone: Europe/Zurich\ntimezone: UTC",
         'duplicate key "timezone" (first defined on line 19)'),
    ],
)
def test_single_problems_in_hours(tmp_path, old, new, message):
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    _replace(tmp_path / "hours.yaml", old, new)
    messages = [e.message for e in validate_policies(tmp_path)]
    assert (message in messages) if message else messages == []


def test_yaml_merge_keys_and_anchors_work(tmp_path, recorded):
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "plans.yaml").read_text()
    text = text.replace("  pro:\n    title: Pro support\n", "  pro: &pro\n    title: Pro support\n")
    text += "\n  pro-partner:\n    <<: *pro\n    title: Pro for partners\n    rank: 4\n    open_to_partners: true\n"
    (tmp_path / "plans.yaml").write_text(text)
    policies = load_policies(tmp_path)
    partner = policies.plans["pro-partner"]
    assert (partner.title, partner.rank, partner.open_to_partners) == ("Pro for partners", 4, True)
    assert partner.first_response_minutes == 120 and partner.account_manager_roles == ("account_manager",)


def test_validation_never_raises_on_damaged_files(tmp_path):
    # every line deleted in turn, and every value replaced by a list, a mapping, a number and null
    for name in FILES:
        original = (POLICIES / name).read_text().splitlines(keepends=True)
        variants = [original[:i] + original[i + 1:] for i in range(len(original))]
        for i, line in enumerate(original):
            head, sep, _ = line.partition(": ")
            if sep and not head.lstrip().startswith("#"):
                for value in ("[1]", "{a: 1}", "7", "~", "no"):
                    variants.append(original[:i] + [f"{head}: {value}\n"] + original[i + 1:])
        for lines in variants:
            shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
            (tmp_path / name).write_text("".join(lines))
            for error in validate_policies(tmp_path):
                assert isinstance(error, PolicyError) and error.line >= 1 and error.column >= 1


# --------------------------------------------------------------------------- the schemas


@pytest.mark.parametrize("name", FILES)
def test_schemas_are_valid_documented_draft_2020_12(name):
    schema = json.loads((POLICIES / name.replace(".yaml", ".schema.json")).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    for key, prop in schema["properties"].items():
        assert prop.get("description") or prop.get("$ref"), key


def _line_of(path: Path, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("  category: advice", "  category: advise",
         'unknown category "advise" (did you mean "advice"?); the categories are: infrastructure, hosting, email, '
         "domain, storage, billing, third-party-application, webmastering, advice, other"),
        ("  owner_role: technical_account_manager", "  owner_role: tam",
         'unknown role "tam"; the roles in plans.yaml are: account_manager, technical_account_manager'),
        ("    billing: {group: Billing}", "    biling: {group: Billing}",
         'unknown category "biling" (did you mean "billing"?); the categories are: infrastructure, hosting, email, '
         "domain, storage, billing, third-party-application, webmastering, advice, other"),
        ("    plus: {group: Premium support}", "    platinum: {group: Premium support}",
         'unknown plan "platinum"; the plans in plans.yaml are: standard, plus, pro, enterprise'),
        ("  channels: [phone]", "  channels: [phone, email]", None),
        ("    it:\n", "    italian:\n", None),
    ],
)
def test_single_problems_in_scope(tmp_path, old, new, message):
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    _replace(tmp_path / "scope.yaml", old, new)
    messages = [e.message for e in validate_policies(tmp_path)]
    if new.startswith("    italian"):  # a language key must be a language code
        assert any("italian" in m for m in messages), messages
        return
    assert (message in messages) if message else messages == []


def test_the_contract_keys_load(bundled_policies):
    assert bundled_policies.scope.emergency_channels == {"phone"}
    assert set(bundled_policies.scope.emergency_replies) == {"en", "fr", "de", "it"}
    assert bundled_policies.scope.advice.owner_role == "technical_account_manager"
    assert bundled_policies.routing.emergency.group == "Infrastructure"
    assert bundled_policies.urgent == {"emergency"}
    assert [s.id for s in bundled_policies.plans["pro"].escalation] == ["warning", "breach"]
    assert len(bundled_policies.version) == 12
    assert bundled_policies.calendar_specs["phone"].weekly[0][0] == Window(360, 1140)


def test_hand_edits_default_to_revert_and_may_warn(tmp_path, bundled_policies):
    assert bundled_policies.plan_changes.hand_edits == "revert"
    shutil.copytree(POLICIES, tmp_path, dirs_exist_ok=True)
    _replace(tmp_path / "plans.yaml", "  hand_edits: revert", "  hand_edits: warn")
    assert load_policies(tmp_path).plan_changes.hand_edits == "warn"
    _replace(tmp_path / "plans.yaml", "  hand_edits: warn", "  hand_edits: ignore")
    assert any("hand_edits" in e.path for e in validate_policies(tmp_path))
