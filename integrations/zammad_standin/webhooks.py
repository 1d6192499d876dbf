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
- a non-2xx answer or a transport error is retried: 5 attempts in all, waiting
  ``attempt * backoff`` between them (Zammad: ``retry_on ... attempts: 5, wait: executions * 10.seconds``;
  ``backoff`` is 10 s by default and configurable, e.g. 0.01 s in tests).
- an inactive or missing webhook aborts the delivery (logged, not retried).

Condition subset (both Zammad's classic ``{"ticket.x": {"operator", "value"}}`` map and
the expert ``{"operator": "AND"|"OR"|"NOT", "conditions": [...]}`` tree):

- attributes: ``ticket.action`` (create/update), ``ticket.<column>`` (ids, names such
  as ``ticket.state``, custom attributes), ``ticket.tags``, ``article.<column>``
  (``article.type_id``, ``article.sender_id``, ``article.internal`` ...),
  ``customer.<column>``, ``organization.<column>``, ``owner.<column>``;
- operators: ``is``, ``is not``, ``contains``, ``contains not``, ``starts with``,
  ``ends with``, ``contains all``, ``contains one``, ``contains all not``,
  ``contains one not`` (tags), ``has changed``, ``is set``/``not set``;
- ``pre_condition`` on user/organization ids: ``specific`` (default),
  ``current_user.id`` (the user who made the change), ``current_user.organization_id``,
  ``not_set``.
- ``execution_condition_mode: selective`` (default): on update, the trigger runs only
  when one of the ticket/article attributes its conditions name was changed (or an
  article was added for ``article.*``); conditions naming only ``ticket.action`` run on
  every update.  ``always``: conditions are checked on every update.
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

import requests

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


def sign(body: bytes, token: str) -> str:
    """``X-Hub-Signature`` value: ``sha1=<hex HMAC-SHA1>``."""
    return "sha1=" + hmac.new(token.encode("utf-8"), body, hashlib.sha1).hexdigest()


# --------------------------------------------------------------------------- conditions

_SPECIAL = {"ticket.action", "ticket.tags", "article.action"}


def _flatten(condition: Any) -> list[tuple[str, dict[str, Any]]]:
    """All (attribute, spec) leaves of a condition (classic or expert)."""
    if isinstance(condition, dict) and "conditions" in condition and "operator" in condition:
        out: list[tuple[str, dict[str, Any]]] = []
        for child in condition["conditions"] or []:
            out.extend(_flatten(child))
        return out
    if isinstance(condition, dict) and "name" in condition and "operator" in condition:
        return [(condition["name"], condition)]
    if isinstance(condition, dict):
        return [(k, v) for k, v in condition.items() if isinstance(v, dict)]
    return []


@dataclass
class Context:
    action: str
    ticket: dict[str, Any]
    article: dict[str, Any] | None
    user: dict[str, Any] | None
    changes: set[str]
    before: dict[str, Any] | None
    tags: list[str]
    state: State

    def value(self, attribute: str) -> Any:
        obj, _, column = attribute.partition(".")
        if attribute == "ticket.action":
            return self.action
        if attribute == "ticket.tags":
            return self.tags
        if obj == "ticket":
            return self.ticket.get(column)
        if obj == "article":
            return (self.article or {}).get(column)
        if obj in ("customer", "owner"):
            user = self.state.find("users", self.ticket.get(f"{obj}_id"))
            return (self.state.with_names("users", user) if user else {}).get(column)
        if obj == "organization":
            org = self.state.find("organizations", self.ticket.get("organization_id"))
            return (self.state.with_names("organizations", org) if org else {}).get(column)
        if obj == "session" and self.user:
            return self.user.get(column)
        return None

    def changed(self, attribute: str) -> bool:
        obj, _, column = attribute.partition(".")
        if attribute == "ticket.tags":
            return "tags" in self.changes
        if obj == "ticket":
            base = column[:-3] if column.endswith("_id") else column
            return column in self.changes or f"{base}_id" in self.changes
        if obj == "article":
            return self.article is not None
        return False


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _check(ctx: Context, attribute: str, spec: Mapping[str, Any]) -> bool:
    operator = str(spec.get("operator") or "is").lower()
    current = ctx.value(attribute)
    wanted = spec.get("value")
    pre = spec.get("pre_condition")
    if pre == "current_user.id":
        wanted = [ctx.user["id"]] if ctx.user else []
    elif pre == "current_user.organization_id":
        wanted = [ctx.user.get("organization_id")] if ctx.user else []
    elif pre == "not_set":
        wanted = [None]
    if attribute == "ticket.tags":
        tags = {t.lower() for t in ctx.tags}
        values = {v.strip().lower() for v in (wanted.split(",") if isinstance(wanted, str) else _as_list(wanted))
                  if str(v).strip()}
        if operator in ("contains all", "contains"):
            return values <= tags
        if operator == "contains one":
            return bool(values & tags)
        if operator in ("contains all not", "contains not"):
            return not (values <= tags) if operator == "contains all not" else not (values & tags)
        if operator == "contains one not":
            return not (values & tags)
        if operator == "has changed":
            return ctx.changed(attribute)
        return False
    if operator == "has changed":
        return ctx.changed(attribute)
    if operator in ("is set",):
        return current not in (None, "", [])
    if operator in ("not set", "is not set"):
        return current in (None, "", [])
    candidates = {_text(v) for v in _as_list(wanted)}
    if operator == "is":
        return _text(current) in candidates if candidates else current in (None, "")
    if operator == "is not":
        return _text(current) not in candidates if candidates else current not in (None, "")
    text = _text(current).lower()
    needles = [_text(v).lower() for v in _as_list(wanted)]
    if operator == "contains":
        return any(n in text for n in needles)
    if operator == "contains not":
        return not any(n in text for n in needles)
    if operator == "starts with":
        return any(text.startswith(n) for n in needles)
    if operator == "ends with":
        return any(text.endswith(n) for n in needles)
    if operator in ("contains all", "contains one", "contains all not", "contains one not"):
        have = {_text(v).lower() for v in _as_list(current)}
        want = set(needles)
        return {"contains all": want <= have, "contains one": bool(want & have),
                "contains all not": not want <= have, "contains one not": not want & have}[operator]
    log.warning("trigger condition operator %r is not supported by the stand-in; treated as false", operator)
    return False


def evaluate(ctx: Context, condition: Any) -> bool:
    if isinstance(condition, dict) and "conditions" in condition and "operator" in condition \
            and "name" not in condition:
        results = [evaluate(ctx, child) for child in condition["conditions"] or []]
        op = str(condition["operator"]).upper()
        if op == "OR":
            return any(results)
        if op == "NOT":
            return not any(results)
        return all(results)
    if isinstance(condition, dict) and "name" in condition and "operator" in condition:
        return _check(ctx, condition["name"], condition)
    return all(_check(ctx, attr, spec) for attr, spec in _flatten(condition))


def trigger_applies(ctx: Context, trigger: Mapping[str, Any]) -> bool:
    if not trigger.get("active") or trigger.get("activator", "action") != "action":
        return False
    condition = trigger.get("condition") or {}
    if ctx.action == "update" and trigger.get("execution_condition_mode", "selective") == "selective":
        attrs = [a for a, _spec in _flatten(condition) if a not in ("ticket.action", "article.action")]
        if attrs and not any(ctx.changed(a) for a in attrs):
            return False
    return evaluate(ctx, condition)


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

    def __init__(self, state: State, *, backoff: float = 10.0, timeout: float = 5.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.state = state
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
            for trigger in state.all("triggers"):
                try:
                    applies = trigger_applies(ctx, trigger)
                except Exception:  # noqa: BLE001  - a broken trigger must not break the request
                    log.exception("trigger %s: condition failed", trigger["id"])
                    continue
                if not applies:
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
            body = json.dumps(webhook_payload(state, delivery.ticket_id, delivery.article_id),
                              separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
                       "Accept": "*/*", "X-Zammad-Trigger": trigger["name"],
                       "X-Zammad-Delivery": delivery.delivery_id}
            if webhook.get("signature_token"):
                headers["X-Hub-Signature"] = sign(body, str(webhook["signature_token"]))
            auth = None
            if webhook.get("basic_auth_username") and webhook.get("basic_auth_password"):
                auth = (webhook["basic_auth_username"], webhook["basic_auth_password"])
            if webhook.get("bearer_token"):
                headers["Authorization"] = f"Bearer {webhook['bearer_token']}"
            endpoint = webhook["endpoint"]
            verify = bool(webhook.get("ssl_verify", True))
        delivery.endpoint = endpoint
        delivery.last_body = body
        delivery.last_headers = headers
        number = len(delivery.attempts) + 1
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = self._session.post(endpoint, data=body, headers=headers, auth=auth, verify=verify,
                                          timeout=self.timeout, allow_redirects=True)
            status = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = repr(exc)
        delivery.attempts.append(Attempt(number, time.time(), status, error, time.monotonic() - started))
        if status is not None and 200 <= status < 300:
            delivery.status = "delivered"
            delivery.done.set()
            return None
        if number >= MAX_ATTEMPTS:
            delivery.status = "failed"
            delivery.done.set()
            return None
        return number * self.backoff

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
