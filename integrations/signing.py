"""Webhook signatures: Zammad's HMAC-SHA1 header, and the billing system's timestamped HMAC-SHA256.

Comparisons are constant-time. Keys come from the environment or files (see
`integrations.config`), never from policy YAML, and are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import time

#: Billing signatures older or newer than this are refused (replay protection).
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed as it must be; the message is safe to return to the caller."""


def zammad_signature(body: bytes, token: str) -> str:
    """``X-Hub-Signature`` as Zammad sends it: ``sha1=`` + hex HMAC-SHA1 of the raw body."""
    return "sha1=" + hmac.new(token.encode(), body, hashlib.sha1).hexdigest()


def verify_zammad(body: bytes, header: str | None, token: str) -> None:
    """Raise `SignatureError` unless ``header`` is the right ``X-Hub-Signature`` for ``body``."""
    if not header:
        raise SignatureError("missing X-Hub-Signature header")
    if not header.startswith("sha1="):
        raise SignatureError("X-Hub-Signature must be sha1=<hex HMAC-SHA1 of the body>")
    if not hmac.compare_digest(header.encode(), zammad_signature(body, token).encode()):
        raise SignatureError("X-Hub-Signature does not match the body")


def _billing_mac(body: bytes, secret: str, timestamp: int) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def billing_signature(body: bytes, secret: str, timestamp: int) -> str:
    """``Policydesk-Signature`` header: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>``."""
    return f"t={timestamp},v1={_billing_mac(body, secret, timestamp)}"


def verify_billing(
    body: bytes,
    header: str | None,
    secret: str,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a billing signature; return its timestamp.

    :raises SignatureError: missing or malformed header, a timestamp outside ``tolerance``
        seconds of ``now`` (a replay), or a signature that does not match.
    """
    if not header:
        raise SignatureError("missing Policydesk-Signature header")
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or key in parts:
            raise SignatureError("Policydesk-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
        parts[key] = value
    if set(parts) != {"t", "v1"} or not (parts["t"].isascii() and parts["t"].isdigit()) or len(parts["t"]) > 12:
        raise SignatureError("Policydesk-Signature must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
    timestamp = int(parts["t"])
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"signature timestamp is more than {tolerance} s from now (replayed or clock skew)")
    if not hmac.compare_digest(parts["v1"].encode(), _billing_mac(body, secret, timestamp).encode()):
        raise SignatureError("Policydesk-Signature does not match the body")
    return timestamp
