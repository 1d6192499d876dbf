"""The stand-in's WSGI application: routing, authentication, rendering, errors.

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
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

from integrations.zammad_standin.faults import LoggedRequest
from integrations.zammad_standin.state import (
    ApiError,
    Forbidden,
    NotAuthorized,
    NotFound,
    State,
    Unprocessable,
)

JSON_TYPE = "application/json; charset=utf-8"
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
               403: "Forbidden", 404: "Not Found", 408: "Request Timeout", 422: "Unprocessable Entity",
               429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
               503: "Service Unavailable", 504: "Gateway Timeout"}


class Response:
    def __init__(self, body: Any = None, status: int = 200, *, content_type: str = JSON_TYPE,
                 headers: dict[str, str] | None = None, raw: bytes | None = None) -> None:
        self.status = status
        self.headers = dict(headers or {})
        if raw is not None:
            self.data = raw
        else:
            self.data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        self.content_type = content_type


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.raw = environ["wsgi.input"].read(length) if length > 0 else b""
        self.body: Any = None
        ctype = environ.get("CONTENT_TYPE", "") or ""
        if self.raw:
            text = self.raw.decode("utf-8", errors="replace")
            if "application/x-www-form-urlencoded" in ctype:
                self.body = dict(parse_qsl(text, keep_blank_values=True))
            else:
                try:
                    self.body = json.loads(text)
                except ValueError:
                    self.body = None
                    self.bad_json = True
        self.params: dict[str, Any] = dict(self.query)
        if isinstance(self.body, dict):
            self.params.update(self.body)
        self.user: dict[str, Any] | None = None
        self.real_user: dict[str, Any] | None = None

    def header(self, name: str) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    @property
    def expand(self) -> bool:
        return self.params.get("expand") in (True, "true")

    @property
    def data(self) -> dict[str, Any]:
        """The request's JSON object (query parameters merged in, as Rails does)."""
        return {k: v for k, v in self.params.items() if k not in ("expand", "full", "all")}


Handler = Callable[["ZammadApp", Request, dict[str, str]], Response]


def paginate(items: list[Any], params: dict[str, Any], *, default: int, maximum: int) -> list[Any]:
    raw = params.get("per_page") or params.get("limit") or default
    try:
        limit = min(int(raw), maximum)
    except (TypeError, ValueError):
        limit = min(default, maximum)
    try:
        page = int(params.get("page") or 1)
    except (TypeError, ValueError):
        page = 1
    offset = (page - 1) * limit
    if limit <= 0 or offset < 0:
        return []
    return items[offset:offset + limit]


class ZammadApp:
    """WSGI callable.  ``state`` is the in-memory Zammad."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._register()

    # ----------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        entry = LoggedRequest(method=request.method, path=request.path, query=dict(request.query),
                              body=request.body if request.body is not None else (request.raw.decode("utf-8", "replace") or None),
                              user_id=None, user=None)
        self.state.requests.add(entry)
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
            response = self._fault_response(rule)
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

    def _fault_response(self, rule: Any) -> Response:
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
        if exc.status >= 500 and exc.human is None:
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

        add("GET", "/users/me", ZammadApp.users_me)
        add("GET", "/users/search", ZammadApp.users_search)
        add("GET", "/users", ZammadApp.users_index)
        add("POST", "/users", ZammadApp.users_create)
        add("GET", "/users/{id}", ZammadApp.users_show)
        add("PUT", "/users/{id}", ZammadApp.users_update)
        add("DELETE", "/users/{id}", ZammadApp.users_destroy, admin=True)

        add("GET", "/organizations/search", ZammadApp.organizations_search)
        add("GET", "/organizations", ZammadApp.organizations_index)
        add("POST", "/organizations", ZammadApp.organizations_create)
        add("GET", "/organizations/{id}", ZammadApp.organizations_show)
        add("PUT", "/organizations/{id}", ZammadApp.organizations_update)
        add("DELETE", "/organizations/{id}", ZammadApp.organizations_destroy, admin=True)

        add("GET", "/groups", ZammadApp.groups_index)
        add("POST", "/groups", ZammadApp.groups_create, admin=True)
        add("GET", "/groups/{id}", ZammadApp.groups_show)
        add("PUT", "/groups/{id}", ZammadApp.groups_update, admin=True)
        add("DELETE", "/groups/{id}", ZammadApp.groups_destroy, admin=True)

        add("GET", "/tickets/search", ZammadApp.tickets_search)
        add("GET", "/tickets", ZammadApp.tickets_index)
        add("POST", "/tickets", ZammadApp.tickets_create)
        add("GET", "/tickets/{id}", ZammadApp.tickets_show)
        add("PUT", "/tickets/{id}", ZammadApp.tickets_update)
        add("DELETE", "/tickets/{id}", ZammadApp.tickets_destroy, admin=True)

        add("GET", "/ticket_articles/by_ticket/{id}", ZammadApp.articles_by_ticket)
        add("GET", "/ticket_articles", ZammadApp.articles_index, admin=True)
        add("POST", "/ticket_articles", ZammadApp.articles_create)
        add("GET", "/ticket_articles/{id}", ZammadApp.articles_show)
        add("PUT", "/ticket_articles/{id}", ZammadApp.articles_update)
        add("DELETE", "/ticket_articles/{id}", ZammadApp.articles_destroy, admin=True)

        add("GET", "/tags", ZammadApp.tags_list)
        add("POST", "/tags/add", ZammadApp.tags_add)
        add("DELETE", "/tags/remove", ZammadApp.tags_remove)
        add("GET", "/tag_list", ZammadApp.tag_list)
        add("GET", "/tag_search", ZammadApp.tag_search)

        add("GET", "/mentions", ZammadApp.mentions_list)
        add("POST", "/mentions", ZammadApp.mentions_create)
        add("DELETE", "/mentions/{id}", ZammadApp.mentions_destroy)

        for table, path in (("ticket_states", "/ticket_states"), ("ticket_priorities", "/ticket_priorities"),
                            ("roles", "/roles")):
            add("GET", path, _lookup_index(table))
            add("GET", path + "/{id}", _lookup_show(table))

        add("GET", "/object_manager_attributes", ZammadApp.attributes_index, admin=True)
        add("POST", "/object_manager_attributes", ZammadApp.attributes_create, admin=True)
        add("GET", "/object_manager_attributes/{id}", ZammadApp.attributes_show, admin=True)
        add("PUT", "/object_manager_attributes/{id}", ZammadApp.attributes_update, admin=True)
        add("DELETE", "/object_manager_attributes/{id}", ZammadApp.attributes_destroy, admin=True)
        add("POST", "/object_manager_attributes_execute_migrations", ZammadApp.attributes_migrate, admin=True)
        add("POST", "/object_manager_attributes_discard_changes", ZammadApp.attributes_discard, admin=True)

        for table in ("calendars", "slas", "triggers", "webhooks"):
            add("GET", f"/{table}", _generic_index(table), admin=True)
            add("POST", f"/{table}", _generic_create(table), admin=True)
            add("GET", f"/{table}/{{id}}", _generic_show(table), admin=True)
            add("PUT", f"/{table}/{{id}}", _generic_update(table), admin=True)
            add("DELETE", f"/{table}/{{id}}", _generic_destroy(table), admin=True)

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

    # ----------------------------------------------------------------- users

    def users_me(self, request: Request, _args: dict[str, str]) -> Response:
        return Response(self._render("users", request.user, request))

    def users_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            users = self.state.all("users")
            if not self.state.is_agent(request.user):
                users = [u for u in users if u["id"] == request.user["id"]]
            users = paginate(users, request.params, default=500, maximum=500)
            return Response(self._list("users", users, request))

    def users_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            user = self.state.get("users", args["id"])
            if not self.state.is_agent(request.user) and user["id"] != request.user["id"]:
                raise Forbidden("Not authorized")
            return Response(self._render("users", user, request))

    def users_create(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            user = self.state.create_user(request.data, request.user["id"])
            return Response(self._render("users", user, request), 201)

    def users_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            target = self.state.get("users", args["id"])
            if not self.state.is_agent(request.user) and target["id"] != request.user["id"]:
                raise Forbidden("Not authorized")
            user = self.state.update_user(args["id"], request.data, request.user["id"])
            return Response(self._render("users", user, request))

    def users_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_user(args["id"])
        return Response({})

    def users_search(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            found = [u for u in self.state.all("users") if u["id"] != 1 and
                     _matches(self.state.with_names("users", u), request.params.get("query"),
                              ("login", "firstname", "lastname", "email", "phone", "mobile", "note"))]
            if request.params.get("page") and request.params.get("per_page"):
                found = paginate(found, request.params, default=100, maximum=500)
            else:
                found = found[: min(int(request.params.get("limit") or 100), 500)]
            return Response(self._list("users", found, request))

    # ----------------------------------------------------------------- organizations

    def organizations_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            orgs = self.state.all("organizations")
            if not self.state.is_agent(request.user):
                orgs = [o for o in orgs if o["id"] == request.user.get("organization_id")]
            return Response(self._list("organizations", paginate(orgs, request.params, default=500, maximum=500),
                                       request))

    def organizations_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            org = self.state.get("organizations", args["id"])
            if not self.state.is_agent(request.user) and org["id"] != request.user.get("organization_id"):
                raise Forbidden("Not authorized")
            return Response(self._render("organizations", org, request))

    def organizations_create(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            org = self.state.create_named("organizations", request.data, request.user["id"])
            return Response(self._render("organizations", org, request), 201)

    def organizations_update(self, request: Request, args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            org = self.state.update_named("organizations", args["id"], request.data, request.user["id"])
            return Response(self._render("organizations", org, request))

    def organizations_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_organization(args["id"])
        return Response({})

    def organizations_search(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            found = [o for o in self.state.all("organizations")
                     if _matches(self.state.with_names("organizations", o), request.params.get("query"),
                                 ("name", "domain", "note"))]
            if request.params.get("page") and request.params.get("per_page"):
                found = paginate(found, request.params, default=100, maximum=500)
            else:
                found = found[: min(int(request.params.get("limit") or 100), 500)]
            return Response(self._list("organizations", found, request))

    # ----------------------------------------------------------------- groups

    def groups_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            groups = paginate(self.state.all("groups"), request.params, default=500, maximum=500)
            return Response(self._list("groups", groups, request))

    def groups_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            return Response(self._render("groups", self.state.get("groups", args["id"]), request))

    def groups_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            group = self.state.create_named("groups", request.data, request.user["id"])
            return Response(self._render("groups", group, request), 201)

    def groups_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            group = self.state.update_named("groups", args["id"], request.data, request.user["id"])
            return Response(self._render("groups", group, request))

    def groups_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_group(args["id"])
        return Response({})

    # ----------------------------------------------------------------- tickets

    def _visible_tickets(self, request: Request) -> list[dict[str, Any]]:
        tickets = self.state.all("tickets")
        if not self.state.is_agent(request.user):
            tickets = [t for t in tickets if t["customer_id"] == request.user["id"]]
        return tickets

    def _ticket(self, request: Request, rid: Any) -> dict[str, Any]:
        ticket = self.state.get("tickets", rid)
        if not self.state.is_agent(request.user) and ticket["customer_id"] != request.user["id"]:
            raise Forbidden("Not authorized")
        return ticket

    def tickets_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            tickets = paginate(self._visible_tickets(request), request.params, default=100, maximum=100)
            return Response(self._list("tickets", tickets, request, default="attributes"))

    def tickets_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            ticket = self._ticket(request, args["id"])
            if request.params.get("all") in ("true", True):
                return Response(self._ticket_all(ticket))
            return Response(self._render("tickets", ticket, request, default="attributes"))

    def _ticket_all(self, ticket: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        articles = state.articles_of(ticket["id"])
        assets: dict[str, Any] = {"Ticket": {str(ticket["id"]): state.with_ids("tickets", ticket)},
                                  "TicketArticle": {str(a["id"]): state.with_names("articles", a) for a in articles}}
        return {"ticket_id": ticket["id"], "ticket_article_ids": [a["id"] for a in articles],
                "assets": assets, "links": [], "tags": state.tags_of("Ticket", ticket["id"]),
                "mentions": [m["id"] for m in state.all("mentions") if m["mentionable_id"] == ticket["id"]],
                "time_accountings": [], "form_meta": {}}

    def tickets_create(self, request: Request, _args: dict[str, str]) -> Response:
        ticket, _article = self.state.create_ticket(request.data, request.user["id"])
        with self.state.lock:
            return Response(self._render("tickets", ticket, request), 201)

    def tickets_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            self._ticket(request, args["id"])
        ticket, _article = self.state.update_ticket(args["id"], request.data, request.user["id"])
        with self.state.lock:
            return Response(self._render("tickets", ticket, request))

    def tickets_destroy(self, request: Request, args: dict[str, str]) -> Response:
        self.state.delete_ticket(args["id"])
        return Response(raw=b"", content_type="text/html", headers={"Cache-Control": "no-cache"})

    def tickets_search(self, request: Request, _args: dict[str, str]) -> Response:
        state = self.state
        with state.lock:
            query = request.params.get("query")
            found = []
            for ticket in self._visible_tickets(request):
                record = state.with_names("tickets", ticket)
                record["tags"] = state.tags_of("Ticket", ticket["id"])
                texts = [f"{a.get('subject') or ''} {a.get('body') or ''}" for a in state.articles_of(ticket["id"])]
                record["article"] = " ".join(texts)
                if _matches(record, query, ("title", "number", "note", "article", "tags", "customer", "owner",
                                            "organization")):
                    found.append(ticket)
            if request.params.get("sort_by"):
                key = str(request.params["sort_by"])
                found.sort(key=lambda t: str(t.get(key) or ""), reverse=request.params.get("order_by") == "desc")
            page = paginate(found, request.params, default=50, maximum=200)
            if request.expand:
                return Response(self._list("tickets", page, request))
            return Response({"tickets": [t["id"] for t in page], "tickets_count": len(found),
                             "assets": {"Ticket": {str(t["id"]): state.with_ids("tickets", t) for t in page}}})

    # ----------------------------------------------------------------- articles

    def articles_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            articles = paginate(self.state.all("articles"), request.params, default=500, maximum=500)
            return Response([self.state.with_names("articles", a) if request.expand else self.state.with_ids("articles", a)
                             for a in articles])

    def _visible_articles(self, request: Request, ticket: dict[str, Any]) -> list[dict[str, Any]]:
        articles = self.state.articles_of(ticket["id"])
        if not self.state.is_agent(request.user):
            articles = [a for a in articles if not a["internal"]]
        return articles

    def articles_by_ticket(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            ticket = self._ticket(request, args["id"])
            return Response([self.state.with_names("articles", a) for a in self._visible_articles(request, ticket)])

    def articles_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            article = self.state.get("articles", args["id"])
            ticket = self._ticket(request, article["ticket_id"])
            if article not in self._visible_articles(request, ticket):
                raise Forbidden("Not authorized")
            return Response(self.state.with_names("articles", article))

    def articles_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            if request.data.get("ticket_id") is not None:
                self._ticket(request, request.data["ticket_id"])
        article = self.state.create_article(request.data, request.user["id"])
        with self.state.lock:
            return Response(self.state.with_names("articles", article), 201)

    def articles_update(self, request: Request, args: dict[str, str]) -> Response:
        self._require_agent(request)
        with self.state.lock:
            article = self.state.get("articles", args["id"])
            if request.data.get("internal") is not None:
                value = request.data["internal"]
                article["internal"] = value if isinstance(value, bool) else str(value).lower() == "true"
            highlight = (request.data.get("preferences") or {}).get("highlight") if isinstance(
                request.data.get("preferences"), dict) else None
            if highlight:
                article["preferences"] = dict(article["preferences"] or {}, highlight=str(highlight))
            self.state.touch(article, request.user["id"])
            return Response(self.state.with_names("articles", article))

    def articles_destroy(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            article = self.state.get("articles", args["id"])
            del self.state.tables["articles"][article["id"]]
            ticket = self.state.find("tickets", article["ticket_id"])
            if ticket is not None:
                ticket["article_count"] = len(self.state.articles_of(ticket["id"]))
            return Response({})

    # ----------------------------------------------------------------- tags

    def _tag_target(self, request: Request) -> tuple[str, Any]:
        object_name = request.params.get("object")
        o_id = request.params.get("o_id")
        if object_name == "Ticket" and o_id not in (None, ""):
            with self.state.lock:
                self._ticket(request, o_id)
        return object_name, o_id

    def tags_list(self, request: Request, _args: dict[str, str]) -> Response:
        object_name, o_id = self._tag_target(request)
        try:
            tags = self.state.tags_of(object_name, int(o_id))
        except (TypeError, ValueError):
            tags = []
        return Response({"tags": tags})

    def tags_add(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        object_name, o_id = self._tag_target(request)
        return Response(self.state.tag_add(object_name, o_id, request.params.get("item"), request.user["id"]), 201)

    def tags_remove(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        object_name, o_id = self._tag_target(request)
        return Response(self.state.tag_remove(object_name, o_id, request.params.get("item"), request.user["id"]))

    def tag_list(self, request: Request, _args: dict[str, str]) -> Response:
        counts: dict[str, int] = {}
        for tags in self.state.tags.values():
            for tag in tags:
                counts[tag] = counts.get(tag, 0) + 1
        return Response([{"id": i + 1, "name": n, "count": counts[n]} for i, n in enumerate(sorted(counts))])

    def tag_search(self, request: Request, _args: dict[str, str]) -> Response:
        term = str(request.params.get("term") or "").strip().lower()
        names = sorted({t for tags in self.state.tags.values() for t in tags if term in t.lower()})
        return Response([{"id": i + 1, "value": n} for i, n in enumerate(names[: int(request.params.get("limit") or 10)])])

    # ----------------------------------------------------------------- mentions

    def mentions_list(self, request: Request, _args: dict[str, str]) -> Response:
        self._require_agent(request)
        params = request.params
        with self.state.lock:
            mentions = self.state.all("mentions")
            if params.get("id"):
                mentions = [m for m in mentions if str(m["id"]) == str(params["id"])]
            if params.get("user_id"):
                self.state.get("users", params["user_id"])
                mentions = [m for m in mentions if str(m["user_id"]) == str(params["user_id"])]
            if params.get("mentionable_type"):
                if params["mentionable_type"] != "Ticket":
                    raise ApiError("The parameter 'mentionable_type' is invalid.", human=False)
                if params.get("mentionable_id"):
                    self._ticket(request, params["mentionable_id"])
                    mentions = [m for m in mentions if str(m["mentionable_id"]) == str(params["mentionable_id"])]
            mentions.sort(key=lambda m: (m["created_at"], m["id"]), reverse=True)
            return Response({"mentions": [self.state.attributes("mentions", m) for m in mentions]})

    def mentions_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            mention = self.state.add_mention(request.params.get("mentionable_type"),
                                             request.params.get("mentionable_id"), request.user["id"])
            return Response(self.state.attributes("mentions", mention), 201)

    def mentions_destroy(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            mention = self.state.remove_mention(args["id"], request.user["id"])
            return Response(self.state.attributes("mentions", mention))

    # ----------------------------------------------------------------- object manager

    def attributes_index(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            return Response([self.state.attribute_full(a) for a in self.state.all("attributes")])

    def attributes_show(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            return Response(self.state.with_ids("attributes", self.state.get("attributes", args["id"])))

    def attributes_create(self, request: Request, _args: dict[str, str]) -> Response:
        with self.state.lock:
            record = self.state.add_attribute(request.data, request.user["id"])
            return Response(self.state.with_ids("attributes", record), 201)

    def attributes_update(self, request: Request, args: dict[str, str]) -> Response:
        with self.state.lock:
            record = self.state.update_attribute(args["id"], request.data, request.user["id"])
            return Response(self.state.with_ids("attributes", record))

    def attributes_destroy(self, request: Request, args: dict[str, str]) -> Response:
        try:
            self.state.remove_attribute(args["id"], request.user["id"])
        except NotFound as exc:  # the controller rescues everything as 422
            raise Unprocessable(exc.message) from exc
        return Response({})

    def attributes_migrate(self, request: Request, _args: dict[str, str]) -> Response:
        self.state.execute_migrations()
        return Response({})

    def attributes_discard(self, request: Request, _args: dict[str, str]) -> Response:
        self.state.discard_attribute_changes()
        return Response({})


# --------------------------------------------------------------------------- generic handlers


def _lookup_index(table: str) -> Handler:
    def handler(app: ZammadApp, request: Request, _args: dict[str, str]) -> Response:
        with app.state.lock:
            records = paginate(app.state.all(table), request.params, default=500, maximum=500)
            return Response(app._list(table, records, request))
    return handler


def _lookup_show(table: str) -> Handler:
    def handler(app: ZammadApp, request: Request, args: dict[str, str]) -> Response:
        with app.state.lock:
            return Response(app._render(table, app.state.get(table, args["id"]), request))
    return handler


def _generic_index(table: str) -> Handler:
    return _lookup_index(table)


def _generic_show(table: str) -> Handler:
    return _lookup_show(table)


def _generic_create(table: str) -> Handler:
    def handler(app: ZammadApp, request: Request, _args: dict[str, str]) -> Response:
        with app.state.lock:
            record = app.state.create_generic(table, request.data, request.user["id"])
            return Response(app._render(table, record, request), 201)
    return handler


def _generic_update(table: str) -> Handler:
    def handler(app: ZammadApp, request: Request, args: dict[str, str]) -> Response:
        with app.state.lock:
            record = app.state.update_generic(table, args["id"], request.data, request.user["id"])
            return Response(app._render(table, record, request))
    return handler


def _generic_destroy(table: str) -> Handler:
    def handler(app: ZammadApp, request: Request, args: dict[str, str]) -> Response:
        app.state.delete_generic(table, args["id"])
        return Response({})
    return handler


# --------------------------------------------------------------------------- search


def _matches(record: dict[str, Any], query: Any, fields: tuple[str, ...]) -> bool:
    """A small subset of Zammad's (Elasticsearch) query syntax: terms are ANDed; a term
    ``field:value`` (``state.name:new`` also works as ``state:new``) compares that field
    case-insensitively (``*`` wildcards allowed); a bare term matches as a substring of
    any of ``fields``; ``*`` or an empty query matches everything."""
    text = str(query or "").strip()
    if text in ("", "*"):
        return True
    for term in re.findall(r'(?:[^\s"]+:"[^"]*"|"[^"]*"|\S+)', text):
        if term.upper() in ("AND", "&&"):
            continue
        key, sep, value = term.partition(":")
        if sep and key and not key.startswith('"'):
            key = key.removesuffix(".name")
            value = value.strip('"').lower()
            actual = record.get(key)
            values = actual if isinstance(actual, list) else [actual]
            pattern = re.compile("^" + re.escape(value).replace(r"\*", ".*") + "$")
            if not any(v is not None and pattern.match(str(v).lower()) for v in values):
                return False
            continue
        needle = term.strip('"').lower().replace("*", "")
        haystack = " ".join(
            " ".join(map(str, record.get(f))) if isinstance(record.get(f), list) else str(record.get(f) or "")
            for f in fields
        ).lower()
        if needle not in haystack:
            return False
    return True
