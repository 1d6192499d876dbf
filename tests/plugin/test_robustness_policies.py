"""Broken policies never crash anything: they give valid policies or errors with file:line:column.

Hypothesis applies mutation operators to the text of the bundled, valid policy files --
deleted lines and keys, values of the wrong type, unquoted times (YAML 1.1 reads 06:00 as
the number 360), unknown calendars, roles and plans, duplicated keys, empty files,
non-YAML, tabs, random byte flips and truncations, non-UTF-8 bytes -- and checks that
`load_policies` either returns policies (which the engine then evaluates without an
error) or raises `PolicyErrors`, every error of which names an existing file, a line
inside it and a column; never any other exception.

Hostile files -- a 4 KB "billion laughs" alias bomb, nesting 600-1000 deep, hundreds of
aliases, a NUL byte, YAML 1.1 octal, absurd numbers -- are refused with a located error,
each in a child process with a memory cap, which prints the peak memory it took.

Then a running service given a broken policy on reload keeps its last good policies and
reports the errors: the `PolicyHolder` directly, and the real `policydesk serve` process,
whose ``/healthz`` shows ``policy_errors`` while it keeps acknowledging webhooks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
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
    for n, (_plan, channel, category, lang, emergency) in enumerate([
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


# --------------------------------------------------------------------------- hostile files


def billion_laughs(size: int = 4096) -> str:
    """Ten levels of nine aliases each: 9**10 values once expanded, from about ``size`` bytes."""
    word = "l" * max(3, (size - 700) // 9 - 4)
    lines = [f'lol0: &lol0 [{", ".join([repr(word)] * 9)}]']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


#: Runs in a child process with its address space capped: loads the policies, prints the
#: errors and the peak memory Python allocated for it (tracemalloc).
_LOAD_CAPPED = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    from plugin.policy import PolicyErrors, load_policies
    tracemalloc.start()
    try:
        load_policies(sys.argv[1])
        errors = []
    except PolicyErrors as found:
        errors = [str(e) for e in found.errors]
    print(json.dumps({"errors": errors, "peak_bytes": tracemalloc.get_traced_memory()[1]}))
""")


def load_capped(directory: Path) -> tuple[list[str], int]:
    result = subprocess.run([sys.executable, "-c", _LOAD_CAPPED, str(directory)], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report["errors"], report["peak_bytes"]


def _nested_flow(depth: int) -> str:
    return "x-deep: " + "[" * depth + "]" * depth + "\n"


def _nested_block(depth: int) -> str:
    return "x-deep:\n" + "".join("  " * i + "- \n" for i in range(1, depth + 1))


def _many_aliases(count: int) -> str:
    return "x-anchor: &one 1\nx-aliases: [" + ", ".join(["*one"] * count) + "]\n"


HOSTILE = [  # (name, text appended to plans.yaml, expected line of the error, its start)
    ("billion-laughs-4KB", billion_laughs(), None, "refused: more than 100,000 values once aliases are expanded"),
    ("nested-flow-600", _nested_flow(600), 0, "refused: nested more than 64 levels deep"),
    # libyaml's scanner has a nesting limit of its own (1000), met while it looks ahead.
    ("nested-flow-1000", _nested_flow(1000), 0, ("refused: nested more than 64 levels deep",
                                                 "YAML syntax error: exceeded maximum nesting depth")),
    ("nested-block-800", _nested_block(800), 64, "refused: nested more than 64 levels deep"),
    ("300-aliases", _many_aliases(300), 1, "refused: more than 200 aliases"),
]


@pytest.mark.parametrize("name,tail,line_offset,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_yaml_is_refused_at_its_line_with_little_memory(tmp_path, name, tail, line_offset, message):
    directory = _copy_policies(tmp_path / "policies")
    plans = directory / "plans.yaml"
    original = plans.read_text()
    plans.write_text(original + tail)
    errors, peak = load_capped(directory)
    assert name != "billion-laughs-4KB" or 3900 < len(tail) < 4300
    print(f"{name}: {len(tail)} bytes appended, {len(errors)} error(s), peak {peak / 1e6:.1f} MB: {errors[:1]}")
    assert len(errors) == 1, errors
    match = ERROR_FORMAT.match(errors[0])
    assert match and match["file"] == str(plans), errors
    first_line = original.count("\n") + 1
    if line_offset is not None:
        assert int(match["line"]) == first_line + line_offset, errors
    else:
        assert first_line <= int(match["line"]) <= first_line + 10, errors
    assert match["message"].startswith(message), errors
    assert peak < 20e6, f"{name}: {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("line", [1, 7, 40])
def test_a_nul_byte_is_reported_at_its_own_line(tmp_path, line):
    directory = _copy_policies(tmp_path / "policies")
    plans = directory / "plans.yaml"
    lines = plans.read_text().splitlines(keepends=True)
    lines[line - 1] = lines[line - 1][:2] + "\x00" + lines[line - 1][2:]
    plans.write_text("".join(lines))
    errors, _ = load_capped(directory)
    print(f"NUL on line {line}: {errors}")
    assert errors == [f"{plans}:{line}:3: $: YAML syntax error: the control character U+0000 is not allowed in YAML; "
                      "remove it"]


def _plan_line(text: str, key: str, plan: str = "plus") -> int:
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.strip() == f"{plan}:")
    return next(n for n, line in enumerate(lines[start:], start + 1) if line.strip().startswith(f"{key}:"))


@pytest.mark.parametrize("key,written,message", [
    ("rank", "010", 'YAML 1.1 reads 010 as the octal number 8; write 10 (or "010" in quotes for a text)'),
    ("rank", "1000000", "expected at most 1000; got the number 1000000"),
    ("minimum_commitment_months", "1000000000", "expected at most 120; got the number 1000000000"),
])
def test_numbers_yaml_or_a_typo_would_make_absurd_are_refused(tmp_path, key, written, message):
    directory = _copy_policies(tmp_path / "policies")
    plans = directory / "plans.yaml"
    text = plans.read_text()
    line = _plan_line(text, key)
    lines = text.splitlines(keepends=True)
    indent = lines[line - 1][: len(lines[line - 1]) - len(lines[line - 1].lstrip())]
    lines[line - 1] = f"{indent}{key}: {written}\n"
    plans.write_text("".join(lines))
    with pytest.raises(PolicyErrors) as raised:
        load_policies(directory)
    shown = [str(e) for e in raised.value.errors]
    print(f"{key}: {written} -> {shown}")
    assert shown == [f"{plans}:{line}:{len(indent) + len(key) + 3}: $.plans.plus.{key}: {message}"]


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
    ("plans.yaml", lambda t: t + billion_laughs()),
    ("hours.yaml", lambda t: t + _nested_flow(900)),
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
        # this test's Zammad (port 9) is not running: that is the only thing /healthz may still report
        assert "policy_errors" not in body and body.get("reasons") == ["zammad_unreachable"], body
        assert "Traceback" not in service.log()
    finally:
        service.stop()
