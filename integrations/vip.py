"""VIP codes: issued on premium activation, stored only as a salted hash, checked on tickets.

A premium customer identifies on the phone with its VIP code. policydesk generates the
code when a plan with ``vip_code: true`` is activated and hands it out once (in the
billing webhook's response, for the customer's technical document); it keeps only a
salted scrypt hash. An agent types the code the caller gives into the ticket's
``policydesk_vip_code`` attribute; `check_vip_entry` verifies it against the ticket's
organization, tags the ticket ``vip:verified`` or ``vip:mismatch`` and clears the entered
value from the ticket.

A code verifies only while the organization's plan includes VIP codes (``vip_code: true``):
after a cancellation to Standard the old code stops working.

A caller can be identified from the code alone (a ticket without an organization): a
keyed hash index maps ``HMAC-SHA256(key, code)`` to the organization, one primary-key
look-up and one scrypt check per typed code, whatever the number of organizations. The
key is ``POLICYDESK_VIP_INDEX_KEY`` (or ``..._FILE``), else derived from the billing secret;
without either the index is off. Codes are drawn again until their index is free, so two
organizations never share one.

The code never appears in a log line, an exception message, the audit or the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
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
    "identify_by_vip",
    "index_key",
    "issue_vip_code",
    "plan_has_vip",
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


def index_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The VIP index key: ``POLICYDESK_VIP_INDEX_KEY``/``_FILE``, else one derived from the
    billing secret (``POLICYDESK_BILLING_SECRET``/``_FILE``), else ``None`` (no index)."""
    env = os.environ if env is None else env
    for name, derive in (("POLICYDESK_VIP_INDEX_KEY", False), ("POLICYDESK_BILLING_SECRET", True)):
        value = env.get(name)
        if not value and env.get(name + "_FILE"):
            try:
                with open(env[name + "_FILE"], "rb") as handle:
                    value = handle.read().decode("utf-8", "replace").strip()
            except OSError:
                value = None
        if value:
            raw = value.encode()
            return hmac.new(raw, b"policydesk vip index", hashlib.sha256).digest() if derive else raw
    return None


def _index(code: str, key: bytes) -> bytes:
    """The keyed digest the store's VIP index holds (never the code)."""
    return hmac.new(key, normalise(code).encode(), hashlib.sha256).digest()


def rotate_vip_code(store: Store, org_ref: str, now: dt.datetime | None = None,
                    key: bytes | None = None) -> str:
    """Give the organization a new code (replacing any); returns it. Show it once, never log it."""
    key = key if key is not None else index_key()
    for _ in range(100):
        code = generate_code()
        index = _index(code, key) if key is not None else None
        if index is None or store.org_by_vip_index(index) in (None, org_ref):
            break  # a code no other organization has
    salt = secrets.token_bytes(_SALT_BYTES)
    store.put_vip_hash(org_ref, salt, hash_code(code, salt), _now(now))
    if index is not None:
        store.put_vip_index(index, org_ref, _now(now))
    store.audit("vip_code_issued", audit_subject(org_ref), {"digits": len(code)}, _now(now))
    return code


def plan_has_vip(store: Store, policies: Any, org_ref: str) -> bool:
    """Whether the organization's current plan includes a VIP code."""
    subscription = store.get_subscription(org_ref)
    plan_name = subscription.plan if subscription is not None else policies.default_plan
    plan = policies.plans.get(plan_name)
    return bool(plan is not None and plan.vip_code)


def identify_by_vip(store: Store, entered: str, policies: Any = None, key: bytes | None = None) -> str | None:
    """The organization whose code ``entered`` is (and whose plan includes one), or ``None``.

    One index look-up and one scrypt check, whatever the number of organizations."""
    key = key if key is not None else index_key()
    if key is None or not normalise(entered):
        return None
    owner = store.org_by_vip_index(_index(entered, key))
    if owner is None:
        hash_code(entered, _DUMMY_SALT)  # the same work as a found one
        return None
    return owner if verify_vip(store, owner, entered, policies) else None


def issue_vip_code(store: Store, org_ref: str, now: dt.datetime | None = None) -> str | None:
    """A new code for an organization that has none; ``None`` if it already has one.

    Call it inside the ``store.atomic()`` block that records the activation, so the hash
    is stored if and only if the activation is.
    """
    if store.get_vip_hash(org_ref) is not None:
        return None
    return rotate_vip_code(store, org_ref, now)


def verify_vip(store: Store, org_ref: str, entered: str, policies: Any = None) -> bool:
    """Whether ``entered`` is the organization's code -- and, given ``policies``, whether its
    plan includes one. Constant-time in the code compared (`hmac.compare_digest` of the
    hashes); an organization without a code takes as long."""
    stored = store.get_vip_hash(org_ref)
    code = normalise(entered)
    if stored is None:
        hmac.compare_digest(hash_code(code, _DUMMY_SALT), hash_code("0" * CODE_DIGITS, _DUMMY_SALT))
        return False
    matches = hmac.compare_digest(hash_code(code, stored.salt), stored.digest)
    return matches and (policies is None or plan_has_vip(store, policies, org_ref))


def check_vip_entry(adapter: Any, store: Store, ticket_id: int | str, state: Any,
                    now: dt.datetime | None = None, policies: Any = None) -> str | None:
    """Verify a VIP code an agent entered on a ticket; returns the tag set, or ``None``.

    ``state`` is the ticket's `ZammadTicketState` (its ``record`` holds the attribute).
    When the ticket's ``policydesk_vip_code`` holds a value: re-read the ticket (so a
    stale ``state``, or a second call, does nothing), verify the value against the
    ticket's organization, add ``vip:verified`` or ``vip:mismatch`` and remove the other,
    clear the attribute, and audit the outcome (never the code). Tags go first and the
    clearing last: after a crash in between, the next call verifies the same value again
    and lands in the same place. With ``policies`` a code verifies only while the plan
    includes one; on a ticket without an organization the code identifies it (the keyed
    index) and the ticket gets that organization.
    """
    from integrations.support_code import typed

    record = getattr(state, "record", None) or {}
    if not typed(record, TICKET_VIP_CODE):
        return None
    client = adapter.client
    fresh = client.tickets.find(ticket_id)
    entered = normalise((fresh or {}).get(TICKET_VIP_CODE))
    if not entered:
        return None  # already handled (a second call, or a stale state)
    organization_id = fresh.get("organization_id")
    org_ref = org_ref_for(organization_id) if organization_id else None
    identified = None
    if org_ref is None:
        identified = identify_by_vip(store, entered, policies)
        verified = identified is not None
    else:
        verified = verify_vip(store, org_ref, entered, policies)
    del entered
    tag, other = (TAG_VERIFIED, TAG_MISMATCH) if verified else (TAG_MISMATCH, TAG_VERIFIED)
    tid = int(fresh.get("id") or ticket_id)
    tags = set(client.tags.list(tid))
    if tag not in tags:
        client.retry.run(lambda: client.tags.add(tid, tag))
    if other in tags:
        client.tags.remove(tid, other)
    update: dict[str, Any] = {TICKET_VIP_CODE: ""}
    if identified is not None:
        update["organization_id"] = int(identified)  # the caller is identified by the code alone
    client.tickets.update(tid, update)
    reason = None if org_ref else ("identified by the VIP code" if identified else "ticket has no organization")
    store.audit("vip_check", f"ticket:{tid}",
                {"result": tag, "organization": org_ref or identified, "reason": reason}, _now(now))
    log.info("ticket %s: VIP code entered: %s", tid, tag)
    return tag
