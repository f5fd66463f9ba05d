"""A reversal the platform asks for: take back (part of) an earning it credited.

The platform signs the request (`trust.reversal_message`) like a cash-out request; the
worker applies it in an `EarningReversalWorkflow` of its own, id `reversal-<reversal_id>`
(its history is the reversal's audit trail; a re-sent request meets the first run), and
refuses anything unsigned, signed by another key, run under another workflow id, or too
old. The ledger does the rest (`payouts.ledger.reversals`): where the money comes from,
what the payee then owes, the platform's `payee.owed_changed` event.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from payouts.domain.cashout import Frozen

ReversalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
OWED_CHANGED = "OWED_CHANGED"  # the outbox stage; the platform sees "payee.owed_changed"
OWED_SETTLED = "OWED_SETTLED"  # paid back (in part) from money that became available
EventId = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,200}$")]


class ReversalRequest(Frozen):
    reversal_id: ReversalId
    event_id: EventId
    # whose earning, in what currency: the ledger refuses the reversal if the event is not
    # theirs (a platform bug must not take back someone else's earning). The client always
    # names them; None only in requests signed before they were added.
    user_id: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")] | None
    ) = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    amount: Annotated[int, Field(gt=0, strict=True)] | None = None  # None: all that is left
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    requested_at: datetime
    platform_signature: str = ""

    def digest(self) -> str:
        """What makes two requests under one reversal id the same request."""
        fields = self.model_dump(mode="json", exclude={"requested_at", "platform_signature"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class ReversalInput(Frozen):
    request: ReversalRequest
    started_at: datetime  # when the server started the reversal's workflow


class ReversalResult(Frozen):
    """Applied (with where the money came from and what the payee owes after), or why not."""

    applied: bool
    refusal: str = ""
    duplicate: bool = False  # this reversal id was applied before: its first result
    user_id: str = ""
    currency: str = ""
    amount: int = 0
    from_pending: int = 0
    from_available: int = 0
    owed: int = 0  # the part no balance covered
    owed_after: int = 0  # what the payee owes in this currency after it
