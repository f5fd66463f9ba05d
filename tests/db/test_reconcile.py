"""Reconciliation finds every kind of mismatch, each with its cause, and passes a sound day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.ops.reconcile import Report
from tests.support.harness import Harness


async def a_day(h: Harness) -> dict[str, str]:
    """A wallet, a gift card and a bank cash-out, all paid; workflow ids by method."""
    for user in ("rwa", "rgi", "rba"):
        h.fund(user, "100.00")
    wallet = await h.cashout("rwa", "10", "wallet", "rwa@example.com")
    gift = await h.cashout("rgi", "25", "gift_card", "rgi@example.com")
    bank = await h.cashout("rba", "30", "bank_transfer", sandbox_iban("4001"), holder="Rba")
    await h.wait_for(bank.request_id, lambda s: any("queued" in e.note for e in s.timeline))
    await h.bank_cycle()
    for t in (wallet, gift, bank):
        await h.wait_stage(t.request_id, Stage.PAID)
    return {
        "wallet": wallet.workflow_id,
        "gift_card": gift.workflow_id,
        "bank_transfer": bank.workflow_id,
    }


async def run(h: Harness, *, hours_later: float = 0) -> Report:
    now = datetime.now(UTC) + timedelta(hours=hours_later)
    return await h.stack.ops_activities.run(datetime.now(UTC).date(), now)


def kinds(report: Report) -> set[tuple[str, str]]:
    return {(m.kind, m.cashout) for m in report.mismatches}


async def test_a_sound_day_is_clean(harness: Harness) -> None:
    """Ledger, wallet, gift card provider, bank and bank files all agree."""
    ids = await a_day(harness)
    report = await run(harness)
    assert report.clean, report.mismatches
    assert report.checked == 3
    assert report.by_rail == {"wallet": 1, "gift_card": 1, "bank_transfer": 1}
    assert set(ids) == set(report.by_rail)


async def test_each_kind_of_mismatch_is_found(harness: Harness) -> None:
    """Tamper with each source in turn; the report names the cash-out and the cause."""
    h = harness
    ids = await a_day(h)
    sandbox = h.stack.sandbox
    # missing at the rail: the wallet provider lost the payout
    with sandbox.tx() as conn:
        conn.execute("DELETE FROM wallet_payouts WHERE reference = ?", (ids["wallet"],))
    # amount differs: the gift card provider issued a different value
    with sandbox.tx() as conn:
        conn.execute(
            "UPDATE giftcard_issues SET face_value = face_value + 1000000 WHERE reference = ?",
            (ids["gift_card"],),
        )
    # paid twice: the bank booked the same transfer under a second message
    with sandbox.tx() as conn:
        conn.execute(
            "INSERT INTO bank_txs (end_to_end_id, message_id, currency, amount, iban, "
            "book_due_us, booked) SELECT end_to_end_id, 'DUPLICATE', currency, amount, "
            "iban, book_due_us, 1 FROM bank_txs"
        )
    report = await run(h)
    found = kinds(report)
    assert ("missing_at_rail", ids["wallet"]) in found
    assert ("amount_differs", ids["gift_card"]) in found
    assert ("paid_twice", ids["bank_transfer"]) in found
    detail = next(m.detail for m in report.mismatches if m.kind == "amount_differs")
    assert detail == "ledger net 25.00 USD; gift_card: 26.00 USD"


async def test_returned_not_reversed_and_not_booked(harness: Harness) -> None:
    """The bank returned a transfer the ledger still counts; a rail paid what the ledger
    released."""
    h = harness
    ids = await a_day(h)
    with h.stack.db.write_connection() as conn:
        conn.execute(
            sa.text(
                "UPDATE bank_items SET status = 'returned', reason_code = 'AC04' "
                "WHERE workflow_id = :w"
            ),
            {"w": ids["bank_transfer"]},
        )
        conn.execute(
            sa.text("UPDATE holds SET status = 'voided' WHERE id = :w"), {"w": ids["wallet"]}
        )
    found = kinds(await run(h))
    assert ("returned_not_reversed", ids["bank_transfer"]) in found
    assert ("not_booked", ids["wallet"]) in found


async def test_held_too_long(harness: Harness) -> None:
    """A hold still reserved after held_too_long_hours is reported (the cash-out waits for
    a reviewer who never comes)."""
    h = harness
    h.fund("slow", "700.00")
    ticket = await h.cashout("slow", "600", "wallet", "slow@example.com")
    await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert not any(m.kind == "held_too_long" for m in (await run(h)).mismatches)
    found = kinds(await run(h, hours_later=73))
    assert ("held_too_long", ticket.workflow_id) in found


async def test_reconcile_workflow_writes_the_report(harness: Harness) -> None:
    """The scheduled workflow reconciles a day and keeps the report as JSON."""
    h = harness
    await a_day(h)
    result = await h.run_workflow("ReconcileWorkflow", datetime.now(UTC).date().isoformat())
    assert (result["checked"], result["mismatches"]) == (3, 0)
    assert (h.stack.settings.reports_dir / f"reconcile-{result['day']}.json").exists()
