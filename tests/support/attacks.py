"""What the attack tests and the attack drill share: building and starting cash-outs as
an attacker would, and checking that nothing moved."""

from __future__ import annotations

import asyncio
import uuid

from payouts.domain.cashout import CashoutInput, Stage
from payouts.domain.requests import build_input
from payouts.rails.bank import book
from payouts.store import audit
from payouts.temporal import contract
from tests.support.harness import Harness

M = 1_000_000

# a camt.054 whose amount is not a number (a bank's broken export)
NAN_REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"><BkToCstmrDbtCdtNtfctn>
<GrpHdr><MsgId>BROKEN-1</MsgId></GrpHdr><Ntfctn><Ntry><Amt Ccy="USD">NaN</Amt>
<CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-12-01</Dt></BookgDt>
<NtryDtls><TxDtls><Refs><EndToEndId>PO000</EndToEndId></Refs></TxDtls></NtryDtls></Ntry>
</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>"""


async def build(h: Harness, user: str, amount: int, method: str, destination: str) -> CashoutInput:
    """A well-formed input, as the platform's client would build it (unsigned)."""
    return build_input(
        h.stack.policy,
        request_id=uuid.uuid4().hex[:16],
        user_id=user,
        amount=amount,
        currency="USD",
        method=method,
        destination=destination,
        now=await h.env.get_current_time(),
    )


async def start_raw(h: Harness, inp: CashoutInput) -> str:
    """Start a cash-out as anyone with Temporal access can: the raw client, no platform."""
    wid = contract.cashout_id(inp.request.request_id)
    await h.temporal.start_workflow(contract.Workflow.CASHOUT, inp, id=wid, task_queue=h.task_queue)
    return inp.request.request_id


def nothing_moved(h: Harness, user: str, request_id: str, before: tuple[int, int]) -> None:
    wid = contract.cashout_id(request_id)
    assert h.balance(user) == before
    assert h.stack.ledger.hold(wid) is None
    assert h.wallet.payouts_for(wid) == 0
    assert h.stack.gift_cards.cards_for(wid) == 0
    assert book.item_for(h.stack.db, wid) is None


async def held(h: Harness, user: str, amount: str) -> str:
    h.fund(user, str(int(amount) + 100))
    ticket = await h.cashout(user, amount, "wallet", f"{user}@example.com")
    await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
    return ticket.request_id


def audited(h: Harness, request_id: str) -> list[tuple[str, str, bool, str]]:
    rows = audit.entries(h.stack.db, contract.cashout_id(request_id))
    return [(r.reviewer, r.decision, r.accepted, r.refusal) for r in rows]


async def until_audited(h: Harness, request_id: str, n: int) -> list[tuple[str, str, bool, str]]:
    for _ in range(200):
        found = audited(h, request_id)
        if len(found) >= n:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{request_id}: {audited(h, request_id)}")
