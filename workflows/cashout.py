"""The cash-out workflow: one durable run per request, id `cashout-<request_id>`.

    REQUESTED -> RESERVED -> VERIFYING -> [AWAITING_REVIEW] -> APPROVED -> DISBURSING
              -> SENT -> PAID
    any step before DISBURSING -> REJECTED | CANCELLED | FAILED  (the hold is voided)

Deterministic orchestration only: every decision comes from `payouts.domain.review` and the policy
slice in the input; every effect is an activity. Database steps run as local activities
(idempotent by key, so a re-run after a crash is harmless); the identity check, the
disbursement and settlement checks are regular activities that heartbeat.

Once the payout is handed to the rail (DISBURSING), nothing can cancel it: a payee's cancel
is refused, and a Temporal cancellation only adds a note while the workflow sees the payout
through to PAID or FAILED.

This module deliberately does not use `from __future__ import annotations`: the sandbox
re-imports it for every run, and string annotations would be re-evaluated (compiled) for
every signal, query and update handler each time.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar, cast

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from payouts.domain.models import (
        CANCELLABLE,
        TERMINAL,
        Answer,
        AuditEntry,
        BankAccount,
        BankEnqueue,
        BankEvent,
        BookPayout,
        CancelRequest,
        CashoutInput,
        CashoutResult,
        CashoutStatus,
        GiftCardsInput,
        GiftCardsIssued,
        IdentityInput,
        IdentityResult,
        IdentityStatus,
        NotifyInput,
        PostInput,
        ReleaseHold,
        ReserveAndAssess,
        Reserved,
        ReserveInput,
        ReverseInput,
        ReversePayout,
        ReviewDecision,
        ReviewRecord,
        ReviewRequest,
        RiskInput,
        RiskResult,
        Stage,
        TimelineEntry,
        VoidInput,
        WalletAccount,
        WalletEvent,
        WalletPayout,
        WalletPayoutInput,
        mask,
    )
    from payouts.domain.money import format_money
    from payouts.domain.policy import Method
    from payouts.domain.review import Verdict, decide, names_match, needs_identity, refusal
    from payouts.temporal import search

T = TypeVar("T")

LOCAL_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
REMOTE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60)
)


def _local(name: str, arg: object, result_type: type[T]) -> Awaitable[T]:
    """A database step: a local activity, idempotent by its key."""
    return cast(
        Awaitable[T],
        workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LOCAL_RETRY,
        ),
    )


def _remote(name: str, arg: object, result_type: type[T]) -> Awaitable[T]:
    """A call to the outside world: a regular activity that heartbeats."""
    return cast(
        Awaitable[T],
        workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=REMOTE_RETRY,
        ),
    )


WALLET_PATIENCE = timedelta(minutes=2)  # wait this long for a webhook before asking
MAX_RECORDED_REFUSALS = 50  # in the status; the audit table keeps up to MAX_AUDITED
MAX_AUDITED = 500
MAX_ANSWERS = 500  # signalled decisions and cancels the `answer` query remembers


class _Ended(Exception):
    """Control flow: raised once a terminal stage has been booked; never leaves the run."""


@workflow.defn(name="CashoutWorkflow")
class CashoutWorkflow:
    @workflow.init
    def __init__(self, inp: CashoutInput) -> None:
        self._in = inp
        self._stage = Stage.REQUESTED
        self._timeline: list[TimelineEntry] = []
        self._reviews: list[ReviewRecord] = []
        self._refusals = 0
        self._approvals: list[str] = []
        self._review_outcome: str | None = None
        self._cancel: CancelRequest | None = None
        self._held = False
        self._risk: RiskResult | None = None
        self._identity: IdentityResult | None = None
        self._decision: str | None = None
        self._approvals_needed = 0
        self._review_deadline: datetime | None = None
        self._rail_ref: str | None = None
        self._batch_id: str | None = None
        self._bank_inbox: list[BankEvent] = []
        self._bank_seen: set[str] = set()
        self._wallet_final: WalletPayout | None = None
        self._wallet_seen: set[str] = set()
        self._holder_mismatch = False
        self._review_started = workflow.now()
        self._review_wait: float | None = None
        self._audit_pending: list[AuditEntry] = []
        self._closing = False
        self._audit_seq = 0
        self._answers: dict[str, Answer] = {}
        # (approve | reject | cancel, payload), queued by the signal handlers for the decider
        self._signals: list[tuple[str, ReviewDecision | CancelRequest]] = []
        self._decided = False  # the decider has applied the last of them
        self._expected_arrival: datetime | None = None
        self._outcome = ""
        self._published_stage = Stage.REQUESTED  # set by the client at start
        self._published_risk: int | None = None
        q = inp.quote
        cur = q.currency
        self._note(
            f"requested {format_money(q.requested, cur)} by {q.method.value}: pays "
            f"{format_money(q.net, cur)} after a fee of {format_money(q.fee, cur)}"
            + (f"; {format_money(q.remainder, cur)} stays in the balance" if q.remainder else "")
        )

    # ------------------------------------------------------------------ run

    @workflow.run
    async def run(self, inp: CashoutInput) -> CashoutResult:
        decider = asyncio.ensure_future(self._decider())
        auditor = asyncio.ensure_future(self._auditor())
        with contextlib.suppress(_Ended):
            await self._pipeline()
        self._publish()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._closing = True
        await decider
        self._decided = True
        await auditor
        return CashoutResult(
            request_id=inp.request.request_id, stage=self._stage, status=self.status()
        )

    async def _pipeline(self) -> None:
        inp, q, rules = self._in, self._in.quote, self._in.rules
        req = inp.request
        cur = q.currency

        # 1. reserve (balance check, limits, hold) and score the fraud risk
        try:
            reserved = await self._step(
                lambda: _local(
                    "reserve_and_assess",
                    ReserveAndAssess(
                        reserve=ReserveInput(
                            key=self._key("reserve"),
                            hold_id=self._hold_id(),
                            user_id=req.user_id,
                            currency=cur,
                            amount=q.gross,
                            daily_amount_limit=rules.currency_rules.daily_amount_limit,
                            daily_count_limit=rules.daily_count,
                        ),
                        risk=RiskInput(
                            request_id=req.request_id,
                            user_id=req.user_id,
                            currency=cur,
                            amount=q.gross,
                            destination=req.destination,
                            as_of=workflow.now(),
                        ),
                    ),
                    Reserved,
                ),
                local=True,
            )
        except FailureError as err:
            await self._end(Stage.FAILED, _reason(err))
        self._held = True
        self._risk = reserved.risk
        available = format_money(reserved.reserve.available_after, cur)
        self._enter(
            Stage.RESERVED, f"held {format_money(q.gross, cur)}; available after: {available}"
        )
        await self._stop_if_cancelled()

        # 2. verify: fraud score (done above) and identity when the amount needs it
        risk = self._risk
        self._enter(
            Stage.VERIFYING,
            f"risk score {risk.score}: {'; '.join(risk.reasons) or 'no risk signals'}",
        )
        if needs_identity(rules, q.gross) or q.method is Method.BANK_TRANSFER:
            await self._verify_identity()
        await self._stop_if_cancelled()

        # 3. decide: auto-approve, review or reject
        verdict, why, approvals = decide(rules, q.gross, risk.score)
        self._decision = f"{verdict.value}: {why}"
        if verdict is Verdict.REJECT:
            await self._end(Stage.REJECTED, f"rejected by policy: {why}")
        if verdict is Verdict.REVIEW:
            await self._await_review(why, approvals)

        # 4. approved: last moment to cancel
        self._expected_arrival = workflow.now() + timedelta(hours=rules.expected_arrival_hours)
        self._enter(
            Stage.APPROVED,
            self._decision if verdict is Verdict.AUTO_APPROVE else "approved by review",
        )
        await self._stop_if_cancelled()

        # 5. disburse: from here on the payout is seen through, whatever happens
        self._enter(
            Stage.DISBURSING, f"sending {format_money(q.net, cur)} to {mask(req.destination)}"
        )
        if q.method is Method.BANK_TRANSFER:
            await self._disburse_bank()
        elif q.method is Method.WALLET:
            await self._disburse_wallet()
        else:
            await self._disburse_gift_cards()

        # 6. paid: book it and tell the platform
        outcome = f"paid {format_money(q.net, cur)} (fee {format_money(q.fee, cur)})"
        await self._step(
            lambda: _local(
                "book_payout",
                BookPayout(
                    post=PostInput(
                        key=self._key("post"), hold_id=self._hold_id(), gross=q.gross, fee=q.fee
                    ),
                    notify=self._notification(Stage.PAID, outcome),
                ),
                int,
            ),
            local=True,
        )
        self._held = False
        self._outcome = outcome
        self._enter(Stage.PAID, outcome)

        # 7. a bank can still return a paid transfer: watch for it
        if q.method is Method.BANK_TRANSFER and rules.return_window_days > 0:
            await self._watch_for_return(timedelta(days=rules.return_window_days))

    # ------------------------------------------------------------------ rails

    async def _disburse_bank(self) -> None:
        """Queue for the next batch, then follow the bank's answers (signal `bank_event`)."""
        q, req = self._in.quote, self._in.request
        assert isinstance(req.destination, BankAccount)
        self._rail_ref = await self._step(
            lambda: _local(
                "enqueue_bank_transfer",
                BankEnqueue(
                    workflow_id=workflow.info().workflow_id,
                    request_id=req.request_id,
                    user_id=req.user_id,
                    currency=q.currency,
                    amount=q.net,
                    destination=req.destination,
                    at=workflow.now(),
                ),
                str,
            ),
            local=True,
        )
        cutoff = self._in.rules.batch_cutoff_minutes
        every = "minute" if cutoff == 1 else f"{cutoff} minutes"
        self._note(
            f"queued for the next {q.currency} bank batch (cutoff every {every}),"
            f" reference {self._rail_ref}"
        )
        while True:
            await self._step(lambda: workflow.wait_condition(lambda: bool(self._bank_inbox)))
            event = self._bank_inbox.pop(0)
            if event.kind == "sent" and self._stage is Stage.DISBURSING:
                self._batch_id = event.batch_id
                hours = self._in.rules.expected_arrival_hours
                self._expected_arrival = workflow.now() + timedelta(hours=hours)
                self._enter(Stage.SENT, f"in bank batch {event.batch_id}")
            elif event.kind == "accepted":
                self._note("accepted by the bank")
            elif event.kind == "rejected":
                await self._end(
                    Stage.FAILED,
                    f"the bank rejected the transfer: {event.code} {event.reason}".strip(),
                )
            elif event.kind in ("booked", "returned"):
                if event.kind == "returned":
                    self._bank_inbox.insert(0, event)  # booked and returned at once: both count
                self._note("booked by the bank")
                return

    async def _watch_for_return(self, window: timedelta) -> None:
        try:
            await self._step(
                lambda: workflow.wait_condition(
                    lambda: any(e.kind == "returned" for e in self._bank_inbox), timeout=window
                )
            )
        except TimeoutError:
            self._note(f"no return within {window.days} days: final")
            return
        event = next(e for e in self._bank_inbox if e.kind == "returned")
        reason = f"returned by the bank: {event.code} {event.reason}".strip()
        await self._step(
            lambda: _local(
                "reverse_payout",
                ReversePayout(
                    reverse=ReverseInput(
                        key=self._key("reverse"), hold_id=self._hold_id(), reason=reason
                    ),
                    notify=self._notification(Stage.RETURNED, reason),
                ),
                int,
            ),
            local=True,
        )
        self._outcome = f"{reason}; the money is back in the available balance"
        self._enter(Stage.RETURNED, self._outcome)

    async def _disburse_wallet(self) -> None:
        """POST to the provider (idempotent key), then wait for its signed webhook (signal
        `wallet_event`), asking the provider directly if the webhook is slow to come."""
        q, req = self._in.quote, self._in.request
        assert isinstance(req.destination, WalletAccount)
        wallet_id = req.destination.wallet_id
        payout = await self._step(
            lambda: _remote(
                "send_wallet_payout",
                WalletPayoutInput(
                    key=self._key("disburse"),
                    reference=workflow.info().workflow_id,
                    wallet_id=wallet_id,
                    amount=q.net,
                    currency=q.currency,
                ),
                WalletPayout,
            )
        )
        self._rail_ref = payout.id
        lookup = " (an ambiguous answer was resolved by asking the provider)"
        self._enter(
            Stage.SENT,
            f"wallet payout {payout.id} accepted" + (lookup if payout.resolved_by_lookup else ""),
        )
        if payout.status in ("completed", "failed"):
            self._wallet_final = payout
        patience = WALLET_PATIENCE
        while self._wallet_final is None:
            try:
                await self._step(
                    lambda p=patience: workflow.wait_condition(  # type: ignore[misc]
                        lambda: self._wallet_final is not None, timeout=p
                    )
                )
            except TimeoutError:
                checked = await self._step(
                    lambda: _remote("wallet_payout_status", payout.id, WalletPayout)
                )
                if checked.status in ("completed", "failed"):
                    self._note("no webhook yet: asked the provider, which has a final answer")
                    self._wallet_final = checked
                patience = min(patience * 2, timedelta(hours=1))
        if self._wallet_final.status == "failed":
            await self._end(
                Stage.FAILED,
                "the wallet provider failed the payout: "
                f"{self._wallet_final.failure_reason or 'no reason'}",
            )
        self._note("wallet provider confirmed the payout")

    async def _disburse_gift_cards(self) -> None:
        q, req = self._in.quote, self._in.request
        issued = await self._step(
            lambda: _remote(
                "issue_gift_cards",
                GiftCardsInput(
                    key=self._key("disburse"),
                    request_id=req.request_id,
                    user_id=req.user_id,
                    currency=q.currency,
                    cards=q.cards,
                    at=workflow.now(),
                ),
                GiftCardsIssued,
            )
        )
        cards = " + ".join(format_money(c, q.currency) for c in q.cards)
        ends = ", ".join(f"...{x}" for x in issued.last4)
        self._rail_ref = f"{issued.count} gift cards"
        self._enter(
            Stage.SENT,
            f"issued {cards} ({ends}); codes are shown once to the payee, "
            f"notice sent to {mask(req.destination)}",
        )

    # ------------------------------------------------------------------ steps

    async def _verify_identity(self) -> None:
        rules = self._in.rules.identity
        give_up = workflow.now() + timedelta(hours=rules.pending_timeout_hours)
        while True:
            try:
                result = await self._step(
                    lambda: _remote(
                        "verify_identity",
                        IdentityInput(user_id=self._in.request.user_id, checked_at=workflow.now()),
                        IdentityResult,
                    )
                )
            except FailureError as err:
                await self._end(Stage.FAILED, f"identity check failed: {_reason(err)}")
            self._identity = result
            if result.status is IdentityStatus.VERIFIED:
                self._note(f"identity verified (tier {result.tier})")
                self._check_holder(result)
                if self._holder_mismatch:
                    await self._end(
                        Stage.REJECTED,
                        "the bank account holder's name does not match the verified identity",
                    )
                return
            if result.status is IdentityStatus.REJECTED:
                await self._end(Stage.REJECTED, f"identity rejected: {result.reason}")
            await self._stop_if_cancelled()
            if workflow.now() >= give_up:
                await self._end(
                    Stage.FAILED,
                    f"identity still pending after {rules.pending_timeout_hours} hours",
                )
            if "identity pending" not in self._timeline[-1].note:
                self._note(
                    f"identity pending: {result.reason}; checking every "
                    f"{rules.poll_minutes} minutes"
                )
            await self._wait_unless_cancelled(timedelta(minutes=rules.poll_minutes))

    def _check_holder(self, identity: IdentityResult) -> None:
        """A bank account must be in the verified person's name (case, accents and word
        order aside). Names stay out of the timeline: it says only whether they match."""
        dest = self._in.request.destination
        if not isinstance(dest, BankAccount):
            return
        if identity.legal_name is None:
            self._note("the identity provider has no legal name on record: holder not compared")
        elif names_match(dest.holder_name, identity.legal_name):
            self._note("account holder's name matches the verified identity")
        else:
            self._holder_mismatch = True

    async def _await_review(self, why: str, approvals: int) -> None:
        review = self._in.rules.review
        self._approvals_needed = approvals
        timeout = timedelta(hours=review.timeout_hours)
        self._review_started = workflow.now()
        self._review_deadline = workflow.now() + timeout
        plural = "s" if approvals > 1 else ""
        self._enter(Stage.AWAITING_REVIEW, f"{why}; {approvals} approval{plural} needed")
        try:
            await self._step(
                lambda: workflow.wait_condition(
                    lambda: self._review_outcome is not None or self._cancel is not None,
                    timeout=timeout,
                )
            )
        except TimeoutError:
            hours = review.timeout_hours
            if review.timeout_action.value == "approve":
                self._note(f"no decision within {hours} hours: approved by policy")
                self._review_outcome = "approved"
            else:
                await self._end(
                    Stage.REJECTED, f"no decision within {hours} hours: rejected by policy"
                )
        await self._stop_if_cancelled()
        if self._review_outcome == "rejected":
            last = next(r for r in reversed(self._reviews) if r.accepted)
            await self._end(
                Stage.REJECTED,
                f"rejected by {last.reviewer}" + (f": {last.reason}" if last.reason else ""),
            )

    # ------------------------------------------------------------------ endings

    async def _end(self, stage: Stage, note: str) -> NoReturn:
        """Book a terminal stage: release the hold if one is held, tell the platform, and
        stop the pipeline."""
        if self._held:
            note += " (hold released)"
            await self._step(
                lambda: _local(
                    "release_hold",
                    ReleaseHold(
                        void=VoidInput(
                            key=self._key("void"), hold_id=self._hold_id(), reason=note[:500]
                        ),
                        notify=self._notification(stage, note),
                    ),
                    int,
                ),
                local=True,
            )
            self._held = False
        else:
            try:
                await self._step(
                    lambda: _local("notify", self._notification(stage, note), bool), local=True
                )
            except FailureError as err:
                self._note(f"could not record the notification: {_reason(err)}")
        self._outcome = note
        self._enter(stage, note)
        raise _Ended

    def _notification(self, stage: Stage, outcome: str) -> NotifyInput:
        q, req = self._in.quote, self._in.request
        return NotifyInput(
            event_id=self._key(f"notify:{stage.value}"),
            request_id=req.request_id,
            user_id=req.user_id,
            stage=stage,
            at=workflow.now(),
            payload={
                "request_id": req.request_id,
                "user_id": req.user_id,
                "stage": stage.value,
                "currency": q.currency,
                "gross": q.gross,
                "fee": q.fee,
                "net": q.net,
                "outcome": outcome,
                "rail_reference": self._rail_ref,
            },
        )

    async def _stop_if_cancelled(self) -> None:
        """End as CANCELLED if a cancel was accepted (the payee's, or a Temporal cancel)."""
        if self._cancel is not None:
            c = self._cancel
            await self._end(
                Stage.CANCELLED,
                f"cancelled by {c.requested_by}" + (f": {c.reason}" if c.reason else ""),
            )

    async def _wait_unless_cancelled(self, duration: timedelta) -> None:
        try:
            await self._step(
                lambda: workflow.wait_condition(lambda: self._cancel is not None, timeout=duration)
            )
        except TimeoutError:
            return
        await self._stop_if_cancelled()

    async def _step(self, make: Callable[[], Awaitable[T]], *, local: bool = False) -> T:
        """Await one step to its end, even through a Temporal cancellation.

        A step is never cut off halfway (a reserve might have committed, a payout might be
        at the rail). A cancellation that arrives before disbursement becomes a cancel
        request, acted on at the next step boundary; after that it is refused.

        Before a step that waits on the server (anything but a local activity), the stage
        is published to the search attributes: stage changes inside one workflow task
        reach visibility together anyway, so one upsert per task is enough.
        """
        if not local:
            self._publish()
        task = asyncio.ensure_future(make())
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if self._stage in CANCELLABLE:
                    if self._cancel is None:
                        self._cancel = CancelRequest(
                            requested_by="operator", reason="workflow cancelled in Temporal"
                        )
                        self._note("workflow cancellation received: stopping after this step")
                else:
                    self._note("workflow cancellation refused: the payout is already with the rail")

    def _publish(self) -> None:
        """Upsert the stage (and risk score) if they changed since the last upsert."""
        updates: list[SearchAttributeUpdate[Any]] = []
        if self._stage != self._published_stage:
            updates.append(search.STAGE.value_set(self._stage.value))
            self._published_stage = self._stage
        if self._risk is not None and self._risk.score != self._published_risk:
            updates.append(search.RISK.value_set(self._risk.score))
            self._published_risk = self._risk.score
        if updates:
            workflow.upsert_search_attributes(updates)

    # ------------------------------------------------------------------ state

    def _key(self, step: str) -> str:
        return f"{workflow.info().workflow_id}:{step}"

    def _hold_id(self) -> str:
        return workflow.info().workflow_id

    def _note(self, note: str) -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), stage=self._stage, note=note))

    def _enter(self, stage: Stage, note: str) -> None:
        self._stage = stage
        self._note(note)
        workflow.set_current_details(self._details())
        q = self._in.quote
        tags = {"method": q.method.value, "currency": q.currency}
        meter = workflow.metric_meter()
        meter.create_counter("payouts_cashout_stages", "cash-outs entering a stage").add(
            1, {"stage": stage.value, **tags}
        )
        if stage is Stage.PAID:
            meter.create_counter("payouts_paid_micros", "net paid, micro-units").add(q.net, tags)
            meter.create_counter("payouts_fees_micros", "fees charged, micro-units").add(
                q.fee, tags
            )
        if (
            self._review_deadline is not None
            and self._review_wait is None
            and stage in (Stage.APPROVED, Stage.REJECTED, Stage.CANCELLED)
        ):
            waited = workflow.now() - self._review_started
            self._review_wait = waited.total_seconds()
            meter.create_histogram_float(
                "payouts_review_wait_seconds", "from AWAITING_REVIEW to a decision", "s"
            ).record(self._review_wait, {"method": q.method.value})

    def _details(self) -> str:
        q = self._in.quote
        cur = q.currency
        lines = [
            f"**{self._stage.value}**: {self._timeline[-1].note}",
            "",
            f"- gross {format_money(q.gross, cur)}, fee {format_money(q.fee, cur)}, "
            f"net {format_money(q.net, cur)}",
        ]
        if self._risk is not None:
            lines.append(f"- risk score {self._risk.score}: {'; '.join(self._risk.reasons) or '-'}")
        if self._stage is Stage.AWAITING_REVIEW:
            rid = self._in.request.request_id
            lines.append(
                f"- approvals {len(self._approvals)}/{self._approvals_needed}; "
                f"deadline {self._review_deadline:%Y-%m-%d %H:%M} UTC"
            )
            lines.append(
                f"- `payouts review approve {rid} --reviewer NAME` or signal "
                '`approve` with `{"reviewer": "NAME"}`'
            )
        if self._expected_arrival is not None and self._stage not in TERMINAL:
            lines.append(f"- expected arrival {self._expected_arrival:%Y-%m-%d %H:%M} UTC")
        return "\n".join(lines)

    # ------------------------------------------------------------------ queries

    @workflow.query(name="status")
    def status(self) -> CashoutStatus:
        q, req = self._in.quote, self._in.request
        return CashoutStatus(
            request_id=req.request_id,
            user_id=req.user_id,
            stage=self._stage,
            method=q.method,
            currency=q.currency,
            requested=q.requested,
            gross=q.gross,
            fee=q.fee,
            net=q.net,
            remainder=q.remainder,
            cards=q.cards,
            destination=mask(req.destination),
            policy_version=q.policy_version,
            identity=self._identity_text(),
            risk_score=self._risk.score if self._risk else None,
            risk_reasons=self._risk.reasons if self._risk else (),
            decision=self._decision,
            approvals_needed=self._approvals_needed,
            reviews=tuple(self._reviews),
            review_deadline=self._review_deadline,
            rail_reference=self._rail_ref
            + (f" in batch {self._batch_id}" if self._batch_id else "")
            if self._rail_ref
            else None,
            expected_arrival=self._expected_arrival,
            outcome=self._outcome,
            timeline=tuple(self._timeline),
        )

    def _identity_text(self) -> str | None:
        i = self._identity
        if i is None:
            return None
        if i.status is IdentityStatus.VERIFIED:
            return f"verified (tier {i.tier})"
        return f"{i.status.value}: {i.reason}"

    # ------------------------------------------------------------------ reviews

    def _review(
        self, reviewer: str, decision: str, reason: str, via: str, client: str
    ) -> str | None:
        """Apply one reviewer decision, by signal or update alike, and record it either way
        (status and audit trail). Returns why it was refused, or None."""
        why = refusal(
            self._in.rules,
            payee=self._in.request.user_id,
            reviewer=reviewer,
            decision=decision,
            awaiting_review=self._stage is Stage.AWAITING_REVIEW and self._review_outcome is None,
            approvals_so_far=tuple(self._approvals),
            approvals_needed=self._approvals_needed,
        )
        record = ReviewRecord(
            at=workflow.now(),
            reviewer=reviewer[:64],
            decision=decision[:16],
            reason=reason[:500],
            accepted=why is None,
            refusal=why or "",
            via=via,
            client=client[:64],
        )
        self._audit_seq += 1
        if self._audit_seq <= MAX_AUDITED:
            self._audit_pending.append(
                AuditEntry(
                    workflow_id=workflow.info().workflow_id,
                    request_id=self._in.request.request_id,
                    seq=self._audit_seq,
                    record=record,
                )
            )
        if why is not None:
            self._refusals += 1
            if self._refusals <= MAX_RECORDED_REFUSALS:
                self._reviews.append(record)
                self._note(f"refused {decision} from {reviewer[:64]!r}: {why}")
            return why
        self._reviews.append(record)
        if decision == "reject":
            self._review_outcome = "rejected"
            return None
        self._approvals.append(reviewer)
        remaining = self._approvals_needed - len(self._approvals)
        self._note(
            f"approved by {reviewer}"
            + (f"; {remaining} more approval needed" if remaining > 0 else "")
        )
        if remaining <= 0:
            self._review_outcome = "approved"
        workflow.set_current_details(self._details())
        return None

    async def _auditor(self) -> None:
        """Writes the audit trail as decisions come in, until the cash-out closes.

        Handlers only queue entries: an activity awaited inside an update handler would race
        the main coroutine, and on replay the update's answer could land before commands it
        followed the first time (a non-determinism error, seen in the chaos run)."""
        while True:
            await workflow.wait_condition(lambda: bool(self._audit_pending) or self._decided)
            if not self._audit_pending:
                return
            batch, self._audit_pending = self._audit_pending, []
            await _local("record_review_audit", batch, int)

    async def _decider(self) -> None:
        """Applies signalled decisions and cancels, in the order they came, until the
        cash-out closes.

        The handlers only queue them. A signal that reaches a worker in the same workflow
        task as an activity result is not always delivered in the same activation as that
        result (a worker that answered a query, or took over from a killed one, can see them
        apart; a replay sees them together, and the SDK runs signal handlers first). Applied
        here, after the main coroutine has reacted to everything else in the activation, a
        decision meets the same state both ways, so the workflow replays as it ran. The
        chaos run found both orders (docs/design.md)."""
        while True:
            await workflow.wait_condition(lambda: bool(self._signals) or self._closing)
            if not self._signals:
                return
            batch, self._signals = self._signals, []
            for kind, signal in batch:
                if signal.ref and signal.ref in self._answers:
                    continue  # the client re-sent it
                if isinstance(signal, CancelRequest):
                    why = self._request_cancel(signal)
                else:
                    why = self._review(
                        signal.reviewer, kind, signal.reason, "signal", signal.client
                    )
                if signal.ref and len(self._answers) < MAX_ANSWERS:
                    self._answers[signal.ref[:64]] = Answer(accepted=why is None, refusal=why or "")

    @workflow.signal(name="approve")
    def approve(self, decision: ReviewDecision) -> None:
        self._signals.append(("approve", decision))

    @workflow.signal(name="reject")
    def reject(self, decision: ReviewDecision) -> None:
        self._signals.append(("reject", decision))

    @workflow.query(name="answer")
    def answer(self, ref: str) -> Answer | None:
        """The answer to a signalled decision or cancel, once the workflow has taken it."""
        return self._answers.get(ref)

    @workflow.update(name="review")
    def review(self, request: ReviewRequest) -> CashoutStatus:
        """For `temporal workflow update execute` and other SDKs' clients; ours signals with a
        `ref` and reads the `answer` query instead (see `_signalled`)."""
        why = self._review(
            request.reviewer, request.decision, request.reason, "update", request.client
        )
        if why is not None:
            raise ApplicationError(why, type="review_refused", non_retryable=True)
        return self.status()

    # ------------------------------------------------------------------ rails' answers

    @workflow.signal(name="bank_event")
    def bank_event(self, event: BankEvent) -> None:
        """What the bank said (from the scheduled bank workflows); each kind counts once."""
        if event.kind in self._bank_seen:
            return
        self._bank_seen.add(event.kind)
        self._bank_inbox.append(event)

    @workflow.signal(name="wallet_event")
    def wallet_event(self, event: WalletEvent) -> None:
        """A verified webhook from the wallet provider; duplicates and stale ones are ignored."""
        if event.event_id in self._wallet_seen:
            return
        self._wallet_seen.add(event.event_id)
        if self._wallet_final is None and event.status in ("completed", "failed"):
            self._wallet_final = WalletPayout(
                id=event.payout_id, status=event.status, failure_reason=event.failure_reason
            )
        elif event.status not in ("completed", "failed"):
            self._note(f"wallet provider: {event.type}")

    # ------------------------------------------------------------------ cancel

    def _cancel_refusal(self, request: CancelRequest) -> str | None:
        if (
            request.requested_by != self._in.request.user_id
            and request.requested_by not in self._in.rules.reviewers
        ):
            return f"{request.requested_by!r} is neither the payee nor a registered reviewer"
        if self._stage not in CANCELLABLE:
            return f"too late to cancel: the cash-out is {self._stage.value}"
        return None

    def _request_cancel(self, request: CancelRequest) -> str | None:
        why = self._cancel_refusal(request)
        if why is not None:
            self._note(f"refused cancel from {request.requested_by[:64]!r}: {why}")
            return why
        if self._cancel is None:
            self._cancel = request
            self._note(f"cancel requested by {request.requested_by}")
        return None

    @workflow.signal(name="cancel")
    def cancel_signal(self, request: CancelRequest) -> None:
        self._signals.append(("cancel", request))

    @workflow.update(name="cancel")
    async def cancel_update(self, request: CancelRequest) -> CashoutStatus:
        why = self._request_cancel(request)
        if why is not None:
            raise ApplicationError(why, type="cancel_refused", non_retryable=True)
        await workflow.wait_condition(lambda: self._stage in TERMINAL)
        return self.status()


def _reason(err: FailureError) -> str:
    """The innermost message: an activity error wraps the domain's ApplicationError (local
    activity failures arrive as that ApplicationError itself)."""
    inner: Any = err
    while getattr(inner, "cause", None) is not None:
        inner = inner.cause
    return str(getattr(inner, "message", inner))
