"""A payee's statement through the client: pages the platform signs for, each served by a
`PayeeStatementWorkflow` (a local activity reads the ledger), chained and streamed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from payouts.domain import trust
from payouts.domain.statements import (
    LineKind,
    StatementLine,
    StatementPage,
    StatementRequest,
)
from payouts.errors import StatementRefused
from payouts.security.keys import SigningKey
from payouts.temporal import contract
from payouts.temporal.contract import Workflow
from payouts.temporal.platform_requests import checked, signed

PAGE_TIMEOUT = timedelta(minutes=2)

if TYPE_CHECKING:
    from temporalio.client import Client


class StatementCalls:
    """The statement part of `PayoutsClient` (which provides the transport and the key)."""

    client: Client
    task_queue: str
    platform_key: SigningKey | None

    async def statement(
        self,
        user_id: str,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        currency: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[StatementLine]:
        """Every movement of the payee's money from `start` to `end` (None: the beginning,
        now), in time order with the balances after each, as `payouts statement` shows
        it: opening lines per currency, the movements, closing lines. Fetched a page at a
        time; memory holds one page. A page whose opening differs from the previous
        page's closing (the ledger changed behind an already served window) yields its
        opening lines too."""
        base, number = uuid.uuid4().hex[:20], 0
        previous: dict[str, StatementLine] = {}
        at = start
        while True:
            number += 1
            page = await self._statement_page(
                f"{base}-{number}", user_id, at, end, currency, page_size
            )
            last = page.until is None
            for line in page.lines:
                if line.kind == LineKind.OPENING:
                    before = previous.get(line.currency)
                    if before is not None and before.balance == line.balance:
                        continue
                elif line.kind == LineKind.CLOSING:
                    previous[line.currency] = line
                    if not last:
                        continue
                yield line
            if last:
                return
            at = page.until

    async def _statement_page(
        self,
        request_id: str,
        user_id: str,
        start: datetime | None,
        end: datetime | None,
        currency: str | None,
        limit: int,
    ) -> StatementPage:
        request = checked(
            StatementRequest, request_id=request_id, user_id=user_id, start=start, end=end,
            currency=currency.upper() if currency else None, limit=limit,
            requested_at=datetime.now(UTC),
        )  # fmt: skip
        request = signed(request, self.platform_key, trust.statement_message)
        page: StatementPage = await self.client.execute_workflow(
            Workflow.STATEMENT,
            request,
            id=contract.statement_workflow_id(request_id),
            task_queue=self.task_queue,
            result_type=StatementPage,
            execution_timeout=PAGE_TIMEOUT,  # a read nobody serves ends, and says so
        )
        if not page.served:
            raise StatementRefused(page.refusal)
        return page
