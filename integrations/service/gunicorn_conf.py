"""gunicorn settings for policydesk: ``gunicorn -c python:integrations.service.gunicorn_conf``.

Several worker processes share one PostgreSQL store; each runs its own background workers and
scheduler (one leads). The environment decides everything (docs/deploy.md): the listener is
``POLICYDESK_LISTEN``, the number of processes gunicorn's own ``WEB_CONCURRENCY``, the request
threads per process ``POLICYDESK_THREADS``. Prometheus counters of all processes add up through
``PROMETHEUS_MULTIPROC_DIR``: set it to an empty directory only policydesk uses (the systemd
unit in docs/deploy.md uses ``RuntimeDirectory``); when unset, one is made here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

wsgi_app = "integrations.service.wsgi:application"
bind = [os.environ.get("POLICYDESK_LISTEN", "127.0.0.1:8080")]
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "gthread"
threads = int(os.environ.get("POLICYDESK_THREADS", "8"))
# Not preloaded: the service's background threads must start in each worker, after the fork.
preload_app = False
# Slow clients: gthread reads with a timeout per connection; the limits below bound what one request may hold.
timeout = 60
graceful_timeout = 30
keepalive = int(float(os.environ.get("POLICYDESK_IDLE_TIMEOUT", "5")))
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
worker_connections = int(os.environ.get("POLICYDESK_CONNECTION_LIMIT", "1000"))
accesslog = None  # policydesk logs each refusal itself, one line, secrets masked
errorlog = "-"


def on_starting(server: Any) -> None:
    """Give the workers an empty multiprocess directory before any of them imports prometheus_client."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="policydesk-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):  # values of an earlier run would be added to this one's
        path = os.path.join(directory, name)
        if name.endswith(".db"):
            os.remove(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its live gauges no longer count (prometheus-client's multiprocess mode)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
