"""Bank batch activities: cut batches at the cutoff, write and send the files, read the
bank's reports, and tell each cash-out what became of its transfer."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio import activity

from activities.cashout import domain_errors
from payouts.domain import trust
from payouts.domain.messages import (
    BankCycle,
    BankEnqueue,
    BankEvent,
    BankSignal,
    BatchSummary,
)
from payouts.domain.policy import Method, Policy
from payouts.errors import BankFileInvalid
from payouts.ledger import Ledger
from payouts.rails.bank import book, quarantine
from payouts.rails.bank.iso20022 import (
    Batch,
    CreditTransfer,
    Party,
    build_pain001,
    validate_pain001,
)
from payouts.rails.bank.port import Bank
from payouts.rails.bank.reports import parse_report
from payouts.security.keys import SigningKey
from payouts.store import outbox
from payouts.temporal import contract
from payouts.temporal.contract import Activity as A
from payouts.temporal.contract import Step
from payouts.temporal.interfaces import BankSteps

log = logging.getLogger("payouts.bank")


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class BankActivities(BankSteps):
    def __init__(
        self,
        *,
        ledger: Ledger,
        policy: Policy,
        bank: Bank,
        files_dir: Path,
        debtor: Party,
        service_key: SigningKey,
    ) -> None:
        self.service_key = service_key
        self.ledger = ledger
        self.policy = policy
        self.bank = bank
        self.outbound = files_dir / "outbound"
        self.inbound = files_dir / "inbound"
        self.debtor = debtor

    @activity.defn(name=A.CUT_BANK_BATCHES)
    @domain_errors
    def cut_bank_batches(self, as_of: datetime) -> BankCycle:
        """Batch everything queued up to the cutoff; write, validate and send each file.

        Batches are recorded first; files are (re)written and submitted for every batch not
        yet submitted, so a retry after a crash resends the same file (same message id, which
        the bank takes once). A file that fails the schema never leaves: its batch is
        quarantined, each of its items is checked alone, the ones at fault are rejected
        (their cash-outs fail with the reason) and the others are batched again at once."""
        batching = self.policy.methods[Method.BANK_TRANSFER].batching
        assert batching is not None  # the policy requires it for bank transfers
        sent: list[BatchSummary] = []
        quarantined: list[str] = []
        for _ in range(2):  # the second round re-batches what a quarantine sent back
            book.cut_batches(
                self.ledger.db, as_of=as_of, max_items=batching.max_items, costs=batching.costs
            )
            requeued = 0
            for b in book.batches(self.ledger.db, status="created"):
                activity.heartbeat(b.id)  # a worker lost mid-cycle is noticed in seconds
                try:
                    sent.append(self._send(b, as_of))
                except BankFileInvalid as exc:
                    requeued += self._quarantine(b, exc, as_of)
                    quarantined.append(f"{b.id}: {exc.message}"[:300])
            if not requeued:
                break
        return BankCycle(batches=tuple(sent), quarantined=tuple(quarantined))

    def _send(self, b: book.BatchRow, as_of: datetime) -> BatchSummary:
        """Write, validate and hand one batch's file to the bank (`BankFileInvalid`: not)."""
        xml = self._file(b, b.items)
        validate_pain001(xml)
        write_atomically(self.outbound / b.file_name, xml)
        self.bank.submit(b.file_name, xml, as_of)
        book.mark_submitted(self.ledger.db, b.id)
        return BatchSummary(
            batch_id=b.id,
            currency=b.currency,
            items=len(b.items),
            total=sum(i.amount for i in b.items),
            fee_saved=b.fee_saved,
            file_name=b.file_name,
        )

    @activity.defn(name=A.SEND_INSTANT_BANK_TRANSFER)
    @domain_errors
    def send_instant_bank_transfer(self, inp: BankEnqueue) -> str:
        """An instant transfer: its own single-transfer file, handed to the bank at once.
        "" when the payee's bank does not take instant transfers (nothing is queued: the
        cash-out goes standard). A file that fails its schema is quarantined, as a batch's."""
        d = inp.destination
        if not self.bank.instant_reachable(d.iban):
            return ""
        e2e = book.enqueue(
            self.ledger.db, workflow_id=inp.workflow_id, request_id=inp.request_id,
            user_id=inp.user_id, currency=inp.currency, amount=inp.amount, iban=d.iban,
            bic=d.bic, holder_name=d.holder_name, at=inp.at, instant=True,
        )  # fmt: skip
        for b in book.batches(self.ledger.db, status="created"):
            if any(i.end_to_end_id == e2e for i in b.items):
                try:
                    self._send(b, inp.at)
                except BankFileInvalid as exc:
                    self._quarantine(b, exc, inp.at)
        return e2e

    def _file(self, b: book.BatchRow, items: tuple[book.ItemRow, ...]) -> bytes:
        return build_pain001(
            Batch(
                message_id=b.id,
                created_at=b.created_at,
                currency=b.currency,
                debtor=self.debtor,
                execution_date=b.created_at.date(),
                transfers=tuple(
                    CreditTransfer(
                        end_to_end_id=i.end_to_end_id,
                        amount=i.amount,
                        creditor=Party(i.holder_name, i.iban, i.bic),
                        remittance=f"Payout {i.request_id}",
                    )
                    for i in items
                ),
            )
        )

    def _quarantine(self, b: book.BatchRow, exc: BankFileInvalid, as_of: datetime) -> int:
        """Keep the file aside, find the items at fault; returns how many were requeued."""
        write_atomically(self.outbound / "quarantine" / b.file_name, self._file(b, b.items))
        at_fault = {}
        for item in b.items:
            try:
                validate_pain001(self._file(b, (item,)))
            except BankFileInvalid as alone:
                why = alone.message.split(": ", 1)[-1]
                at_fault[item.end_to_end_id] = f"the bank file format refuses it ({why})"
        requeued = quarantine.quarantine_batch(
            self.ledger.db, b.id, reason=exc.message, rejected=at_fault, at=as_of
        )
        log.warning(
            "bank batch %s quarantined (%d rejected, %d requeued): %s",
            b.id, len(at_fault), requeued, exc.message,
        )  # fmt: skip
        return requeued

    @activity.defn(name=A.PROCESS_BANK_REPORTS)
    @domain_errors
    def process_bank_reports(self, as_of: datetime) -> BankCycle:
        """Fetch the bank's reports, keep each file, apply it to the batch book (once per
        file name), and only then acknowledge them to the bank: a crash in between means
        the same files come again, and applying them again changes nothing. A file that
        cannot be read is quarantined (kept, listed by `payouts batches`), and the others
        are applied as usual."""
        files = moved = 0
        quarantined: list[str] = []
        fetched = self.bank.fetch(as_of)
        for name, xml in fetched:
            activity.heartbeat(name)  # a worker lost mid-cycle is noticed in seconds
            write_atomically(self.inbound / name, xml)
            try:
                report = parse_report(xml)
            except BankFileInvalid as exc:
                if quarantine.quarantine_report(
                    self.ledger.db, name=name, reason=exc.message, at=as_of
                ):
                    log.warning("bank report %s quarantined: %s", name, exc.message)
                quarantined.append(f"{name}: {exc.message}"[:300])
                continue
            moved += book.apply_report(self.ledger.db, name=name, report=report, at=as_of)
            files += 1
        self.bank.acknowledge([name for name, _ in fetched])
        return BankCycle(report_files=files, items_moved=moved, quarantined=tuple(quarantined))

    @activity.defn(name=A.BANK_SIGNALS)
    def bank_signals(self, limit: int) -> list[BankSignal]:
        """What each cash-out has not been told yet, signed by our rail components' key
        (the cash-out applies only what this key signed for it)."""
        found = []
        for i in book.unsignalled(self.ledger.db, limit):
            event = BankEvent(
                kind=i.status,
                end_to_end_id=i.end_to_end_id,
                batch_id=i.batch_id,
                code=i.reason_code or "",
                reason=i.reason or "",
            )
            message = trust.rail_event_message(i.workflow_id, "bank", event.model_dump(mode="json"))
            signed = event.model_copy(update={"signature": self.service_key.sign(message)})
            found.append(BankSignal(workflow_id=i.workflow_id, event=signed))
        return found

    @activity.defn(name=A.MARK_BANK_SIGNALLED)
    def mark_bank_signalled(self, told: list[BankSignal]) -> int:
        return book.mark_signalled(
            self.ledger.db, [(s.event.end_to_end_id, s.event.kind) for s in told]
        )

    @activity.defn(name=A.APPLY_LATE_BANK_EVENT)
    @domain_errors
    def apply_late_bank_event(self, signal: BankSignal) -> str:
        """The cash-out workflow has ended (its return window closed): a late return is
        still reversed in the ledger and reported, with the keys the workflow would use."""
        if signal.event.kind != "returned":
            return "ignored"
        hold = self.ledger.hold(signal.workflow_id)
        if hold is None or hold.status != "posted":
            return "nothing to reverse"
        reason = f"returned by the bank: {signal.event.code} {signal.event.reason}".strip()
        self.ledger.reverse(
            key=contract.step_key(signal.workflow_id, Step.REVERSE),
            hold_id=contract.hold_id(signal.workflow_id),
            reason=reason,
        )
        outbox.record(
            self.ledger.db,
            event_id=contract.notification_id(signal.workflow_id, "RETURNED"),
            request_id=contract.request_id_of(signal.workflow_id),
            user_id=hold.user_id,
            stage="RETURNED",
            payload={
                "stage": "RETURNED",
                "outcome": reason,
                "currency": hold.currency,
                "gross": hold.gross,
            },
            at=datetime.now(hold.updated_at.tzinfo),
        )
        return "reversed"

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.cut_bank_batches,
            self.process_bank_reports,
            self.bank_signals,
            self.mark_bank_signalled,
            self.apply_late_bank_event,
            self.send_instant_bank_transfer,
        ]
