"""Payout profiles end to end: saved destinations (signed by the platform, sealed, cooled
off), cash-outs that name one, and the automatic cash-out sweep."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from payouts.domain import trust
from payouts.domain.cashout import GiftCardDelivery, SavedRef, Stage
from payouts.domain.profiles import (
    ProfileAction,
    ProfileChange,
    ProfileResult,
    SweepResult,
    auto_request_id,
    dormant_request_id,
    schedule_due,
)
from payouts.errors import InvalidInput, ProfileRefused
from payouts.security.keys import SigningKey
from payouts.temporal.client import PayoutsClient
from tests.support.attacks import M, build, nothing_moved, start_raw
from tests.support.harness import Harness


async def sweep(h: Harness) -> SweepResult:
    result: SweepResult = await h.run_workflow(
        "AutoCashoutSweepWorkflow", 500.0, result_type=SweepResult
    )
    return result


async def test_a_fresh_destination_is_reviewed_and_then_pays_where_it_was_saved(
    harness: Harness,
) -> None:
    """Saved by the platform (masked in the profile, sealed in the database), named by a
    cash-out: in its cool-off the cash-out waits for a reviewer, then pays that wallet. The
    platform hears that the payout details changed."""
    h = harness
    h.fund("sia", "100.00")
    dst = await h.client.save_destination("sia", "wallet", "sia.wallet@example.org", default=True)
    profile = await h.client.payee_profile("sia")
    [saved] = profile.destinations
    assert (saved.id, saved.shown, saved.is_default) == (dst, "s***@example.org", True)
    assert saved.cooloff_until - saved.changed_at == timedelta(hours=24)
    with h.stack.db.engine.connect() as conn:
        sealed = conn.exec_driver_sql("SELECT sealed FROM payout_profiles").scalar_one()
    assert "sia.wallet" not in sealed
    assert await h.client.save_destination("sia", "wallet", "sia.wallet@example.org") == dst
    ticket = await h.cashout("sia", "20", "wallet", f"saved:{dst}")
    status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    assert status.decision is not None and "in cool-off until" in status.decision
    await h.client.approve(ticket.request_id, reviewer="carol")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.PAID
    [payout] = h.wallet.rows_for(ticket.workflow_id)
    assert payout["wallet_id"] == "sia.wallet@example.org"
    await h.run_workflow("NotificationsWorkflow")
    assert "PAYOUT_DETAILS_CHANGED" in h.platform.stages_for(profile_request(h, "sia"))


def profile_request(h: Harness, user: str) -> str:
    """The change id of the user's first profile change (the platform event's request)."""
    with h.stack.db.engine.connect() as conn:
        return str(
            conn.exec_driver_sql(
                "SELECT request_id FROM notifications WHERE user_id = ? AND stage = ? LIMIT 1",
                (user, "PAYOUT_DETAILS_CHANGED"),
            ).scalar_one()
        )


async def test_profile_changes_and_saved_destinations_are_the_payees_own(
    harness: Harness,
) -> None:
    """A change without the platform's signature is refused and logged; a cash-out naming
    another payee's saved destination is refused before anything is held."""
    h = harness
    unsigned = PayoutsClient(h.temporal, policy=h.stack.policy, task_queue=h.task_queue)
    with pytest.raises(ProfileRefused, match="change: not signed by the platform"):
        await unsigned.save_destination("tia", "gift_card", "tia@example.org")
    # a signed change replayed under another workflow id (a second run of the same change)
    change = ProfileChange(
        change_id="c-tia-1", user_id="tia", action=ProfileAction.SAVE,
        destination=GiftCardDelivery(email="tia.evil@example.org"),
        requested_at=datetime.now(UTC),
    )  # fmt: skip
    assert h.client.platform_key is not None
    signed = change.model_copy(
        update={"platform_signature": h.client.platform_key.sign(trust.profile_message(change))}
    )
    replayed = await h.temporal.execute_workflow(
        "PayeeProfileWorkflow", signed, id="profile-c-tia-1-again", task_queue=h.task_queue,
        result_type=ProfileResult,
    )  # fmt: skip
    assert not replayed.applied and "another workflow id" in replayed.refusal
    assert (await h.client.payee_profile("tia")).destinations == ()
    theirs = await h.client.save_destination("uli", "gift_card", "uli@example.org")
    h.fund("tia", "50.00")
    before = h.balance("tia")
    ticket = await h.cashout("tia", "25", "gift_card", f"saved:{theirs}")
    result = await h.result(ticket.request_id)
    assert result.stage is Stage.REJECTED
    assert f"{theirs!r} is not a saved destination of 'tia'" in result.status.outcome
    nothing_moved(h, "tia", ticket.request_id, before)


async def test_the_sweep_pays_a_reached_threshold_once_per_period(harness: Harness) -> None:
    """Three opted-in payees: one above their threshold is paid automatically to their
    saved destination, once, however often the sweep runs; one below is told by how much;
    one whose monthly day has not come is told when."""
    h = harness
    users = {"ava": "60.00", "bea": "30.00", "cyd": "80.00"}
    for user, amount in users.items():
        h.fund(user, amount)
    dsts = {u: await h.client.save_destination(u, "gift_card", f"{u}@example.org") for u in users}
    await h.client.set_auto_cashout(
        "ava", destination_id=dsts["ava"], currency="USD", threshold="50"
    )
    await h.client.set_auto_cashout(
        "bea", destination_id=dsts["bea"], currency="USD", threshold="50"
    )
    await h.client.set_auto_cashout(
        "cyd", destination_id=dsts["cyd"], currency="USD", every="monthly"
    )
    # two sweeps at once (an overlap): each payee due is started once between them
    first, overlap = await asyncio.gather(sweep(h), sweep(h))
    monthly = (await h.client.payee_profile("cyd")).auto[0]
    due = {"ava"} | ({"cyd"} if schedule_due(monthly, datetime.now(UTC)) else set())
    assert first.scanned == overlap.scanned == 3
    assert first.started + overlap.started == len(due)
    rule = (await h.client.payee_profile("ava")).auto[0]
    period = f"d{datetime.now(UTC):%Y%m%d}"
    result = await h.result(auto_request_id("ava", rule, period))
    assert result.stage is Stage.PAID
    assert result.status.gross == 60 * M and h.balance("ava") == (0, 0)
    # the threshold reached again the same day: the day's cash-out ran; nothing new starts
    h.fund("ava", "70.00")
    again = await sweep(h)
    assert (again.started, again.already) == (0, 1)
    assert h.balance("ava") == (70 * M, 0)
    bea = await h.client.payee_profile("bea")
    assert bea.auto_status[0].explanation == "below your threshold by 20.00 USD"
    if "cyd" not in due:
        cyd = await h.client.payee_profile("cyd")
        assert cyd.auto_status[0].explanation.startswith("next on ")


async def test_an_automatic_cash_out_goes_only_where_the_payee_said(harness: Harness) -> None:
    """Signed with our service key but to another destination than the payee's rule, or
    signed by any other key: refused, nothing held."""
    h = harness
    h.fund("dee", "80.00")
    mine = await h.client.save_destination("dee", "gift_card", "dee@example.org")
    other = await h.client.save_destination("dee", "gift_card", "dee.other@example.org")
    await h.client.set_auto_cashout("dee", destination_id=mine, currency="USD", threshold="50")
    before = h.balance("dee")
    for key, dst, why in (
        (h.stack.service_key, other, "not the destination the payee's standing instruction"),
        (SigningKey.generate(), mine, "the sweep's signature does not verify"),
    ):
        inp = await build(h, "dee", 40 * M, "gift_card", "dee@example.org")
        request = inp.request.model_copy(update={"destination": SavedRef(destination_id=dst)})
        inp = inp.model_copy(update={"request": request, "origin": "auto"})
        signed = inp.model_copy(
            update={
                "platform_signature": key.sign(
                    trust.auto_request_message(request, inp.requested_at)
                )
            }
        )
        rid = await start_raw(h, signed)
        result = await h.result(rid)
        assert result.stage is Stage.REJECTED and why in result.status.outcome
        nothing_moved(h, "dee", rid, before)


async def test_a_saved_destination_change_restarts_the_cooloff(harness: Harness) -> None:
    """The same account saved with another holder name: the same id, a new cool-off (of
    the bank method's 48 hours)."""
    h = harness
    first = await h.client.save_destination(
        "eve2", "bank_transfer", "DE89370400440532013000", holder="Eve Two"
    )
    again = await h.client.save_destination(
        "eve2", "bank_transfer", "DE89370400440532013000", holder="Eve Zwei"
    )
    assert first == again  # the same account: the same id
    [saved] = (await h.client.payee_profile("eve2")).destinations
    assert saved.cooloff_until - saved.changed_at == timedelta(hours=48)


async def test_a_dormant_balance_is_paid_to_the_default_destination(harness: Harness) -> None:
    """The policy pays balances untouched for 180 days to the payee's default destination,
    and then they are touched; a recent balance, or a payee without a default, is left
    alone; the sweep's key cannot pay a dormant balance elsewhere."""
    h = harness
    assert h.stack.policy.automatic.dormant_days == 180
    h.fund("old", "40.00", days_ago=200)
    h.fund("new", "40.00", days_ago=10)
    h.fund("nod", "40.00", days_ago=200)
    for user in ("old", "new"):
        await h.client.save_destination(user, "gift_card", f"{user}@example.org", default=True)
    elsewhere = await h.client.save_destination("nod", "gift_card", "nod@example.org")
    first = await sweep(h)
    assert (first.started, first.skipped) == (1, 1)  # old paid; new skipped; nod no default
    rid = dormant_request_id("old", "USD", datetime.now(UTC))
    result = await h.result(rid)
    assert result.stage is Stage.PAID and result.status.gross == 40 * M
    h.fund("old", "30.00", days_ago=200)  # an old earning credited late
    again = await sweep(h)
    assert (again.started, again.skipped) == (0, 2)  # the cash-out touched it: not dormant
    before = h.balance("nod")
    inp = await build(h, "nod", 40 * M, "gift_card", "nod@example.org")
    request = inp.request.model_copy(update={"destination": SavedRef(destination_id=elsewhere)})
    forged = inp.model_copy(update={"request": request, "origin": "auto"})
    message = trust.auto_request_message(request, inp.requested_at)
    forged = forged.model_copy(update={"platform_signature": h.stack.service_key.sign(message)})
    refused = await h.result(await start_raw(h, forged))
    assert refused.stage is Stage.REJECTED
    assert "only to the payee's default destination" in refused.status.outcome
    nothing_moved(h, "nod", refused.request_id, before)


async def test_a_bad_standing_instruction_names_its_rule(harness: Harness) -> None:
    """Refused in the client with the rule it breaks, before anything is sent."""
    h = harness
    dst = await h.client.save_destination("zed", "gift_card", "zed@example.org")
    for fields, why in (
        ({}, "auto: give a threshold, a schedule (every), or both"),
        ({"every": "daily"}, "auto.every: 'daily' is not a valid Every"),
    ):
        with pytest.raises(InvalidInput) as caught:
            await h.client.set_auto_cashout("zed", destination_id=dst, currency="USD", **fields)
        assert caught.value.message == why
    assert (await h.client.payee_profile("zed")).auto == ()
