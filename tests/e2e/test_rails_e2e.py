"""The rails end to end: bank batches and the bank's answers, the wallet's HTTP API and
webhooks, gift card codes, platform notifications, schedules."""

from __future__ import annotations

import asyncio
import json
import tomllib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa
import tomli_w

from payouts.config.policy_file import default_policy_text
from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.domain.money import parse_micros
from payouts.errors import InvalidState, NotFound
from payouts.rails.bank import book
from payouts.rails.bank.iso20022 import read_pain001, validate_pain001
from payouts.rails.giftcards import codes as giftcards
from payouts.rails.platform import notify
from payouts.security.signing import sign
from payouts.security.vault import Vault
from tests.support.harness import Harness

M = parse_micros


def policy_file(tmp_path: Path, **batching: object) -> Path:
    data = tomllib.loads(default_policy_text())
    data["methods"]["bank_transfer"]["batching"].update(batching)
    path = tmp_path / "policy.toml"
    path.write_text(tomli_w.dumps(data))
    return path


async def queued(h: Harness, request_id: str) -> None:
    await h.wait_for(request_id, lambda s: any("queued for the next" in e.note for e in s.timeline))


def all_files_validate(h: Harness) -> list[Path]:
    files = sorted((h.stack.settings.bank_dir / "outbound").glob("*.xml"))
    for f in files:
        validate_pain001(f.read_bytes())
    return files


def request_id_where(wanted: Callable[[str], bool]) -> str:
    for _ in range(2000):
        rid = uuid.uuid4().hex[:16]
        if wanted(f"cashout-{rid}:disburse"):
            return rid
    raise AssertionError("no request id found")


# ------------------------------------------------------------------ the bank


async def test_batches_per_currency_with_a_size_limit_and_savings(
    make_harness, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """One file per currency per cutoff, at most max_items each, every file valid
    pain.001.001.09; the fee saved by batching is recorded per batch."""
    async with make_harness(policy=policy_file(tmp_path, max_items=3)) as h:
        usd = []
        for n in range(5):
            user = f"us{n}"
            h.fund(user, "100.00")
            usd.append(
                await h.cashout(
                    user, "20", "bank_transfer", sandbox_iban(f"20{n:02d}"), holder=user
                )
            )
        h.fund("eu0", "100.00", "EUR")
        eur = await h.cashout(
            "eu0",
            "15",
            "bank_transfer",
            "FR1420041010050500013M02606",
            currency="EUR",
            holder="eu0",
        )
        for t in (*usd, eur):
            await queued(h, t.request_id)
        await h.bank_cycle()
        batches = book.batches(h.stack.db)
        assert sorted((b.currency, len(b.items)) for b in batches) == [
            ("EUR", 1),
            ("USD", 2),
            ("USD", 3),
        ]
        usd3 = next(b for b in batches if b.currency == "USD" and len(b.items) == 3)
        assert usd3.fee_saved == 3 * M("0.25") - M("0.50")  # three transfers for one file
        files = all_files_validate(h)
        assert len(files) == 3
        msg, cur, transfers = read_pain001(
            (h.stack.settings.bank_dir / "outbound" / usd3.file_name).read_bytes()
        )
        assert (msg, cur) == (usd3.id, "USD")
        assert all(t.amount == M("19.65") for t in transfers)  # 20.00 less a 0.35 fee
        for t in (*usd, eur):
            status = await h.wait_stage(t.request_id, Stage.PAID)
            assert status.rail_reference and " in batch B" in status.rail_reference


async def test_a_return_after_payment_reverses_the_ledger(make_harness) -> None:  # type: ignore[no-untyped-def]
    """The bank books a transfer, then returns it (AC06): RETURNED, the ledger reversed,
    the whole gross (fee included) back in the payee's available balance, the platform told."""
    async with make_harness(sandbox_bank_return_seconds=1) as h:
        h.fund("hana", "100.00")
        ticket = await h.cashout("hana", "25", "bank_transfer", sandbox_iban("0606"), holder="Hana")
        await queued(h, ticket.request_id)
        await h.bank_cycle()
        paid = await h.wait_stage(ticket.request_id, Stage.PAID)
        assert h.balance("hana") == (M("75.00"), 0)
        await asyncio.sleep(1.1)
        await h.run_workflow("BankReportsWorkflow")
        result = await h.result(ticket.request_id)
        assert result.stage is Stage.RETURNED
        assert "returned by the bank: AC06 blocked account" in result.status.outcome
        assert h.balance("hana") == (M("100.00"), 0)
        totals = h.stack.ledger.totals("USD")
        assert (totals.paid_out, totals.fees) == (0, 0)
        assert paid.net + paid.fee == M("25")
        await h.run_workflow("NotificationsWorkflow")
        assert h.platform.stages_for(ticket.request_id) == ["PAID", "RETURNED"]
        assert h.stack.ledger.audit() == []


async def test_a_return_after_the_window_is_still_reversed(make_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With no return window the workflow ends at PAID; a return that comes later is still
    reversed and reported (by the bank workflow, with the same idempotency keys)."""
    async with make_harness(
        policy=policy_file(tmp_path, return_window_days=0), sandbox_bank_return_seconds=1
    ) as h:
        h.fund("ida", "100.00")
        ticket = await h.cashout("ida", "25", "bank_transfer", sandbox_iban("0606"), holder="Ida")
        await queued(h, ticket.request_id)
        await h.bank_cycle()
        assert (await h.result(ticket.request_id)).stage is Stage.PAID
        await asyncio.sleep(1.1)
        cycle = await h.run_workflow("BankReportsWorkflow")
        assert cycle["late"] == 1
        hold = h.stack.ledger.hold(ticket.workflow_id)
        assert hold is not None and hold.status == "reversed"
        assert h.balance("ida") == (M("100.00"), 0)
        assert [n.stage for n in notify.outbox(h.stack.db)] == ["PAID", "RETURNED"]


async def test_bank_reports_are_kept_and_applied_once(make_harness) -> None:  # type: ignore[no-untyped-def]
    """Each report file is stored in the data folder and applied once, however often the
    reports workflow runs."""
    async with make_harness() as h:
        h.fund("jo", "100.00")
        ticket = await h.cashout("jo", "20", "bank_transfer", sandbox_iban("3001"), holder="Jo")
        await queued(h, ticket.request_id)
        await h.bank_cycle()
        await h.wait_stage(ticket.request_id, Stage.PAID)
        inbound = sorted(p.name for p in (h.stack.settings.bank_dir / "inbound").glob("*.xml"))
        assert inbound == ["camt054-000002.xml", "pain002-000001.xml"]
        again = await h.run_workflow("BankReportsWorkflow")
        assert (again["report_files"], again["signalled"]) == (0, 0)
        item = book.item_for(h.stack.db, ticket.workflow_id)
        assert item is not None and item.status == "booked"


# ------------------------------------------------------------------ the wallet


async def test_wallet_503_and_429_are_retried_with_the_same_key(make_harness) -> None:  # type: ignore[no-untyped-def]
    """A 503, then a 429 with Retry-After: the same key is sent again; paid once."""
    async with make_harness(
        sandbox_transient_rate=0.5, sandbox_throttle_rate=0.5, sandbox_seed=3
    ) as h:
        w = h.wallet
        rid = request_id_where(
            lambda k: (
                w._chance(k, 1, "error") < 0.5
                and w._chance(k, 2, "error") >= 0.5
                and w._chance(k, 2, "throttle") < 0.5
                and w._chance(k, 3, "error") >= 0.5
                and w._chance(k, 3, "throttle") >= 0.5
            )
        )
        h.fund("kai", "20.00")
        ticket = await h.cashout("kai", "10", "wallet", "kai@example.com", request_id=rid)
        assert (await h.result(ticket.request_id, timeout=60)).stage is Stage.PAID
        assert w.calls_for(f"cashout-{rid}:disburse") == 3
        assert w.payouts_for(ticket.workflow_id) == 1


async def test_ambiguous_wallet_timeout_pays_exactly_once(make_harness) -> None:  # type: ignore[no-untyped-def]
    """The provider applies the payout and answers too late: the retry asks the provider
    by idempotency key and finds it, instead of paying again."""
    async with make_harness(
        sandbox_timeout_rate=0.5, sandbox_seed=5, wallet_timeout_seconds=1.0
    ) as h:
        w = h.wallet
        rid = request_id_where(lambda k: w._chance(k, 1, "timeout") < 0.5)
        h.fund("jon", "20.00")
        ticket = await h.cashout("jon", "10", "wallet", "jon@example.com", request_id=rid)
        result = await h.result(ticket.request_id, timeout=60)
        assert result.stage is Stage.PAID
        assert w.payouts_for(ticket.workflow_id) == 1
        assert w.calls_for(f"cashout-{rid}:disburse") == 1
        assert any("resolved by asking the provider" in e.note for e in result.status.timeline)
        assert h.stack.ledger.totals("USD").paid_out == result.status.net


async def test_wallet_api_idempotency_semantics(harness: Harness) -> None:
    """Same key and body: the same payout; same key, other body: 422; no key: 400; a wrong
    API key: 401."""
    url = f"{harness.stack.settings.wallet_api_url}/v1/payouts"
    auth = {"Authorization": f"Bearer {harness.stack.settings.wallet_api_key}"}
    body = {"reference": "r-1", "wallet_id": "a@b.cd", "amount": "1.50", "currency": "USD"}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body, headers={**auth, "Idempotency-Key": "k1"}) as r1:
            first = (r1.status, await r1.json())
        async with http.post(url, json=body, headers={**auth, "Idempotency-Key": "k1"}) as r2:
            second = (r2.status, await r2.json())
        async with http.post(
            url, json={**body, "amount": "2.00"}, headers={**auth, "Idempotency-Key": "k1"}
        ) as r3:
            third = (r3.status, await r3.json())
        async with http.post(url, json=body, headers=auth) as r4:
            fourth = r4.status
        async with http.post(
            url, json=body, headers={"Authorization": "Bearer nope", "Idempotency-Key": "k2"}
        ) as r5:
            fifth = r5.status
    assert first[0] == 201 and second[0] == 200 and first[1]["id"] == second[1]["id"]
    assert third == (
        422,
        {
            "error": "idempotency_key_reused",
            "message": "this Idempotency-Key was used with a different request",
        },
    )
    assert (fourth, fifth) == (400, 401)


async def test_webhooks_are_verified_deduplicated_and_order_tolerant(make_harness) -> None:  # type: ignore[no-untyped-def]
    """Every webhook delivered twice and the stale 'processing' event after the final one:
    the cash-out is paid once; a forged signature is refused."""
    async with make_harness(
        sandbox_webhook_duplicate_rate=1.0, sandbox_webhook_reorder_rate=1.0
    ) as h:
        h.fund("lou", "20.00")
        ticket = await h.cashout("lou", "10", "wallet", "lou@example.com")
        result = await h.result(ticket.request_id)
        assert result.stage is Stage.PAID
        for _ in range(100):  # the stale event comes after the final one, then both are kept
            with h.stack.db.engine.connect() as conn:
                kinds = [
                    k
                    for (k,) in conn.execute(
                        sa.text(
                            "SELECT kind FROM webhook_events WHERE reference = :r "
                            "ORDER BY received_at"
                        ),
                        {"r": ticket.workflow_id},
                    )
                ]
            if len(kinds) == 2:
                break
            await asyncio.sleep(0.1)
        assert kinds == ["payout.completed", "payout.processing"]
        assert h.cars.receiver.duplicates >= 1
        assert h.wallet.payouts_for(ticket.workflow_id) == 1
        body = json.dumps(
            {
                "id": "evt_forged",
                "type": "payout.completed",
                "data": {"id": "x", "status": "completed", "reference": ticket.workflow_id},
            }
        ).encode()
        forged = {
            "Wallet-Event-Id": "evt_forged",
            "Wallet-Signature": sign("wrong", body, event_id="evt_forged"),
        }
        async with aiohttp.ClientSession() as http:
            async with http.post(h.cars.receiver_url, data=body, headers=forged) as resp:
                assert (resp.status, await resp.json()) == (
                    401,
                    {"error": "signature does not match"},
                )
            async with http.post(h.cars.receiver_url, data=body) as resp:
                assert resp.status == 401


# ------------------------------------------------------------------ gift cards


async def test_gift_codes_are_encrypted_and_shown_once(harness: Harness) -> None:
    """Codes rest encrypted (never in workflow history); the payee sees them once."""
    h = harness
    h.fund("mo", "60.00")
    ticket = await h.cashout("mo", "50", "gift_card", "mo@example.com")
    await h.result(ticket.request_id)
    with h.stack.db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT code_ciphertext, last4 FROM gift_cards")).all()
    history = (await h.temporal.get_workflow_handle(ticket.workflow_id).fetch_history()).to_json()
    with pytest.raises(NotFound):
        giftcards.reveal(
            h.stack.db,
            h.stack.vault,
            request_id=ticket.request_id,
            user_id="someone-else",
            at=datetime.now(UTC),
        )
    cards = giftcards.reveal(
        h.stack.db, h.stack.vault, request_id=ticket.request_id, user_id="mo", at=datetime.now(UTC)
    )
    assert [c.face_value for c in cards] == [M("50")]
    code = cards[0].code
    assert code.endswith(stored[0].last4) and code not in stored[0].code_ciphertext
    assert code not in history
    with pytest.raises(InvalidState, match="were already shown on"):
        giftcards.reveal(
            h.stack.db,
            h.stack.vault,
            request_id=ticket.request_id,
            user_id="mo",
            at=datetime.now(UTC),
        )


def test_vault_rotation_keeps_old_codes_readable() -> None:
    """A new key first encrypts; the old key still decrypts what it wrote."""
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Vault([old]).encrypt("ABCD-1234")
    rotated = Vault([new, old])
    assert rotated.decrypt(token) == "ABCD-1234"
    assert Vault([new]).decrypt(rotated.rotate(token)) == "ABCD-1234"


# ------------------------------------------------------------------ the platform


async def test_platform_gets_signed_events_once(harness: Harness) -> None:
    """Each terminal stage reaches the platform signed; a re-delivery is ignored there."""
    h = harness
    h.fund("ned", "20.00")
    ticket = await h.cashout("ned", "10", "wallet", "ned@example.com")
    await h.result(ticket.request_id)
    done = await h.run_workflow("NotificationsWorkflow")
    assert done["delivered"] == 1
    assert h.platform.stages_for(ticket.request_id) == ["PAID"]
    with h.stack.db.write_connection() as conn:  # as if the acknowledgement had been lost
        conn.execute(sa.text("UPDATE notifications SET delivered_at = NULL"))
    await h.run_workflow("NotificationsWorkflow")
    assert h.platform.duplicates == 1 and len(h.platform.events) == 1
    assert h.platform.refused == 0
