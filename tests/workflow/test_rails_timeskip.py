"""Rails over days, on the time-skipping server: cutoffs, bookings an hour later, a return
three days after payment, and platform notifications retried with backoff."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from payouts.devstack.demo import sandbox_iban
from payouts.domain.cashout import Stage
from payouts.domain.money import parse_micros
from payouts.rails.bank import book
from payouts.rails.platform import notify
from tests.support.harness import Harness

M = parse_micros
DAY = timedelta(days=1)


async def queued(h: Harness, request_id: str) -> None:
    await h.wait_for(request_id, lambda s: any("queued for the next" in e.note for e in s.timeline))


async def test_cutoffs_and_bookings_follow_the_clock(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Each transfer leaves with the first cutoff after it was queued; the bank books it an
    hour after the file arrived, not before."""
    env = skipping_env
    async with Harness.running(
        env, tmp_path, sandbox_bank_settle_seconds=3600, sandbox_bank_ack_seconds=60
    ) as h:
        for u in ("ca", "cb"):
            h.fund(u, "100.00")
            h.stack.identity.register(u, "verified", legal_name=u.title())
        first = await h.cashout("ca", "20", "bank_transfer", sandbox_iban("5001"), holder="Ca")
        await queued(h, first.request_id)
        await h.run_workflow("BankBatchWorkflow")  # cutoff 1
        await env.sleep(timedelta(minutes=30))
        second = await h.cashout("cb", "20", "bank_transfer", sandbox_iban("5002"), holder="Cb")
        await queued(h, second.request_id)
        await h.run_workflow("BankBatchWorkflow")  # cutoff 2, half an hour later
        batches = book.batches(h.stack.db)
        assert [[i.workflow_id for i in b.items] for b in batches] == [
            [first.workflow_id],
            [second.workflow_id],
        ]
        await env.sleep(timedelta(minutes=31))  # first file: 61 minutes old, second: 31
        await h.run_workflow("BankReportsWorkflow")
        assert (await h.client.status(first.request_id)).stage is Stage.PAID
        assert (await h.client.status(second.request_id)).stage is Stage.SENT
        await env.sleep(timedelta(minutes=30))
        await h.run_workflow("BankReportsWorkflow")
        assert (await h.client.status(second.request_id)).stage is Stage.PAID


async def test_a_return_three_days_later(skipping_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """Paid on day 0, returned by the bank on day 3: RETURNED, the ledger reversed; a
    report fetched on day 2 changes nothing."""
    env = skipping_env
    async with Harness.running(
        env, tmp_path, sandbox_bank_settle_seconds=3600, sandbox_bank_return_seconds=3 * 86_400
    ) as h:
        h.fund("rita", "100.00")
        h.stack.identity.register("rita", "verified", legal_name="Rita")
        ticket = await h.cashout("rita", "25", "bank_transfer", sandbox_iban("0606"), holder="Rita")
        await queued(h, ticket.request_id)
        await h.run_workflow("BankBatchWorkflow")
        await env.sleep(timedelta(hours=1, minutes=1))
        await h.run_workflow("BankReportsWorkflow")
        await h.wait_stage(ticket.request_id, Stage.PAID)
        assert h.balance("rita") == (M("75.00"), 0)
        await env.sleep(2 * DAY)
        await h.run_workflow("BankReportsWorkflow")
        assert (await h.client.status(ticket.request_id)).stage is Stage.PAID
        await env.sleep(DAY + timedelta(minutes=1))
        await h.run_workflow("BankReportsWorkflow")
        result = await h.result(ticket.request_id)
        assert result.stage is Stage.RETURNED
        returned = result.status.timeline[-1].at
        paid = next(e.at for e in result.status.timeline if e.stage is Stage.PAID)
        assert returned - paid >= 3 * DAY
        assert h.balance("rita") == (M("100.00"), 0)


async def test_platform_notifications_are_retried_with_backoff(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The platform is down for three deliveries: retries come 10 s, 20 s and 40 s apart
    (not sooner), then the event is delivered once."""
    env = skipping_env
    async with Harness.running(env, tmp_path) as h:
        h.platform.fail_next = 3
        h.fund("tom", "20.00")
        ticket = await h.cashout("tom", "10", "wallet", "tom@example.com")
        await h.wait_stage(ticket.request_id, Stage.PAID)

        async def deliver() -> tuple[int, int]:
            done = await h.run_workflow("NotificationsWorkflow")
            return done["delivered"], done["failed"]

        assert await deliver() == (0, 1)
        assert await deliver() == (0, 0)  # not due yet
        await env.sleep(timedelta(seconds=10))
        assert await deliver() == (0, 1)
        await env.sleep(timedelta(seconds=19))
        assert await deliver() == (0, 0)
        await env.sleep(timedelta(seconds=2))
        assert await deliver() == (0, 1)
        await env.sleep(timedelta(seconds=41))
        assert await deliver() == (1, 0)
        [row] = notify.outbox(h.stack.db)
        assert (row.attempts, row.last_error, row.delivered_at is not None) == (4, None, True)
        assert h.platform.stages_for(ticket.request_id) == ["PAID"]
        assert h.platform.deliveries == 4
