"""Verification of Payee end to end: the bank's name check before a transfer leaves. Match
goes on, close match goes to review showing the bank's name, no match is refused, an
unavailable service is retried and then reviewed; a saved destination's answer is kept
until it changes."""

from __future__ import annotations

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.rails.bank import book
from payouts.rails.bank.vop import INITIALS, OTHER_NAME, UNAVAILABLE
from payouts.temporal import contract
from tests.e2e.test_cli_cashout import in_thread
from tests.support.harness import Harness


async def test_a_close_match_is_reviewed_with_the_banks_name(harness: Harness) -> None:
    h = harness
    h.fund("vic", "100.00")
    ticket = await h.cashout("vic", "30", "bank_transfer", sandbox_iban(INITIALS), holder="Vic Ode")
    status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert status.verification == "close_match"
    assert status.decision is not None and "the bank holds 'V. Ode'" in status.decision
    shown = await in_thread(h, h.stack.settings.data_dir, "status", ticket.request_id)
    assert shown.returncode == 0, shown.stderr
    assert "verification of payee" in shown.stdout and "close match" in shown.stdout
    assert "V. Ode" in shown.stdout  # the reviewer reads the bank's name
    await h.client.approve(ticket.request_id, reviewer="carol")
    await h.wait_for(ticket.request_id, lambda s: any("queued" in e.note for e in s.timeline))


async def test_no_match_is_refused_and_nothing_leaves(harness: Harness) -> None:
    h = harness
    h.fund("wes", "100.00")
    before = h.balance("wes")
    ticket = await h.cashout(
        "wes", "30", "bank_transfer", sandbox_iban(OTHER_NAME), holder="Wes Lund"
    )
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.REJECTED and result.status.verification == "no_match"
    assert "the name does not match the account" in result.status.outcome
    assert h.balance("wes") == before
    assert book.item_for(h.stack.db, contract.cashout_id(ticket.request_id)) is None


async def test_an_unavailable_service_is_retried_then_reviewed(harness: Harness) -> None:
    h = harness
    h.fund("xia", "100.00")
    iban = sandbox_iban(UNAVAILABLE)
    ticket = await h.cashout("xia", "30", "bank_transfer", iban, holder="Xia Po")
    status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW, timeout=60)
    assert status.verification == "unavailable"
    assert status.decision is not None and "did not answer" in status.decision
    assert h.stack.payee_verifier.calls(iban) == 4  # asked four times, then a reviewer


async def test_a_saved_destination_is_verified_once_until_it_changes(harness: Harness) -> None:
    """Verified on its first use and kept with the profile: the next cash-out to it is not
    checked again; saved again with another spelling of the name, it is."""
    h = harness
    iban = sandbox_iban("3131")
    h.stack.identity.register("yan", "verified", legal_name="Yan Berg")
    h.fund("yan", "300.00")
    dst = await h.client.save_destination("yan", "bank_transfer", iban, holder="Yan Berg")
    for n in (1, 2):
        ticket = await h.cashout("yan", "20", "bank_transfer", f"saved:{dst}")
        status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)  # cool-off
        assert status.verification == "match"
        kept = [e.note for e in status.timeline if "Verification of Payee" in e.note]
        assert ("kept from an earlier check" in kept[0]) is (n == 2)
        assert h.stack.payee_verifier.calls(iban) == 1
    [saved] = (await h.client.payee_profile("yan")).destinations
    assert saved.verification == "match"
    await h.client.save_destination("yan", "bank_transfer", iban, holder="BERG, Yan")
    [changed] = (await h.client.payee_profile("yan")).destinations
    assert changed.verification is None  # a changed destination is verified again
    ticket = await h.cashout("yan", "20", "bank_transfer", f"saved:{dst}")
    status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert status.verification == "match" and h.stack.payee_verifier.calls(iban) == 2
