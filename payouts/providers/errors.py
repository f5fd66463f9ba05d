"""What a rail can answer besides a result."""

from __future__ import annotations

from payouts.errors import PayoutError


class RailTransientError(PayoutError):
    """The rail refused for now (5xx, 429, connection refused); nothing was applied."""

    code = "rail_unavailable"
    retryable = True


class RailTimeout(PayoutError):
    """No answer in time: the payout may or may not have been applied. Ask the rail."""

    code = "rail_timeout"
    retryable = True


class RailConflict(PayoutError):
    """The idempotency key was used before with a different request (HTTP 422)."""

    code = "rail_idempotency_conflict"
