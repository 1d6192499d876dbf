"""Talking to Zammad: where it is (`ZammadSettings`) and the typed API client (`ZammadClient`).

``ZammadClient`` is zammad-py's API object with typed errors, timeouts, retries and the
resources zammad-py lacks (`integrations.zammad.resources`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from zammad_py import ZammadAPI

from plugin.errors import UserError
from plugin.version import __version__

from integrations.zammad.resources import (
    Calendars,
    Groups,
    Mentions,
    ObjectManagerAttributes,
    Organizations,
    RetryPolicy,
    SLAs,
    TagList,
    Tags,
    TicketArticles,
    TicketPriorities,
    Tickets,
    TicketStates,
    Triggers,
    Users,
    Webhooks,
    ZammadSession,
)

__all__ = ["ZammadClient", "ZammadConfigError", "ZammadSettings", "api_url"]

# --------------------------------------------------------------------------- settings


class ZammadConfigError(UserError, ValueError):
    """The Zammad URL or token is missing or unreadable."""


def api_url(url: str) -> str:
    """``https://desk.example`` -> ``https://desk.example/api/v1/`` (an API URL is kept)."""
    base = url.strip().rstrip("/")
    if not base.endswith("/api/v1"):
        base += "/api/v1"
    return base + "/"


#: What Zammad's logs show as the client (version from plugin/version.py, the single source).
USER_AGENT = f"policydesk/{__version__} (zammad-py)"


@dataclass(frozen=True)
class ZammadSettings:
    """Where Zammad is and how to talk to it.  Never read from policy YAML."""

    url: str
    token: str = field(repr=False)
    #: Seconds for connecting and for each read, on every request.
    timeout: float = 10.0
    retry_attempts: int = 4
    retry_base_delay: float = 0.5
    retry_max_delay: float = 8.0

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, config_file: str | os.PathLike | None = None) -> "ZammadSettings":
        """From the environment, falling back to a TOML config file's ``[zammad]`` table.

        Environment: ``ZAMMAD_URL``, ``ZAMMAD_TOKEN`` or ``ZAMMAD_TOKEN_FILE``,
        ``ZAMMAD_TIMEOUT``, ``ZAMMAD_RETRY_ATTEMPTS``; the config file is ``config_file``
        or ``$POLICYDESK_CONFIG`` and may hold ``url``, ``token_file`` (or ``token``),
        ``timeout``, ``retry_attempts``, ``retry_base_delay``, ``retry_max_delay``.
        """
        env = os.environ if environ is None else environ
        file_values: dict[str, Any] = {}
        path = config_file or env.get("POLICYDESK_CONFIG")
        if path:
            try:
                with open(path, "rb") as fh:
                    file_values = dict(tomllib.load(fh).get("zammad") or {})
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ZammadConfigError(f"{path}: cannot read Zammad settings: {exc}") from exc

        url = env.get("ZAMMAD_URL") or file_values.get("url")
        if not url:
            raise ZammadConfigError("ZAMMAD_URL is not set (nor `url` under [zammad] in the config file)")
        from integrations.settings import ConfigError, optional_secret

        try:
            token = optional_secret(env, "ZAMMAD_TOKEN")
        except ConfigError as exc:
            raise ZammadConfigError(str(exc)) from None
        token_file = None
        if not token:
            token, token_file = file_values.get("token"), file_values.get("token_file")
        if not token and token_file:
            try:
                token = Path(token_file).read_text().strip()
            except OSError as exc:
                raise ZammadConfigError(f"{token_file}: cannot read the Zammad token: {exc}") from exc
        if not token:
            raise ZammadConfigError("no Zammad token: set ZAMMAD_TOKEN or ZAMMAD_TOKEN_FILE")

        def number(env_name: str, key: str, default: float) -> float:
            raw = env.get(env_name) if env_name else None
            raw = raw if raw not in (None, "") else file_values.get(key, default)
            try:
                return float(raw)
            except (TypeError, ValueError) as exc:
                raise ZammadConfigError(f"{env_name or key}: expected a number, got {raw!r}") from exc

        return cls(
            url=str(url),
            token=str(token),
            timeout=number("ZAMMAD_TIMEOUT", "timeout", 10.0),
            retry_attempts=int(number("ZAMMAD_RETRY_ATTEMPTS", "retry_attempts", 4)),
            retry_base_delay=number("", "retry_base_delay", 0.5),
            retry_max_delay=number("", "retry_max_delay", 8.0),
        )

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=max(1, self.retry_attempts), base_delay=self.retry_base_delay, max_delay=self.retry_max_delay
        )


# --------------------------------------------------------------------------- client


class ZammadClient(ZammadAPI):
    """zammad-py's API object with typed errors, timeouts, retries and more resources.

    The zammad-py property names (``ticket``, ``user``, ...) return the typed resources
    too, so code written for zammad-py keeps working.
    """

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, retry: RetryPolicy | None = None,
                 pool_size: int = 64) -> None:
        super().__init__(url=api_url(url), http_token=token)
        self.retry = retry or RetryPolicy()
        session = ZammadSession(timeout=timeout, retry=self.retry, pool_size=pool_size)
        session.headers.update(self.session.headers)
        session.headers["User-Agent"] = USER_AGENT
        self.session.close()
        self.session = session
        self._me: dict[str, Any] | None = None

    @classmethod
    def from_settings(cls, settings: ZammadSettings) -> "ZammadClient":
        return cls(settings.url, settings.token, timeout=settings.timeout, retry=settings.retry_policy())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, config_file: str | None = None) -> "ZammadClient":
        return cls.from_settings(ZammadSettings.load(environ, config_file))

    def me(self) -> dict[str, Any]:
        """``users/me``: policydesk's own API user (cached)."""
        if self._me is None:
            self._me = self.users.me()
        return self._me

    # Typed versions of zammad-py's resources, under their zammad-py names and plural ones.
    tickets = ticket = property(lambda self: Tickets(connection=self))  # type: ignore[assignment]
    ticket_articles = ticket_article = property(lambda self: TicketArticles(connection=self))  # type: ignore[assignment]
    users = user = property(lambda self: Users(connection=self))  # type: ignore[assignment]
    organizations = organization = property(lambda self: Organizations(connection=self))  # type: ignore[assignment]
    groups = group = property(lambda self: Groups(connection=self))  # type: ignore[assignment]
    ticket_priorities = ticket_priority = property(lambda self: TicketPriorities(connection=self))  # type: ignore[assignment]
    ticket_states = ticket_state = property(lambda self: TicketStates(connection=self))  # type: ignore[assignment]
    tags = ticket_tag = property(lambda self: Tags(connection=self))  # type: ignore[assignment]
    taglist = tag_list = property(lambda self: TagList(connection=self))  # type: ignore[assignment]
    # Resources zammad-py lacks.
    mentions = property(lambda self: Mentions(connection=self))
    object_manager_attributes = property(lambda self: ObjectManagerAttributes(connection=self))
    calendars = property(lambda self: Calendars(connection=self))
    slas = property(lambda self: SLAs(connection=self))
    triggers = property(lambda self: Triggers(connection=self))
    webhooks = property(lambda self: Webhooks(connection=self))
