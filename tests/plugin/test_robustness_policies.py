"""Broken policies never crash anything: they give valid policies or errors with file:line:column.

Hypothesis applies mutation operators to the text of the bundled, valid policy files --
deleted lines and keys, values of the wrong type, unquoted times (YAML 1.1 reads 06:00 as
the number 360), unknown calendars, roles and plans, duplicated keys, empty files,
non-YAML, tabs, random byte flips and truncations, non-UTF-8 bytes -- and checks that
`load_policies` either returns policies (which the engine then evaluates without an
error) or raises `PolicyErrors`, every error of which names an existing file, a line
inside it and a column; never any other exception.

Then a running service given a broken policy on reload keeps its last good policies and
reports the errors: the `PolicyHolder` directly, and the real `policydesk serve` process,
whose ``/healthz`` shows ``policy_errors`` while it keeps acknowledging webhooks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from plugin.engine import Engine
from plugin.manager import get_plugin_manager
from plugin.model import Organization, Ticket
from plugin.policy import FILES, PolicyError, PolicyErrors, load_policies

from support import REPO
POLICIES = REPO / "policies"
ORIGINAL = {name: (POLICIES / name).read_bytes() for name in FILES}
ERROR_FORMAT = re.compile(r"^(?P<file>.+?):(?P<line>[0-9]+):(?P<column>[0-9]+): (?P<path>\$\S*): (?P<message>.+)$", re.S)
PM = get_plugin_manager()

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

WRONG_SCALARS = ["[1, 2]", "{a: 1}", "yes", "no", "12", "-1", "1.5", "null", "~", '""', '"text"', "2026-01-01",
                 "06:00", "24:00", "'25:61'", "!!binary aGVsbG8=", "*undefined_alias", "&anchor 3", ">-", "|",
                 "{open: 06:00, close: 19:00}", '"4 hours"', "4h", "0m", "999999h", "-2h", "100%", "1e400",
                 ".inf", ".nan", "0x1F", "[]", "{}", "'@@@'", "!!python/object:os.system ls"]
UNKNOWN_NAMES = ["nocalendar", "Phone", "phone ", "emergencyy", "", "24/7", "mon-fri", "standard", "Europe/Nowhere",
                 "account_managerx", "infrastructure2"]
NON_YAML = [b"", b"\n\n", b"# only a comment\n", b"---\n", b"...\n", b"[", b"{", b"key: [unclosed\n", b"\t- tab: 1\n",
            b"- a\nb: c\n", b"a: b: c\n", b"\x00\x01\x02", b"\xff\xfe\x00", b"%YAML 9.9\n---\na: 1\n", b"!!set {a, b}\n",
            b"&a [*a]\n", b"a: &x 1\nb: *y\n", b"<?xml version='1.0'?><plans/>", b'{"json": true}', b"null\n",
            b"42\n", b"- just\n- a list\n", "caf\u00e9: \u2603\n".encode(), b"\xef\xbb\xbfplans: {}\n",
            b"? complex\n: key\n", b"a: !!int nope\n", b"a: 1\na: 2\n", b"\xe9t\xe9: 1\n"]


# --------------------------------------------------------------------------- mutation operators


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _value_lines(lines: list[str]) -> list[int]:
    """Lines with ``key: value`` (a scalar after the colon), comments excluded."""
    return [i for i, line in enumerate(lines) if re.match(r"^\s*-?\s*[A-Za-z0-9_/-]+:\s+\S", line)
            and not line.lstrip().startswith("#")]


def _key_lines(lines: list[str]) -> list[int]:
    return [i for i, line in enumerate(lines) if re.match(r"^\s*-?\s*[A-Za-z0-9_/-]+:", line)]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(file name, mutated content, operator name)."""
    name = draw(st.sampled_from(FILES))
    raw = ORIGINAL[name]
    text = raw.decode()
    lines = _lines(text)
    op = draw(st.sampled_from(["delete-line", "delete-block", "wrong-type", "unquote-times", "unknown-name",
                               "duplicate-key", "empty", "non-yaml", "byte-flip", "truncate", "indent",
                               "swap-lines", "non-utf8", "several"]))
    rounds = draw(st.integers(2, 4)) if op == "several" else 1
    ops = [draw(st.sampled_from(["delete-line", "wrong-type", "unquote-times", "unknown-name", "duplicate-key",
                                 "byte-flip", "indent"])) for _ in range(rounds)] if op == "several" else [op]
    content = raw
    for each in ops:
        text = content.decode("utf-8", "surrogateescape")
        lines = _lines(text)
        keys, values = _key_lines(lines), _value_lines(lines)
        if each == "delete-line":
            i = draw(st.sampled_from(keys))
            del lines[i]
        elif each == "delete-block":  # a key and everything indented under it
            i = draw(st.sampled_from(keys))
            indent = len(lines[i]) - len(lines[i].lstrip())
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                j += 1
            del lines[i:j]
        elif each == "wrong-type":
            i = draw(st.sampled_from(values))
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.sampled_from(WRONG_SCALARS))}\n"
        elif each == "unquote-times":
            text = re.sub(r'"([0-9]{2}:[0-9]{2})"', lambda m: m.group(1) if draw(st.booleans()) else m.group(0), text)
            lines = _lines(text)
        elif each == "unknown-name":
            i = draw(st.sampled_from(values))
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {json.dumps(draw(st.sampled_from(UNKNOWN_NAMES)))}\n"
        elif each == "duplicate-key":
            i = draw(st.sampled_from(keys))
            lines.insert(i + 1, lines[i] if lines[i].endswith("\n") else lines[i] + "\n")
        elif each == "indent":
            i = draw(st.sampled_from(keys))
            lines[i] = draw(st.sampled_from([" ", "   ", "\t", ""])) + lines[i].lstrip(draw(st.sampled_from([" ", ""])))
        elif each == "swap-lines":
            i, j = draw(st.sampled_from(keys)), draw(st.sampled_from(keys))
            lines[i], lines[j] = lines[j], lines[i]
        if each in ("empty", "non-yaml", "byte-flip", "truncate", "non-utf8"):
            data = bytearray(content)
            if each == "empty":
                content = b""
            elif each == "non-yaml":
                content = draw(st.one_of(st.sampled_from(NON_YAML), st.binary(max_size=200)))
            elif each == "byte-flip":
                for _ in range(draw(st.integers(1, 8))):
                    at = draw(st.integers(0, len(data) - 1))
                    data[at] = draw(st.integers(0, 255))
                content = bytes(data)
            elif each == "truncate":
                content = content[: draw(st.integers(0, len(content) - 1))]
            else:
                at = draw(st.integers(0, len(data)))
                content = content[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80"])) + content[at:]
        else:
            content = "".join(lines).encode("utf-8", "surrogateescape")
    return name, content, op


# --------------------------------------------------------------------------- checks


def check_errors(errors: list[PolicyError], directory: Path) -> None:
    assert errors, "PolicyErrors without any error"
    for error in errors:
        text = str(error)
        match = ERROR_FORMAT.match(text)
        assert match, f"not file:line:column: path: message -> {text!r}"
        file = Path(match["file"])
        assert file.parent == directory and file.name in FILES, text
        line, column = int(match["line"]), int(match["column"])
        assert line >= 1 and column >= 1, text
        if file.is_file():
            content = file.read_bytes()
            assert line <= content.count(b"\n") + 2, f"line {line} beyond the end of {file.name}: {text}"
        assert "Traceback" not in text and match["message"].strip(), text


def evaluate_some(policies) -> None:
    """Valid policies must also work: a handful of requests through every built-in hook."""
    engine = Engine(policies, PM)
    created = dt.datetime(2026, 11, 27, 21, 0, tzinfo=dt.timezone.utc)
    plans = [None, *policies.plans]
    for n, (plan, channel, category, lang, emergency) in enumerate([
        (plans[i % len(plans)], ch, cat, lang, em)
        for i, (ch, cat, lang, em) in enumerate([("email", "infrastructure", "en", True), ("phone", "hosting", "de", False),
                                                  ("web", "webmastering", "fr", True), ("fax", None, None, False)])
    ]):
        ticket = Ticket(id=n, channel=channel, created_at=created, category=category, language=lang,
                        emergency_requested=emergency)
        for p in plans:
            engine.evaluate(ticket, Organization(id=1, name="Org", plan=p), created + dt.timedelta(hours=5))


@SETTINGS
@given(mutation=mutated())
def test_mutated_policies_give_policies_or_located_errors(mutation):
    name, content, op = mutation
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for file, original in ORIGINAL.items():
            (directory / file).write_bytes(content if file == name else original)
        try:
            policies = load_policies(directory)
        except PolicyErrors as errors:
            event(f"{op}: errors")
            check_errors(errors.errors, directory)
            return
        event(f"{op}: valid")
        evaluate_some(policies)


@pytest.mark.parametrize("name", FILES)
def test_missing_and_unreadable_files_are_located_errors(name, tmp_path):
    for file, original in ORIGINAL.items():
        (tmp_path / file).write_bytes(original)
    (tmp_path / name).unlink()
    with pytest.raises(PolicyErrors) as missing:
        load_policies(tmp_path)
    check_errors(missing.value.errors, tmp_path)
    (tmp_path / name).mkdir()  # a directory where the file should be
    with pytest.raises(PolicyErrors) as unreadable:
        load_policies(tmp_path)
    check_errors(unreadable.value.errors, tmp_path)


# --------------------------------------------------------------------------- a running service


def _copy_policies(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for file, original in ORIGINAL.items():
        (target / file).write_bytes(original)
    return target


def _write(path: Path, content: bytes) -> None:
    """Replace a policy file so that the holder sees the change (size or mtime differ)."""
    stat = path.stat()
    path.write_bytes(content)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


BROKEN = [
    ("plans.yaml", lambda t: t.replace("first_response: 4h", "first_response: 4 hours", 1)),
    ("hours.yaml", lambda t: t.replace('"19:00"', "19:00", 1)),  # YAML 1.1: the number 1140
    ("plans.yaml", lambda t: t.replace("  phone: phone", "  phone: phones", 1)),
    ("scope.yaml", lambda t: ""),
    ("hours.yaml", lambda t: t + "\ncalendars: {}\n"),
    ("plans.yaml", lambda t: t[: len(t) // 2] + "\x00\x01"),
]


@pytest.mark.parametrize("file,breakage", BROKEN, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BROKEN)])
def test_policy_holder_keeps_the_last_good_policies_and_reports_errors(tmp_path, caplog, file, breakage):
    from integrations.service.policies import PolicyHolder

    directory = _copy_policies(tmp_path / "policies")
    holder = PolicyHolder(str(directory))
    good_engine, good_policies = holder.engine, holder.policies
    path = directory / file
    original = path.read_bytes()
    broken = breakage(original.decode()).encode()
    assert broken != original
    _write(path, broken)
    assert holder.reload_if_changed() is False
    assert holder.engine is good_engine and holder.policies is good_policies
    assert holder.errors
    for error in holder.errors:
        assert ERROR_FORMAT.match(error) and error.startswith(str(directory) + os.sep), error
    assert any(error.startswith(str(path)) for error in holder.errors), holder.errors
    assert "keeping the last good policies" in caplog.text
    evaluate_some(holder.policies)  # still deciding on the last good version
    assert holder.reload_if_changed() is False  # unchanged since: nothing to do, errors kept
    assert holder.errors
    _write(path, original)  # fixed
    assert holder.reload_if_changed() is True
    assert holder.errors == [] and holder.engine is not good_engine


def test_served_process_reports_policy_errors_on_healthz_and_keeps_serving(tmp_path):
    from service_harness import ServiceProcess

    directory = _copy_policies(tmp_path / "policies")
    service = ServiceProcess("http://127.0.0.1:9", f"sqlite:///{tmp_path / 'svc.db'}", tmp_path / "service.log",
                             policies=directory, POLICYDESK_WORKERS="1").start()
    try:
        plans = directory / "plans.yaml"
        original = plans.read_bytes()
        _write(plans, original.replace(b"first_response: 2h", b"first_response: two hours", 1))

        def health() -> dict:
            return requests.get(service.url + "/healthz", timeout=5).json()

        deadline = time.monotonic() + 15
        while "policy_errors" not in (body := health()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert body.get("policies") == "last good version in use", body
        assert any(re.match(rf"^{re.escape(str(plans))}:\d+:\d+: \$\.plans\.", e) for e in body["policy_errors"]), body
        answer = service.post_zammad({"ticket": {"id": 1}, "article": {}}, delivery=uuid.uuid4().hex)
        assert answer.status_code == 202, answer.text
        _write(plans, original)
        deadline = time.monotonic() + 15
        while "policy_errors" in (body := health()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert body == {"status": "ok"}, body
        assert "Traceback" not in service.log()
    finally:
        service.stop()
