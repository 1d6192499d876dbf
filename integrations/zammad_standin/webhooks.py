"""Triggers and outgoing webhook deliveries, the way Zammad does them.

Every ticket transaction (create; update, including a new article or a tag change)
is checked against the active ``activator: action`` triggers.  A matching trigger
whose ``perform`` has ``notification.webhook`` enqueues a delivery, as Zammad's
``TriggerWebhookJob`` (app/jobs/trigger_webhook_job.rb):

- POST to the webhook's ``endpoint``, body ``{"ticket": ..., "article": ...}``
  (``TriggerWebhookJob::RecordPayload``: the record's ``attributes_with_association_names``
  with keys sorted, the ticket's owner, customer, created_by, updated_by, organization,
  priority and group replaced by the associated record -- users without
  last_login/login_failed/password/preferences/group_ids/groups/authorization_ids/
  authorizations -- and the article's created_by/updated_by likewise, plus
  ``accounted_time``; ``{}`` when there is no article).  The payload is rendered at
  each attempt, from the current records, as the job does.
- headers ``Content-Type: application/json; charset=utf-8``, ``User-Agent: Zammad User Agent``,
  ``X-Zammad-Trigger: <trigger name>``, ``X-Zammad-Delivery: <job id>`` (one id for
  all attempts), ``X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body, keyed with
  signature_token>`` when the webhook has a token (lib/user_agent.rb).
- with ``customized_payload`` the body is the webhook's ``custom_payload`` template rendered
  by custom_payload.py (app/jobs/trigger_webhook_job/custom_payload*.rb);
- success is any 2xx (lib/user_agent.rb: Net::HTTPSuccess); a 3xx is followed as a GET of its
  Location (up to 10 hops); timeouts are Zammad's open 4 s / read 30 s (``timeout`` sets the read
  timeout, e.g. shorter in tests);
- a non-2xx answer or a transport error is retried: 5 attempts in all, waiting
  ``attempt * backoff`` between them (Zammad: ``retry_on ... attempts: 5, wait: executions * 10.seconds``;
  ``backoff`` is 10 s by default and configurable, e.g. 0.01 s in tests).
- an inactive or missing webhook aborts the delivery (logged, not retried).

Trigger conditions are evaluated by conditions.py.
- ``perform``: only ``notification.webhook`` is carried out (other actions ignored).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlencode, urljoin

import requests

from integrations.zammad_standin.conditions import TIME_EVENTS, Context, trigger_applies
from integrations.zammad_standin.custom_payload import render_custom_payload
from integrations.zammad_standin.state import State

log = logging.getLogger(__name__)

USER_ATTRIBUTE_BLACKLIST = ("last_login", "login_failed", "password", "preferences", "group_ids", "groups",
                            "authorization_ids", "authorizations")
TICKET_ASSOCIATIONS = (("owner", "users"), ("customer", "users"), ("created_by", "users"),
                       ("updated_by", "users"), ("organization", "organizations"),
                       ("priority", "ticket_priorities"), ("group", "groups"))
ARTICLE_ASSOCIATIONS = (("created_by", "users"), ("updated_by", "users"))
USER_AGENT = "Zammad User Agent"
MAX_ATTEMPTS = 5
MAX_REDIRECTS = 10  # UserAgent's count


# --------------------------------------------------------------------------- payload


def record_payload(state: State, table: str, record: Mapping[str, Any] | None) -> dict[str, Any]:
    if not record:
        return {}
    result = dict(sorted(state.with_names(table, record).items()))
    associations = TICKET_ASSOCIATIONS if table == "tickets" else ARTICLE_ASSOCIATIONS
    for name, target in associations:
        rid = result.get(f"{name}_id")
        associated = state.find(target, rid) if rid is not None else None
        if associated is None:
            result[name] = {}
            continue
        attrs = dict(sorted(state.with_names(target, associated).items()))
        if target == "users":
            for key in USER_ATTRIBUTE_BLACKLIST:
                attrs.pop(key, None)
        result[name] = attrs
    if table == "articles":
        result["accounted_time"] = 0
    return result


def webhook_payload(state: State, ticket_id: int, article_id: int | None) -> dict[str, Any]:
    with state.lock:
        ticket = state.find("tickets", ticket_id)
        article = state.find("articles", article_id) if article_id else None
        return {"ticket": record_payload(state, "tickets", ticket),
                "article": record_payload(state, "articles", article)}


def delivery_payload(state: State, webhook: Mapping[str, Any], ticket_id: int, article_id: int | None) -> Any:
    """The body the job posts: the custom payload when the webhook has one, else the default."""
    if webhook.get("customized_payload") and webhook.get("custom_payload"):
        ticket = state.find("tickets", ticket_id)
        article = state.find("articles", article_id) if article_id else None
        return render_custom_payload(state, webhook["custom_payload"], ticket, article)
    return webhook_payload(state, ticket_id, article_id)


def sign(body: bytes, token: str) -> str:
    """``X-Hub-Signature`` value: ``sha1=<hex HMAC-SHA1>``."""
    return "sha1=" + hmac.new(token.encode("utf-8"), body, hashlib.sha1).hexdigest()


# --------------------------------------------------------------------------- deliveries


@dataclass
class Attempt:
    number: int
    started: float
    status: int | None
    error: str | None
    duration: float


@dataclass
class Delivery:
    """One TriggerWebhookJob: the same ``delivery_id`` on every attempt."""

    delivery_id: str
    trigger_id: int
    trigger_name: str
    webhook_id: int | None
    ticket_id: int
    article_id: int | None
    endpoint: str | None = None
    status: str = "pending"  # pending, delivered, failed, aborted
    attempts: list[Attempt] = field(default_factory=list)
    last_body: bytes | None = None
    last_headers: dict[str, str] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def payload(self) -> Any:
        return json.loads(self.last_body) if self.last_body else None


class WebhookDispatcher:
    """Runs triggers on each transaction and delivers webhooks from a background thread."""

    def __init__(self, state: State, *, backoff: float = 10.0, timeout: float = 30.0,
                 sleep: Callable[[float], None] | None = None, escalation_interval: float = 0.0) -> None:
        self.state = state
        #: seconds between runs of process_escalation (0: only when called)
        self.escalation_interval = escalation_interval
        self._next_escalation = time.monotonic() + escalation_interval
        self.backoff = backoff
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._queue: "queue.Queue[tuple[float, Delivery] | None]" = queue.Queue()
        self._stop = threading.Event()
        self._sleep = sleep
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="standin-webhooks", daemon=True)
        self._lock = threading.Lock()
        self._thread.start()
        state.on_transaction = self.on_transaction
        state.deliveries = self.deliveries  # type: ignore[attr-defined]
        state.webhooks = self  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- triggers

    def on_transaction(self, event: dict[str, Any]) -> None:
        state = self.state
        with state.lock:
            ticket = state.find("tickets", event["ticket_id"])
            if ticket is None:
                return
            ctx = Context(
                action=event["type"],
                ticket=state.with_names("tickets", event.get("after") or ticket),
                article=(state.with_names("articles", state.find("articles", event["article_id"]))
                         if event.get("article_id") and state.find("articles", event["article_id"]) else None),
                user=state.find("users", event["user_id"]), changes=set(event["changes"]),
                before=event.get("before"), tags=list(event.get("tags") or []), state=state,
            )
            for trigger in sorted(state.all("triggers"), key=lambda t: str(t.get("name") or "")):  # order(:name)
                try:
                    applies = trigger_applies(ctx, trigger)
                except Exception:  # noqa: BLE001  - a broken trigger must not break the request
                    log.exception("trigger %s: condition failed", trigger["id"])
                    continue
                if not applies:
                    continue
                if event["type"] in TIME_EVENTS and state.time_trigger_performed(trigger, event):
                    continue
                perform = trigger.get("perform") or {}
                webhook = perform.get("notification.webhook")
                if not isinstance(webhook, dict):
                    continue
                delivery = Delivery(
                    delivery_id=str(uuid.uuid4()), trigger_id=trigger["id"], trigger_name=trigger["name"],
                    webhook_id=_int_or_none(webhook.get("webhook_id")), ticket_id=event["ticket_id"],
                    article_id=event.get("article_id"),
                )
                with self._lock:
                    self.deliveries.append(delivery)
                self._queue.put((time.monotonic(), delivery))

    # ----------------------------------------------------------------- worker

    def _run(self) -> None:
        pending: list[tuple[float, Delivery]] = []
        while not self._stop.is_set():
            timeout = 0.2
            if pending:
                timeout = max(0.0, min(t for t, _ in pending) - time.monotonic())
            if self.escalation_interval:
                timeout = max(0.0, min(timeout, self._next_escalation - time.monotonic()))
            try:
                item = self._queue.get(timeout=timeout)
                if item is None:
                    break
                pending.append(item)
            except queue.Empty:
                pass
            now = time.monotonic()
            due = [p for p in pending if p[0] <= now]
            pending = [p for p in pending if p[0] > now]
            for _when, delivery in sorted(due, key=lambda p: p[0]):
                again = self._attempt(delivery)
                if again is not None:
                    pending.append((time.monotonic() + again, delivery))
            if self.escalation_interval and time.monotonic() >= self._next_escalation:
                self._next_escalation = time.monotonic() + self.escalation_interval
                try:  # Zammad's scheduler runs Ticket.process_escalation periodically
                    self.state.run_time_events()
                except Exception:  # noqa: BLE001  - the scheduler keeps running
                    log.exception("process_escalation failed")

    def _attempt(self, delivery: Delivery) -> float | None:
        """One try; returns the delay before the next try, or None when finished."""
        state = self.state
        with state.lock:
            webhook = state.find("webhooks", delivery.webhook_id) if delivery.webhook_id else None
            trigger = state.find("triggers", delivery.trigger_id)
            if webhook is None or not webhook.get("active") or trigger is None:
                delivery.status = "aborted"
                delivery.done.set()
                return None
            if state.find("tickets", delivery.ticket_id) is None:
                delivery.status = "aborted"  # DeserializationError: discarded
                delivery.done.set()
                return None
            payload = delivery_payload(state, webhook, delivery.ticket_id, delivery.article_id)
            body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
                       "Accept": "*/*", "X-Zammad-Trigger": trigger["name"],
                       "X-Zammad-Delivery": delivery.delivery_id}
            if webhook.get("signature_token"):
                headers["X-Hub-Signature"] = sign(body, str(webhook["signature_token"]))
            auth = None
            if webhook.get("basic_auth_username") and webhook.get("basic_auth_password"):
                auth = (webhook["basic_auth_username"], webhook["basic_auth_password"])
            endpoint = webhook["endpoint"]
            verify = bool(webhook.get("ssl_verify", True))
        delivery.endpoint = endpoint
        delivery.last_body = body
        delivery.last_headers = headers
        number = len(delivery.attempts) + 1
        started = time.monotonic()
        status, error = self._post(endpoint, body, headers, auth, verify, payload)
        delivery.attempts.append(Attempt(number, time.time(), status, error, time.monotonic() - started))
        if status is not None and 200 <= status < 300 and error is None:
            delivery.status = "delivered"
            delivery.done.set()
            return None
        if number >= MAX_ATTEMPTS:
            delivery.status = "failed"
            delivery.done.set()
            return None
        return number * self.backoff

    def _post(self, endpoint: str, body: bytes, headers: dict[str, str], auth: Any, verify: bool,
              payload: Any) -> tuple[int | None, str | None]:
        """UserAgent.post (lib/user_agent.rb): any 2xx is success; a redirect is followed as a GET of
        its Location (params in the query, no body, so no signature), at most 10 times; 4xx, 5xx,
        timeouts (open 4 s, read 30 s) and refused connections are failures (status, error)."""
        timeout = (min(4.0, self.timeout), self.timeout)
        try:
            response = self._session.post(endpoint, data=body, headers=headers, auth=auth, verify=verify,
                                          timeout=timeout, allow_redirects=False)
            for _hop in range(MAX_REDIRECTS + 1):
                status = response.status_code
                location = response.headers.get("Location")
                response.close()
                if not (300 <= status < 400 and location):
                    return status, None if 200 <= status < 300 else f"HTTP {status}"
                if _hop == MAX_REDIRECTS:
                    return None, "Too many redirections for the original URL, halting."
                get_headers = {k: v for k, v in headers.items() if k not in ("Content-Type", "X-Hub-Signature")}
                query = urlencode({k: json.dumps(v) if isinstance(v, (dict, list)) else v
                                   for k, v in (payload.items() if isinstance(payload, dict) else [])})
                target = urljoin(endpoint, location)
                target = target + ("&" if "?" in target else "?") + query if query else target
                response = self._session.get(target, headers=get_headers, auth=auth, verify=verify,
                                             timeout=timeout, allow_redirects=False)
            return None, "unreachable"
        except requests.RequestException as exc:
            return None, repr(exc)

    # ----------------------------------------------------------------- for tests

    def wait(self, timeout: float = 5.0, *, count: int | None = None) -> list[Delivery]:
        """Wait until every delivery (at least ``count`` of them) has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                items = list(self.deliveries)
            if (count is None or len(items) >= count) and all(d.done.is_set() for d in items):
                return items
            time.sleep(0.01)
        with self._lock:
            items = list(self.deliveries)
        raise TimeoutError(f"deliveries not finished after {timeout}s: "
                           f"{[(d.delivery_id, d.status, len(d.attempts)) for d in items]}")

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._session.close()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
