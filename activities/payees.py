"""Payee activities: apply a change the platform signed to a payout profile or a reversal
of an earning it signed, and sweep the standing instructions for automatic cash-outs that
are due.

A profile change or a reversal is admitted like a cash-out request: the platform's
signature over it (`trust.profile_message`, `trust.reversal_message`), run under its own
workflow id, made within `REQUEST_TTL` of the server starting it; a refusal is written to
the security log. The sweep starts each due cash-out signed with our
service key as an automatic one; admission then checks it against the payee's own rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client

from activities.cashout import async_domain_errors
from payouts.domain import trust
from payouts.domain.admission import CLOCK_SKEW, REQUEST_TTL
from payouts.domain.cashout import CashoutInput, SavedRef
from payouts.domain.policy import Method, Policy
from payouts.domain.profiles import (
    PayeeCheck,
    PayeeCheckInput,
    ProfileAction,
    ProfileChangeInput,
    ProfileResult,
    SweepPage,
    SweepResult,
    Verification,
    auto_due,
    auto_request_id,
    dormant_request_id,
)
from payouts.domain.requests import build_input
from payouts.domain.reversals import ReversalInput, ReversalRequest, ReversalResult
from payouts.domain.statements import StatementInput, StatementPage
from payouts.errors import IdempotencyConflict, InvalidState, PayoutError, RailTransientError
from payouts.ledger import Ledger
from payouts.ledger.reversal_requests import first_outcome, record_outcome
from payouts.ledger.reversals import ReversalRow
from payouts.ledger.statement_pages import statement_page
from payouts.payees.dormant import dormant_page
from payouts.payees.profiles import Profiles, auto_page
from payouts.rails.bank.vop import PayeeVerifier
from payouts.security import keys
from payouts.security.keys import SigningKey
from payouts.store import security_log
from payouts.temporal import contract
from payouts.temporal.contract import Activity as A
from payouts.temporal.interfaces import PayeeSteps

HEARTBEAT_SECONDS = 2.0  # (a heartbeat for every row cost a third of the sweep)


@dataclass(frozen=True)
class Due:
    """An automatic cash-out to start: its request id, whom, what, where."""

    request_id: str
    user_id: str
    currency: str
    method: Method
    destination_id: str
    amount: int


# starts a cash-out workflow; True when it is new (False: this request id ran before)
Starter = Callable[[Client, CashoutInput, str], Awaitable[bool]]


class PayeeActivities(PayeeSteps):
    def __init__(
        self,
        *,
        profiles: Profiles,
        ledger: Ledger,
        policy: Policy,
        platform_public_key: str,
        service_key: SigningKey,
        start: Starter,
        verifier: PayeeVerifier,
    ) -> None:
        self.profiles = profiles
        self.ledger = ledger
        self.policy = policy
        self.platform_public_key = platform_public_key
        self.service_key = service_key
        self.start = start
        self.verifier = verifier

    @activity.defn(name=A.APPLY_PROFILE_CHANGE)
    def apply_profile_change(self, inp: ProfileChangeInput) -> ProfileResult:
        change = inp.change
        why = self._logged(
            self._refusal(inp),
            actor=f"platform (for {change.user_id})",
            action=f"profile {change.action.value}",
            subject=contract.profile_change_id(change.change_id),
        )
        if why is not None:
            return ProfileResult(applied=False, refusal=why)
        if change.action is ProfileAction.VIEW:
            return ProfileResult(applied=True, profile=self.profiles.view(change.user_id))
        try:
            dst = self.profiles.apply(change)
        except PayoutError as exc:
            return ProfileResult(applied=False, refusal=exc.message)
        return ProfileResult(
            applied=True, destination_id=dst, profile=self.profiles.view(change.user_id)
        )

    def _refusal(self, inp: ProfileChangeInput) -> str | None:
        change = inp.change
        return self._unsigned(
            "change",
            change.platform_signature,
            trust.profile_message(change),
            contract.profile_change_id(change.change_id),
            change.requested_at,
            inp.started_at,
        )

    def _logged(self, why: str | None, *, actor: str, action: str, subject: str) -> str | None:
        """A refusal at the trust boundary goes into the security log (None: nothing)."""
        if why is not None:
            security_log.record(
                self.ledger.db, at=datetime.now(UTC), actor=actor, action=action[:64],
                subject=subject, reason=why,
            )  # fmt: skip
        return why

    def _unsigned(
        self,
        what: str,
        signature: str,
        message: bytes,
        workflow_id: str,
        requested_at: datetime,
        started_at: datetime,
    ) -> str | None:
        """Why a platform action is refused (None: it is the platform's, run as itself)."""
        if not signature:
            return f"{what}: not signed by the platform"
        if activity.info().workflow_id != workflow_id:
            return f"{what}: started under another workflow id than its own id"
        if not keys.verify(self.platform_public_key, message, signature):
            return f"{what}: the platform's signature does not verify"
        if requested_at > started_at + CLOCK_SKEW:
            return "requested_at: in the future"
        if started_at - requested_at > REQUEST_TTL:
            return f"requested_at: the {what} is too old; send a new one"
        return None

    def _tried(self, action: str, why: str | None) -> str | None:
        """A platform action refused: logged under the run that tried it."""
        subject = activity.info().workflow_id or ""
        return self._logged(why, actor="platform", action=action, subject=subject)

    @activity.defn(name=A.APPLY_REVERSAL)
    def apply_reversal(self, inp: ReversalInput) -> ReversalResult:
        """Reverse (part of) an earning as the platform signed it, or say why not."""
        req = inp.request
        why = self._tried(
            f"reverse earning {req.event_id}",
            self._unsigned(
                "reversal", req.platform_signature, trust.reversal_message(req),
                contract.reversal_workflow_id(req.reversal_id), req.requested_at, inp.started_at,
            ),
        )  # fmt: skip
        if why is not None:
            return ReversalResult(applied=False, refusal=why)
        first = first_outcome(self.ledger.db, req.reversal_id)
        if first is not None and first.digest != req.digest():
            return ReversalResult(
                applied=False,
                refusal=f"reversal_id: {req.reversal_id!r} was used before for another "
                "reversal; send this one under a new id",
            )
        if first is not None and not first.applied:
            return ReversalResult(applied=False, refusal=first.refusal)
        row = ReversalRow(
            req.reversal_id, req.event_id, req.amount, req.reason, req.user_id, req.currency
        )
        try:
            summary = self.ledger.reverse_earnings([row])
        except IdempotencyConflict as exc:
            if "concurrently" in exc.message:
                raise  # retried: not an answer
            return self._refused(req, exc.message)
        except PayoutError as exc:
            return self._refused(req, exc.message)
        done = self.ledger.reversal(req.reversal_id)
        if done is None:
            raise InvalidState(f"reversal {req.reversal_id!r}: applied but not found")
        record_outcome(
            self.ledger.db, req.reversal_id, req.digest(), applied=True, refusal="",
            at=datetime.now(UTC),
        )  # fmt: skip
        return ReversalResult(
            applied=True,
            duplicate=summary.duplicates == 1 or first is not None,
            **{k: done[k] for k in ("user_id", "currency", "amount", "from_pending",
                                    "from_available", "owed", "owed_after")},
        )  # fmt: skip

    def _refused(self, req: ReversalRequest, why: str) -> ReversalResult:
        """A signed reversal the ledger refused: kept, so the same id answers the same."""
        record_outcome(
            self.ledger.db, req.reversal_id, req.digest(), applied=False, refusal=why,
            at=datetime.now(UTC),
        )  # fmt: skip
        return ReversalResult(applied=False, refusal=why)

    @activity.defn(name=A.SWEEP_AUTO_CASHOUTS)
    async def sweep_auto_cashouts(self, page: SweepPage) -> SweepResult:
        """One page: mature what is due (first page), then start the due cash-outs, at most
        `page.rate` a second, heartbeating."""
        if page.dormant:
            return await self._sweep_dormant(page)
        if not page.after:
            await asyncio.to_thread(self.ledger.mature_due, now=page.as_of)
        rows = await asyncio.to_thread(auto_page, self.profiles.db, page.after, page.limit)
        planned: list[tuple[str, Due | None]] = []
        for row in rows:
            due, _, period = auto_due(row.rule, row.available, page.as_of)
            rule = row.rule
            rid = auto_request_id(row.user_id, rule, period)
            plan = Due(rid, row.user_id, rule.currency, row.method, rule.destination_id,
                       row.available)  # fmt: skip
            planned.append((row.cursor, plan if due else None))
        last = rows[-1].cursor if len(rows) == page.limit else ""
        return await self._start_due(planned, page.rate, last)

    async def _sweep_dormant(self, page: SweepPage) -> SweepResult:
        """One page of dormant balances (none when the policy has no `dormant_days`)."""
        days = self.policy.automatic.dormant_days
        if days is None:
            return SweepResult()
        cutoff = page.as_of - timedelta(days=days)
        rows, last = await asyncio.to_thread(
            dormant_page, self.profiles.db, page.after, page.limit, cutoff
        )
        planned: list[tuple[str, Due | None]] = []
        for row in rows:
            rid = dormant_request_id(row.user_id, row.currency, page.as_of)
            plan = Due(rid, row.user_id, row.currency, row.method, row.destination_id,
                       row.available)  # fmt: skip
            planned.append((row.cursor, plan if row.dormant else None))
        return await self._start_due(planned, page.rate, last)

    async def _start_due(
        self, planned: list[tuple[str, Due | None]], rate: float, next_after: str
    ) -> SweepResult:
        """Start what is due (None: not due, skipped), at most `rate` a second, with a
        heartbeat every few seconds naming the cursor."""
        counts = {"scanned": len(planned), "started": 0, "already": 0, "skipped": 0}
        counts["refused"] = 0
        beat = 0.0
        for cursor, due in planned:
            if time.monotonic() - beat > HEARTBEAT_SECONDS:
                activity.heartbeat(cursor)
                beat = time.monotonic()
            if due is None:
                counts["skipped"] += 1
                continue
            counts[await self._start(due)] += 1
            await asyncio.sleep(1 / rate)
        return SweepResult(**counts, next_after=next_after)

    async def _start(self, due: Due) -> str:
        """Start one automatic cash-out, signed with our service key; which count it is."""
        try:
            inp = build_input(
                self.policy, request_id=due.request_id, user_id=due.user_id, amount=due.amount,
                currency=due.currency, method=due.method,
                destination=SavedRef(destination_id=due.destination_id), now=datetime.now(UTC),
            )  # fmt: skip
        except PayoutError:
            return "refused"
        message = trust.auto_request_message(inp.request, inp.requested_at)
        signed = inp.model_copy(
            update={"origin": "auto", "platform_signature": self.service_key.sign(message)}
        )
        started = await self.start(activity.client(), signed, activity.info().task_queue)
        return "started" if started else "already"

    @activity.defn(name=A.VERIFY_PAYEE)
    @async_domain_errors
    async def verify_payee(self, inp: PayeeCheckInput) -> PayeeCheck:
        """The bank's answer, or the one kept for this unchanged saved destination. An
        unavailable service is an error the workflow retries (then it sends to review)."""
        version = inp.changed_at if inp.destination_id else None  # a saved destination
        if version is not None:
            kept = await asyncio.to_thread(
                self.profiles.kept_verification, inp.user_id, inp.destination_id, version
            )
            if kept is not None:
                return kept
        acct = inp.account
        result, name = await asyncio.to_thread(self.verifier.verify, acct.iban, acct.holder_name)
        if result is Verification.UNAVAILABLE:  # retried; logged as one line, no traceback
            raise RailTransientError("Verification of Payee: the bank's service is unavailable")
        check = PayeeCheck(result=result, bank_name=name)
        if version is not None:
            await asyncio.to_thread(
                self.profiles.record_verification,
                inp.user_id, inp.destination_id, version, check, inp.checked_at,
            )  # fmt: skip
        return check

    @activity.defn(name=A.STATEMENT_PAGE)
    def statement_page(self, inp: StatementInput) -> StatementPage:
        """A page of a payee's statement, for the platform that signed the request."""
        req = inp.request
        why = self._tried(
            "read statement",
            self._unsigned(
                "statement", req.platform_signature, trust.statement_message(req),
                contract.statement_workflow_id(req.request_id), req.requested_at, inp.started_at,
            ),
        )  # fmt: skip
        if why is not None:
            return StatementPage(served=False, refusal=why)
        try:
            lines, until = statement_page(
                self.ledger.db, req.user_id, start=req.start, end=req.end,
                currency=req.currency, limit=req.limit,
            )  # fmt: skip
        except PayoutError as exc:
            return StatementPage(served=False, refusal=exc.message)
        return StatementPage(served=True, lines=tuple(lines), until=until)

    def all(self) -> list[Callable[..., object]]:
        return [
            self.apply_profile_change,
            self.sweep_auto_cashouts,
            self.verify_payee,
            self.apply_reversal,
            self.statement_page,
        ]
