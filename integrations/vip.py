"""VIP codes: issued on premium activation, stored only as a salted hash, checked on tickets.

A premium customer identifies on the phone with its VIP code. policydesk generates the
code when a plan with ``vip_code: true`` is activated and hands it out once (in the
billing webhook's response, for the customer's technical document); it keeps only a
salted scrypt hash. An agent types the code the caller gives into the ticket's
``policydesk_vip_code`` attribute; `check_vip_entry` verifies it against the ticket's
organization, tags the ticket ``vip:verified`` or ``vip:mismatch`` and clears the entered
value from the ticket.

The code never appears in a log line, an exception message, the audit or the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from typing import Any

from integrations.billing import audit_subject, org_ref_for
from integrations.store import Store

from integrations.zammad.mapping import TICKET_VIP_CODE  # the attribute agents type the code into

log = logging.getLogger("policydesk.vip")

__all__ = [
    "CODE_DIGITS",
    "TAG_MISMATCH",
    "TAG_VERIFIED",
    "TICKET_VIP_CODE",
    "check_vip_entry",
    "generate_code",
    "hash_code",
    "issue_vip_code",
    "normalise",
    "rotate_vip_code",
    "verify_vip",
]

#: Digits in a VIP code.
CODE_DIGITS = 8
TAG_VERIFIED = "vip:verified"
TAG_MISMATCH = "vip:mismatch"
#: scrypt parameters (RFC 7914): about 16 MiB and a few tens of milliseconds per hash.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32, "maxmem": 64 * 1024 * 1024}
_SALT_BYTES = 16
#: Compared against when an organization has no code, so that "no code" takes as long
#: as "wrong code".
_DUMMY_SALT = b"policydesk-no-vip-code-salt"


def generate_code(digits: int = CODE_DIGITS) -> str:
    """A new random code of ``digits`` decimal digits (leading zeros kept), from `secrets`."""
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def normalise(entered: Any) -> str:
    """What the agent typed, without spaces, dashes and dots (``"1234 5678"`` -> ``"12345678"``)."""
    return "".join(ch for ch in str(entered or "") if ch not in " \t-._/")


def hash_code(code: str, salt: bytes) -> bytes:
    """scrypt of the normalised code with ``salt``."""
    return hashlib.scrypt(normalise(code).encode(), salt=salt, **_SCRYPT)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now if now is not None else dt.datetime.now(dt.timezone.utc)


def rotate_vip_code(store: Store, org_ref: str, now: dt.datetime | None = None) -> str:
    """Give the organization a new code (replacing any); returns it. Show it once, never log it."""
    code = generate_code()
    salt = secrets.token_bytes(_SALT_BYTES)
    store.put_vip_hash(org_ref, salt, hash_code(code, salt), _now(now))
    store.audit("vip_code_issued", audit_subject(org_ref), {"digits": len(code)}, _now(now))
    return code


def issue_vip_code(store: Store, org_ref: str, now: dt.datetime | None = None) -> str | None:
    """A new code for an organization that has none; ``None`` if it already has one.

    Call it inside the ``store.atomic()`` block that records the activation, so the hash
    is stored if and only if the activation is.
    """
    if store.get_vip_hash(org_ref) is not None:
        return None
    return rotate_vip_code(store, org_ref, now)


def verify_vip(store: Store, org_ref: str, entered: str) -> bool:
    """Whether ``entered`` is the organization's code. Constant-time in the code compared
    (`hmac.compare_digest` of the hashes); an organization without a code takes as long."""
    stored = store.get_vip_hash(org_ref)
    code = normalise(entered)
    if stored is None:
        hmac.compare_digest(hash_code(code, _DUMMY_SALT), hash_code("0" * CODE_DIGITS, _DUMMY_SALT))
        return False
    return hmac.compare_digest(hash_code(code, stored.salt), stored.digest)


def check_vip_entry(adapter: Any, store: Store, ticket_id: int | str, state: Any,
                    now: dt.datetime | None = None) -> str | None:
    """Verify a VIP code an agent entered on a ticket; returns the tag set, or ``None``.

    ``state`` is the ticket's `ZammadTicketState` (its ``record`` holds the attribute).
    When the ticket's ``policydesk_vip_code`` holds a value: re-read the ticket (so a
    stale ``state``, or a second call, does nothing), verify the value against the
    ticket's organization, add ``vip:verified`` or ``vip:mismatch`` and remove the other,
    clear the attribute, and audit the outcome (never the code). Tags go first and the
    clearing last: after a crash in between, the next call verifies the same value again
    and lands in the same place.
    """
    record = getattr(state, "record", None) or {}
    if not normalise(record.get(TICKET_VIP_CODE)):
        return None
    client = adapter.client
    fresh = client.tickets.find(ticket_id)
    entered = normalise((fresh or {}).get(TICKET_VIP_CODE))
    if not entered:
        return None  # already handled (a second call, or a stale state)
    organization_id = fresh.get("organization_id")
    org_ref = org_ref_for(organization_id) if organization_id else None
    verified = org_ref is not None and verify_vip(store, org_ref, entered)
    del entered
    tag, other = (TAG_VERIFIED, TAG_MISMATCH) if verified else (TAG_MISMATCH, TAG_VERIFIED)
    tid = int(fresh.get("id") or ticket_id)
    tags = set(client.tags.list(tid))
    if tag not in tags:
        client.retry.run(lambda: client.tags.add(tid, tag))
    if other in tags:
        client.tags.remove(tid, other)
    client.tickets.update(tid, {TICKET_VIP_CODE: ""})
    store.audit("vip_check", f"ticket:{tid}",
                {"result": tag, "organization": org_ref, "reason": None if org_ref else "ticket has no organization"},
                _now(now))
    log.info("ticket %s: VIP code entered: %s", tid, tag)
    return tag
