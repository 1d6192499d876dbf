"""A TCP proxy on loopback that can silently swallow traffic, for database fault tests.

``forward``: bytes pass both ways. ``black_hole()``: every connection, open or new, keeps
being accepted and read, but nothing is passed on or answered — like a firewall that
drops packets, or a network partition behind a load balancer. A flow swallowed once
stays dead after ``restore()`` (its state is lost); new connections work again.
Everything is bounded: threads are daemons and `close` stops accepting.
"""

from __future__ import annotations

import socket
import threading


class BlackHoleProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._swallowing = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        #: Connections accepted, and bytes swallowed (for the test's report).
        self.accepted = 0
        self.swallowed = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def black_hole(self) -> None:
        self._swallowing.set()

    def restore(self) -> None:
        self._swallowing.clear()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.close()
                except OSError:
                    pass

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            dead = threading.Event()
            if self._swallowing.is_set():
                dead.set()
                upstream = None
            else:
                try:
                    upstream = socket.create_connection(self._target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
            with self._lock:
                self._sockets += [s for s in (client, upstream) if s is not None]
            threading.Thread(target=self._pump, args=(client, upstream, dead), daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pump, args=(upstream, client, dead), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None, dead: threading.Event) -> None:
        while not self._closed.is_set():
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                if not dead.is_set() and sink is not None:
                    try:
                        sink.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return
            if self._swallowing.is_set():
                dead.set()  # this flow is lost for good, like a dropped connection's state
            if dead.is_set() or sink is None:
                self.swallowed += len(data)
                continue
            try:
                sink.sendall(data)
            except OSError:
                return
