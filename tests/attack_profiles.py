"""The drill's attacks on payout profiles and automatic cash-outs (`tests.attack`): changing
a payee's saved destinations without the platform, paying a payee to a destination they did
not choose (another payee's, an automatic cash-out the sweep did not sign or that goes
elsewhere than the payee said), and a bank account in another name."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from payouts.devstack.demo import sandbox_iban
from payouts.domain import trust
from payouts.domain.cashout import CashoutInput, GiftCardDelivery, SavedRef, Stage
from payouts.domain.profiles import ProfileAction, ProfileChange, ProfileResult
from payouts.rails.bank.vop import OTHER_NAME
from payouts.security.keys import SigningKey
from payouts.security.signatures import sign_request
from tests.support.attacks import M, build, start_raw

if TYPE_CHECKING:
    from tests.attack import Drill


async def run(d: Drill) -> None:
    h = d.h
    row = d.row("change a profile or pay where the payee did not say", "profiles, sweep")
    h.fund("pip", "100.00")
    h.fund("mal3", "100.00")
    mine = await h.client.save_destination("pip", "gift_card", "pip@example.org", default=True)
    theirs = await h.client.save_destination("mal3", "gift_card", "mal3.cards@example.org")
    await h.client.set_auto_cashout("pip", destination_id=mine, currency="USD", threshold="500")
    d.secrets += ["pip@example.org", "mal3.cards@example.org", "mal3.evil@example.org"]
    before = d.money("pip") + d.money("mal3")

    # profile changes that the platform did not sign for this very workflow
    key = h.stack.deployment.platform_key()
    change = ProfileChange(
        change_id=uuid.uuid4().hex[:20], user_id="pip", action=ProfileAction.SAVE,
        destination=GiftCardDelivery(email="mal3.evil@example.org"), make_default=True,
        requested_at=datetime.now(UTC),
    )  # fmt: skip
    message = trust.profile_message(change)
    for forged, wid in (
        (change, f"profile-{change.change_id}"),  # unsigned
        (signed(change, SigningKey.generate().sign(message)), f"profile-{change.change_id}"),
        (signed(change, key.sign(message)), f"profile-{change.change_id}-replayed"),
    ):
        row.tried += 1
        result = await h.temporal.execute_workflow(
            "PayeeProfileWorkflow", forged, id=wid, task_queue=h.task_queue,
            result_type=ProfileResult,
        )  # fmt: skip
        row.refused += int(not result.applied)

    # cash-outs to a destination the payee did not choose (each under its own request id,
    # signed over that id, so each is refused for what it is)
    inp = await build(h, "pip", 40 * M, "gift_card", "pip@example.org")
    service = h.stack.service_key
    attempts = [
        (theirs, lambda i: sign_request(key, i)),  # another payee's saved destination
        (theirs, lambda i: auto(i, service)),  # the sweep's key, not where the payee said
        (mine, lambda i: auto(i, key)),  # "automatic", signed by the platform
        (mine, lambda i: auto(i, SigningKey.generate())),
    ]
    for dst, sign_it in attempts:
        rid = await start_raw(h, sign_it(fresh(with_destination(inp, dst))))
        row.tried += 1
        row.refused += int((await h.result(rid)).stage is Stage.REJECTED)
    # a bank account in another name than the payee's (Verification of Payee)
    ticket = await h.cashout(
        "mal3", "30", "bank_transfer", sandbox_iban(OTHER_NAME), holder="Mal Three"
    )
    row.tried += 1
    row.refused += int((await h.result(ticket.request_id)).stage is Stage.REJECTED)
    row.moved = abs(d.money("pip") + d.money("mal3") - before)


def signed(change: ProfileChange, signature: str) -> ProfileChange:
    return change.model_copy(update={"platform_signature": signature})


def with_destination(inp: CashoutInput, dst: str) -> CashoutInput:
    request = inp.request.model_copy(update={"destination": SavedRef(destination_id=dst)})
    return inp.model_copy(update={"request": request})


def auto(inp: CashoutInput, key: SigningKey) -> CashoutInput:
    signature = key.sign(trust.auto_request_message(inp.request, inp.requested_at))
    return inp.model_copy(update={"origin": "auto", "platform_signature": signature})


def fresh(inp: CashoutInput) -> CashoutInput:
    """The same request under a new id."""
    request = inp.request.model_copy(update={"request_id": uuid.uuid4().hex[:16]})
    return inp.model_copy(update={"request": request})
