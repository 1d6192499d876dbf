"""The service's settings, from the environment (secrets may come from ``NAME_FILE``).

Every variable, its default and meaning: `integrations.settings.ENVIRONMENT` and
docs/deploy.md ("Environment reference").
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from typing import Mapping

from integrations.settings import (ConfigError, env_float, env_int, optional_secret, policies_dir, secret,
                                   store_url)

__all__ = ["ConfigError", "ServiceConfig", "parse_listen", "secret"]

DEFAULT_LISTEN = "127.0.0.1:8080"


def parse_listen(text: str, name: str = "POLICYDESK_LISTEN") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port), both checked."""
    raw = text.strip()
    host, sep, port = raw.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()):
        raise ConfigError(f"{name}: expected HOST:PORT such as 127.0.0.1:8080, got {raw[:80]!r}")
    number = int(port)
    if not 0 <= number <= 65535:
        raise ConfigError(f"{name}: port {number} is out of range (0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{name}: {host!r} is not an IPv6 address") from None
        return host, number
    if not host:
        return "127.0.0.1", number
    try:
        ipaddress.ip_address(host)
        return host, number
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(label and len(label) <= 63 and label.replace("-", "").isalnum()
                                  and label.isascii() and not label.startswith("-") for label in labels):
        raise ConfigError(f"{name}: {host[:80]!r} is not a host name or IP address")
    return host, number


@dataclass(frozen=True)
class ServiceConfig:
    store_url: str
    host: str
    port: int
    policies: str
    zammad_webhook_token: str = field(repr=False)
    billing_secret: str = field(repr=False)
    workers: int = 16
    max_body_bytes: int = 1 << 20
    retry_base_seconds: float = 2.0
    max_attempts: int = 8
    lease_seconds: float = 60.0
    #: A separate listener for /healthz and /metrics (then absent from the public one).
    admin_listen: tuple[str, int] | None = None
    #: A bearer token /healthz and /metrics require (``Authorization: Bearer …``).
    admin_token: str | None = field(default=None, repr=False)
    threads: int = 8
    connection_limit: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 30.0
    retention_days: float = 30.0
    audit_retention_days: float = 400.0
    purge_interval: float = 3600.0
    health_cache_seconds: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, policies: str | None = None) -> "ServiceConfig":
        env = os.environ if env is None else env
        host, port = parse_listen(env.get("POLICYDESK_LISTEN") or DEFAULT_LISTEN)
        admin = env.get("POLICYDESK_ADMIN_LISTEN")
        return cls(
            store_url=store_url(None, env),
            host=host,
            port=port,
            policies=policies_dir(policies, env),
            zammad_webhook_token=secret(env, "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN"),
            billing_secret=secret(env, "POLICYDESK_BILLING_SECRET"),
            workers=env_int(env, "POLICYDESK_WORKERS", 16, minimum=1),
            max_body_bytes=env_int(env, "POLICYDESK_MAX_BODY", 1 << 20, minimum=1024),
            retry_base_seconds=env_float(env, "POLICYDESK_RETRY_BASE", 2.0),
            max_attempts=env_int(env, "POLICYDESK_MAX_ATTEMPTS", 8, minimum=1),
            lease_seconds=env_float(env, "POLICYDESK_LEASE", 60.0, minimum=1.0),
            admin_listen=parse_listen(admin, "POLICYDESK_ADMIN_LISTEN") if admin else None,
            admin_token=optional_secret(env, "POLICYDESK_ADMIN_TOKEN"),
            threads=env_int(env, "POLICYDESK_THREADS", 8, minimum=1),
            connection_limit=env_int(env, "POLICYDESK_CONNECTION_LIMIT", 1000, minimum=10),
            header_timeout=env_float(env, "POLICYDESK_HEADER_TIMEOUT", 10.0, minimum=0.1),
            body_timeout=env_float(env, "POLICYDESK_BODY_TIMEOUT", 30.0, minimum=0.1),
            idle_timeout=env_float(env, "POLICYDESK_IDLE_TIMEOUT", 30.0, minimum=0.1),
            retention_days=env_float(env, "POLICYDESK_RETENTION_DAYS", 30.0, minimum=0.0),
            audit_retention_days=env_float(env, "POLICYDESK_AUDIT_RETENTION_DAYS", 400.0, minimum=0.0),
            purge_interval=env_float(env, "POLICYDESK_PURGE_INTERVAL", 3600.0, minimum=1.0),
            health_cache_seconds=env_float(env, "POLICYDESK_HEALTH_CACHE", 10.0),
        )
