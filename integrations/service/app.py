"""The webhook service as a plain WSGI application.

``POST /webhooks/zammad``  Zammad trigger deliveries: verified, deduplicated on
                           ``X-Zammad-Delivery``, stored durably, acknowledged; processed
                           later by the worker.
``POST /webhooks/billing`` The billing system's plan changes: verified, validated and
                           decided at once (an upgrade is accepted, a downgrade within the
                           commitment refused with 409); the Zammad side is queued.
``GET /healthz``           200 when the store, Zammad and the policies are fine; 503 with
                           the reasons otherwise (see `integrations.service.health`).
``GET /livez``             200 while webhooks can be received (the store answers).
``GET /metrics``           Prometheus text format.

``/healthz`` and ``/metrics`` may require ``Authorization: Bearer <POLICYDESK_ADMIN_TOKEN>``
or move to a listener of their own (`WebhookService.split_admin`).

Every rejection is a 4xx with a JSON ``{"error": reason}``, the reason cut to a few hundred
characters and never echoing the path; a request never sees a traceback. Secrets and bodies
are never logged.
"""

from __future__ import annotations

import copy
import datetime as dt
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from integrations.service.health import HealthCheck
from integrations.service.metrics import Metrics, code, endpoint_of
from integrations.signing import SignatureError, verify_billing, verify_zammad
from integrations.store import ReceiveResult, Store, StoreError, StoreValueError, ticket_key
from integrations.zammad.mapping import TICKET_VIP_CODE
from integrations.zammad.sync_objects import PAYLOAD_MARKER

#: Stored in place of a typed VIP code: the worker then reads the code from Zammad itself.
VIP_ENTERED = "(entered)"

log = logging.getLogger("policydesk.service")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

#: Longest reason text a rejection shows (and logs); longer ones are cut with "…".
MAX_REASON = 300
#: Routes that belong to the admin side (token or separate listener).
ADMIN_ROUTES = frozenset({("GET", "/healthz"), ("GET", "/metrics")})

REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 411: "Length Required", 413: "Payload Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Entity", 500: "Internal Server Error",
           503: "Service Unavailable"}


class Rejected(Exception):
    """A request we refuse: its status and a reason safe to show the caller."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BillingHandler(Protocol):
    def __call__(self, event: Mapping[str, Any], body: bytes, now: dt.datetime) -> tuple[int, dict[str, Any]]:
        """Decide a verified billing event; return the HTTP status and JSON body."""


#: ``(status line, headers, body)``, as a WSGI app gives them.
Response = tuple[str, list[tuple[str, str]], bytes]
#: The Zammad trigger deliveries: the one route that may be handled in an event loop.
INTAKE_ROUTE = ("POST", "/webhooks/zammad")


@dataclass(frozen=True, slots=True)
class Receive:
    """A verified Zammad delivery, to be stored durably before it is answered."""

    delivery: str
    body: bytes
    headers: dict[str, str]
    now: dt.datetime
    key: str
    started: float

    def arguments(self) -> tuple[str, str, bytes, dict[str, str], dt.datetime, str]:
        """`Store.receive`'s positional arguments."""
        return "zammad", self.delivery, self.body, self.headers, self.now, self.key


@dataclass(frozen=True)
class ServiceSecrets:
    zammad_webhook_token: str
    billing_secret: str


class WebhookService:
    """The WSGI callable, and `handle`/`answer` for an event loop. Thread-safe."""

    def __init__(
        self,
        store: Store,
        secrets: ServiceSecrets,
        metrics: Metrics,
        billing: BillingHandler | None = None,
        max_body_bytes: int = 1 << 20,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
        health: HealthCheck | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.store = store
        self.secrets = secrets
        self.metrics = metrics
        self.billing = billing
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self.health = health or HealthCheck(store.ping)
        self.admin_token = admin_token
        self.routes: dict[tuple[str, str], Callable[[Mapping[str, Any]], Any]] = {
            INTAKE_ROUTE: self.zammad_webhook,
            ("POST", "/webhooks/billing"): self.billing_webhook,
            ("GET", "/healthz"): self.healthz,
            ("GET", "/livez"): self.livez,
            ("GET", "/metrics"): self.metrics_page,
        }

    def split_admin(self) -> "WebhookService":
        """Move /healthz and /metrics to the returned app (for a listener of their own)."""
        admin = copy.copy(self)
        admin.routes = {key: route for key, route in self.routes.items()
                        if key in ADMIN_ROUTES or key == ("GET", "/livez")}
        self.routes = {key: route for key, route in self.routes.items() if key not in ADMIN_ROUTES}
        return admin

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        outcome = self.handle(environ)
        if isinstance(outcome, Receive):  # the WSGI way: wait here until the event is durable
            try:
                result: ReceiveResult | None = self.store.receive(*outcome.arguments())
                error: BaseException | None = None
            except Exception as failed:  # noqa: BLE001 - answered like the asynchronous path
                result, error = None, failed
            outcome = self.answer(outcome, result, error)
        status, headers, body = outcome
        start_response(status, headers)
        return [body]

    def handle(self, environ: Mapping[str, Any]) -> Response | Receive:
        """The answer to a request, or (``POST /webhooks/zammad``) the verified event to
        store, answered by `answer` once it is durable. Never raises. Only the intake
        route (`nonblocking_routes`) is safe to handle in an event loop: it does not touch
        the store or the network; every other route may block."""
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO", "/"))
        route = self.routes.get((method, path))
        try:
            if route is None:
                if any(p == path for _, p in self.routes):
                    raise Rejected(405, f"{method[:16]} is not allowed here")
                raise Rejected(404, "no such endpoint")
            if (method, path) in ADMIN_ROUTES:
                self._check_admin_token(environ)
            outcome = route(environ)
        except Exception as error:  # noqa: BLE001 - every failure becomes an answer
            return self._failure(method, path, error)
        if isinstance(outcome, Receive):
            return outcome
        return _response(*outcome)

    @property
    def nonblocking_routes(self) -> frozenset[tuple[str, str]]:
        """Routes whose `handle` never blocks (an event loop may call it itself)."""
        return frozenset(self.routes) & {INTAKE_ROUTE}

    def answer(self, receive: Receive, result: ReceiveResult | None, error: BaseException | None) -> Response:
        """The answer to an intake request once the store has ``result`` (or failed with ``error``)."""
        if error is not None or result is None:
            return self._failure("POST", INTAKE_ROUTE[1], error or StoreError("no result"))
        self.metrics.received.labels(source="zammad", outcome="new" if result.new else "duplicate").inc()
        self.metrics.ack_latency.labels(source="zammad").observe(time.perf_counter() - receive.started)
        return _response(202, {"status": "accepted" if result.new else "duplicate", "event": result.event_id})

    def _failure(self, method: str, path: str, error: BaseException) -> Response:
        if isinstance(error, StoreValueError):  # no database can hold it: the sender's to fix, never retried
            error = Rejected(422, f"cannot store this value: {error}")
        if isinstance(error, Rejected):
            reason = shorten(error.reason)
            self.metrics.rejected.labels(endpoint=endpoint_of(path), status=str(error.status)).inc()
            log.warning("rejected %s %s: %d %s", method[:16], path[:200], error.status, reason)
            return _response(error.status, {"error": reason})
        if not _store_unavailable(error):  # a bug: log it with its traceback, tell the caller nothing more
            log.error("internal error on %s %s", method[:16], path[:200], exc_info=error)
            return _response(500, {"error": "internal error"})
        # disk full, read-only, database down: nothing was stored; the sender retries
        log.error("store unavailable on %s %s: %s: %s", method[:16], path[:200], type(error).__name__,
                  shorten(str(error)))
        return _response(503, {"error": "the event could not be stored now; retry later"})

    # ------------------------------------------------------------------ endpoints

    def zammad_webhook(self, environ: Mapping[str, Any]) -> Receive:
        started = time.perf_counter()
        body = self._read_json_body(environ)
        try:
            verify_zammad(body, environ.get("HTTP_X_HUB_SIGNATURE"), self.secrets.zammad_webhook_token)
        except SignatureError as error:
            raise Rejected(401, str(error)) from None
        delivery = environ.get("HTTP_X_ZAMMAD_DELIVERY", "").strip()
        if not delivery or len(delivery) > 200:
            raise Rejected(400, "missing or overlong X-Zammad-Delivery header")
        event = _parse_json_object(body)
        ticket = event.get("ticket")
        ticket_id = ticket.get("id") if isinstance(ticket, dict) else None
        if (event.get(PAYLOAD_MARKER) == "1" and isinstance(ticket_id, str) and ticket_id.isascii()
                and ticket_id.isdigit() and len(ticket_id) <= 18):
            ticket_id = int(ticket_id)  # sync's custom payload renders every value as a string
        if not isinstance(ticket_id, int) or isinstance(ticket_id, bool):
            raise Rejected(422, 'payload must have a "ticket" object with an integer "id"')
        headers = {"X-Zammad-Trigger": environ.get("HTTP_X_ZAMMAD_TRIGGER", "")[:200]}
        if ticket.get(TICKET_VIP_CODE):
            # Zammad's payload carries every ticket attribute: never store a VIP code an
            # agent typed (the worker reads it fresh from Zammad, checks and clears it).
            ticket[TICKET_VIP_CODE] = VIP_ENTERED
            body = json.dumps(event).encode()
        return Receive(delivery, body, headers, self.clock(), ticket_key(ticket_id), started)

    def billing_webhook(self, environ: Mapping[str, Any]) -> tuple[int, Any]:
        started = time.perf_counter()
        body = self._read_json_body(environ)
        try:
            verify_billing(body, environ.get("HTTP_POLICYDESK_SIGNATURE"), self.secrets.billing_secret,
                           now=self.clock().timestamp())
        except SignatureError as error:
            raise Rejected(401, str(error)) from None
        event = _parse_json_object(body)
        if self.billing is None:
            raise Rejected(404, "billing is not enabled on this service")
        status, payload = self.billing(event, body, self.clock())
        if status >= 400 and status != 409:
            raise Rejected(status, str(payload.get("error", "rejected")))
        if status == 409 and isinstance(payload.get("error"), str):
            payload = {**payload, "error": shorten(payload["error"])}
        self.metrics.received.labels(source="billing", outcome=code(payload.get("status", status))).inc()
        self.metrics.ack_latency.labels(source="billing").observe(time.perf_counter() - started)
        return status, payload

    def healthz(self, environ: Mapping[str, Any]) -> tuple[int, Any]:
        return self.health()

    def livez(self, environ: Mapping[str, Any]) -> tuple[int, Any]:
        return self.health.live()

    def _check_admin_token(self, environ: Mapping[str, Any]) -> None:
        if not self.admin_token:
            return
        given = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.admin_token.encode()):
            raise Rejected(401, "this endpoint needs Authorization: Bearer <POLICYDESK_ADMIN_TOKEN>")

    def metrics_page(self, environ: Mapping[str, Any]) -> tuple[int, Any]:
        self.metrics.refresh(self.store)
        return 200, self.metrics.render()

    # ------------------------------------------------------------------ input

    def _read_json_body(self, environ: Mapping[str, Any]) -> bytes:
        content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise Rejected(415, "Content-Type must be application/json")
        raw_length = environ.get("CONTENT_LENGTH") or ""
        if not (raw_length.isascii() and raw_length.isdigit()):
            raise Rejected(411, "a Content-Length header is required")
        length = int(raw_length)
        if length > self.max_body_bytes:
            raise Rejected(413, f"body larger than {self.max_body_bytes} bytes")
        body = environ["wsgi.input"].read(length)
        if len(body) != length:
            raise Rejected(400, "body shorter than Content-Length")
        return body


def _response(status: int, payload: Any) -> Response:
    """``(status line, headers, body)``: JSON, or Prometheus text for bytes."""
    if isinstance(payload, bytes):
        body, content_type = payload, "text/plain; version=0.0.4; charset=utf-8"
    else:
        body, content_type = json.dumps(payload).encode(), "application/json"
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if status == 503:
        headers.append(("Retry-After", "5"))
    return f"{status} {REASONS.get(status, '')}".strip(), headers, body


def _store_unavailable(error: BaseException) -> bool:
    """A database error (SQLite's disk full or read-only, PostgreSQL down): the request may
    be retried, unlike a bug. Recognised by the DB-API driver's exception classes."""
    import sqlite3

    return isinstance(error, (sqlite3.Error, StoreError)) or any(
        cls.__module__.split(".")[0] in ("psycopg", "psycopg_pool") for cls in type(error).__mro__)


def shorten(text: str, limit: int = MAX_REASON) -> str:
    """``text`` cut to ``limit`` characters (a 900 KB value is not echoed back or logged)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _StrictJsonError(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _StrictJsonError(f"{name} is not a JSON number")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # in C; a repeated key makes it shorter than the pairs
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _StrictJsonError(f"duplicate key {shorten(key, 60)!r}")
            seen.add(key)
    return result


def _parse_json_object(body: bytes) -> dict[str, Any]:
    """Strict JSON (RFC 8259): no NaN/Infinity, no duplicate keys (which one would count?)."""
    try:
        event = json.loads(body.decode("utf-8"), parse_constant=_no_constant, object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError:
        raise Rejected(400, "body is not UTF-8") from None
    except RecursionError:
        raise Rejected(400, "body is nested too deeply") from None
    except _StrictJsonError as error:
        raise Rejected(400, f"body is not valid JSON: {error}") from None
    except ValueError as error:
        raise Rejected(400, f"body is not valid JSON: {error}") from None
    if not isinstance(event, dict):
        raise Rejected(422, "body must be a JSON object")
    return event
