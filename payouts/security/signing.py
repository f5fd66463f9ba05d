"""Signed webhooks, both ways: `t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

The timestamp is signed with the body, and a receiver refuses signatures older than its
tolerance, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(
    secret: str, body: bytes, header: str | None, *, tolerance: int = 300, now: float | None = None
) -> str | None:
    """None when the signature is good, else why not."""
    if not header:
        return "missing signature"
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return "malformed signature"
    expected = sign(secret, body, t).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return "signature does not match"
    if abs((time.time() if now is None else now) - t) > tolerance:
        return "signature too old"
    return None
