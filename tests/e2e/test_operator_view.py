"""What an operator sees: one log line per expected refusal (tracebacks are for bugs), and
no orphan server after a crash."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from payouts.domain.cashout import Stage
from payouts.web import port_open
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


def test_a_killed_parent_leaves_no_dev_server_behind(tmp_path: Path) -> None:
    """`payouts up` killed with SIGKILL (no cleanup runs): its Temporal dev server gets
    SIGTERM from the kernel and exits, instead of living on as an orphan on its ports."""
    script = (
        "import sys, time\n"
        "from payouts.devstack.devserver import DevServer\n"
        "from payouts.web import free_port\n"
        "s = DevServer(port=free_port(), ui_port=None)\n"
        "s.start()\n"
        "print(s.proc.pid, s.port, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid, port = map(int, parent.stdout.readline().split())
    assert port_open("127.0.0.1", port)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    assert not alive(pid), "the dev server outlived its parent"
    assert not port_open("127.0.0.1", port)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
