"""A tiny JSON client for a running Zammad stand-in, shared by the tests."""

from __future__ import annotations

from typing import Any

import requests


class Api:
    """A tiny JSON client for a running stand-in."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base
        self.token = token
        self.session = requests.Session()

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        tok = token if token is not None else self.token
        out = {"Authorization": f"Token token={tok}"} if tok else {}
        out.update(extra)
        return out

    def call(self, method: str, path: str, *, token: str | None = None, headers: dict[str, str] | None = None,
             **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + "/api/v1/" + path.lstrip("/"),
                                    headers={**self.headers(token), **(headers or {})}, timeout=5, **kwargs)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.call("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.call("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.call("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.call("DELETE", path, **kw)
