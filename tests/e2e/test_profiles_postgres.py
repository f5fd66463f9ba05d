"""Payout profiles end to end on a PostgreSQL ledger: the sweep (a threshold and a dormant
balance, each once), a close-match bank transfer, and a verification kept with its saved
destination (the same paths as on SQLite, through the PostgreSQL queries)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.domain.profiles import SweepResult, auto_request_id, dormant_request_id
from payouts.rails.bank.vop import INITIALS
from tests.support.attacks import M
from tests.support.harness import Harness


async def test_profiles_sweep_and_verification_on_postgresql(
    make_harness: Callable[..., AbstractAsyncContextManager[Harness]], pg_url: str
) -> None:
    async with make_harness(database_url=pg_url) as h:
        assert h.stack.db.engine.dialect.name == "postgresql"
        h.fund("pga", "60.00")
        h.fund("pgd", "40.00", days_ago=200)
        h.fund("pgv", "200.00")
        dst = await h.client.save_destination("pga", "gift_card", "pga@example.org")
        await h.client.set_auto_cashout("pga", destination_id=dst, currency="USD", threshold="50")
        await h.client.save_destination("pgd", "gift_card", "pgd@example.org", default=True)
        swept: SweepResult = await h.run_workflow(
            "AutoCashoutSweepWorkflow", 500.0, result_type=SweepResult
        )
        again: SweepResult = await h.run_workflow(
            "AutoCashoutSweepWorkflow", 500.0, result_type=SweepResult
        )
        assert (swept.started, again.started) == (2, 0)
        now = datetime.now(UTC)
        rule = (await h.client.payee_profile("pga")).auto[0]
        for rid, gross in (
            (auto_request_id("pga", rule, f"d{now:%Y%m%d}"), 60 * M),
            (dormant_request_id("pgd", "USD", now), 40 * M),
        ):
            result = await h.result(rid)
            assert result.stage is Stage.PAID and result.status.gross == gross

        h.stack.identity.register("pgv", "verified", legal_name="Pia Gold")
        iban = sandbox_iban(INITIALS)
        saved = await h.client.save_destination("pgv", "bank_transfer", iban, holder="Pia Gold")
        for _ in range(2):
            ticket = await h.cashout("pgv", "20", "bank_transfer", f"saved:{saved}")
            status = await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
            assert status.verification == "close_match"
            assert status.decision is not None and "the bank holds 'P. Gold'" in status.decision
        assert h.stack.payee_verifier.calls(iban) == 1  # kept with the profile
        [shown] = (await h.client.payee_profile("pgv")).destinations
        assert (shown.verification, shown.verified_name) == ("close_match", "P. Gold")
