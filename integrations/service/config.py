"""The service's settings, from the environment (secrets may come from files).

| variable | default | meaning |
|---|---|---|
| ``POLICYDESK_STORE`` | ``sqlite:///policydesk.db`` | SQLite file or ``postgresql://`` DSN |
| ``POLICYDESK_LISTEN`` | ``127.0.0.1:8080`` | where `policydesk serve` listens |
| ``POLICYDESK_POLICIES`` | ``./policies`` | the policy directory |
| ``POLICYDESK_ZAMMAD_WEBHOOK_TOKEN`` / ``_FILE`` | required | Zammad webhook signing token |
| ``POLICYDESK_BILLING_SECRET`` / ``_FILE`` | required | billing webhook signing secret |
| ``POLICYDESK_WORKERS`` | ``2`` | background worker threads per process |
| ``POLICYDESK_MAX_BODY`` | ``1048576`` | largest accepted webhook body, bytes |
| ``POLICYDESK_RETRY_BASE`` | ``2`` | first retry delay of a failed job, seconds (doubles each time) |
| ``POLICYDESK_MAX_ATTEMPTS`` | ``8`` | attempts before a failing job is parked |
| ``POLICYDESK_LEASE`` | ``60`` | seconds a worker holds a claimed job; a crashed worker's jobs are retaken after it |
| ``ZAMMAD_URL``, ``ZAMMAD_TOKEN`` / ``_FILE`` | required | see `integrations.zammad.adapter.ZammadSettings` |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def secret(env: Mapping[str, str], name: str) -> str:
    """``$NAME``, or the contents of the file named by ``$NAME_FILE``."""
    if env.get(name):
        return env[name]
    path = env.get(name + "_FILE")
    if path:
        try:
            value = Path(path).read_text().strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None
        if value:
            return value
    raise ConfigError(f"{name} (or {name}_FILE) is not set")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}")
    return int(raw)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number of seconds, got {raw!r}") from None


@dataclass(frozen=True)
class ServiceConfig:
    store_url: str
    host: str
    port: int
    policies: str
    zammad_webhook_token: str = field(repr=False)
    billing_secret: str = field(repr=False)
    workers: int = 2
    max_body_bytes: int = 1 << 20
    retry_base_seconds: float = 2.0
    max_attempts: int = 8
    lease_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, policies: str | None = None) -> "ServiceConfig":
        from plugin.cli import default_policies_dir

        env = os.environ if env is None else env
        listen = env.get("POLICYDESK_LISTEN", "127.0.0.1:8080")
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"POLICYDESK_LISTEN: expected HOST:PORT, got {listen!r}")
        return cls(
            store_url=env.get("POLICYDESK_STORE", "sqlite:///policydesk.db"),
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            policies=policies or env.get("POLICYDESK_POLICIES") or default_policies_dir(),
            zammad_webhook_token=secret(env, "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN"),
            billing_secret=secret(env, "POLICYDESK_BILLING_SECRET"),
            workers=max(1, _int(env, "POLICYDESK_WORKERS", 2)),
            max_body_bytes=_int(env, "POLICYDESK_MAX_BODY", 1 << 20),
            retry_base_seconds=_float(env, "POLICYDESK_RETRY_BASE", 2.0),
            max_attempts=max(1, _int(env, "POLICYDESK_MAX_ATTEMPTS", 8)),
            lease_seconds=max(1.0, _float(env, "POLICYDESK_LEASE", 60.0)),
        )
