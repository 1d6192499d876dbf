"""Log lines: one per event, secrets masked, request-derived text escaped, text or JSON."""

from __future__ import annotations

import io
import json
import logging

import pytest

from integrations.logsetup import configure, mask_secrets
from plugin.errors import UserError


@pytest.mark.parametrize("text, secret", [
    ("store postgresql://policydesk:s3cr3t@db/pd", "s3cr3t"),
    ("store host=db dbname=pd user=pd password=s3cr3t sslmode=require", "s3cr3t"),
    ("store host=db password='s3 cr3t' dbname=pd", "s3 cr3t"),
    ("Authorization: Token token=abcdef0123456789", "abcdef0123456789"),
    ("Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
    ("https://x.example/?token=abcdef0123456789&a=1", "abcdef0123456789"),
])
def test_every_form_of_secret_is_masked(text, secret):
    masked = mask_secrets(text)
    assert secret not in masked and "***" in masked


@pytest.fixture
def logger():
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]


def test_text_lines_cannot_be_forged(logger):
    out = io.StringIO()
    configure("INFO", "text", stream=out)
    logging.getLogger("policydesk.test").warning("rejected POST %s", "/x\n2026-01-01 INFO forged: ok\r")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\\n2026-01-01 INFO forged" in lines[0]


def test_json_lines_and_a_traceback_stays_on_one_line(logger):
    out = io.StringIO()
    configure("debug", "json", stream=out)
    try:
        raise RuntimeError("boom\nsecond line password=hunter2")
    except RuntimeError:
        logging.getLogger("policydesk.test").exception("job failed for %s", "postgresql://u:pw@h/db")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "ERROR" and entry["logger"] == "policydesk.test"
    assert entry["message"] == "job failed for postgresql://u:***@h/db"
    assert "RuntimeError" in entry["exc"] and "hunter2" not in entry["exc"]


@pytest.mark.parametrize("level, fmt, message", [("LOUD", "text", "log level 'LOUD'"), ("INFO", "xml", "log format")])
def test_unknown_level_or_format_is_a_user_error(logger, level, fmt, message):
    with pytest.raises(UserError, match=message):
        configure(level, fmt)
