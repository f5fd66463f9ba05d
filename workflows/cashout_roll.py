"""Continue-as-new at the long waits, so a cash-out's history stays bounded however long it
waits and whatever anyone signals (`payouts.domain.carried` says why and what is carried).

Each long wait also wakes when `due()`; if nothing else woke it, the pipeline raises
`Rolled` at its checkpoint. The workflow then `settle()`s (applies queued decisions and
cancels, refuses rail events that do not count, writes the audit trail) and continues as new
with `carry()`; the next run `restore()`s and resumes at that checkpoint.
"""

from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from payouts.domain.carried import (
        ORDER,
        ROLL_BYTES,
        ROLL_EVENTS,
        Board,
        Carried,
        Checkpoint,
        DeskState,
        RailState,
        Seen,
    )
    from payouts.domain.cashout import BankAccount, GiftCardDelivery, WalletAccount
    from payouts.domain.profiles import ProfileFacts
    from payouts.domain.progress import Progress
    from payouts.domain.review import ReviewBoard
    from payouts.temporal.contract import Patch
    from workflows.cashout_bank import BankRail
    from workflows.cashout_desk import Desk
    from workflows.cashout_identity import IdentityCheck
    from workflows.cashout_wallet import WalletRail
    from workflows.steps import Published
    from workflows.steps import Run as Steps


class Rolled(Exception):
    """Control flow: a long wait is to continue in a new run, at `at`."""

    def __init__(self, at: Checkpoint) -> None:
        super().__init__(at.value)
        self.at = at


class Run(Steps, Protocol):
    board: ReviewBoard
    resolved: BankAccount | WalletAccount | GiftCardDelivery | None
    profile_facts: ProfileFacts | None
    desk: Desk
    identity: IdentityCheck
    bank: BankRail
    wallet: WalletRail
    published: Published
    held: bool


class Roller:
    def __init__(self, run: "Run", carried: Carried | None) -> None:
        self.run = run
        # Rolling is new: cash-outs that ran before it replay without; and only admitted ones
        self.enabled = run.signed and workflow.patched(Patch.ROLL)
        self.rolling = False
        self.runs = 0
        # carried state comes only from this cash-out's own continue-as-new
        self.forged = carried is not None and not workflow.info().continued_run_id
        self.at: Checkpoint | None = None if carried is None or self.forged else carried.at

    def upto(self, checkpoint: Checkpoint) -> bool:
        """Does this run still have the part of the pipeline up to `checkpoint` to do?"""
        return ORDER[self.at] <= ORDER[checkpoint]

    def due(self) -> bool:
        """Has this run's history grown enough to continue as new at the next long wait?"""
        if not self.enabled or self.rolling:
            return False
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= ROLL_EVENTS
            or info.get_current_history_size() >= ROLL_BYTES
        )

    def roll(self, at: Checkpoint) -> Rolled:
        self.rolling = True
        return Rolled(at)

    async def settle(self) -> None:
        """Leave nothing behind: what handlers queued is applied or refused, and the audit
        trail is written. Ends within one workflow task of the last arrival."""
        run = self.run
        while True:
            run.bank.sift()
            run.wallet.sift()
            run.desk.apply_queued()
            if not run.desk.audit_pending:
                return
            await run.desk.write_audit()

    def carry(self, at: Checkpoint) -> Carried:
        run, p, board, desk = self.run, self.run.progress, self.run.board, self.run.desk
        bank, wallet = run.bank, run.wallet
        return Carried(
            at=at,
            runs=self.runs + 1,
            progress=Seen(
                stage=p.stage,
                timeline=tuple(p.timeline),
                risk=p.risk,
                identity=p.identity,
                decision=p.decision,
                review_deadline=p.review_deadline,
                rail_ref=p.rail_ref,
                batch_id=p.batch_id,
                expected_arrival=p.expected_arrival,
                outcome=p.outcome,
                verification=p.verification,
            ),
            board=Board(
                needed=board.needed,
                approvals=tuple(board.approvals),
                records=tuple(board.records),
                refusals=board.refusals,
                outcome=board.outcome,
            ),
            desk=DeskState(
                cancel=desk.cancel,
                answers=desk.answers,
                nonces=tuple(sorted(desk.nonces)),
                refused=desk.refused,
                audited_refusals=desk.audited_refusals,
                audit_seq=desk.audit_seq,
                dropped=desk.dropped,
                review_started=desk.review_started,
                temporal_cancel_seen=desk.temporal_cancel_seen,
            ),
            trust=run.trust,
            held=run.held,
            published_stage=run.published.stage,
            published_score=run.published.score,
            identity_give_up=run.identity.give_up,
            identity_pending_noted=run.identity.pending_noted,
            rail=RailState(
                seen=tuple(sorted(bank.seen | wallet.seen)),
                bank_inbox=tuple(bank.inbox),
                wallet_inbox=tuple(wallet.inbox),
                arrived=tuple(bank.arrived or wallet.arrived),
                returned=bank.returned,
                wallet_final=wallet.final,
                patience_seconds=wallet.patience.total_seconds(),
            ),
            returns_deadline=bank.returns_deadline,
            destination=run.resolved,
            profile=run.profile_facts,
        )

    def restore(self, c: Carried) -> None:
        run, board, desk = self.run, self.run.board, self.run.desk
        self.runs = c.runs
        s = c.progress
        run.progress = Progress(
            stage=s.stage,
            timeline=list(s.timeline),
            risk=s.risk,
            identity=s.identity,
            decision=s.decision,
            review_deadline=s.review_deadline,
            rail_ref=s.rail_ref,
            batch_id=s.batch_id,
            expected_arrival=s.expected_arrival,
            outcome=s.outcome,
            verification=s.verification,
        )
        board.needed, board.approvals = c.board.needed, list(c.board.approvals)
        board.records, board.refusals = list(c.board.records), c.board.refusals
        board.outcome = c.board.outcome
        d = c.desk
        desk.cancel, desk.answers, desk.nonces = d.cancel, dict(d.answers), set(d.nonces)
        desk.refused, desk.audited_refusals = d.refused, d.audited_refusals
        desk.audit_seq, desk.dropped = d.audit_seq, d.dropped
        desk.review_started, desk.temporal_cancel_seen = d.review_started, d.temporal_cancel_seen
        run.trust, run.held = c.trust, c.held
        run.resolved, run.profile_facts = c.destination, c.profile
        run.published.stage, run.published.score = c.published_stage, c.published_score
        run.identity.give_up = c.identity_give_up
        run.identity.pending_noted = c.identity_pending_noted
        run.bank.restore(c.rail, c.returns_deadline)
        run.wallet.restore(c.rail)
