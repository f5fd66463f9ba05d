"""The sandbox bank's channel: reports stay available until acknowledged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from payouts.devstack.demo import sandbox_iban
from payouts.rails.bank.iso20022 import Batch, CreditTransfer, Party, build_pain001
from payouts.rails.bank.reports import parse_report
from payouts.rails.bank.sandbox import BankTiming, SandboxBank
from payouts.rails.sandbox_db import SandboxDB

T0 = datetime(2026, 11, 25, 10, tzinfo=UTC)
DEBTOR = Party("Payouts", "GB33BUKB20201555555555", "BUKBGB22")


def bank(tmp_path: Path) -> SandboxBank:
    return SandboxBank(
        SandboxDB(tmp_path / "s.sqlite3"),
        account=DEBTOR,
        timing=BankTiming(ack_seconds=5, book_seconds=60, return_seconds=600),
    )


def file_of(*ibans: str) -> bytes:
    return build_pain001(
        Batch(
            message_id="B1",
            created_at=T0,
            currency="USD",
            debtor=DEBTOR,
            execution_date=date(2026, 11, 25),
            transfers=tuple(
                CreditTransfer(f"PO{i}", 10_000_000, Party("P", iban), "x")
                for i, iban in enumerate(ibans)
            ),
        )
    )


def test_reports_come_again_until_acknowledged(tmp_path: Path) -> None:
    """A customer that crashes after fetching gets the same report again; after it
    acknowledges, the report is gone (and the next ones come in order)."""
    b = bank(tmp_path)
    b.submit("B1.xml", file_of(sandbox_iban("0404"), sandbox_iban("1234")), T0)
    assert b.fetch(T0) == []  # nothing due yet
    first = b.fetch(T0 + timedelta(seconds=5))
    assert [n for n, _ in first] == ["pain002-000001.xml"]
    assert b.fetch(T0 + timedelta(seconds=6)) == first  # not acknowledged: offered again
    b.acknowledge([n for n, _ in first])
    later = b.fetch(T0 + timedelta(seconds=61))
    assert [n for n, _ in later] == ["camt054-000002.xml"]
    report = parse_report(later[0][1])
    assert [(i.end_to_end_id, i.kind) for i in report.items] == [("PO1", "booked")]


def test_a_file_is_taken_once(tmp_path: Path) -> None:
    """Submitting the same file twice (a retry) books it once."""
    b = bank(tmp_path)
    xml = file_of(sandbox_iban("1234"))
    b.submit("B1.xml", xml, T0)
    b.submit("B1.xml", xml, T0 + timedelta(seconds=1))
    assert len(b.statement()) == 1
