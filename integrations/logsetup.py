"""Log lines an operator can use: one line per event, secrets masked, text or JSON.

Every record is formatted on one line: newlines and other control characters in the
message (a request path with ``%0A``, an exception text) are escaped, so nobody can forge a
line; connection strings and tokens are masked wherever they appear. A traceback (a bug)
is kept but folded onto the same line (text) or into the ``exc`` field (JSON).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from plugin.errors import UserError

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("text", "json")

# postgresql://user:PASSWORD@host, https://user:PASSWORD@host
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<secret>[^@\s]+)(?=@)")
# password=... in a libpq key=value string or a URL query; token=..., secret=...
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|token|secret|api_key|apikey|sslpassword)\s*=\s*)"
    r"(?P<secret>'(?:[^'\\]|\\.)*'|[^\s&;,]+)", re.IGNORECASE)
# Authorization: Token token=..., Bearer ...
_BEARER = re.compile(r"(?P<head>\b(?:Bearer|Token)\s+)(?P<secret>(?!token=)[A-Za-z0-9._~+/=-]{8,})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def mask_secrets(text: str) -> str:
    """``text`` with every password, token and secret replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    text = _KEY_VALUE.sub(r"\g<head>***", text)
    return _BEARER.sub(r"\g<head>***", text)


def escape_control(text: str) -> str:
    """Control characters as visible escapes (``\\n``, ``\\x1b``): one event stays one line."""
    def escaped(match: re.Match[str]) -> str:
        char = match.group()
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or f"\\x{ord(char):02x}" if ord(char) < 256 \
            else f"\\u{ord(char):04x}"

    return _CONTROL.sub(escaped, text)


def clean(text: str) -> str:
    return escape_control(mask_secrets(text))


class TextFormatter(logging.Formatter):
    """``2026-12-01T19:20:00Z INFO policydesk.service: message`` on one line."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        message = clean(record.getMessage())
        line = f"{self.formatTime(record, self.datefmt)} {record.levelname} {record.name}: {message}"
        if record.exc_info:
            line += " | " + clean(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message`` (+ ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        for key in ("event", "count", "store", "policies"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = mask_secrets(self.formatException(record.exc_info))
        # json.dumps escapes control characters, so one record is one line
        return json.dumps(entry, ensure_ascii=False, default=str).replace("\u2028", "\\u2028").replace(
            "\u2029", "\\u2029")


_HANDLER_NAME = "policydesk"


def configure(level: str, fmt: str, *, stream: Any = None) -> None:
    """Install policydesk's handler on the root logger (replacing an earlier one of ours)."""
    name = str(level).strip().upper()
    if name not in LEVELS:
        raise UserError(f"log level {level!r}: expected one of {', '.join(LEVELS)} "
                        "(--log-level or POLICYDESK_LOG_LEVEL)")
    kind = str(fmt).strip().lower()
    if kind not in FORMATS:
        raise UserError(f"log format {fmt!r}: expected text or json (--log-format or POLICYDESK_LOG_FORMAT)")
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if kind == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(name)
    for noisy in ("waitress.queue", "urllib3.connectionpool"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(name)))
