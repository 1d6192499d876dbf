"""Typed errors for talking to Zammad.

Zammad answers errors as ``{"error": ..., "error_human": ...}`` (see its
``ApplicationController::HandlesErrors``); 401 also carries an ``X-Failure`` header.
zammad-py turns every failure into a bare ``HTTPError(text)``; these keep the status.
"""

from __future__ import annotations

import re
from typing import Any

import requests


class ZammadError(Exception):
    """Zammad refused or failed a request.

    :ivar status: HTTP status code, or ``None`` when no response came back.
    :ivar message: the human message (``error_human``, else ``error``, else the body).
    :ivar method: HTTP method of the request, when known.
    :ivar url: URL of the request, when known.
    """

    #: Whether a retry may succeed without anything changing on our side.
    transient = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        method: str | None = None,
        url: str | None = None,
        body: Any = None,
    ) -> None:
        self.message = message
        self.status = status
        self.method = method
        self.url = url
        self.body = body
        where = f" ({method} {url})" if method and url else ""
        code = f"{status} " if status is not None else ""
        super().__init__(f"Zammad {code}{message}{where}".strip())


class ZammadAuthError(ZammadError):
    """401 (bad or missing token) or 403 (not allowed)."""


class ZammadNotFound(ZammadError):
    """404: no such record or route."""


class ZammadValidationError(ZammadError):
    """422: Zammad rejected the data (validation, unknown attribute, duplicate)."""


class ZammadUnavailable(ZammadError):
    """5xx, 429, a timeout or a connection error: worth retrying later."""

    transient = True


class ZammadContention(ZammadUnavailable):
    """422 from database contention: Zammad maps ``ActiveRecord::StatementInvalid`` (deadlock,
    lock timeout) to 422 (app/controllers/application_controller/handles_errors.rb); retry it."""


class ZammadRateLimited(ZammadUnavailable):
    """429 Too Many Requests.

    :ivar retry_after: seconds the server asked us to wait, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


def _message_from(response: requests.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        text = body.get("error_human") or body.get("error") or body.get("message")
        if text:
            return str(text), body
    failure = response.headers.get("X-Failure")
    if failure:
        return failure, body
    text = (response.text or "").strip()
    return (text[:300] if text else (response.reason or "error")), body


#: What a StatementInvalid says (admin users see it; others get an "Error ID" line instead).
_CONTENTION = re.compile(r"deadlock|lock wait timeout|could not obtain lock|could not serialize|"
                         r"statement ?invalid|PG::|Mysql2::|LockWaitTimeout|Deadlocked", re.IGNORECASE)
#: handles_errors.rb#humanize_error: an error without a human text, shown to a non-admin.
_ERROR_ID = re.compile(r"^Error ID \S+: Please contact your administrator")


def is_contention(body: Any) -> bool:
    """Whether a 422 body is a database failure rather than a refusal of the data.

    Validation and Zammad's own refusals carry ``error_human``; a StatementInvalid has none
    (handles_errors.rb#humanize_error), and non-admins see only an "Error ID" line.
    """
    if not isinstance(body, dict) or body.get("error_human"):
        return False
    text = str(body.get("error") or "")
    return bool(_ERROR_ID.match(text) or _CONTENTION.search(text))


def error_from_response(response: requests.Response) -> ZammadError:
    """The typed exception for a non-2xx ``response``."""
    status = response.status_code
    message, body = _message_from(response)
    kw: dict[str, Any] = dict(
        status=status, method=response.request.method if response.request else None,
        url=response.url, body=body,
    )
    if status in (401, 403):
        return ZammadAuthError(message, **kw)
    if status == 404:
        return ZammadNotFound(message, **kw)
    if status == 422:
        if is_contention(body):
            return ZammadContention(message, **kw)
        return ZammadValidationError(message, **kw)
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return ZammadRateLimited(message, retry_after=seconds, **kw)
    if status >= 500:
        return ZammadUnavailable(message, **kw)
    return ZammadError(message, **kw)


def error_from_transport(exc: requests.RequestException, method: str, url: str) -> ZammadError:
    """The typed exception for a request that got no response (timeout, refused, reset)."""
    if isinstance(exc, requests.Timeout):
        return ZammadUnavailable(f"timed out: {exc}", method=method, url=url)
    if isinstance(exc, requests.ConnectionError):
        return ZammadUnavailable(f"connection failed: {exc}", method=method, url=url)
    return ZammadError(f"request failed: {exc}", method=method, url=url)
