"""A short chaos run inside `make test` (the full one is `make chaos`)."""

from __future__ import annotations

from pathlib import Path

from tests.chaos import chaos


async def test_short_chaos_run_keeps_every_promise(tmp_path: Path) -> None:
    """24 cash-outs over every method while workers are SIGKILLed, the server is killed and
    restarted once, and every rail fault is on: all terminal, none paid twice, no hold left,
    the books conserve and reconcile."""
    report = await chaos(cashouts=24, workers=2, server_restarts=1, seed=11, data_dir=tmp_path)
    print(report.table())
    assert report.lost == 0
    assert report.double_paid == 0
    assert report.dangling_holds == 0
    assert report.conserved
    assert report.mismatches == []
    assert sum(report.stages.values()) == 24
    assert report.faults["server kills"] == 1
    assert report.faults["worker SIGKILLs"] >= 1
