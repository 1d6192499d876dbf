"""The stand-in's WSGI application: routing, authentication, rendering, errors, latency.

Behaviour taken from Zammad's source (see the package docstring for file names):

- authentication (application_controller/authenticates.rb): no credentials ->
  403 ``Authentication required``; an unknown ``Token token=`` -> 401
  ``Can't find User for Token``; an unknown ``Bearer`` token -> 401 ``The provided token
  is invalid.`` (Rails matches Bearer as an HTTP token too, then Doorkeeper rejects it);
  bad basic auth -> 401 ``Invalid BasicAuth credentials``; an inactive user -> 401
  ``Login failed. ...``.  401/403 answers carry ``X-Failure`` with the message.
- errors (application_controller/handles_errors.rb): ``{"error": msg, "error_human": msg}``
  for not-found (404, ``Couldn't find Ticket with 'id'=9``), unprocessable (422),
  401 and 403; ``Validation failed: X, ...`` becomes ``X``.  Other errors (500) carry
  the raw message without ``error_human`` for admins, and ``Error ID ...: Please contact
  your administrator.`` for others.
- ``X-On-Behalf-Of`` (application_controller/has_user.rb): an admin may act as the user
  with that id, login or e-mail; otherwise 401.
- pagination (paginates/pagination.rb): ``per_page`` (or ``limit``), default and cap per
  endpoint: tickets index 100/100, tickets search 50/200, generic model index 500/500,
  users index 500/500 (users_controller.rb); ``page`` starts at 1; pages past the end are ``[]``.
- latency: ``call_delay`` seconds are spent on every API request before it is answered (a
  real Zammad answers in tens of milliseconds; the realistic benchmark uses 0.03).

The handlers live in routes_people.py (users, organizations, groups), routes_tickets.py
(tickets, articles, search, history) and routes_admin.py (tags, mentions, object
manager, lookups, calendars/SLAs/triggers/webhooks).
"""


from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from typing import Any, Callable, Iterable

from integrations.zammad_standin.errors import ApiError, Forbidden, NotAuthorized, NotFound, statement_invalid
from integrations.zammad_standin.faults import LoggedRequest
from integrations.zammad_standin.protocol import JSON_TYPE, STATUS_TEXT, Handler, Request, Response
from integrations.zammad_standin.routes_admin import AdminRoutes
from integrations.zammad_standin.routes_people import PeopleRoutes
from integrations.zammad_standin.routes_tickets import TicketRoutes
from integrations.zammad_standin.state import State


class ZammadApp(PeopleRoutes, TicketRoutes, AdminRoutes):
    """WSGI callable.  ``state`` is the in-memory Zammad; ``call_delay`` seconds per API call."""

    def __init__(self, state: State, *, call_delay: float = 0.0) -> None:
        self.state = state
        self.call_delay = float(call_delay)
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._register()

    # ----------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        entry = LoggedRequest(method=request.method, path=request.path, query=dict(request.query),
                              body=request.body if request.body is not None else (request.raw.decode("utf-8", "replace") or None),
                              user_id=None, user=None)
        self.state.requests.add(entry)
        if self.call_delay > 0 and request.path.startswith("/api/"):
            time.sleep(self.call_delay)  # Rails + PostgreSQL time of a real Zammad
        rule = self.state.faults.take(request.method, request.path)
        if rule is not None and rule.kind in ("hang", "slow") and rule.apply_first:
            handled = self.handle(request)  # takes effect now; the answer comes late (or never)
            if request.user is not None:
                entry.user_id, entry.user = request.user["id"], request.user["login"]
        if rule is not None and rule.kind == "hang":
            entry.fault = "hang"
            self.state.faults.wait_released(rule.delay)
            # WSGI cannot drop a connection; by now the client has given up.  Answer as a
            # proxy whose upstream never answered would.
            response = Response({"error": "Gateway Timeout (injected fault)"}, 504)
            entry.status = 504
            start_response("504 Gateway Timeout", [("Content-Type", JSON_TYPE),
                                                   ("Content-Length", str(len(response.data)))])
            return [response.data]
        if rule is not None and rule.kind == "slow":
            entry.fault = "slow"
            time.sleep(rule.delay)
        if rule is not None and rule.kind == "fail":
            entry.fault = "fail"
            response = self._fault_response(rule, request)
            try:  # who sent it, for the log (the fault answers whatever the credentials)
                self.authenticate(request)
                entry.user_id, entry.user = request.user["id"], request.user["login"]
            except ApiError:
                pass
        elif rule is not None and rule.apply_first:
            response = handled
        else:
            response = self.handle(request)
            if request.user is not None:
                entry.user_id = request.user["id"]
                entry.user = request.user["login"]
        entry.status = response.status
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.data)))]
        headers += list(response.headers.items())
        start_response(f"{response.status} {STATUS_TEXT.get(response.status, 'Unknown')}", headers)
        return [response.data]

    def _fault_response(self, rule: Any, request: Request) -> Response:
        if rule.contention:
            # handles_errors.rb: ActiveRecord::StatementInvalid -> 422, rendered like any error
            try:
                self.authenticate(request)
            except ApiError:
                pass
            return self.error_response(statement_invalid(
                "PG::TRDeadlockDetected: ERROR:  deadlock detected (injected fault)"), request)
        if rule.body is not None:
            raw = rule.body if isinstance(rule.body, bytes) else (
                rule.body.encode() if isinstance(rule.body, str) else json.dumps(rule.body).encode())
            ctype = JSON_TYPE if not isinstance(rule.body, (bytes, str)) else "text/html"
            return Response(raw=raw, status=rule.status, content_type=ctype, headers=rule.headers)
        message = STATUS_TEXT.get(rule.status, "Error")
        if rule.status == 422:
            body = {"error": "Unprocessable Entity (injected fault)", "error_human": "Unprocessable Entity (injected fault)"}
        elif rule.status >= 500:
            body = {"error": f"{message} (injected fault)"}
        else:
            body = {"error": f"{message} (injected fault)", "error_human": f"{message} (injected fault)"}
        return Response(body, rule.status, headers=rule.headers)

    def handle(self, request: Request) -> Response:
        try:
            if getattr(request, "bad_json", False):
                raise ApiError("Error occurred while parsing request parameters", human=False)
            for method, pattern, handler, admin in self.routes:
                match = pattern.fullmatch(request.path)
                if match is None or method != request.method:
                    continue
                self.authenticate(request)
                if admin and not self.state.is_admin(request.user):
                    raise Forbidden("Not authorized")
                return handler(self, request, match.groupdict())
            if any(p.fullmatch(request.path) for _m, p, _h, _a in self.routes):
                self.authenticate(request)
            raise NotFound(f"No route matches [{request.method}] {request.path}")
        except ApiError as exc:
            return self.error_response(exc, request)
        except Exception as exc:  # noqa: BLE001  - Zammad's rescue_from StandardError
            return self.error_response(ApiError(f"{type(exc).__name__}: {exc}", human=False), request)

    def error_response(self, exc: ApiError, request: Request) -> Response:
        body = exc.body()
        # handles_errors.rb#humanize_error: without error_human only admins see the message
        if exc.human is None and not exc.direct:
            if request.user is None or not self.state.is_admin(request.user):
                body = {"error": f"Error ID {secrets.token_urlsafe(6)[:8]}: Please contact your administrator."}
        headers = dict(exc.headers)
        if exc.status in (401, 403):
            headers["X-Failure"] = body.get("error_human", body["error"])
        return Response(body, exc.status, headers=headers)

    # ----------------------------------------------------------------- auth

    def authenticate(self, request: Request) -> None:
        state = self.state
        header = request.header("Authorization") or ""
        user = None
        errors: list[str] = []
        scheme, _, credentials = header.strip().partition(" ")
        scheme_low = scheme.lower()
        if scheme_low == "basic":
            try:
                login, _, password = base64.b64decode(credentials).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError):
                login, password = "", ""
            candidate = state.user_by(login)
            if candidate is not None and password and state.passwords.get(candidate["id"]) == password:
                user = candidate
            else:
                errors.append("Invalid BasicAuth credentials")
        elif scheme_low in ("token", "bearer"):
            token = credentials.strip()
            match = re.match(r'token="?([^",]+)"?', token)
            if match:
                token = match.group(1)
            user_id = state.tokens.get(token)
            user = state.find("users", user_id) if user_id is not None else None
            if user is None:
                errors.append("Can't find User for Token")
                if scheme_low == "bearer":  # Doorkeeper looks at Bearer tokens next
                    raise NotAuthorized("The provided token is invalid.")
        if user is None:
            if errors:
                raise NotAuthorized(", ".join(errors))
            raise Forbidden("Authentication required")
        if not user.get("active"):
            raise NotAuthorized("Login failed. Have you double-checked your credentials and completed the email "
                                "verification step?")
        request.real_user = user
        behalf = request.header("X-On-Behalf-Of")
        if behalf:
            if not state.is_admin(user):
                raise NotAuthorized("Current user has no permission to use 'X-On-Behalf-Of'!")
            target = state.user_by(behalf)
            if target is None:
                raise NotAuthorized(f"No such user '{behalf}'")
            user = target
        request.user = user

    # ----------------------------------------------------------------- routing

    def _register(self) -> None:
        def add(method: str, path: str, handler: Handler, admin: bool = False) -> None:
            pattern = re.compile("/api/v1" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path))
            self.routes.append((method, pattern, handler, admin))

        self.register_people(add)
        self.register_tickets(add)
        self.register_admin(add)

    # ----------------------------------------------------------------- helpers

    def _render(self, table: str, record: dict[str, Any], request: Request, *, default: str = "ids") -> dict[str, Any]:
        if request.expand:
            return self.state.with_names(table, record)
        if default == "attributes":
            return self.state.attributes(table, record)
        return self.state.with_ids(table, record)

    def _list(self, table: str, records: list[dict[str, Any]], request: Request, *, default: str = "ids") -> list[Any]:
        return [self._render(table, r, request, default=default) for r in records]

    def _require_agent(self, request: Request) -> None:
        if not self.state.is_agent(request.user):
            raise Forbidden("Not authorized")

