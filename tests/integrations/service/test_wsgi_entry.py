"""The WSGI entry point other servers (gunicorn) import builds a working service from the environment."""

from __future__ import annotations

import importlib
import io
import sys

from support import POLICIES
from integrations.zammad_standin import running_standin
from service_harness import BILLING_SECRET, POLICYDESK_TOKEN, WEBHOOK_TOKEN


def test_wsgi_module_serves_healthz(tmp_path, monkeypatch):
    with running_standin() as zammad:
        for name, value in {"ZAMMAD_URL": zammad.url, "ZAMMAD_TOKEN": POLICYDESK_TOKEN,
                            "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": WEBHOOK_TOKEN, "POLICYDESK_BILLING_SECRET": BILLING_SECRET,
                            "POLICYDESK_STORE": f"sqlite:///{tmp_path / 'gunicorn.db'}",
                            "POLICYDESK_POLICIES": str(POLICIES)}.items():
            monkeypatch.setenv(name, value)
        sys.modules.pop("integrations.service.wsgi", None)
        module = importlib.import_module("integrations.service.wsgi")
        try:
            seen = {}
            body = module.application({"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz", "wsgi.input": io.BytesIO()},
                                      lambda status, headers: seen.update(status=status))
            assert seen["status"].startswith("200") and b'"ok"' in b"".join(body)
        finally:
            module.service.stop()
            sys.modules.pop("integrations.service.wsgi", None)
