"""What an operator sees: one log line per expected refusal (tracebacks are for bugs)."""

from __future__ import annotations

import logging

import pytest

from payouts.domain.cashout import Stage
from tests.support.harness import Harness


async def test_an_expected_refusal_logs_one_line_without_a_traceback(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness
    h.fund("lou", "5.00")
    caplog.set_level(logging.DEBUG)
    ticket = await h.cashout("lou", "10", "wallet", "lou@example.com")
    assert (await h.result(ticket.request_id)).stage is Stage.FAILED
    shown = [r for r in caplog.records if r.levelno >= logging.INFO]
    ours = [r for r in shown if ticket.workflow_id in r.getMessage()]
    assert [(r.name, r.levelname) for r in ours] == [("payouts.activities", "INFO")]
    assert "insufficient_funds" in ours[0].getMessage() and ours[0].exc_info is None
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING and r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
