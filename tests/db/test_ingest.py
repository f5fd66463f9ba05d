"""Ingesting earnings files: CSV and JSON Lines, strict refusal, rejects files, re-runs."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from payouts.errors import IngestRefused
from payouts.ledger import Ledger
from payouts.ledger.ingest import ingest_file


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOOD_CSV = (
    "event_id,user_id,amount,currency,earned_at\n"
    "e1,alice,0.000125,USD,2026-11-01T10:00:00Z\n"
    "e2,alice,0.5,USD,2026-11-01T10:00:00+02:00\n"
    "e3,bob,150,krw,2026-11-02T00:00:00Z\n"
)


def test_csv_with_header_is_credited(ledger: Ledger, tmp_path: Path) -> None:
    """Every row of a good CSV is credited; amounts are exact to the micro."""
    report = ingest_file(ledger, write(tmp_path / "e.csv", GOOD_CSV))
    assert (report.rows, report.credited, report.rejected) == (3, 3, [])
    assert report.credited_amount == {"USD": 500_125, "KRW": 150_000_000}
    assert ledger.balance("alice", "USD").available == 500_125
    assert ledger.balance("bob", "KRW").available == 150_000_000


def test_reingest_is_harmless(ledger: Ledger, tmp_path: Path) -> None:
    """The same file twice credits once; the second run counts duplicates."""
    path = write(tmp_path / "e.csv", GOOD_CSV)
    ingest_file(ledger, path)
    again = ingest_file(ledger, path)
    assert (again.credited, again.duplicates) == (0, 3)
    assert ledger.balance("alice", "USD").available == 500_125


def test_jsonl_and_gzip(ledger: Ledger, tmp_path: Path) -> None:
    """JSON Lines (numbers kept exact) and gzip-compressed files are read."""
    lines = [
        {"event_id": "j1", "user_id": "carol", "amount": 0.000125, "currency": "EUR"},
        {
            "event_id": "j2",
            "user_id": "carol",
            "amount": "2.5",
            "currency": "EUR",
            "earned_at": "2026-10-01T00:00:00Z",
        },
    ]
    path = tmp_path / "e.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(x) for x in lines) + "\n\n")
    report = ingest_file(ledger, path)
    assert report.credited == 2
    bal = ledger.balance("carol", "EUR")
    assert bal.available + bal.pending == 2_500_125
    assert bal.pending == 125  # no earned_at: earned now, still in the maturation hold


def test_csv_without_header_and_earned_at(ledger: Ledger, tmp_path: Path) -> None:
    """Four positional columns are accepted; a missing time means now (pending)."""
    report = ingest_file(ledger, write(tmp_path / "e.csv", "x1,dave,1.25,USD\nx2,dave,1,USD\n"))
    assert report.credited == 2
    assert ledger.balance("dave", "USD").pending == 2_250_000
    assert ingest_file(ledger, tmp_path / "e.csv").duplicates == 2


BAD_CSV = (
    "event_id,user_id,amount,currency,earned_at\n"
    "b1,alice,1.00,USD,2026-11-01T10:00:00Z\n"
    "b2,alice,1e-3,USD,2026-11-01T10:00:00Z\n"
    "b3,bob,0.5,XXX,2026-11-01T10:00:00Z\n"
    "b4,bob,0.5,USD,2026-11-01T10:00:00\n"
    "b5,bo b,0.5,USD,2026-11-01T10:00:00Z\n"
    "b6,bob,-2,USD,2026-11-01T10:00:00Z\n"
    "b7,bob,0.0000001,USD,2026-11-01T10:00:00Z\n"
    "b8,bob,1.00,USD\n"
    "b9,bob,2.00,USD,2030-01-01T00:00:00Z\n"
    "b10,bob,3.00,USD,2026-11-01T10:00:00Z\n"
)


def test_a_bad_row_refuses_the_whole_file(ledger: Ledger, tmp_path: Path) -> None:
    """By default one bad row refuses the file with line numbers and reasons; nothing written."""
    with pytest.raises(IngestRefused) as info:
        ingest_file(ledger, write(tmp_path / "bad.csv", BAD_CSV))
    msg = info.value.message
    assert "refused, nothing written" in msg
    for expected in (
        "line 3: amount: '1e-3' uses exponent notation",
        "line 4: currency: 'XXX' is not a supported ISO 4217",
        "line 5: earned_at: '2026-11-01T10:00:00' has no timezone",
        "line 6: user_id: 'bo b' must be",
        "line 7: amount: '-2' is negative",
        "line 8: amount: '0.0000001' has 7 decimal places",
        "line 9: expected 5 columns, found 4",
        "line 10: earned_at: '2030-01-01T00:00:00Z' is in the future",
    ):
        assert expected in msg
    assert ledger.totals("USD").earned == 0


def test_rejects_file_takes_the_bad_rows(ledger: Ledger, tmp_path: Path) -> None:
    """--rejects credits the good rows and writes each bad one with line and reason."""
    rejects = tmp_path / "rejects.csv"
    report = ingest_file(ledger, write(tmp_path / "bad.csv", BAD_CSV), rejects=rejects)
    assert report.credited == 2
    assert ledger.balance("alice", "USD").available == 1_000_000
    assert ledger.balance("bob", "USD").available == 3_000_000
    with rejects.open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["line"] for r in rows] == ["3", "4", "5", "6", "7", "8", "9", "10"]
    assert rows[0]["reason"].startswith("amount: '1e-3' uses exponent notation")
    assert rows[0]["raw"] == "b2,alice,1e-3,USD,2026-11-01T10:00:00Z"


@pytest.mark.parametrize("how", ["same path", "relative path", "symlink"])
def test_the_rejects_file_is_never_the_input(ledger: Ledger, tmp_path: Path, how: str) -> None:
    """`--rejects` naming the input (by any name) is refused before anything is read or
    written: the input is intact and nothing is credited."""
    source = write(tmp_path / "bad.csv", BAD_CSV)
    rejects = {
        "same path": source,
        "relative path": tmp_path / "sub" / ".." / "bad.csv",
        "symlink": tmp_path / "link.csv",
    }[how]
    if how == "symlink":
        rejects.symlink_to(source)
    (tmp_path / "sub").mkdir()
    with pytest.raises(IngestRefused, match=r"^rejects: .* is the input file"):
        ingest_file(ledger, source, rejects=rejects)
    assert source.read_text(encoding="utf-8") == BAD_CSV
    assert ledger.totals("USD").earned == 0


def test_rejects_cells_cannot_run_as_formulas(ledger: Ledger, tmp_path: Path) -> None:
    """A rejected row that a spreadsheet would run (`=HYPERLINK(...)`, `@SUM`, `+`, `-`)
    is written with a leading apostrophe: shown, never evaluated."""
    rows = (
        "event_id,user_id,amount,currency,earned_at\n"
        '"=HYPERLINK(""http://evil.example"")",alice,x,USD,2026-11-01T10:00:00Z\n'
        "@SUM(A1),alice,-1,USD,2026-11-01T10:00:00Z\n"
        "ok,alice,1,USD,2026-11-01T10:00:00Z\n"
    )
    rejects = tmp_path / "rejects.csv"
    ingest_file(ledger, write(tmp_path / "evil.csv", rows), rejects=rejects)
    with rejects.open() as fh:
        found = list(csv.DictReader(fh))
    assert [r["raw"][:2] for r in found] == ["'=", "'@"]
    assert all(not r["reason"].startswith(("=", "+", "-", "@")) for r in found)
    assert not list(tmp_path.glob(".*.partial"))


def test_conflicting_event_id(ledger: Ledger, tmp_path: Path) -> None:
    """An event id already credited with other content refuses the file, or is set aside."""
    ingest_file(ledger, write(tmp_path / "a.csv", GOOD_CSV))
    clash = write(tmp_path / "b.csv", "e1,alice,9.99,USD,2026-11-01T10:00:00Z\nn1,eve,1,USD,\n")
    with pytest.raises(IngestRefused, match="event_id 'e1': event_id was already credited"):
        ingest_file(ledger, clash)
    assert ledger.balance("eve", "USD").pending == 0
    report = ingest_file(ledger, clash, rejects=tmp_path / "r.csv")
    assert report.credited == 1 and len(report.rejected) == 1
    assert "e1" in (tmp_path / "r.csv").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("event_id,user_id,amount\n", "header missing column(s) currency"),
        ("event_id,user_id,amount,currency,colour\n", "unknown column(s) colour"),
    ],
)
def test_bad_header_is_refused(ledger: Ledger, tmp_path: Path, content: str, message: str) -> None:
    """A header that does not fit the format is refused before any row."""
    with pytest.raises(IngestRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        ingest_file(ledger, write(tmp_path / "h.csv", content))


def test_bad_json_lines(ledger: Ledger, tmp_path: Path) -> None:
    """Broken JSON, non-objects and unknown keys are named per line."""
    text = (
        '{"event_id": "a", "user_id": "u", "amount": "1", "currency": "USD"}\n{oops\n[1]\n'
        '{"event_id": "b", "user_id": "u", "amount": "1", "currency": "USD", "x": 1}\n'
    )
    with pytest.raises(IngestRefused) as info:
        ingest_file(ledger, write(tmp_path / "e.jsonl", text))
    assert "line 2: not valid JSON" in info.value.message
    assert "line 3: expected a JSON object per line" in info.value.message
    assert "line 4: unknown field(s): x" in info.value.message


def test_missing_file(ledger: Ledger, tmp_path: Path) -> None:
    """A path that is not a file is refused by name."""
    with pytest.raises(IngestRefused, match="does not exist"):
        ingest_file(ledger, tmp_path / "nope.csv")
