"""What ``/healthz`` checks: the store (every request), Zammad (cached a few seconds), the policies.

``200 {"status": "ok", ...}`` when everything works; ``503 {"status": "degraded", "reasons":
[...]}`` otherwise, each reason a short code an alert can match:

* ``store_unavailable`` — the store does not answer (nothing can be received);
* ``zammad_unreachable`` — no answer from Zammad (jobs wait and are retried);
* ``zammad_token_refused`` — Zammad refuses the token (401/403): every job would fail;
* ``zammad_wrong_user`` — the token's user is not the one policydesk's writes belong to
  (``POLICYDESK_ZAMMAD_LOGIN``, or the user policydesk started with): its own updates would
  no longer be recognised, or a person's updates would be taken for policydesk's;
* ``policy_reload_refused`` — edited policies were refused; the last good ones are in force.

``/livez`` answers 200 while the process can receive webhooks (the store answers), for a
load balancer that must not take an instance out because Zammad is down.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import requests

log = logging.getLogger("policydesk.health")

LOGIN_ENV = "POLICYDESK_ZAMMAD_LOGIN"


@dataclass(frozen=True)
class ZammadStatus:
    reason: str | None  # None when fine
    user: str | None = None
    detail: str = ""


class ZammadProbe:
    """``GET /api/v1/users/me`` with the service's token, cached for ``cache_seconds``."""

    def __init__(self, url: str, token: str, *, expected_login: str | None = None, cache_seconds: float = 10.0,
                 timeout: float = 3.0, user_agent: str = "policydesk") -> None:
        self.url = url.rstrip("/")
        if not self.url.endswith("/api/v1"):
            self.url += "/api/v1"
        self._headers = {"Authorization": f"Token token={token}", "User-Agent": user_agent,
                         "Accept": "application/json"}
        self.expected_login = (expected_login or "").strip().lower() or None
        self.cache_seconds = cache_seconds
        self.timeout = timeout
        self._first_user_id: int | None = None
        self._cached: tuple[float, ZammadStatus] | None = None
        self._lock = threading.Lock()

    def status(self) -> ZammadStatus:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            result = self._probe()
            self._cached = (time.monotonic(), result)
            if result.reason:
                log.warning("health: Zammad check failed: %s (%s)", result.reason, result.detail)
            return result

    def _probe(self) -> ZammadStatus:
        try:
            answer = requests.get(self.url + "/users/me", headers=self._headers, timeout=self.timeout)
        except requests.RequestException as error:
            return ZammadStatus("zammad_unreachable", detail=type(error).__name__)
        if answer.status_code in (401, 403):
            return ZammadStatus("zammad_token_refused", detail=f"HTTP {answer.status_code}")
        if answer.status_code != 200:
            return ZammadStatus("zammad_unreachable", detail=f"HTTP {answer.status_code}")
        try:
            me = answer.json()
            user_id, login = int(me["id"]), str(me.get("login") or me.get("email") or "")
        except (ValueError, KeyError, TypeError):
            return ZammadStatus("zammad_unreachable", detail="users/me answered no user")
        if self.expected_login and login.lower() != self.expected_login:
            return ZammadStatus("zammad_wrong_user", login,
                                f"token belongs to {login!r}, {LOGIN_ENV} says {self.expected_login!r}")
        if self._first_user_id is None:
            self._first_user_id = user_id
        elif user_id != self._first_user_id:  # the token was swapped for another user's under us
            return ZammadStatus("zammad_wrong_user", login, "the token now belongs to another user than at start")
        return ZammadStatus(None, login)


class HealthCheck:
    """Combines the checks into the ``/healthz`` answer."""

    def __init__(self, ping_store: Callable[[], None], zammad: ZammadProbe | None = None,
                 policy_errors: Callable[[], list[str]] = lambda: []) -> None:
        self.ping_store = ping_store
        self.zammad = zammad
        self.policy_errors = policy_errors

    def live(self) -> tuple[int, dict[str, Any]]:
        try:
            self.ping_store()
        except Exception as error:  # noqa: BLE001 - any failure of the store is "down"
            log.error("health check: store unavailable: %s", type(error).__name__)
            return 503, {"status": "unavailable", "reasons": ["store_unavailable"]}
        return 200, {"status": "ok"}

    def __call__(self) -> tuple[int, dict[str, Any]]:
        reasons: list[str] = []
        body: dict[str, Any] = {}
        status, live = self.live()
        if status != 200:
            reasons.append("store_unavailable")
        if self.zammad is not None:
            zammad = self.zammad.status()
            body["zammad"] = {"status": zammad.reason or "ok", "user": zammad.user}
            if zammad.reason:
                reasons.append(zammad.reason)
        errors = self.policy_errors()
        if errors:
            reasons.append("policy_reload_refused")
            body["policy_errors"] = errors
            body["policies"] = "last good version in use"
        if reasons:
            return 503, {"status": "unavailable" if "store_unavailable" in reasons else "degraded",
                         "reasons": reasons, **body}
        return 200, {"status": "ok", **body}
