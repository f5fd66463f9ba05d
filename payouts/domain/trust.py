"""What each principal signs, and the checks a signed message must pass.

Temporal access is transport, not identity: anyone who reaches the frontend can start a
workflow or send a signal with any payload. So every action that moves money names its
principal and carries that principal's signature over exactly what it decides:

- the platform signs a cash-out request (`request_message`), a payee's cancel, each
  change to a payee's payout profile (`profile_message`), each reversal of an earning
  (`reversal_message`) and each read of a payee's statement (`statement_message`); our
  sweep signs the automatic
  cash-outs a payee's standing instruction asks for (with the service key);
- a reviewer signs a decision or a cancel, bound to the workflow id and the request's
  digest (`decision_message`, `cancel_message`), with a time and a nonce;
- our rail components (bank workflows, webhook ingress) sign what a rail said about one
  cash-out (`rail_event_message`).

Messages are canonical JSON (sorted keys, no spaces, ASCII), so signer and verifier build
the same bytes. The cryptography is `payouts.security.keys`; this module stays pure:
`check` takes the verifying function, so the workflow can run it deterministically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from payouts.domain.cashout import CashoutInput, CashoutRequest, Destination
from payouts.domain.profiles import ProfileChange
from payouts.domain.reversals import ReversalRequest
from payouts.domain.statements import StatementRequest

SIGNATURE_TTL = timedelta(minutes=15)  # how long a signed decision or cancel stays usable
CLOCK_SKEW = timedelta(minutes=2)  # how far in the future a signature's time may be

Verify = Callable[[str, bytes, str], bool]  # (public key, message, signature) -> valid


def canonical(kind: str, fields: dict[str, Any]) -> bytes:
    body = {"payouts": 1, "kind": kind, **fields}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def destination_digest(destination: Destination) -> str:
    return hashlib.sha256(canonical("destination", destination.model_dump(mode="json"))).hexdigest()


def request_digest(inp: CashoutInput) -> str:
    """What a reviewer approves: who is paid how much, how, where, under which rules."""
    q, req = inp.quote, inp.request
    fields = {
        "user_id": req.user_id,
        "gross": q.gross,
        "currency": q.currency,
        "method": q.method.value,
        "destination": destination_digest(req.destination),
        "policy_version": inp.rules.policy_version,
    }
    if q.speed != "standard":  # (the digests of standard cash-outs are as before speeds)
        fields["speed"] = q.speed
    return hashlib.sha256(canonical("request-digest", fields)).hexdigest()


def request_message(request: CashoutRequest, requested_at: datetime) -> bytes:
    """What the platform signs to start a cash-out."""
    return canonical(
        "cashout-request",
        {"request": _signed_fields(request), "requested_at": requested_at.isoformat()},
    )


def _signed_fields(request: CashoutRequest) -> dict[str, Any]:
    """The request as signed. A standard speed is left out (of the request and its quote),
    so a standard request signs the same bytes as before there were speeds: clients and
    cash-outs of the release before keep verifying."""
    fields = request.model_dump(mode="json")
    if fields.get("speed") == "standard":
        del fields["speed"]
    quote = fields.get("quote")
    if isinstance(quote, dict) and quote.get("speed") == "standard":
        del quote["speed"]
    return fields


def auto_request_message(request: CashoutRequest, requested_at: datetime) -> bytes:
    """What our sweep signs to start a cash-out a standing instruction asks for (a kind of
    its own: a platform signature can never pass for one, nor the other way round)."""
    return canonical(
        "auto-cashout-request",
        {"request": _signed_fields(request), "requested_at": requested_at.isoformat()},
    )


def profile_message(change: ProfileChange) -> bytes:
    """What the platform signs to change a payee's payout profile."""
    return canonical(
        "profile-change", change.model_dump(mode="json", exclude={"platform_signature"})
    )


def reversal_message(request: ReversalRequest) -> bytes:
    """What the platform signs to reverse (part of) an earning."""
    return canonical(
        "earning-reversal", request.model_dump(mode="json", exclude={"platform_signature"})
    )


def statement_message(request: StatementRequest) -> bytes:
    """What the platform signs to read a page of a payee's statement."""
    return canonical(
        "payee-statement", request.model_dump(mode="json", exclude={"platform_signature"})
    )


def decision_message(
    *,
    workflow_id: str,
    digest: str,
    decision: str,
    reviewer: str,
    reason: str,
    signed_at: str,
    nonce: str,
) -> bytes:
    return canonical(
        "review-decision",
        {
            "workflow_id": workflow_id,
            "digest": digest,
            "decision": decision,
            "reviewer": reviewer,
            "reason": reason,
            "signed_at": signed_at,
            "nonce": nonce,
        },
    )


def cancel_message(
    *,
    workflow_id: str,
    digest: str,
    requested_by: str,
    reason: str,
    signed_at: str,
    nonce: str,
) -> bytes:
    return canonical(
        "cancel",
        {
            "workflow_id": workflow_id,
            "digest": digest,
            "requested_by": requested_by,
            "reason": reason,
            "signed_at": signed_at,
            "nonce": nonce,
        },
    )


def rail_event_message(workflow_id: str, rail: str, event: dict[str, Any]) -> bytes:
    """What our rail components sign about one cash-out (the event without its signature)."""
    fields = {k: v for k, v in event.items() if k != "signature"}
    return canonical("rail-event", {"workflow_id": workflow_id, "rail": rail, "event": fields})


def check(
    *,
    verify: Verify,
    public: str | None,
    message: bytes,
    signature: str,
    signed_at: str,
    nonce: str,
    now: datetime,
    seen: set[str],
) -> str | None:
    """Why a signed decision or cancel cannot count (None: it can). `seen` holds the nonces
    this cash-out has already taken; a new one is added only when the signature holds."""
    if not signature:
        return "unsigned: sign it with your key (payouts review approve, or payouts review sign)"
    if public is None:
        return "no registered key for the signer"
    try:
        at = datetime.fromisoformat(signed_at)
    except ValueError:
        return "signed_at: not an ISO 8601 time"
    if at.tzinfo is None:
        return "signed_at: has no timezone"
    if at > now + CLOCK_SKEW:
        return "signed_at: in the future"
    if now - at > SIGNATURE_TTL:
        minutes = int(SIGNATURE_TTL.total_seconds() // 60)
        return f"stale: signed more than {minutes} minutes ago; sign it again"
    if not nonce or len(nonce) > 64:
        return "nonce: 1 to 64 characters"
    if nonce in seen:
        return "replayed: this signature was used before"
    if not verify(public, message, signature):
        return "signature does not verify (another key, another cash-out or altered content)"
    seen.add(nonce)
    return None
