"""How policydesk serves HTTP: `BackgroundServer` for its own service, waitress for the stand-in.

`BackgroundServer` (the service, the demo, the tests) runs `integrations.httpserver.LoopServer`,
an asyncio HTTP/1.1 server with the service's limits and deadlines::

    with BackgroundServer(app, port=0) as server:      # serving in a thread
        requests.get(server.url + "/healthz")
    server = BackgroundServer(app, "0.0.0.0", 8080)     # or in this thread until the event is set
    server.serve(stopping)

Slow clients: requests are read without a thread per connection, so only the number of open
connections and the time they hold them matter. Each connection has deadlines that trickled
bytes do not extend: ``header_timeout`` from its first byte (or from accepting it) to the end
of the headers, ``body_timeout`` to the end of the body, and ``idle_timeout`` between requests
on a kept-alive connection; past one the connection is closed without an answer.
``connection_limit`` caps open connections. docs/limits.md lists these with what a client
gets past each.

`create_server` and `run_until` serve a WSGI app under waitress with the same deadlines: the
Zammad stand-in runs on them (a test double; Zammad itself runs behind nginx). waitress's own
``run()`` loops while any channel is left in its map, so `run_until` runs the loop one poll at
a time and, once ``stopping`` is set, closes every channel in the loop's own thread, then shuts
the task dispatcher down.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
from typing import Any, Callable

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, ThreadedTaskDispatcher

from integrations.httpserver import LoopServer
from plugin.errors import UserError

#: How long one poll of the loop waits at most: the delay between setting the event and
#: the loop noticing it.
POLL_SECONDS = 0.05


class ListenError(UserError, OSError):
    """The address cannot be listened on (in use, not this machine's, not permitted)."""

    def __str__(self) -> str:
        return str(self.strerror)


#: What a client reads when waitress itself refuses a request (before the app sees it).
_ERRORS = {400: "malformed HTTP request", 411: "a Content-Length header is required",
           413: "request body too large", 431: "request headers too large",
           501: "this Transfer-Encoding is not supported"}


class JsonErrorTask(ErrorTask):
    """waitress's own refusals (413, 411, 400, ...) as ``{"error": ...}`` JSON like the app's."""

    def execute(self) -> None:
        error = self.request.error
        self.status = f"{error.code} {error.reason}"
        body = json.dumps({"error": _ERRORS.get(error.code, error.reason.lower())}).encode()
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JsonErrorChannel(HTTPChannel):
    error_task_class = JsonErrorTask


class DeadlineServer(TcpWSGIServer):
    """waitress's TCP server, closing connections that miss their header/body/idle deadline."""

    channel_class = JsonErrorChannel

    header_timeout = 10.0
    body_timeout = 30.0
    idle_timeout = 30.0

    def maintenance(self, now: float) -> None:
        for channel in list(self.active_channels.values()):
            if channel.requests:  # a request is being answered: the app's time, not the client's
                continue
            parser = channel.request
            if parser is None:
                fresh = channel.last_activity == channel.creation_time
                limit = self.header_timeout if fresh else self.idle_timeout
                if now - channel.last_activity > limit:
                    channel.will_close = True
                continue
            started = getattr(parser, "policydesk_started", None)
            if started is None:  # first seen by maintenance: within a cleanup interval of its first byte
                parser.policydesk_started = started = min(now, channel.last_activity)
            limit = self.body_timeout if parser.headers_finished else self.header_timeout
            if now - started > limit:
                channel.will_close = True


def _listen_error(error: OSError, host: str, port: int) -> ListenError:
    reason = {errno.EADDRINUSE: "the address is already in use (another policydesk or program is listening)",
              errno.EADDRNOTAVAIL: "the address is not one of this machine's",
              errno.EACCES: "permission denied (ports below 1024 need privileges)"}.get(
                  error.errno or 0, error.strerror or str(error))
    return ListenError(error.errno, f"cannot listen on {host}:{port}: {reason}")


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv6 for an address with a colon); `ListenError`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except socket.gaierror as error:
        raise ListenError(errno.EADDRNOTAVAIL, f"cannot listen on {host}:{port}: {error.strerror}") from None
    except OSError as error:
        raise _listen_error(error, host, port) from None


def create_server(app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, *, threads: int = 8,
                  connection_limit: int = 1000, header_timeout: float = 10.0, body_timeout: float = 30.0,
                  idle_timeout: float = 30.0, max_body_bytes: int | None = None, ident: str = "policydesk",
                  **adjustments: Any) -> DeadlineServer:
    """A bound (not yet running) server; `ListenError` when the address cannot be used."""
    options: dict[str, Any] = dict(threads=threads, connection_limit=connection_limit, ident=ident,
                                   channel_timeout=idle_timeout, cleanup_interval=1, asyncore_use_poll=True,
                                   asyncore_loop_timeout=POLL_SECONDS)
    if max_body_bytes is not None:
        # one byte more than the app accepts, so the app answers 413 itself (JSON) for what it can
        options["max_request_body_size"] = max_body_bytes + 1
    options.update(adjustments)
    adj = Adjustments(host=host, port=port, **options)
    dispatcher = ThreadedTaskDispatcher()  # its threads start once the address is ours
    try:
        server = DeadlineServer(app, {}, True, None, dispatcher, adj, sockinfo=adj.listen[0])
    except OSError as error:
        raise _listen_error(error, host, port) from None
    server.header_timeout, server.body_timeout, server.idle_timeout = header_timeout, body_timeout, idle_timeout
    dispatcher.set_thread_count(adj.threads)
    return server


def run_until(server: Any, stopping: threading.Event, *, dispatcher_timeout: float = 1.0) -> None:
    """Serve ``server`` (a waitress server) until ``stopping`` is set, then close everything.

    Safe to signal from a signal handler or another thread: they only set the event; the
    channels are closed here, in the thread that runs the loop.
    """
    try:
        while not stopping.is_set():
            server.asyncore.loop(timeout=POLL_SECONDS, map=server._map, use_poll=server.adj.asyncore_use_poll,
                                 count=1)
    finally:
        for channel in list(server._map.values()):
            try:
                channel.close()
            except Exception:  # noqa: BLE001 - closing as much as possible
                pass
        try:
            server.task_dispatcher.shutdown(timeout=dispatcher_timeout)
        except Exception:  # noqa: BLE001
            pass


class BackgroundServer:
    """A WSGI app served by `LoopServer` (options as `create_server`'s), stoppable cleanly."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, *, threads: int = 8,
                 connection_limit: int = 1000, header_timeout: float = 10.0, body_timeout: float = 30.0,
                 idle_timeout: float = 30.0, max_body_bytes: int | None = None) -> None:
        sock = listen(host, port)
        self.server = LoopServer(app, sock, threads=threads, connection_limit=connection_limit,
                                 header_timeout=header_timeout, body_timeout=body_timeout,
                                 idle_timeout=idle_timeout, max_body_bytes=max_body_bytes)
        self.host = host
        self.port = int(sock.getsockname()[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    def serve(self, stopping: threading.Event | None = None) -> None:
        """Serve in this thread until ``stopping`` (or `stop`) is set."""
        if stopping is not None:
            self.stopping = stopping
        try:
            self.server.serve(self.stopping)
        finally:
            self._done.set()

    def start(self, name: str | None = None) -> "BackgroundServer":
        self._thread = threading.Thread(target=self.serve, name=name or f"http-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        elif not self._done.is_set():  # never served: close the listening socket ourselves
            self.server.close_unserved()

    def __enter__(self) -> "BackgroundServer":
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
