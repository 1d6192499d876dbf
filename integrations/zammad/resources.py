"""zammad-py, extended: typed errors, timeouts, retries, and the resources it lacks.

zammad-py's resources call ``connection.session.<verb>`` and then
``_raise_or_return_json``.  We keep that design and change two things:

- `ZammadSession` (a ``requests.Session``) puts a timeout on every request, turns
  transport failures into `ZammadUnavailable`, and retries idempotent requests
  (GET, PUT, DELETE) on transient failures with exponential backoff.  POST is never
  retried here: callers that know a POST is safe to repeat use `RetryPolicy.run`.
- every resource mixes in `_TypedErrors`, whose ``_raise_or_return_json`` raises the
  typed exceptions of `integrations.zammad.errors` with the HTTP status.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, TypeVar
from urllib.parse import urlsplit

import requests
from zammad_py import api as zapi

from integrations.zammad.errors import (
    ZammadError,
    ZammadRateLimited,
    ZammadUnavailable,
    error_from_response,
    error_from_transport,
)

R = TypeVar("R")

#: Methods whose repetition has the same effect as one call.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses worth another try.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: ``base_delay * factor**(attempt-1)``, capped, with jitter.

    ``attempts`` counts every try, the first included (``attempts=1`` never retries).
    """

    attempts: int = 4
    base_delay: float = 0.5
    factor: float = 2.0
    max_delay: float = 8.0
    #: Fraction of each delay added at random, so many workers do not retry in step.
    jitter: float = 0.1
    #: Longest ``Retry-After`` we honour from a 429.
    max_retry_after: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        base = min(self.max_delay, self.base_delay * self.factor ** (attempt - 1))
        if retry_after is not None:
            base = max(base, min(retry_after, self.max_retry_after))
        return base + base * self.jitter * random.random()

    def run(self, operation: Callable[[], R], *, already_done: Callable[[], R | None] | None = None) -> R:
        """Call ``operation`` until it succeeds or fails for good.

        Only `ZammadError`s with ``transient`` set are retried.  Before each retry,
        ``already_done`` (if given) is asked whether the previous try took effect after
        all (a timeout does not mean nothing happened); a non-``None`` answer is returned
        instead of trying again.
        """
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except ZammadError as exc:
                if not exc.transient or attempt == self.attempts:
                    raise
                retry_after = exc.retry_after if isinstance(exc, ZammadRateLimited) else None
                self.sleep(self.delay(attempt, retry_after))
                if already_done is not None:
                    done = already_done()
                    if done is not None:
                        return done
        raise AssertionError("unreachable")  # pragma: no cover


class ZammadSession(requests.Session):
    """A session with a default timeout, typed transport errors and idempotent retries."""

    def __init__(self, *, timeout: float = 10.0, retry: RetryPolicy | None = None, pool_size: int = 64) -> None:
        super().__init__()
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        # Many workers and their parallel writes share this session: keep enough connections.
        pooled = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.mount("http://", pooled)
        self.mount("https://", pooled)
        # requests reads the environment for every request (the proxy variables twice, by
        # walking all of os.environ, and ~/.netrc): a quarter of the service's CPU under
        # load. A running service's environment does not change, so `_environment` reads
        # the proxies (with NO_PROXY) and the CA bundle once per origin. ~/.netrc is not
        # read: its Basic credentials would replace the API token anyway.
        self.trust_env = False
        self._environment: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}

    def _environment_of(self, url: str) -> tuple[dict[str, str], str | None]:
        """(proxies for ``url``, CA bundle) from the environment, as requests reads them."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        known = self._environment.get(origin)
        if known is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            known = self._environment[origin] = (requests.utils.get_environ_proxies(url), bundle)
        return known

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        env_proxies, bundle = self._environment_of(url.decode() if isinstance(url, bytes) else str(url or ""))
        proxies = dict(proxies or {})
        for scheme, proxy in env_proxies.items():
            proxies.setdefault(scheme, proxy)
        if bundle and (verify is True or verify is None):
            verify = bundle
        return super().merge_environment_settings(url, proxies, stream, verify, cert)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        verb = (method.decode() if isinstance(method, bytes) else method).upper()
        target = url.decode() if isinstance(url, bytes) else url
        kwargs.setdefault("timeout", self.timeout)
        # ``once=True``: a write that is not idempotent (a ticket update carrying an article).
        once = kwargs.pop("once", False)
        attempts = self.retry.attempts if verb in IDEMPOTENT_METHODS and not once else 1
        lean = (not args and kwargs.keys() <= _LEAN_ARGUMENTS and kwargs.get("allow_redirects", True)
                and not self.params)  # session-wide query parameters: requests merges them
        for attempt in range(1, attempts + 1):
            try:
                if lean:
                    response = self._lean_request(verb, target, **kwargs)
                else:
                    response = super().request(verb, target, *args, **kwargs)
            except requests.RequestException as exc:
                error = error_from_transport(exc, verb, target)
                if not error.transient or attempt == attempts:
                    raise error from exc
                self.retry.sleep(self.retry.delay(attempt))
                continue
            if response.status_code in TRANSIENT_STATUSES and attempt < attempts:
                error = error_from_response(response)
                retry_after = error.retry_after if isinstance(error, ZammadRateLimited) else None
                response.close()
                self.retry.sleep(self.retry.delay(attempt, retry_after))
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _lean_request(self, verb: str, url: str, *, params: Any = None, data: Any = None, json: Any = None,
                      headers: Mapping[str, Any] | None = None, timeout: Any = None,
                      allow_redirects: bool = True) -> requests.Response:
        """What ``Session.request`` does for an API call, without its general machinery
        (``allow_redirects`` is accepted, and is always true here: see below).

        ``Session.request`` merges every session setting into every request (each merge a
        ``typing.Protocol`` check, slow before Python 3.12), keeps a cookie jar and
        follows redirects: 2.8 million instructions per ticket update here, against 1.7
        million for this (callgrind). The mounted adapter still sends it: proxies, TLS,
        pooling and transport errors as requests handles them.

        Zammad's API authenticates every call by its token, so its session cookie is not
        sent back. It never redirects an API call, so a redirect means ``ZAMMAD_URL``
        points elsewhere (``http://`` for ``https://``, a proxy's login page); it is
        refused with where it leads (followed, a write would arrive as a GET).
        """
        prepared = requests.PreparedRequest()
        prepared.prepare_method(verb)
        prepared.prepare_url(url, params)
        merged = dict(self.headers)
        if headers:
            merged.update(headers)
        prepared.prepare_headers({key: value for key, value in merged.items() if value is not None})
        prepared.prepare_body(data or {}, None, json)
        if self.auth:
            prepared.prepare_auth(self.auth, prepared.url)
        target = str(prepared.url)
        env_proxies, bundle = self._environment_of(target)
        proxies = {**self.proxies, **env_proxies}
        verify: bool | str = bundle if bundle and self.verify is True else (
            True if self.verify is None else self.verify)
        response = self.get_adapter(target).send(prepared, stream=False, timeout=timeout, verify=verify,
                                                  cert=self.cert, proxies=proxies)
        _ = response.content  # read the whole answer: the connection goes back to the pool
        if response.is_redirect:
            location = shorten_url(response.headers.get("Location", ""))
            raise ZammadError(
                f"Zammad answered {response.status_code} {response.reason}, redirecting to {location or '(nowhere)'}:"
                " set ZAMMAD_URL to the address Zammad answers on itself (its API never redirects)",
                status=response.status_code, method=verb, url=target)
        return response


#: Keyword arguments `ZammadSession._lean_request` handles; any other goes through requests.
_LEAN_ARGUMENTS = frozenset({"params", "data", "json", "headers", "timeout", "allow_redirects"})


def shorten_url(url: str, limit: int = 200) -> str:
    """``url`` without its query (which may carry a token) and cut to ``limit`` characters."""
    text = url.split("?", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- resources


class _TypedErrors:
    """Mixin for zammad-py resources: raise typed errors that keep the HTTP status."""

    _connection: zapi.ZammadAPI
    #: The most ``per_page`` this endpoint honours (Zammad clamps larger values).
    max_per_page: int = 100

    def _raise_or_return_json(self, response: requests.Response) -> Any:
        if not response.ok:
            raise error_from_response(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.content

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request to ``<api url>/<path>``, answered as JSON or a typed error."""
        response = self._connection.session.request(method, self._connection.url + path, **kwargs)
        return self._raise_or_return_json(response)


class _Crud(_TypedErrors, zapi.Resource):
    """A plain Zammad REST collection: index, show, create, update, destroy."""

    path_attribute = ""

    def find(self, id: int | str, *, expand: bool = False) -> Any:
        params = {"expand": "true"} if expand else None
        return self._call("GET", f"{self.path_attribute}/{id}", params=params)


class Tickets(_TypedErrors, zapi.Ticket):
    max_per_page = 100  # TicketsController#index: paginate_with(max: 100)

    def find(self, id: int | str, *, expand: bool = False) -> Any:
        params = {"expand": "true"} if expand else None
        return self._call("GET", f"tickets/{id}", params=params)

    def update(self, id: int | str, params: Mapping[str, Any], *, once: bool = False) -> Any:
        """``PUT tickets/<id>``; with ``once`` the session never repeats it (it carries an
        ``article``: tickets_controller.rb#update creates it inside the same locked update)."""
        return self._call("PUT", f"tickets/{id}", json=dict(params), once=once)


class TicketArticles(_TypedErrors, zapi.TicketArticle):
    def by_ticket(self, ticket_id: int | str) -> list[dict[str, Any]]:
        return self._call("GET", f"ticket_articles/by_ticket/{ticket_id}") or []


class Users(_TypedErrors, zapi.User):
    def find(self, id: int | str, *, expand: bool = False) -> Any:
        params = {"expand": "true"} if expand else None
        return self._call("GET", f"users/{id}", params=params)

    def search_exact(self, query: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """``GET users/search?query=...`` (a list; Zammad answers a list unless ``full``)."""
        result = self._call("GET", "users/search", params={"query": query, "limit": limit, "expand": "true"})
        return result if isinstance(result, list) else []


class Organizations(_TypedErrors, zapi.Organization):
    def find(self, id: int | str, *, expand: bool = False) -> Any:
        params = {"expand": "true"} if expand else None
        return self._call("GET", f"organizations/{id}", params=params)


class Groups(_TypedErrors, zapi.Group):
    pass


class TicketPriorities(_TypedErrors, zapi.TicketPriority):
    pass


class TicketStates(_TypedErrors, zapi.TicketState):
    pass


class Tags(_TypedErrors, zapi.TicketTag):
    """Tags of one object: ``GET tags``, ``POST tags/add``, ``DELETE tags/remove``.

    Zammad's add and remove are idempotent (adding a present tag or removing an absent
    one succeeds), so both are safe to retry.
    """

    def list(self, o_id: int | str, object: str = "Ticket") -> list[str]:
        result = self._call("GET", "tags", params={"object": object, "o_id": o_id})
        return list((result or {}).get("tags") or [])


class TagList(_TypedErrors, zapi.TagList):
    pass


class Mentions(_TypedErrors, zapi.Resource):
    """``/mentions``: Zammad's ticket subscriptions.

    Zammad creates and deletes a mention only for the *current* user, so mentioning
    someone else is done on their behalf (``X-On-Behalf-Of``: id, login or e-mail).
    """

    path_attribute = "mentions"

    def for_ticket(self, ticket_id: int | str) -> list[dict[str, Any]]:
        result = self._call(
            "GET", "mentions", params={"mentionable_type": "Ticket", "mentionable_id": ticket_id}
        )
        if isinstance(result, dict):
            return list(result.get("mentions") or [])
        return list(result or [])

    def add(self, ticket_id: int | str, *, on_behalf_of: str | int | None = None) -> Any:
        headers = {"X-On-Behalf-Of": str(on_behalf_of)} if on_behalf_of is not None else None
        return self._call(
            "POST", "mentions",
            json={"mentionable_type": "Ticket", "mentionable_id": ticket_id}, headers=headers,
        )

    def remove(self, mention_id: int | str, *, on_behalf_of: str | int | None = None) -> Any:
        headers = {"X-On-Behalf-Of": str(on_behalf_of)} if on_behalf_of is not None else None
        return self._call("DELETE", f"mentions/{mention_id}", headers=headers)


class ObjectManagerAttributes(_TypedErrors, zapi.Object):
    """``/object_manager_attributes`` plus ``object_manager_attributes_execute_migrations``."""

    max_per_page = 500


class Calendars(_Crud):
    path_attribute = "calendars"


class SLAs(_Crud):
    path_attribute = "slas"


class Triggers(_Crud):
    path_attribute = "triggers"


class Webhooks(_Crud):
    path_attribute = "webhooks"


# --------------------------------------------------------------------------- pagination


def iter_all(
    resource: zapi.Resource,
    *,
    per_page: int = 100,
    params: Mapping[str, Any] | None = None,
    max_pages: int = 10_000,
) -> Iterator[Any]:
    """Every record of ``resource``'s index, page after page.

    ``per_page`` is clamped to the endpoint's server cap (asking for more would make a
    full page look short and end the walk early).  Stops after an empty page or one
    shorter than ``per_page``.
    """
    cap = getattr(resource, "max_per_page", 100)
    size = max(1, min(per_page, cap))
    for page in range(1, max_pages + 1):
        query: dict[str, Any] = {"expand": "true", **(params or {}), "page": page, "per_page": size}
        items = resource.all(page=page, filters=query)._items
        if not isinstance(items, list):
            raise ZammadError(f"expected a list from {resource.path_attribute}, got {type(items).__name__}")
        yield from items
        if len(items) < size:
            return
    raise ZammadUnavailable(f"{resource.path_attribute}: more than {max_pages} pages, giving up")
