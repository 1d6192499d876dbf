"""Support codes: every organization's short phone identifier, with a check digit.

"The support code allows the Support department to quickly and securely identify you."
Every organization (Standard included) has one, in its Zammad attribute ``support_code``.

* **Shape.** Nine digits read out in groups of three (``482 190 375``): eight digits that
  stand for the organization, then a Damm check digit. Damm's quasigroup catches every
  single misheard digit and every swap of two neighbours. Organizations with an id of
  10^8 or more get eleven digits (ten + check).
* **Unique without a table.** The eight digits are a keyed permutation of the Zammad
  organization id (a balanced Feistel network on two four-digit halves, rounds from
  HMAC-SHA256): two organizations never share a code, the code reveals no id, and a
  typed code is turned back into its organization id in constant time. The key is
  ``POLICYDESK_SUPPORT_CODE_KEY`` (or ``..._FILE``); changing it changes every code, so set
  it once. Without it a built-in key is used (codes are identifiers, not secrets: the VIP
  code is the secret).
* **Where it comes from.** `ensure_support_code` writes the attribute when it is missing
  or different; the processor calls it when policydesk first sees an organization, and
  ``policydesk reconcile`` calls it for every existing one.
* **On a ticket.** An agent types the caller's code into ``policydesk_support_code``;
  `check_support_code_entry` links the ticket to that organization (organization set
  when missing, a different one flagged with ``support_code:mismatch``), tags a code
  that fails its check digit or names no organization ``support_code:invalid``, and
  clears the typed value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("policydesk.support_code")

__all__ = [
    "ORG_SUPPORT_CODE", "TAG_INVALID", "TAG_LINKED", "TAG_MISMATCH", "TICKET_SUPPORT_CODE", "check_digit", "normalise",
    "check_support_code_entry", "ensure_support_code", "organization_of", "support_code", "support_code_key",
]

#: Organization attribute holding the code (created by ``policydesk sync``).
ORG_SUPPORT_CODE = "support_code"
#: Ticket attribute agents type a caller's code into (created by ``policydesk sync``).
TICKET_SUPPORT_CODE = "policydesk_support_code"
TAG_LINKED, TAG_MISMATCH, TAG_INVALID = "support_code:linked", "support_code:mismatch", "support_code:invalid"
_DEFAULT_KEY = b"policydesk support code v1"
_ROUNDS = 8
#: (digits per half, largest id + 1) of the two code lengths.
_SHAPES = ((4, 10**8), (5, 10**10))

# Damm's totally anti-symmetric quasigroup of order 10 (H. M. Damm, 2004).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2), (7, 0, 9, 2, 1, 5, 4, 8, 6, 3), (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6), (6, 1, 2, 3, 0, 4, 5, 9, 7, 8), (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4), (8, 9, 4, 5, 3, 6, 2, 0, 1, 7), (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def check_digit(digits: str) -> str:
    """The Damm check digit of a string of decimal digits."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][int(ch)]
    return str(interim)


def support_code_key(env: Mapping[str, str] | None = None) -> bytes:
    """The permutation key: ``POLICYDESK_SUPPORT_CODE_KEY``, ``..._FILE``, or the built-in one."""
    env = os.environ if env is None else env
    if env.get("POLICYDESK_SUPPORT_CODE_KEY"):
        return env["POLICYDESK_SUPPORT_CODE_KEY"].encode()
    if env.get("POLICYDESK_SUPPORT_CODE_KEY_FILE"):
        with open(env["POLICYDESK_SUPPORT_CODE_KEY_FILE"], "rb") as handle:
            return handle.read().strip()
    return _DEFAULT_KEY


def _round(key: bytes, number: int, half: int, modulus: int) -> int:
    mac = hmac.new(key, f"{number}:{half}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") % modulus


def _permute(value: int, width: int, key: bytes, inverse: bool = False) -> int:
    modulus = 10**width
    left, right = divmod(value, modulus)
    if not inverse:
        for number in range(_ROUNDS):
            left, right = right, (left + _round(key, number, right, modulus)) % modulus
    else:
        for number in reversed(range(_ROUNDS)):
            left, right = (right - _round(key, number, left, modulus)) % modulus, left
    return left * modulus + right


def typed(record: Mapping[str, Any], attribute: str) -> bool:
    """Whether an agent typed something into ``attribute``: its value (Zammad's default
    payload) or the ``<attribute>_typed`` marker sync's payload sends instead of the code."""
    marker = str(record.get(f"{attribute}_typed") or "").strip().lower()
    return bool(normalise(record.get(attribute))) or marker in ("true", "1", "yes")


def normalise(entered: Any) -> str:
    """What was typed, without spaces, dashes, dots and slashes."""
    return "".join(ch for ch in str(entered or "") if ch not in " \t-._/")


def support_code(organization_id: int, key: bytes | None = None) -> str:
    """The organization's support code, grouped in threes (``"482 190 375"``)."""
    organization_id = int(organization_id)
    for width, limit in _SHAPES:
        if 0 < organization_id < limit:
            body = str(_permute(organization_id, width, key or support_code_key())).zfill(2 * width)
            digits = body + check_digit(body)
            return " ".join(digits[i:i + 3] for i in range(0, len(digits), 3))
    raise ValueError(f"no support code for organization id {organization_id}")


def organization_of(entered: Any, key: bytes | None = None) -> int | None:
    """The organization id a typed code stands for, or ``None`` (wrong length, a failed
    check digit, or a code that maps to no valid id)."""
    digits = normalise(entered)
    if not digits.isascii() or not digits.isdigit():
        return None
    for width, limit in _SHAPES:
        if len(digits) == 2 * width + 1:
            if check_digit(digits) != "0":  # a Damm-checked string checks to 0
                return None
            organization_id = _permute(int(digits[:-1]), width, key or support_code_key(), inverse=True)
            return organization_id if 0 < organization_id < limit else None
    return None


def ensure_support_code(adapter: Any, organization: Mapping[str, Any]) -> str:
    """Give a Zammad organization record its code where it is missing or different; returns the code."""
    code = support_code(int(organization["id"]))
    if str(organization.get(ORG_SUPPORT_CODE) or "") != code:
        adapter.client.organizations.update(int(organization["id"]), {ORG_SUPPORT_CODE: code})
        log.info("organization %s: support code written", organization["id"])
    return code


def check_support_code_entry(adapter: Any, store: Any, ticket_id: int | str, state: Any,
                             now: dt.datetime | None = None) -> str | None:
    """Act on a support code an agent typed on a ticket; returns the tag set, or ``None``.

    Re-reads the ticket (a stale ``state`` or a second call does nothing), links it to the
    code's organization when it has none, flags a mismatch or an invalid code, clears the
    typed value last (a crash in between lands in the same place on the next call) and
    audits the outcome.
    """
    record = getattr(state, "record", None) or {}
    if not typed(record, TICKET_SUPPORT_CODE):
        return None
    client = adapter.client
    fresh = client.tickets.find(ticket_id) or {}
    entered = normalise(fresh.get(TICKET_SUPPORT_CODE))
    if not entered:
        return None
    tid = int(fresh.get("id") or ticket_id)
    organization_id = organization_of(entered)
    organization = _organization(client, organization_id) if organization_id is not None else None
    current = fresh.get("organization_id")
    changes: dict[str, Any] = {}
    if organization is None:
        tag = TAG_INVALID
    elif current in (None, 0, ""):
        tag = TAG_LINKED
        changes["organization_id"] = organization_id
        customer = fresh.get("customer_id")
        members = [m for m in organization.get("member_ids") or [] if m]
        if customer in (None, 0, 1) and len(members) == 1:  # 1: Zammad's placeholder "-" user
            changes["customer_id"] = int(members[0])
    elif int(current) == organization_id:
        tag = TAG_LINKED
    else:
        tag = TAG_MISMATCH
    tags = set(client.tags.list(tid))
    if tag not in tags:
        client.retry.run(lambda: client.tags.add(tid, tag))
    for other in {TAG_LINKED, TAG_MISMATCH, TAG_INVALID} - {tag}:
        if other in tags:
            client.tags.remove(tid, other)
    changes[TICKET_SUPPORT_CODE] = ""
    client.tickets.update(tid, changes)
    if store is not None:
        store.audit("support_code_check", f"ticket:{tid}", {
            "result": tag, "organization": organization_id if organization is not None else None,
            "ticket_organization": current, "linked": "organization_id" in changes},
            now or dt.datetime.now(dt.timezone.utc))
    log.info("ticket %s: support code entered: %s", tid, tag)
    return tag


def _organization(client: Any, organization_id: int) -> Mapping[str, Any] | None:
    from integrations.zammad.errors import ZammadNotFound

    try:
        return client.organizations.find(organization_id)
    except ZammadNotFound:
        return None


#: (Zammad URL, organization id) whose support code this process has already checked.
_SEEN: dict[tuple[str, int], None] = {}
_SEEN_LIMIT = 100_000


def ensure_seen(adapter: Any, organization_id: Any) -> None:
    """Give an organization its support code the first time this process sees it (one
    read per organization and process, so ticket events cost no extra call after that)."""
    if not organization_id:
        return
    key = (str(getattr(adapter.client, "url", "")), int(organization_id))
    if key in _SEEN:
        return
    record = _organization(adapter.client, int(organization_id))
    if record is not None:
        ensure_support_code(adapter, record)
    if len(_SEEN) >= _SEEN_LIMIT:
        _SEEN.clear()
    _SEEN[key] = None


def codes_entered(adapter: Any, store: Any, ticket_id: int | str, state: Any, now: dt.datetime,
                  policies: Any = None) -> bool:
    """The processor's one call before evaluating a ticket: act on a typed VIP code and a
    typed support code (each cleared), give the organization its support code when first
    seen. ``True`` when the ticket changed so that it must be read again."""
    from integrations.vip import check_vip_entry

    vip = check_vip_entry(adapter, store, ticket_id, state, now, policies=policies)
    code = check_support_code_entry(adapter, store, ticket_id, state, now)
    record = getattr(state, "record", None) or {}
    try:
        ensure_seen(adapter, record.get("organization_id"))
    except Exception as error:  # the code is written next time; the ticket's own work goes on
        log.warning("organization %s: support code not written now: %s", record.get("organization_id"),
                    type(error).__name__)
    return vip is not None or code is not None
