"""Scale-out, checked: two worker processes, one Temporal server, one PostgreSQL ledger."""

from __future__ import annotations

from pathlib import Path

from tests.chaos import chaos


async def test_two_workers_on_one_postgres_ledger(pg_url: str, tmp_path: Path) -> None:
    """300 cash-outs over every method, shared by two worker processes on one task queue
    against one PostgreSQL ledger: all end, none paid twice, both workers did their share."""
    report = await chaos(
        cashouts=300,
        workers=2,
        server_restarts=0,
        seed=21,
        data_dir=tmp_path,
        faults=False,
        kill_workers=False,
        database_url=pg_url,
    )
    print(report.table())
    assert report.lost == 0, report.lost_details
    assert sum(report.stages.values()) == 300
    assert report.double_paid == 0
    assert report.dangling_holds == 0
    assert report.conserved and report.mismatches == []
    assert len(report.workers_seen) == 2
    assert min(report.workers_seen.values()) >= 20, report.workers_seen
