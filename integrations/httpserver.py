"""The service's HTTP/1.1 server: one asyncio event loop, strict about what it accepts.

Why not waitress: under load its main thread (reading, parsing, handing each request to a
worker thread and back) held the GIL about 70 % of the time, 0.4-0.5 ms of CPU per request
on our machines, so it alone capped a service process near 2,000 requests/s. Here a request
costs the loop about a tenth of that (docs/benchmarks.md).

How a request is served:

* The loop reads and parses it (`parse_head`). Limits are the ones waitress had
  (docs/limits.md): request line and headers 256 KiB (431), the app's body limit (413, the
  body is not read), a header deadline and a body deadline counted from the request's first
  byte however slowly it trickles, an idle deadline between kept-alive requests, and at most
  ``connection_limit`` open connections (past it, new ones wait in the kernel's listen queue).
* An app route that never blocks (`WebhookService.nonblocking_routes`: Zammad's deliveries)
  is handled in the loop itself; its event goes to the store's group commit
  (`Store.receive_nowait`) and is answered when the committer says it is durable. So a
  thousand waiting webhooks cost no thread each, and one commit answers them all.
* Every other request runs the WSGI app in a pool of ``threads`` threads.

Requests of one connection are answered in order, one at a time (pipelined ones wait in the
buffer). ``Transfer-Encoding: chunked`` bodies are decoded; any other transfer coding is 501.
Bad framing (two different ``Content-Length``, both it and ``Transfer-Encoding``, a folded
or malformed header line) is 400 with the connection closed: nothing a proxy in front could
read differently is accepted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import logging
import re
import socket
import sys
import threading
import time
from collections import deque
from email.utils import formatdate
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

log = logging.getLogger("policydesk.http")

#: Request line and headers, in all.
MAX_HEAD = 256 * 1024
#: Deadlines are checked this often: a connection is cut at most this late.
SWEEP_SECONDS = 1.0

_REQUEST_LINE = re.compile(rb"([A-Z]{1,20}) (\S{1,16384}) HTTP/(1\.[01])")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]*)?")

_REASONS = {100: "Continue", 400: "Bad Request", 411: "Length Required", 413: "Payload Too Large",
            431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented"}


class BadRequest(Exception):
    """A request that cannot be read: answered with ``status`` and the connection closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Request:
    """A parsed request line and headers."""

    __slots__ = ("method", "target", "version", "headers", "length", "chunked", "keep_alive", "expect_continue")

    def __init__(self, method: str, target: bytes, version: str, headers: list[tuple[str, str]], length: int,
                 chunked: bool, keep_alive: bool, expect_continue: bool) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.length = length
        self.chunked = chunked
        self.keep_alive = keep_alive
        self.expect_continue = expect_continue


def parse_head(head: bytes) -> Request:
    """The request line and headers (``head`` without its final blank line); `BadRequest`."""
    lines = head.split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise BadRequest(400, "malformed HTTP request")
    method, target, version = match.group(1).decode(), match.group(2), match.group(3).decode()
    headers: list[tuple[str, str]] = []
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    connection = b""
    expect = b""
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):  # also a folded line (leading space) or a bare LF
            raise BadRequest(400, "malformed HTTP request")
        value = value.strip(b" \t")
        if _BAD_VALUE.search(value):
            raise BadRequest(400, "malformed HTTP request")
        lower = name.lower()
        if lower == b"content-length":
            lengths.add(value)
        elif lower == b"transfer-encoding":
            codings.extend(c.strip().lower() for c in value.split(b","))
        elif lower == b"connection":
            connection += b"," + value.lower()
        elif lower == b"expect":
            expect = value.lower()
        headers.append((name.decode("latin-1"), value.decode("latin-1")))
    if codings and lengths:
        raise BadRequest(400, "both Content-Length and Transfer-Encoding")
    if codings and codings != [b"chunked"]:
        raise BadRequest(501, "this Transfer-Encoding is not supported")
    if len(lengths) > 1:
        raise BadRequest(400, "conflicting Content-Length headers")
    length = 0
    if lengths:
        raw = lengths.pop()
        if not (raw.isdigit() and len(raw) <= 18):
            raise BadRequest(400, "malformed Content-Length")
        length = int(raw)
    tokens = {t.strip() for t in connection.split(b",")}
    keep_alive = b"close" not in tokens if version == "1.1" else b"keep-alive" in tokens
    return Request(method, target, version, headers, length, bool(codings), keep_alive, expect == b"100-continue")


def dechunk(buffer: bytearray | bytes, limit: int) -> tuple[bytes, int] | None:
    """A chunked body at the start of ``buffer``: ``(body, bytes used)``, or ``None`` while
    incomplete; `BadRequest` when malformed, 413 past ``limit`` bytes of body."""
    body = bytearray()
    at = 0
    while True:
        end = buffer.find(b"\r\n", at, at + 1024)
        if end < 0:
            if len(buffer) - at > 1024:
                raise BadRequest(400, "malformed chunked body")
            return None
        match = _CHUNK_SIZE.fullmatch(bytes(buffer[at:end]))
        if match is None:
            raise BadRequest(400, "malformed chunked body")
        size = int(match.group(1), 16)
        if len(body) + size > limit:
            raise BadRequest(413, "request body too large")
        at = end + 2
        if size == 0:
            while True:  # trailer fields, ignored, up to the blank line
                end = buffer.find(b"\r\n", at, at + 8192)
                if end < 0:
                    if len(buffer) - at > 8192:
                        raise BadRequest(431, "request headers too large")
                    return None
                if end == at:
                    return bytes(body), end + 2
                at = end + 2
        if len(buffer) < at + size + 2:
            return None
        if buffer[at + size:at + size + 2] != b"\r\n":
            raise BadRequest(400, "malformed chunked body")
        body += buffer[at:at + size]
        at += size + 2


def _error_body(status: int, reason: str) -> bytes:
    return json.dumps({"error": reason}).encode()


class _Clock:
    """The ``Date`` header, formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def date(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._text = now, formatdate(now, usegmt=True)
        return self._text


class _Connection(asyncio.Protocol):
    """One client connection: reads requests, answers them in order."""

    def __init__(self, server: "LoopServer") -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.scanned = 0
        self.request: Request | None = None
        self.busy = False  # a request is being answered
        self.closing = False
        self.write_paused = False
        self.read_paused = False
        now = time.monotonic()
        self.idle_since = now
        self.started: float | None = None  # first byte of the request being read
        self.served = 0
        self.http10 = False  # the request being answered is HTTP/1.0
        self.peer = ("", 0)

    # -- asyncio callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = (str(peer[0]), int(peer[1]))
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connection_closed(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        if not self.buffer and self.started is None and not self.busy:
            self.started = time.monotonic()
        self.buffer += data
        if self.busy:
            if len(self.buffer) > MAX_HEAD + self.server.max_body_bytes and not self.read_paused:
                self.read_paused = True  # a pipelining client far ahead of its answers
                self.transport.pause_reading()  # type: ignore[union-attr]
            return
        self.advance()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if not self.busy:
            self.advance()

    # -- reading ----------------------------------------------------------------------

    def advance(self) -> None:
        """Read the next request from the buffer, if it is all there, and start answering it."""
        if self.busy or self.closing or self.write_paused:
            return
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        try:
            request = self.request
            if request is None:
                while self.buffer.startswith(b"\r\n"):  # stray line ends between requests (RFC 9112 2.2)
                    del self.buffer[:2]
                end = self.buffer.find(b"\r\n\r\n", max(0, self.scanned - 3))
                if end < 0:
                    self.scanned = len(self.buffer)
                    if self.scanned > MAX_HEAD:
                        raise BadRequest(431, "request headers too large")
                    return
                if end > MAX_HEAD:
                    raise BadRequest(431, "request headers too large")
                if self.started is None:
                    self.started = time.monotonic()
                request = parse_head(bytes(self.buffer[:end]))
                del self.buffer[:end + 4]
                self.scanned = 0
                if request.method in ("POST", "PUT", "PATCH") and not request.chunked and not any(
                        name.lower() == "content-length" for name, _ in request.headers):
                    raise BadRequest(411, "a Content-Length header is required")
                if request.length > self.server.max_body_bytes + 1:  # the app answers 413 itself up to there
                    raise BadRequest(413, "request body too large")
                self.request = request
                if request.expect_continue and (request.chunked or len(self.buffer) < request.length):
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
            if request.chunked:
                found = dechunk(self.buffer, self.server.max_body_bytes + 1)
                if found is None:
                    return
                body, used = found
            else:
                if len(self.buffer) < request.length:
                    return
                used = request.length
                body = bytes(self.buffer[:used])
            del self.buffer[:used]
        except BadRequest as bad:
            self.refuse(bad)
            return
        self.request = None
        self.busy = True
        self.http10 = request.version == "1.0"
        self.server.dispatch(self, request, body)

    def refuse(self, bad: BadRequest) -> None:
        self.respond(f"{bad.status} {_REASONS.get(bad.status, '')}".strip(),
                     [("Content-Type", "application/json")], _error_body(bad.status, bad.reason), close=True)

    # -- answering --------------------------------------------------------------------

    def respond(self, status: str, headers: list[tuple[str, str]], body: bytes, close: bool = False,
                head_only: bool = False, keep_alive: bool = True) -> None:
        """Write the answer (in the loop's thread) and go on with the next request.

        ``keep_alive``: what the request asked for (HTTP/1.1 unless ``Connection: close``;
        HTTP/1.0 only with ``Connection: keep-alive``, which the answer then confirms)."""
        if self.closing or self.transport is None:
            return
        close = close or not keep_alive or self.server.stopping_now
        out = [f"HTTP/1.1 {status}\r\n"]
        length_given = False
        for name, value in headers:
            if name.lower() == "content-length":
                length_given = True
            elif name.lower() == "connection":
                continue
            out.append(f"{name}: {value}\r\n")
        if not length_given:
            out.append(f"Content-Length: {len(body)}\r\n")
        out.append(f"Date: {self.server.clock.date()}\r\n")
        if close:
            out.append("Connection: close\r\n")
        elif self.http10:
            out.append("Connection: keep-alive\r\n")
        out.append("\r\n")
        self.transport.write("".join(out).encode("latin-1") + (b"" if head_only else body))
        self.served += 1
        if close:
            self.closing = True
            self.transport.close()
            return
        self.busy = False
        self.idle_since = time.monotonic()
        self.started = time.monotonic() if self.buffer else None
        if self.buffer or self.read_paused:
            self.advance()

    def past_deadline(self, now: float) -> bool:
        """Whether the client has taken too long (never while its request is being answered)."""
        if self.busy or self.closing or self.transport is None:
            return False
        server = self.server
        if self.started is None:  # nothing of a request yet: idle, or never sent a byte
            limit = server.idle_timeout if self.served else server.header_timeout
            return now - self.idle_since > limit
        limit = server.header_timeout if self.request is None else server.body_timeout
        return now - self.started > limit


class LoopServer:
    """An HTTP/1.1 server for a WSGI app, on a bound socket, run by `serve` in one thread.

    ``app`` is called in a pool of ``threads`` threads; if it has ``nonblocking_routes``,
    ``handle`` and ``answer`` (`integrations.service.app.WebhookService`), those routes are
    handled in the loop and their events stored through ``app.store.receive_nowait``.
    """

    def __init__(self, app: Callable[..., Any], sock: socket.socket, *, threads: int = 8,
                 connection_limit: int = 1000, header_timeout: float = 10.0, body_timeout: float = 30.0,
                 idle_timeout: float = 30.0, max_body_bytes: int | None = None) -> None:
        self.app = app
        self.sock = sock
        self.threads = threads
        self.connection_limit = connection_limit
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        self.max_body_bytes = max_body_bytes if max_body_bytes is not None else 1 << 30
        self.connections: set[_Connection] = set()
        self.clock = _Clock()
        self.stopping_now = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._accepting = False
        self._stored: deque[tuple[_Connection, Any, Any, Any, bool]] = deque()
        self._drain_scheduled = False
        self._swept = 0.0  # when deadlines were last checked
        host, port = sock.getsockname()[:2]
        self._environ_base = {"SERVER_NAME": str(host), "SERVER_PORT": str(port), "SCRIPT_NAME": "",
                              "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
                              "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
        self._nonblocking = frozenset(getattr(app, "nonblocking_routes", ()))

    # -- running ------------------------------------------------------------------------

    def serve(self, stopping: threading.Event) -> None:
        """Serve in this thread until ``stopping`` is set; then close every connection."""
        asyncio.run(self._main(stopping))

    async def _main(self, stopping: threading.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="http")
        self.sock.setblocking(False)
        self._start_accepting()
        try:
            while not stopping.is_set():
                await asyncio.sleep(0.05)
                now = time.monotonic()
                if now - self._swept >= SWEEP_SECONDS:
                    self._swept = now
                    for connection in list(self.connections):
                        if connection.past_deadline(now):
                            connection.closing = True
                            connection.transport.close()  # type: ignore[union-attr]
        finally:
            self.stopping_now = True
            self._stop_accepting()
            self.sock.close()
            for connection in list(self.connections):
                connection.closing = True
                if connection.transport is not None:
                    connection.transport.close()  # what is written goes out, then FIN
            self._pool.shutdown(wait=False, cancel_futures=True)
            for _ in range(3):
                await asyncio.sleep(0)  # the transports close in the loop's next rounds

    def close_unserved(self) -> None:
        """Close the listening socket of a server that never ran."""
        self.sock.close()

    # -- connections ----------------------------------------------------------------------

    def _start_accepting(self) -> None:
        if not self._accepting and self.loop is not None and not self.stopping_now:
            self._accepting = True
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def _stop_accepting(self) -> None:
        if self._accepting and self.loop is not None:
            self._accepting = False
            self.loop.remove_reader(self.sock.fileno())

    def _accept(self) -> None:
        for _ in range(64):
            if len(self.connections) >= self.connection_limit:
                self._stop_accepting()  # the rest wait in the kernel's listen queue
                return
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # out of file descriptors, say: try again at the next poll
                log.error("accept failed: %s", error)
                return
            conn.setblocking(False)
            if conn.family != socket.AF_UNIX:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self)
            self.connections.add(connection)  # counted at once, for the limit
            assert self.loop is not None
            self.loop.create_task(self._attach(conn, connection))

    async def _attach(self, conn: socket.socket, connection: _Connection) -> None:
        assert self.loop is not None
        try:
            await self.loop.connect_accepted_socket(lambda: connection, sock=conn)
        except OSError:
            self.connection_closed(connection)
            conn.close()

    def connection_closed(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if len(self.connections) < self.connection_limit:
            self._start_accepting()

    # -- requests ---------------------------------------------------------------------------

    def environ(self, connection: _Connection, request: Request, body: bytes) -> dict[str, Any]:
        path, _, query = request.target.partition(b"?")
        if not path.startswith(b"/"):
            if path.lower().startswith((b"http://", b"https://")):  # absolute form: keep its path
                path = b"/" + path.split(b"/", 3)[3] if path.count(b"/") >= 3 else b"/"
            else:
                path = b"/" + path if path != b"*" else b"*"
        environ = dict(self._environ_base)
        environ.update(REQUEST_METHOD=request.method, PATH_INFO=unquote_to_bytes(path).decode("latin-1"),
                       QUERY_STRING=query.decode("latin-1"), SERVER_PROTOCOL=f"HTTP/{request.version}",
                       REMOTE_ADDR=connection.peer[0], REMOTE_PORT=str(connection.peer[1]),
                       CONTENT_LENGTH=str(len(body)) if body or request.method in ("POST", "PUT", "PATCH") else "")
        environ["wsgi.input"] = io.BytesIO(body)
        for name, value in request.headers:
            if "_" in name:  # X_Hub_Signature would pass for X-Hub-Signature in the environ: drop it
                continue
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
                continue
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]}, {value}" if key in environ else value
        return environ

    def dispatch(self, connection: _Connection, request: Request, body: bytes) -> None:
        environ = self.environ(connection, request, body)
        head_only = request.method == "HEAD"
        keep = request.keep_alive
        if (request.method, environ["PATH_INFO"]) in self._nonblocking:
            outcome = self.app.handle(environ)  # type: ignore[attr-defined]
            if isinstance(outcome, tuple):
                status, headers, answer = outcome
                connection.respond(status, headers, answer, keep_alive=keep)
                return
            try:
                self.app.store.receive_nowait(  # type: ignore[attr-defined]
                    *outcome.arguments(), lambda result, error: self._stored_one(connection, outcome, result, error, keep))
            except Exception as error:  # noqa: BLE001 - a value the store refuses, a closed store
                self._answer(connection, outcome, None, error, keep)
            return
        assert self._pool is not None and self.loop is not None
        future = self.loop.run_in_executor(self._pool, self._call_app, environ)
        future.add_done_callback(lambda done: self._answered(connection, done, head_only, keep))

    def _stored_one(self, connection: _Connection, receive: Any, result: Any, error: Any, keep: bool) -> None:
        """From the committer thread: queue the answer; one loop callback answers a whole group."""
        self._stored.append((connection, receive, result, error, keep))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._drain)  # type: ignore[union-attr]
            except RuntimeError:  # the loop has closed (stopping): the client was disconnected already
                pass

    def _drain(self) -> None:
        self._drain_scheduled = False  # before taking: what arrives from now on schedules again
        stored = self._stored
        while stored:
            self._answer(*stored.popleft())

    def _answer(self, connection: _Connection, receive: Any, result: Any, error: Any, keep: bool) -> None:
        status, headers, body = self.app.answer(receive, result, error)  # type: ignore[attr-defined]
        connection.respond(status, headers, body, keep_alive=keep)

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        """The WSGI app, in a pool thread: its whole answer."""
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            started[:] = [status, headers]
            return lambda data: None

        try:
            chunks = self.app(environ, start_response)
            try:
                body = b"".join(chunks)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except Exception:  # noqa: BLE001 - the app's bug: logged, the client gets a 500
            log.exception("internal error on %s %s", str(environ.get("REQUEST_METHOD"))[:16],
                          str(environ.get("PATH_INFO"))[:200])
            return "500 Internal Server Error", [("Content-Type", "application/json")], _error_body(500, "internal error")
        if not started:
            return "500 Internal Server Error", [("Content-Type", "application/json")], _error_body(500, "internal error")
        return started[0], started[1], body

    def _answered(self, connection: _Connection, future: "asyncio.Future[Any]", head_only: bool, keep: bool) -> None:
        if future.cancelled():
            return
        status, headers, body = future.result()
        connection.respond(status, headers, body, head_only=head_only, keep_alive=keep)
