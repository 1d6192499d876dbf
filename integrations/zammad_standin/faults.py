"""Fault injection and the request log, for tests of the stand-in's clients.

::

    standin.state.faults.fail_next(2, status=503)            # next 2 requests answer 503
    standin.state.faults.fail_next(1, status=500, method="PUT", path="/api/v1/tickets/")
    standin.state.faults.fail_for(1.5, status=500)            # every request for 1.5 s
    standin.state.faults.slow_next(1, delay=0.5)              # answer after 0.5 s
    standin.state.faults.hang_next(1)                         # never answer (until released/stopped)
    standin.state.faults.contention_next(1, method="PUT")      # 422 as a deadlock makes it (StatementInvalid)
    standin.state.requests.writes()                           # POST/PUT/PATCH/DELETE entries
    standin.state.requests.counts()                           # {"GET /api/v1/tickets/{id}": 3, ...}

A rule matches a request by method and path prefix (both optional).  Failures answer
with Zammad's error body (``{"error": ..., "error_human": ...}``) and do not touch the
state; a slow rule delays the real answer.  Faulted requests are logged too, with
``fault`` set.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ID_SEGMENT = re.compile(r"/\d+(?=/|$)")


def path_kind(path: str) -> str:
    """A request path with its numeric ids replaced by ``{id}``: ``/api/v1/tickets/{id}``."""
    return _ID_SEGMENT.sub("/{id}", path)


@dataclass
class FaultRule:
    kind: str  # "fail", "slow" or "hang"
    remaining: int | None = None  # requests left (None: until `until`)
    until: float | None = None  # monotonic deadline
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    method: str | None = None
    path: str | None = None
    #: slow/hang: handle the request first (it takes effect), then delay the answer.
    apply_first: bool = False
    #: fail as database contention does: ActiveRecord::StatementInvalid -> 422 (handles_errors.rb)
    contention: bool = False

    def matches(self, method: str, path: str, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path and not path.startswith(self.path):
            return False
        return True

    @property
    def spent(self) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return True
        return self.until is not None and time.monotonic() >= self.until


class Faults:
    """Rules applied, in the order added, to incoming requests."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._release = threading.Event()

    def _add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._release.clear()
            self._rules.append(rule)
        return rule

    def fail_next(self, n: int = 1, *, status: int = 500, body: Any = None, headers: dict[str, str] | None = None,
                  method: str | None = None, path: str | None = None) -> FaultRule:
        """Answer the next ``n`` matching requests with ``status`` (Zammad-shaped body unless ``body``)."""
        return self._add(FaultRule("fail", remaining=n, status=status, body=body, headers=dict(headers or {}),
                                   method=method, path=path))

    def fail_for(self, seconds: float, *, status: int = 500, body: Any = None,
                 headers: dict[str, str] | None = None, method: str | None = None,
                 path: str | None = None) -> FaultRule:
        """Answer every matching request with ``status`` for ``seconds``."""
        return self._add(FaultRule("fail", until=time.monotonic() + seconds, status=status, body=body,
                                   headers=dict(headers or {}), method=method, path=path))

    def contention_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> FaultRule:
        """Answer the next ``n`` matching requests as Zammad does when PostgreSQL reports a deadlock or
        lock timeout: 422 with the database message (no ``error_human``; non-admins see an error id).
        The request does not take effect (the transaction was rolled back)."""
        return self._add(FaultRule("fail", remaining=n, status=422, method=method, path=path, contention=True))

    def slow_next(self, n: int = 1, *, delay: float, method: str | None = None, path: str | None = None,
                  apply_first: bool = False) -> FaultRule:
        """Delay the next ``n`` matching requests by ``delay`` seconds, then answer normally.

        ``apply_first=True`` handles the request before the delay: a client that times
        out has nevertheless changed the state (a POST that "failed" but took effect)."""
        return self._add(FaultRule("slow", remaining=n, delay=delay, method=method, path=path,
                                   apply_first=apply_first))

    def slow_for(self, seconds: float, *, delay: float, method: str | None = None,
                 path: str | None = None) -> FaultRule:
        return self._add(FaultRule("slow", until=time.monotonic() + seconds, delay=delay, method=method, path=path))

    def hang_next(self, n: int = 1, *, seconds: float | None = None, method: str | None = None,
                  path: str | None = None, apply_first: bool = False) -> FaultRule:
        """Do not answer the next ``n`` matching requests: hold them for ``seconds`` (default: until
        `release` or the server stops), then answer 504 (WSGI cannot drop a connection; the client has given up by then).
        ``apply_first=True`` handles the request before holding it."""
        return self._add(FaultRule("hang", remaining=n, delay=seconds if seconds is not None else 3600.0,
                                   method=method, path=path, apply_first=apply_first))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
        self.release()

    def release(self) -> None:
        """Let every held (hanging) request go."""
        self._release.set()

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first rule matching this request (its count decremented), or None."""
        now = time.monotonic()
        with self._lock:
            self._rules = [r for r in self._rules if not r.spent]
            for rule in self._rules:
                if rule.matches(method, path, now):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def wait_released(self, seconds: float) -> None:
        self._release.wait(seconds)


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, Any]
    body: Any
    user_id: int | None
    user: str | None
    status: int | None = None
    fault: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS


class RequestLog:
    """Every request the stand-in received, in order (thread-safe)."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()

    def add(self, entry: LoggedRequest) -> LoggedRequest:
        with self._lock:
            self._entries.append(entry)
        return entry

    def all(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def writes(self) -> list[LoggedRequest]:
        return [e for e in self.all() if e.is_write]

    def matching(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        return [e for e in self.all()
                if (method is None or e.method == method.upper()) and (path is None or e.path.startswith(path))]

    def counts(self, *, since: int = 0) -> dict[str, int]:
        """API calls by kind (``METHOD /api/v1/path`` with numeric ids as ``{id}``), from entry ``since`` on."""
        out: dict[str, int] = {}
        for entry in self.all()[since:]:
            kind = f"{entry.method} {path_kind(entry.path)}"
            out[kind] = out.get(kind, 0) + 1
        return out

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
