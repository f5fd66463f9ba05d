"""Reversal rows in an earnings file: applied after the file's earnings, in the same
transaction; refused rows named by line; re-runs harmless."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payouts.errors import IngestRefused
from payouts.ledger import Ledger
from payouts.ledger.ingest import ingest_file

HEADER = "event_id,user_id,amount,currency,earned_at,reverses,reason\n"
FILE = (
    HEADER + "e1,ann,5.00,USD,2026-11-01T10:00:00Z,,\n"
    "e2,ann,1.00,USD,,,\n"
    "r1,ann,2.00,USD,,e1,requester rejected the work\n"
    "r2,ann,,USD,,e2,fraud\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_reverses_its_own_and_older_earnings(ledger: Ledger, tmp_path: Path) -> None:
    """Reversal rows take back part of a matured earning (from available) and all of a
    pending one (from pending), in the file that credited them; a re-run changes nothing."""
    path = write(tmp_path / "e.csv", FILE)
    report = ingest_file(ledger, path)
    assert (report.credited, report.reversed, report.rejected) == (2, 2, [])
    assert report.reversed_amount == {"USD": 3_000_000}
    bal = ledger.balance("ann", "USD")
    assert (bal.available, bal.pending, bal.owed) == (3_000_000, 0, 0)
    again = ingest_file(ledger, path)
    assert (again.credited, again.reversed, again.duplicates) == (0, 0, 4)
    assert ledger.balance("ann", "USD") == bal
    assert ledger.totals("USD").reversed == 3_000_000 and ledger.audit() == []


def test_an_over_reversal_refuses_the_whole_file_naming_its_line(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Strict: a row reversing more than is left refuses the file (line, event, amounts)
    and writes nothing, not even the file's earnings."""
    path = write(tmp_path / "e.csv", FILE + "r3,ann,4.00,USD,,e1,again\n")
    with pytest.raises(IngestRefused) as refused:
        ingest_file(ledger, path)
    text = refused.value.message
    assert "line 6" in text and "'e1'" in text and "3.00 USD left" in text
    assert ledger.balance("ann", "USD").net == 0 and ledger.totals("USD").earned == 0


def test_with_a_rejects_file_the_good_rows_go_in(ledger: Ledger, tmp_path: Path) -> None:
    """With --rejects, an over-reversal and a reversal of an unknown earning are set aside
    with their lines; the rest is applied."""
    text = FILE + "r3,ann,4.00,USD,,e1,again\nr4,ann,1.00,USD,,nope,typo\n"
    rejects = tmp_path / "rejects.csv"
    report = ingest_file(ledger, write(tmp_path / "e.csv", text), rejects=rejects)
    assert report.reversed == 2
    assert [r.line for r in report.rejected] == [6, 7]
    assert "no earning was credited" in report.rejected[1].reason
    assert "r4,ann" in rejects.read_text()


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("r9,ann,1.00,USD,2026-11-01T00:00:00Z,e1,x", "earned_at"),
        ("r9,ann,1.00,USD,,e1,", "reason"),
        ("e9,ann,1.00,USD,,,a reason", "reason"),
        ("e9,ann,,USD,,,", "amount"),
        ("r9,bob,1.00,USD,,e1,not his", "event_id"),
    ],
)
def test_a_bad_reversal_row_is_named(ledger: Ledger, tmp_path: Path, row: str, field: str) -> None:
    """A reversal row with a time, without a reason, a reason on an earning, an earning
    without an amount, or another payee's earning: refused naming the field, nothing
    written."""
    with pytest.raises(IngestRefused, match=field):
        ingest_file(ledger, write(tmp_path / "e.csv", FILE + row + "\n"))
    assert ledger.totals("USD").earned == 0


def test_json_lines_reverse_too(ledger: Ledger, tmp_path: Path) -> None:
    """JSON Lines rows take `reverses` and `reason` keys the same way."""
    rows = [
        {"event_id": "j1", "user_id": "cy", "amount": "2", "currency": "EUR",
         "earned_at": "2026-10-01T00:00:00Z"},
        {"event_id": "jr", "user_id": "cy", "amount": "0.5", "currency": "EUR",
         "reverses": "j1", "reason": "price adjusted"},
    ]  # fmt: skip
    path = write(tmp_path / "e.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    report = ingest_file(ledger, path)
    assert report.reversed == 1
    assert ledger.balance("cy", "EUR").available == 1_500_000


def test_a_reversal_id_used_twice_in_a_file_names_the_second_line(
    ledger: Ledger, tmp_path: Path
) -> None:
    """Two rows with one reversal id and different content: the first is applied, the
    second is set aside under its own line."""
    text = FILE + "r1,ann,1.00,USD,,e1,another reason\n"
    report = ingest_file(ledger, write(tmp_path / "e.csv", text), rejects=tmp_path / "r.csv")
    [rejected] = report.rejected
    assert rejected.line == 6 and "another reason" in rejected.raw
    assert ledger.balance("ann", "USD").available == 3_000_000
