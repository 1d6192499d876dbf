"""policydesk's settings, read one way everywhere: secrets, the store, the policies, logging, the clock.

Every command and the service read their environment through these functions, so a setting
means the same in ``serve``, ``sync``, ``queue`` and under gunicorn. The complete list of
variables, with defaults, is `ENVIRONMENT` (and docs/deploy.md, which a test keeps in step).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Mapping

from plugin.bundled import POLICIES_ENV, default_policies_dir
from plugin.errors import UserError

__all__ = ["ConfigError", "ENVIRONMENT", "HOME_ENV", "POLICIES_ENV", "STORE_ENV", "LOG_LEVEL_ENV",
           "LOG_FORMAT_ENV", "secret", "optional_secret", "state_dir", "default_store_url", "store_url",
           "policies_dir", "default_policies_dir", "utcnow", "setup_logging", "env_int", "env_float"]

HOME_ENV = "POLICYDESK_HOME"
STORE_ENV = "POLICYDESK_STORE"
LOG_LEVEL_ENV = "POLICYDESK_LOG_LEVEL"
LOG_FORMAT_ENV = "POLICYDESK_LOG_FORMAT"
#: The file name of the default SQLite store inside the state directory.
STORE_FILE = "policydesk.db"
#: Schemes `store_url` accepts (the store opens nothing else).
STORE_SCHEMES = ("sqlite", "postgresql", "postgres")


class ConfigError(UserError):
    """A setting is missing or malformed; the message names the variable and how to fix it."""


# --------------------------------------------------------------------------- secrets


def optional_secret(env: Mapping[str, str], name: str) -> str | None:
    """``$NAME``, else the contents of the file named by ``$NAME_FILE`` (stripped), else None."""
    value = (env.get(name) or "").strip()
    if value:
        return value
    path = env.get(name + "_FILE")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{name}_FILE: {path} is not UTF-8 text") from None
        if not value:
            raise ConfigError(f"{name}_FILE: {path} is empty")
        return value
    return None


def secret(env: Mapping[str, str], name: str) -> str:
    """Like `optional_secret`, but a missing secret is a `ConfigError`."""
    value = optional_secret(env, name)
    if value is None:
        raise ConfigError(f"{name} (or {name}_FILE, a file holding it) is not set")
    return value


# --------------------------------------------------------------------------- numbers


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise ConfigError(f"{name}: expected a whole number of at least {minimum}, got {raw[:40]!r}")
    return int(raw)


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value >= minimum and value != float("inf")):
        raise ConfigError(f"{name}: expected a number of seconds of at least {minimum:g}, got {raw[:40]!r}")
    return value


# --------------------------------------------------------------------------- where state lives


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$POLICYDESK_HOME``, else the platform's user data directory + ``policydesk``.

    Linux/BSD: ``$XDG_DATA_HOME/policydesk`` (``~/.local/share/policydesk``); macOS:
    ``~/Library/Application Support/policydesk``; Windows: ``%LOCALAPPDATA%\\policydesk``.
    """
    env = os.environ if env is None else env
    if env.get(HOME_ENV):
        return Path(env[HOME_ENV]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "policydesk"


def default_store_url(env: Mapping[str, str] | None = None) -> str:
    """The SQLite store in the state directory (created when missing)."""
    directory = state_dir(env)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot create the state directory {directory} ({error.strerror}); set "
                          f"{HOME_ENV} to a writable directory or {STORE_ENV} to a store URL") from None
    return f"sqlite:///{directory.resolve() / STORE_FILE}"


def store_url(override: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``--store`` if given, else ``$POLICYDESK_STORE``, else `default_store_url`; checked.

    Accepted: ``sqlite:///ABS/PATH``, ``sqlite:REL/PATH``, ``postgresql://…``/``postgres://…``,
    a libpq ``key=value`` string (``host=… dbname=…``), or a plain file path (SQLite).
    """
    env = os.environ if env is None else env
    url = (override or env.get(STORE_ENV) or "").strip()
    if not url:
        return default_store_url(env)
    scheme, sep, _ = url.partition(":")
    if "=" in url.split()[0] and not url.startswith(tuple(s + ":" for s in STORE_SCHEMES)):
        return url  # a libpq key=value connection string
    if sep and "/" not in scheme and len(scheme) > 1:  # a URL (a one-letter "scheme" is a Windows drive)
        if scheme.lower() not in STORE_SCHEMES:
            raise ConfigError(f"store {_mask_url(url)!r}: unsupported scheme {scheme!r}; use sqlite:///PATH, "
                              "postgresql://USER@HOST/DB or a file path")
        if scheme.lower() == "sqlite" and url.startswith("sqlite://") and not url.startswith("sqlite:///"):
            raise ConfigError(f"store {url!r}: use sqlite:///ABSOLUTE/PATH.db or sqlite:RELATIVE.db")
    return url


def _mask_url(url: str) -> str:
    from integrations.logsetup import mask_secrets

    return mask_secrets(url)


def policies_dir(override: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """``--policies`` if given, else ``$POLICYDESK_POLICIES``, else ``./policies`` if it exists,
    else the policies bundled with the package."""
    if override:
        return override
    env = os.environ if env is None else env
    return env.get(POLICIES_ENV) or default_policies_dir()


# --------------------------------------------------------------------------- clock and logging


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware in UTC (the one clock of the integrations)."""
    return dt.datetime.now(dt.timezone.utc)


def setup_logging(level: str | None = None, fmt: str | None = None, env: Mapping[str, str] | None = None,
                  *, stream: object = None) -> None:
    """Configure the root logger once: level and format from the arguments or the environment."""
    from integrations.logsetup import configure

    env = os.environ if env is None else env
    configure(level or env.get(LOG_LEVEL_ENV) or "INFO", fmt or env.get(LOG_FORMAT_ENV) or "text", stream=stream)


#: Every environment variable policydesk reads: name -> (default, meaning). docs/deploy.md lists
#: the same (a test checks it).
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "ZAMMAD_URL": ("required", "Zammad's base URL, e.g. https://desk.example"),
    "ZAMMAD_TOKEN": ("required", "API token of policydesk's own Zammad user (or ZAMMAD_TOKEN_FILE)"),
    "ZAMMAD_TIMEOUT": ("10", "seconds for connecting to Zammad and for each read"),
    "ZAMMAD_RETRY_ATTEMPTS": ("4", "attempts of one Zammad call before the job is retried later"),
    "POLICYDESK_CONFIG": ("unset", "a TOML file whose [zammad] table may hold url, token_file, timeout"),
    "POLICYDESK_ZAMMAD_LOGIN": ("unset", "login of policydesk's Zammad user; /healthz degrades if the token is another's"),
    "POLICYDESK_ZAMMAD_WEBHOOK_TOKEN": ("required", "the Zammad webhook signing token (or _FILE)"),
    "POLICYDESK_BILLING_SECRET": ("required", "the billing webhook HMAC secret (or _FILE)"),
    "POLICYDESK_HOME": ("platform user data dir", "state directory of the default SQLite store"),
    "POLICYDESK_STORE": ("sqlite:///$POLICYDESK_HOME/policydesk.db", "sqlite:///PATH or postgresql://…"),
    "POLICYDESK_POLICIES": ("./policies, else the bundled ones", "the policy directory"),
    "POLICYDESK_LISTEN": ("127.0.0.1:8080", "HOST:PORT of the webhook listener"),
    "POLICYDESK_ADMIN_LISTEN": ("unset", "HOST:PORT of a separate listener for /healthz and /metrics"),
    "POLICYDESK_ADMIN_TOKEN": ("unset", "bearer token /healthz and /metrics require (or _FILE)"),
    "POLICYDESK_PUBLIC_URL": ("unset", "policydesk's public base URL; sync derives the webhook URL from it"),
    "POLICYDESK_WORKERS": ("16", "jobs processed at once per process (Zammad calls in flight; one ticket at a time)"),
    "POLICYDESK_THREADS": ("8", "request threads: billing, health, metrics (Zammad's webhooks need none; under gunicorn, every request)"),
    "POLICYDESK_CONNECTION_LIMIT": ("1000", "open client connections at most"),
    "POLICYDESK_HEADER_TIMEOUT": ("10", "seconds a client has to send a request's headers"),
    "POLICYDESK_BODY_TIMEOUT": ("30", "seconds a client has to send a whole request"),
    "POLICYDESK_IDLE_TIMEOUT": ("30", "seconds an idle kept-alive connection stays open"),
    "POLICYDESK_MAX_BODY": ("1048576", "largest accepted webhook body, bytes"),
    "POLICYDESK_RETRY_BASE": ("2", "first retry delay of a failed job, seconds (doubles each time)"),
    "POLICYDESK_MAX_ATTEMPTS": ("8", "attempts before a failing job is parked"),
    "POLICYDESK_LEASE": ("60", "seconds a worker holds a claimed job"),
    "POLICYDESK_RETENTION_DAYS": ("30", "days stored webhook bodies and finished jobs are kept"),
    "POLICYDESK_AUDIT_RETENTION_DAYS": ("400", "days audit rows are kept"),
    "POLICYDESK_PURGE_INTERVAL": ("3600", "seconds between the service's retention purges"),
    "POLICYDESK_HEALTH_CACHE": ("10", "seconds /healthz caches its Zammad check"),
    "POLICYDESK_CATCHUP_SECONDS": ("60", "seconds between catch-ups of ticket changes Zammad did not deliver; 0: off"),
    "POLICYDESK_CATCHUP_OVERLAP": ("120", "seconds each catch-up looks before the previous one's mark"),
    "POLICYDESK_CATCHUP_SETTLE": ("150", "seconds a change may still be in Zammad's delivery before the catch-up takes it"),
    "POLICYDESK_CATCHUP_FIRST_LOOKBACK": ("0", "seconds the very first catch-up looks back (0: only sets the mark)"),
    "POLICYDESK_REEVALUATION_RATE": ("20", "open tickets per second queued for re-evaluation after a policy reload"),
    "POLICYDESK_SYNC_ON_RELOAD": ("unset", "1: after a policy reload, bring Zammad's SLAs and calendars in line"),
    "POLICYDESK_LOG_LEVEL": ("INFO", "DEBUG, INFO, WARNING, ERROR"),
    "POLICYDESK_LOG_FORMAT": ("text", "text or json (one JSON object a line)"),
    "PROMETHEUS_MULTIPROC_DIR": ("unset", "under gunicorn with several workers: a shared empty directory"),
    "WEB_CONCURRENCY": ("4", "gunicorn only: worker processes (gunicorn's own variable)"),
}
