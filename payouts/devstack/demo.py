"""`payouts up --demo`: seed a few payees with matured micro-earnings and start cash-outs
over every method, so that some complete, some wait for review and one is rejected; one
payee has a standing instruction instead, and the automatic cash-out sweep (a Temporal
Schedule, every minute in the demo) pays them without anyone asking.

Each run uses fresh event and request ids (a run tag), so running it again adds new
cash-outs next to the old ones instead of colliding with them.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schwifty import IBAN

from payouts.domain.messages import IdentityStatus
from payouts.domain.money import format_money, parse_micros
from payouts.ledger import EarningRow, Ledger
from payouts.rails.identity.sandbox import SandboxIdentity
from payouts.store.tables import to_epoch_us
from payouts.temporal.client import PayoutsClient
from payouts.temporal.starting import Ticket


@dataclass(frozen=True)
class Payee:
    user_id: str
    legal_name: str
    currency: str
    earnings: int  # how many micro-earnings to seed
    outcome: IdentityStatus = IdentityStatus.VERIFIED


@dataclass(frozen=True)
class DemoCashout:
    user_id: str
    amount: str
    currency: str
    method: str
    destination: str
    holder: str | None
    expect: str


PAYEES = (
    Payee("ana", "Ana Souza", "USD", 3000),
    Payee("ben", "Ben Okafor", "USD", 3000),
    Payee("chloe", "Chloé Martin", "USD", 3000),
    Payee("dev", "Dev Patel", "EUR", 15000),
    Payee("eve", "Eve Larsen", "USD", 40000),
    Payee("fay", "Fay Nakamura", "USD", 3000),
    Payee("gus", "Gus Grimm", "USD", 3000),
    Payee("hana", "Hana Sato", "USD", 3000),
    Payee("jon", "Jon Berg", "USD", 3000),
    Payee("ivy", "Ivy Chen", "USD", 1500),  # paid automatically, at her threshold
    Payee("kim", "Kim Novak", "USD", 0),  # paid, then a task reversed: owes, pays it back
    Payee("kyc-reject-zoe", "Zoe Quinn", "USD", 5000, IdentityStatus.REJECTED),
)
AUTO_PAYEE, AUTO_THRESHOLD = "ivy", "25"
CLAWBACK = "kim"  # 500 tasks of 0.10 and one of 12.00 (later charged back); cashes out 60


def sandbox_iban(last4: str) -> str:
    """A valid German IBAN whose account number ends in `last4` (the sandbox bank's
    outcome codes: 0404 closed account, 0606 returned after booking)."""
    return IBAN.generate("DE", bank_code="37040044", account_code="053201" + last4).compact
    # (and for Verification of Payee: 0707 unavailable, 0808 no match, 0909 close match)


# (user, amount, currency, method, destination, holder, what to expect)
CASHOUTS = tuple(DemoCashout(*row) for row in (
    ("ana", "12.345678", "USD", "wallet", "ana@example.com", None,
     "PAID on the wallet's signed webhook; 0.005678 stays in the balance"),
    ("ben", "40", "USD", "bank_transfer", "DE89370400440532013000", "OKAFOR, Ben",
     "leaves in the next batch file; PAID when the bank books it"),
    ("chloe", "37.99", "USD", "gift_card", "chloe@example.com", None,
     "gift cards 25 + 10 (codes shown once); 2.99 stays in the balance"),
    ("dev", "750", "EUR", "bank_transfer", "FR1420041010050500013M02606", "Dev Patel",
     "above 500 EUR: waits for one reviewer"),
    ("eve", "2100", "USD", "wallet", "+4915112345678", None,
     "above 2000 USD: waits for two reviewers, one senior"),
    ("fay", "20", "USD", "wallet", "ana@example.com", None,
     "wallet shared with another payee: held for a risk review"),
    ("kyc-reject-zoe", "120", "USD", "bank_transfer", "GB33BUKB20201555555555", "Zoe Quinn",
     "identity rejected: REJECTED, hold released"),
    ("gus", "30", "USD", "bank_transfer", sandbox_iban("0404"), "GRIMM, Gus",
     "the bank rejects it (AC04 closed account): FAILED, hold released"),
    ("hana", "25", "USD", "bank_transfer", sandbox_iban("0606"), "Hana Sato",
     "booked, then returned a minute later (AC06): RETURNED, money back"),
    ("jon", "45", "USD", "bank_transfer", sandbox_iban("0909"), "Jon Berg",
     "Verification of Payee: a close match (the bank holds 'J. Berg'): waits for a reviewer"),
    ("kim", "60", "USD", "gift_card", "kim@example.com", None,
     "PAID; then her 12.00 task is charged back: she owes 10.00, her next tasks pay it"),
))  # fmt: skip


def run_tag(now: datetime) -> str:
    return now.strftime("%m%d-%H%M%S")


def seed(ledger: Ledger, identity: SandboxIdentity, tag: str, now: datetime) -> dict[str, int]:
    """Credit each payee many small matured earnings; returns the total per payee."""
    rng = random.Random(tag)
    rows: list[EarningRow] = []
    totals: dict[str, int] = {}
    for p in PAYEES:
        identity.register(p.user_id, p.outcome, legal_name=p.legal_name, tier=2)
        total = 0
        for i in range(p.earnings):
            amount = rng.randint(1_000, 120_000)  # 0.001 to 0.12 per micro-task
            earned = now - timedelta(days=5, minutes=rng.randint(0, 60 * 24 * 20))
            rows.append(
                EarningRow(
                    f"demo-{tag}-{p.user_id}-{i}",
                    p.user_id,
                    p.currency,
                    amount,
                    to_epoch_us(earned),
                )
            )
            total += amount
        totals[p.user_id] = total
    matured = to_epoch_us(now - timedelta(days=5))
    rows += [
        EarningRow(f"demo-{tag}-kim-{i}", CLAWBACK, "USD", 100_000, matured) for i in range(500)
    ]
    rows.append(EarningRow(chargeback_event(tag), CLAWBACK, "USD", 12_000_000, matured))
    totals[CLAWBACK] = 62_000_000
    ledger.credit_earnings(rows)
    return totals


def chargeback_event(tag: str) -> str:
    return f"demo-{tag}-kim-task-7731"


async def clawback(client: PayoutsClient, ledger: Ledger, tag: str) -> list[str]:
    """Once kim's cash-out is paid, the platform reverses her 12.00 task (a chargeback):
    2.00 comes from her balance, 10.00 she owes; then 300 new tasks of 0.05 mature and pay
    it back first. Returns what happened, to print."""
    for _ in range(600):
        status = await client.status(f"demo-{tag}-{CLAWBACK}")
        if status.stage.value in ("PAID", "FAILED", "REJECTED"):
            break
        await asyncio.sleep(0.2)
    done = await client.reverse_earning(
        chargeback_event(tag),
        user_id=CLAWBACK,
        currency="USD",
        reason="chargeback: the requester's card payment was reversed",
        reversal_id=f"demo-{tag}-chargeback",
    )
    owed = ledger.balance(CLAWBACK, "USD").owed
    later = to_epoch_us(datetime.now(UTC) - timedelta(days=4))
    ledger.credit_earnings(
        [
            EarningRow(f"demo-{tag}-kim-later-{i}", CLAWBACK, "USD", 50_000, later)
            for i in range(300)
        ]
    )
    after = ledger.balance(CLAWBACK, "USD")
    return [
        f"{CLAWBACK}: task reversed after her payout: {format_money(done.from_available, 'USD')} "
        f"from her balance, {format_money(owed, 'USD')} owed; then 300 new tasks (15.00 USD) "
        f"paid it back first: owes {format_money(after.owed, 'USD')}, available "
        f"{format_money(after.available, 'USD')}  (payouts statement {CLAWBACK})"
    ]


async def start(client: PayoutsClient, tag: str) -> list[tuple[DemoCashout, Ticket]]:
    started = []
    for c in CASHOUTS:
        if c.user_id == "fay":
            # fay pays into ana's wallet: let ana's cash-out register that wallet first.
            await _until_past_verifying(client, f"demo-{tag}-ana")
        ticket = await client.request_cashout(
            request_id=f"demo-{tag}-{c.user_id}",
            user_id=c.user_id,
            amount=parse_micros(c.amount),
            currency=c.currency,
            method=c.method,
            destination=c.destination,
            holder=c.holder,
        )
        started.append((c, ticket))
    return started


async def run(
    client: PayoutsClient, ledger: Ledger, identity: SandboxIdentity
) -> list[tuple[DemoCashout, Ticket]]:
    now = datetime.now(UTC)
    tag = run_tag(now)
    seed(ledger, identity, tag, now)
    await opt_in(client)
    return await start(client, tag)


async def opt_in(client: PayoutsClient) -> str:
    """The automatic payee saves where to be paid (gift cards: no cool-off) and a threshold;
    nobody starts her cash-out: the next sweep finds her balance above it."""
    dst = await client.save_destination(AUTO_PAYEE, "gift_card", f"{AUTO_PAYEE}@example.com")
    await client.set_auto_cashout(
        AUTO_PAYEE, destination_id=dst, currency="USD", threshold=AUTO_THRESHOLD
    )
    return dst


async def _until_past_verifying(client: PayoutsClient, request_id: str) -> None:
    for _ in range(100):
        status = await client.status(request_id)
        if status.risk_score is not None:
            return
        await asyncio.sleep(0.1)


def hints(started: list[tuple[DemoCashout, Ticket]]) -> str:
    ids = {c.user_id: t.request_id for c, t in started}
    return (
        "\nin another terminal (with .venv/bin on PATH):\n"
        "  payouts review list\n"
        f"  payouts review approve {ids['dev']} --reviewer alice\n"
        f"  payouts review approve {ids['eve']} --reviewer bob      (then --reviewer alice)\n"
        f"  payouts review approve {ids['jon']} --reviewer carol  (after reading the bank's name)\n"
        f"  payouts status {ids['hana']}                 (watch it become RETURNED)\n"
        f"  payouts profile show {AUTO_PAYEE}    (paid automatically within a minute)\n"
        f"  payouts giftcodes {ids['chloe']} --user chloe   (shown once)\n"
        "  payouts batches                                 (bank files and fees saved)\n"
        "  payouts reconcile --date today\n"
        f"  payouts statement {CLAWBACK}     (paid, charged back, owed, paid back)\n"
        "  payouts balance ana"
    )


def describe(started: list[tuple[DemoCashout, Ticket]]) -> list[str]:
    lines = [
        f"{'(nobody asks)':<32} {'gift_card':<14} {'auto':>14}  {AUTO_PAYEE} opted in at "
        f"{AUTO_THRESHOLD} USD: the sweep (every minute) pays her balance automatically"
    ]
    for c, t in started:
        q = t.quote
        lines.append(
            f"{t.request_id:<32} {c.method:<14} {format_money(q.gross, q.currency):>14}  {c.expect}"
        )
    return lines
