"""Signed webhooks, both ways: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<event id>.<body>">`.

The timestamp and the event id are signed with the body, so a receiver that de-duplicates
by the `...-Event-Id` header can trust it, and refuses signatures older than its
tolerance, so a captured request cannot be replayed later. A header that is not ASCII, not
`t=...,v1=...`, or not hex is malformed: refused, never an error.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

_HEADER = re.compile(r"t=(?P<t>[0-9]{1,12}),v1=(?P<mac>[0-9a-f]{64})", re.ASCII)


def _mac(secret: str, body: bytes, timestamp: int, event_id: str) -> str:
    signed = f"{timestamp}.{event_id}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None, *, event_id: str = "") -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, body, t, event_id)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    event_id: str = "",
    tolerance: int = 300,
    now: float | None = None,
) -> str | None:
    """None when the signature is good, else why not."""
    if not header:
        return "missing signature"
    found = _HEADER.fullmatch(header.strip()) if header.isascii() else None
    if found is None:
        return "malformed signature"
    t = int(found["t"])
    if not hmac.compare_digest(_mac(secret, body, t, event_id), found["mac"]):
        return "signature does not match"
    if abs((time.time() if now is None else now) - t) > tolerance:
        return "signature too old"
    return None
