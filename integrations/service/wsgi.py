"""The service as a WSGI application for other servers, e.g. several gunicorn workers::

    POLICYDESK_STORE=postgresql://policydesk@db/policydesk ZAMMAD_URL=... ZAMMAD_TOKEN=... \\
    POLICYDESK_ZAMMAD_WEBHOOK_TOKEN=... POLICYDESK_BILLING_SECRET=... \\
        gunicorn --workers 4 --threads 8 --bind 0.0.0.0:8080 'integrations.service.wsgi:application'

Each worker process builds its own service from the environment when it imports this
module (do not use ``--preload``: the background threads must start in the worker) and
runs its own background workers and scheduler; with PostgreSQL they share the queue, and
one scheduler leads. Use PostgreSQL for more than one process: a SQLite store serves one.
"""

from __future__ import annotations

from integrations.service.config import ServiceConfig
from integrations.service.runtime import Service
from integrations.settings import setup_logging

setup_logging()

service = Service.from_config(ServiceConfig.from_env())
service.start_background()
application = service.app
