"""Requests and responses of the stand-in's WSGI app, and Zammad's pagination.

Rails merges query and body parameters, and parses bracketed query keys into nested
hashes (``condition[ticket.state_id][operator]=is``), which tickets/search relies on.
Pagination follows app/controllers/concerns/can_paginate.rb / paginates/pagination.rb:
``per_page`` (or ``limit``), a default and a cap per endpoint, ``page`` from 1.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qsl

if TYPE_CHECKING:  # for the Handler alias only
    from integrations.zammad_standin.app import ZammadApp

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


def nested_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Rack's nested query parsing: ``a[b][c]=1`` -> ``{"a": {"b": {"c": "1"}}}``; ``a[]=1`` -> list."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        keys = [key.split("[", 1)[0]] + re.findall(r"\[([^\]]*)\]", key)
        node: Any = out
        for i, part in enumerate(keys):
            last = i == len(keys) - 1
            if part == "" and isinstance(node, list):
                node.append(value)
                break
            if last:
                node[part] = value
                break
            nxt = keys[i + 1]
            if part not in node or not isinstance(node[part], (dict, list)):
                node[part] = [] if nxt == "" else {}
            node = node[part]
    return out


class Request:
    def __init__(self, environ: dict[str, Any]) -> None:
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.query = nested_params(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
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


