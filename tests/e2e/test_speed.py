"""Speed tiers end to end: the payee chooses standard or instant (its own fee and arrival);
bank instant leaves at once in a single-transfer file, wallet instant uses the provider's
instant flag; where the rail refuses instant, the cash-out goes standard at the standard
fee and the timeline and the platform are told."""

from __future__ import annotations

from datetime import timedelta

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import CashoutStatus, Stage
from payouts.domain.fees import quote
from payouts.rails.bank import book
from payouts.temporal import contract
from tests.support.attacks import M
from tests.support.harness import Harness


def noted(status: CashoutStatus, text: str) -> bool:
    return any(text in e.note for e in status.timeline)


async def test_the_quote_shows_both_speeds(harness: Harness) -> None:
    standard, instant = harness.client.quote_options(100 * M, "wallet", "USD")
    assert (standard.speed, instant.speed) == ("standard", "instant")
    assert instant.fee > standard.fee and instant.net == 100 * M - instant.fee
    [only] = harness.client.quote_options(100 * M, "gift_card", "USD")
    assert only.speed == "standard"


async def test_wallet_instant_pays_at_the_instant_fee(harness: Harness) -> None:
    h = harness
    h.fund("ivo", "100.00")
    ticket = await h.cashout("ivo", "40", "wallet", "ivo@example.org", speed="instant")
    status = await h.wait_stage(ticket.request_id, Stage.PAID)
    expected = quote(h.stack.policy, "wallet", "USD", 40 * M, "instant")
    assert (status.fee, status.net) == (expected.fee, expected.net)
    [row] = h.wallet.rows_for(ticket.workflow_id)
    assert row["amount"] == "38.75"  # 40.00 less the instant fee (0.25 + 2.5%)
    approved = next(e.at for e in status.timeline if e.stage is Stage.APPROVED)
    assert status.expected_arrival is not None
    assert status.expected_arrival - approved <= timedelta(minutes=5)


async def test_wallet_instant_refused_falls_back_to_standard(harness: Harness) -> None:
    h = harness
    h.fund("ula", "100.00")
    ticket = await h.cashout("ula", "40", "wallet", "noinstant.ula@example.org", speed="instant")
    result = await h.result(ticket.request_id)
    standard = quote(h.stack.policy, "wallet", "USD", 40 * M)
    assert result.stage is Stage.PAID
    assert (result.status.fee, result.status.net) == (standard.fee, standard.net)
    notes = [e.note for e in result.status.timeline if "instant refused" in e.note]
    assert notes and "paid at standard speed, fee 0.70 USD instead of 1.25 USD" in notes[0]
    [row] = h.wallet.rows_for(ticket.workflow_id)
    assert row["amount"] == "39.30"
    assert h.balance("ula") == (60 * M, 0)  # the gross left, at the standard fee
    await h.run_workflow("NotificationsWorkflow")
    assert h.platform.stages_for(ticket.request_id) == ["DISBURSING", "PAID"]


async def test_bank_instant_leaves_at_once_in_its_own_file(harness: Harness) -> None:
    h = harness
    h.fund("ben2", "100.00")
    ticket = await h.cashout(
        "ben2", "50", "bank_transfer", sandbox_iban("2121"), holder="Ben Two", speed="instant"
    )
    await h.wait_for(
        ticket.request_id, lambda s: any("file of its own" in e.note for e in s.timeline)
    )
    item = book.item_for(h.stack.db, contract.cashout_id(ticket.request_id))
    assert item is not None and item.batch_id is not None and item.batch_id.startswith("I")
    [batch] = [b for b in book.batches(h.stack.db) if b.id == item.batch_id]
    assert batch.status == "submitted" and len(batch.items) == 1  # no cutoff has run
    assert (h.stack.settings.bank_dir / "outbound" / batch.file_name).exists()
    await h.bank_cycle()  # the reports; the cutoff finds nothing of it to batch
    status = await h.wait_stage(ticket.request_id, Stage.PAID)
    expected = quote(h.stack.policy, "bank_transfer", "USD", 50 * M, "instant")
    assert status.fee == expected.fee
    assert [b.id for b in book.batches(h.stack.db)] == [batch.id]


async def test_bank_instant_unreachable_goes_in_the_next_batch(harness: Harness) -> None:
    h = harness
    h.fund("una", "100.00")
    ticket = await h.cashout(
        "una", "50", "bank_transfer", sandbox_iban("0505"), holder="Una Five", speed="instant"
    )
    await h.wait_for(
        ticket.request_id, lambda s: any("queued for the next" in e.note for e in s.timeline)
    )
    status = await h.client.status(ticket.request_id)
    assert any("does not take instant transfers" in e.note for e in status.timeline)
    await h.bank_cycle()
    paid = await h.wait_stage(ticket.request_id, Stage.PAID)
    standard = quote(h.stack.policy, "bank_transfer", "USD", 50 * M)
    assert (paid.fee, paid.net) == (standard.fee, standard.net)
    item = book.item_for(h.stack.db, contract.cashout_id(ticket.request_id))
    assert item is not None and item.amount == standard.net
