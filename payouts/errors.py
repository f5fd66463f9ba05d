"""Every domain error, in one hierarchy.

Each is a `PayoutError` with a stable `code` (what callers and the workflow match on) and,
for bad input, the `field` at fault. The edges translate them: an activity raises a
`PayoutError` as an `ApplicationError` whose type is the code (retryable only where marked),
the CLI prints the message on one line and exits 1, the client raises them as they are.
Foreign errors (SQLAlchemy, aiohttp, lxml, Temporal's RPC errors) are translated into
these where they are caught, never passed through.

    PayoutError                     payout_error
    ├── InvalidInput                invalid_input           a field breaks a rule
    │   ├── InvalidAmount           invalid_amount
    │   ├── UnknownCurrency         unknown_currency
    │   └── IngestRefused           ingest_refused          a file with bad rows (strict)
    ├── PolicyInvalid               invalid_policy
    ├── QuoteRefused                quote_refused           below minimum, above maximum, ...
    ├── InsufficientFunds           insufficient_funds
    ├── LimitExceeded               limit_exceeded
    ├── IdempotencyConflict         idempotency_conflict    same key, other content
    ├── InvalidState                invalid_state           does not fit the current state
    ├── NotFound                    not_found
    ├── RequestConflict             request_conflict        a request id reused for another cash-out
    ├── ReviewRefused               review_refused          a reviewer's decision did not count
    ├── CancelRefused               cancel_refused
    ├── RailError                   rail_error              what a rail answered
    │   ├── RailTransientError      rail_unavailable        RETRYABLE: 5xx, 429, refused
    │   │   └── RailRetryAfter      rail_unavailable        RETRYABLE after `retry_after` s
    │   ├── RailTimeout             rail_timeout            RETRYABLE: ask the rail first
    │   ├── RailConflict            rail_idempotency_conflict
    │   ├── InstantRefused          instant_refused         no instant payout here: go standard
    │   └── BankFileInvalid         bank_file_invalid       a file fails its schema
    └── SecretError                 secret_error            keys and ciphertexts
        ├── CodecError              codec_error             Temporal payload encryption
        └── VaultError              vault_error             gift card codes at rest

Only the rail's transient answers are retryable; every other error is a refusal that a
retry would only repeat.
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


# ---------------------------------------------------------------- input and policy


class InvalidInput(PayoutError):
    """Input that breaks a rule; the message names the field and the rule."""

    code = "invalid_input"


class InvalidAmount(InvalidInput):
    code = "invalid_amount"


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"


class IngestRefused(InvalidInput):
    """A strict ingest found bad rows: nothing was credited; the message lists them."""

    code = "ingest_refused"


class PolicyInvalid(PayoutError):
    code = "invalid_policy"


class QuoteRefused(PayoutError):
    """The requested amount cannot be cashed out by this method (below minimum, ...)."""

    code = "quote_refused"


# ---------------------------------------------------------------- the ledger


class InsufficientFunds(PayoutError):
    code = "insufficient_funds"


class LimitExceeded(PayoutError):
    code = "limit_exceeded"


class OwedBalance(PayoutError):
    """The payee owes more (from reversed earnings) than the policy lets a cash-out start."""

    code = "owed_balance"


class StatementRefused(PayoutError):
    """A statement page the worker would not serve (the message says why)."""

    code = "statement_refused"


class ReversalRefused(InvalidInput):
    """A reversal the ledger will not apply (no such earning, more than is left, ...)."""

    code = "reversal_refused"


class IdempotencyConflict(PayoutError):
    """The same idempotency key was used before for a different operation or content."""

    code = "idempotency_conflict"


class InvalidState(PayoutError):
    """The operation does not fit the current state (posting a voided hold, ...)."""

    code = "invalid_state"


class NotFound(PayoutError):
    code = "not_found"


# ---------------------------------------------------------------- cash-outs


class RequestConflict(PayoutError):
    """A request id that was already used for a cash-out with other content."""

    code = "request_conflict"


class ReviewRefused(PayoutError):
    code = "review_refused"


class CancelRefused(PayoutError):
    code = "cancel_refused"


class ProfileRefused(PayoutError):
    """A change to a payout profile the worker refused (the message says why)."""

    code = "profile_refused"


# ---------------------------------------------------------------- rails


class RailError(PayoutError):
    """What a rail (bank, wallet, gift card provider) answered instead of a result."""

    code = "rail_error"


class RailTransientError(RailError):
    """The rail refused for now (5xx, 429, connection refused); nothing was applied."""

    code = "rail_unavailable"
    retryable = True


class RailRetryAfter(RailTransientError):
    """429: the rail asked us to come back after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RailTimeout(RailError):
    """No answer in time: the payout may or may not have been applied. Ask the rail."""

    code = "rail_timeout"
    retryable = True


class RailConflict(RailError):
    """The idempotency key was used before with a different request (HTTP 422)."""

    code = "rail_idempotency_conflict"


class InstantRefused(RailError):
    """The rail cannot pay this destination instantly (nothing was applied): the cash-out
    goes at standard speed."""

    code = "instant_refused"


class BankFileInvalid(RailError):
    """A bank file that fails its XML schema, or a report we cannot read."""

    code = "bank_file_invalid"


# ---------------------------------------------------------------- secrets


class SecretError(PayoutError):
    code = "secret_error"


class CodecError(SecretError):
    """A Temporal payload that cannot be encrypted or decrypted with the configured keys."""

    code = "codec_error"


class VaultError(SecretError):
    """A secret at rest (gift card codes) that cannot be sealed or opened."""

    code = "vault_error"
