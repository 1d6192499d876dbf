"""Running a waitress server until told to stop, kept-alive client connections included.

waitress's own ``server.run()`` loops while any channel is left in its map: closing the
listening socket (``server.close()``) does not end it while a client holds a keep-alive
connection open. `run_until` runs the same loop one poll at a time, and when ``stopping``
is set closes every channel (listening socket and client connections) in the loop's own
thread, then shuts the task dispatcher down.
"""

from __future__ import annotations

import threading
from typing import Any

#: How long one poll of the loop waits at most: the delay between setting the event and
#: the loop noticing it.
POLL_SECONDS = 0.05


def run_until(server: Any, stopping: threading.Event, *, dispatcher_timeout: float = 1.0) -> None:
    """Serve ``server`` (from ``waitress.server.create_server``) until ``stopping`` is set.

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
