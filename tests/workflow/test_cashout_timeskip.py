"""Long waits on the time-skipping test server: review timeouts, slow identity checks."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import tomli_w
from temporalio.testing import WorkflowEnvironment

from payouts.config.policy_file import default_policy_text, load_policy
from payouts.config.settings import Settings
from payouts.domain.cashout import Stage
from tests.support.harness import Harness


def policy_file(tmp_path: Path, **review: object) -> Path:
    data = tomllib.loads(default_policy_text())
    data["review"].update(review)
    path = tmp_path / "policy.toml"
    path.write_text(tomli_w.dumps(data))
    return path


async def test_review_timeout_rejects_after_policy_hours(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Nobody reviews: after review.timeout_hours (48) the policy's action (reject) applies,
    and not before."""
    env = skipping_env
    async with Harness.running(env, tmp_path) as h:
        h.fund("nia", "700.00")
        ticket = await h.cashout("nia", "600", "wallet", "nia@example.com")
        rid = ticket.request_id
        await h.wait_stage(rid, Stage.AWAITING_REVIEW)
        await env.sleep(timedelta(hours=47))
        assert (await h.client.status(rid)).stage is Stage.AWAITING_REVIEW
        await env.sleep(timedelta(hours=2))
        result = await h.result(rid)
        assert result.stage is Stage.REJECTED
        assert "no decision within 48 hours: rejected by policy" in result.status.outcome
        entered = next(e.at for e in result.status.timeline if e.stage is Stage.AWAITING_REVIEW)
        waited = result.status.timeline[-1].at - entered
        assert timedelta(hours=48) <= waited < timedelta(hours=48, minutes=1)
        assert h.balance("nia") == (700_000_000, 0)


async def test_review_timeout_can_approve(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """With timeout_action = "approve" the cash-out proceeds after the wait."""
    env = skipping_env
    path = policy_file(tmp_path, timeout_action="approve", timeout_hours=6)
    async with Harness.running(env, tmp_path, policy=path) as h:
        h.fund("oli", "700.00")
        ticket = await h.cashout("oli", "600", "wallet", "oli@example.com")
        await h.wait_stage(ticket.request_id, Stage.AWAITING_REVIEW)
        await env.sleep(timedelta(hours=6, minutes=1))
        result = await h.result(ticket.request_id)
        assert result.stage is Stage.PAID
        notes = [e.note for e in result.status.timeline]
        assert "no decision within 6 hours: approved by policy" in notes


async def test_pending_identity_resolves_later(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A pending identity check is polled (every 30 minutes) until it resolves 3 hours
    later; then the cash-out proceeds to payment."""
    env = skipping_env
    async with Harness.running(env, tmp_path) as h:
        h.stack.identity.register(
            "pia", "pending", legal_name="Pia Weber", pending_seconds=3 * 3600
        )
        h.fund("pia", "100.00")
        ticket = await h.cashout("pia", "60", "wallet", "pia@example.com")
        rid = ticket.request_id
        await h.wait_for(rid, lambda s: (s.identity or "").startswith("pending"))
        await env.sleep(timedelta(hours=2))
        assert (await h.client.status(rid)).stage is Stage.VERIFYING
        await env.sleep(timedelta(hours=1, minutes=31))
        result = await h.result(rid)
        assert result.stage is Stage.PAID
        notes = [(e.at, e.note) for e in result.status.timeline]
        pending_at = next(at for at, n in notes if n.startswith("identity pending"))
        verified_at = next(at for at, n in notes if n.startswith("identity verified"))
        assert timedelta(hours=3) <= verified_at - pending_at <= timedelta(hours=3, minutes=30)


async def test_identity_pending_too_long_fails(
    skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Still pending after identity.pending_timeout_hours (72): FAILED, hold released."""
    env = skipping_env
    async with Harness.running(env, tmp_path) as h:
        h.stack.identity.register("raj", "pending", pending_seconds=100 * 3600)
        h.fund("raj", "100.00")
        ticket = await h.cashout("raj", "60", "wallet", "raj@example.com")
        await h.wait_for(ticket.request_id, lambda s: (s.identity or "").startswith("pending"))
        await env.sleep(timedelta(hours=73))
        result = await h.result(ticket.request_id)
        assert result.stage is Stage.FAILED
        assert "identity still pending after 72 hours" in result.status.outcome
        assert h.balance("raj") == (100_000_000, 0)


def test_policy_file_helper_is_valid(tmp_path: Path) -> None:
    """The helper writes a policy the loader accepts (guards the tests above)."""
    assert load_policy(policy_file(tmp_path, timeout_hours=6)).review.timeout_hours == 6
    assert Settings(policy=policy_file(tmp_path)).load_policy().name == "default"
