"""The error hierarchy.

Every domain failure is a `PayoutError` with a stable `code`. The edges translate them:
activities into non-retryable `ApplicationError`s whose type is the code, the CLI into a
one-line message and a non-zero exit status.
"""

from __future__ import annotations


class PayoutError(Exception):
    """Root of every domain error. `code` is stable; `field` names the input at fault."""

    code = "payout_error"
    retryable = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class InvalidInput(PayoutError):
    """Input that breaks a rule; the message names the field and the rule."""

    code = "invalid_input"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"


class PolicyInvalid(PayoutError):
    code = "invalid_policy"


class QuoteRefused(PayoutError):
    """The requested amount cannot be cashed out by this method (below minimum, ...)."""

    code = "quote_refused"


class InsufficientFunds(PayoutError):
    code = "insufficient_funds"


class LimitExceeded(PayoutError):
    code = "limit_exceeded"


class IdempotencyConflict(PayoutError):
    """The same idempotency key was used before for a different operation or content."""

    code = "idempotency_conflict"


class InvalidState(PayoutError):
    """The operation does not fit the current state (posting a voided hold, ...)."""

    code = "invalid_state"


class NotFound(PayoutError):
    code = "not_found"
