"""Signing what a principal decides: the platform's requests and cancels, a reviewer's
decisions and cancels (over the messages `payouts.domain.trust` defines)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from payouts.domain import trust
from payouts.domain.cashout import CashoutInput, Signed
from payouts.security.keys import SigningKey


def sign_request(key: SigningKey, inp: CashoutInput) -> CashoutInput:
    """The input with the platform's signature over its request and time."""
    message = trust.request_message(inp.request, inp.requested_at)
    return inp.model_copy(update={"platform_signature": key.sign(message)})


def _stamp() -> tuple[str, str]:
    return datetime.now(UTC).isoformat(timespec="seconds"), secrets.token_hex(12)


def sign_decision(
    key: SigningKey,
    *,
    workflow_id: str,
    digest: str,
    decision: str,
    reviewer: str,
    reason: str,
) -> Signed:
    signed_at, nonce = _stamp()
    message = trust.decision_message(
        workflow_id=workflow_id,
        digest=digest,
        decision=decision,
        reviewer=reviewer,
        reason=reason,
        signed_at=signed_at,
        nonce=nonce,
    )
    return Signed(signed_at=signed_at, nonce=nonce, signature=key.sign(message))


def sign_cancel(
    key: SigningKey, *, workflow_id: str, digest: str, requested_by: str, reason: str
) -> Signed:
    signed_at, nonce = _stamp()
    message = trust.cancel_message(
        workflow_id=workflow_id,
        digest=digest,
        requested_by=requested_by,
        reason=reason,
        signed_at=signed_at,
        nonce=nonce,
    )
    return Signed(signed_at=signed_at, nonce=nonce, signature=key.sign(message))
