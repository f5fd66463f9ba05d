"""One bad bank file never stops the bank payouts: a batch whose file fails the schema is
quarantined (the items at fault fail their cash-outs, the others leave at once), and a
report the pipeline cannot read is quarantined while the others are applied."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.rails.bank import book, quarantine
from payouts.temporal import contract
from tests.e2e.test_cli_cashout import in_thread
from tests.support.attacks import NAN_REPORT
from tests.support.harness import Harness

BAD_BIC = "NOT-A-BIC"


async def queued(h: Harness, user: str, last4: str) -> str:
    h.fund(user, "200.00")
    h.stack.identity.register(user, "verified", legal_name=f"{user.title()} Banks")
    ticket = await h.cashout(
        user, "40", "bank_transfer", sandbox_iban(last4), holder=f"{user.title()} Banks"
    )
    await h.wait_for(ticket.request_id, lambda s: any("queued" in e.note for e in s.timeline))
    return ticket.request_id


async def test_a_batch_that_fails_the_schema_is_quarantined_and_the_rest_leave(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    good, bad = await queued(h, "gia", "1001"), await queued(h, "bao", "1002")
    before = h.balance("bao")
    with h.stack.db.engine.begin() as conn:  # a destination a validation gap let through
        conn.execute(
            sa.text("UPDATE bank_items SET bic = :bic WHERE workflow_id = :w"),
            {"bic": BAD_BIC, "w": contract.cashout_id(bad)},
        )
    await h.bank_cycle()
    await h.wait_stage(good, Stage.PAID)  # (it stays open for its return window)
    failed = await h.result(bad)
    assert failed.stage is Stage.FAILED
    assert "FF01 the bank file format refuses it" in failed.status.outcome
    assert "BICFI" in failed.status.outcome and BAD_BIC not in failed.status.outcome
    assert h.balance("bao") == (before[0] + before[1], 0)  # the hold is released
    [quarantined] = book.batches(h.stack.db, status="quarantined")
    assert BAD_BIC not in (quarantined.reason or "") and "BICFI" in (quarantined.reason or "")
    assert (h.stack.settings.bank_dir / "outbound" / "quarantine" / quarantined.file_name).exists()
    listed = await in_thread(h, tmp_path, "batches", "--json")
    shown = json.loads(listed.stdout)["batches"]
    assert [b["status"] for b in shown] == ["quarantined", "submitted"]
    assert shown[0]["verdicts"] == {"rejected": 1} and shown[1]["verdicts"] == {"booked": 1}


async def test_an_unreadable_report_is_quarantined_and_the_others_apply(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    rid = await queued(h, "noa", "1003")
    await h.bank_cycle(settle=False)
    h.stack.bank.deliver_raw("0000-broken.camt.054.xml", NAN_REPORT, datetime.now(UTC))
    h.stack.bank.deliver_raw("0001-truncated.pain.002.xml", b"<Document><Cstmr", datetime.now(UTC))
    await h.bank_cycle()  # nothing new to batch; reads the reports
    await h.wait_stage(rid, Stage.PAID)
    quarantined = quarantine.report_files(h.stack.db, status="quarantined")
    assert [r.name for r in quarantined] == [
        "0000-broken.camt.054.xml",
        "0001-truncated.pain.002.xml",
    ]
    assert "cannot read" in (quarantined[0].reason or "")
    assert "not well-formed" in (quarantined[1].reason or "")
    assert h.stack.bank.fetch(datetime.now(UTC)) == []  # kept by us, not offered again
    listed = json.loads((await in_thread(h, tmp_path, "batches", "--json")).stdout)
    assert len(listed["quarantined_reports"]) == 2
