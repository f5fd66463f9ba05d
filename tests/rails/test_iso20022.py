"""ISO 20022 files: pain.001 out (validated against the official XSD), pain.002/camt.054 in."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payouts.rails.bank.iso20022 import (
    BankFileInvalid,
    Batch,
    CreditTransfer,
    Party,
    amount_text,
    build_pain001,
    read_pain001,
    validate_pain001,
)
from payouts.rails.bank.reports import Entry, build_camt054, build_pain002, parse_report

DEBTOR = Party("Payouts Platform Ltd", "GB33BUKB20201555555555", "BUKBGB22")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def batch(currency: str, *amounts: int) -> Batch:
    return Batch(
        message_id=f"B-{currency}-1",
        created_at=NOW,
        currency=currency,
        debtor=DEBTOR,
        execution_date=date(2026, 11, 25),
        transfers=tuple(
            CreditTransfer(
                f"PO{i:06d}",
                a,
                Party(
                    f"Payee {i} Émile", "DE89370400440532013000", "COBADEFFXXX" if i % 2 else None
                ),
                f"Payout {i}",
            )
            for i, a in enumerate(amounts)
        ),
    )


@pytest.mark.parametrize(
    ("currency", "amounts", "total"),
    [
        ("USD", (12_340_000, 10_000_000), "22.34"),
        ("KRW", (10_000_000_000,), "10000"),
        ("BHD", (4_001_000, 1_000), "4.002"),
        ("EUR", (5_000_000,) * 3, "15.00"),
    ],
)
def test_pain001_validates_against_the_iso_schema(
    currency: str, amounts: tuple[int, ...], total: str
) -> None:
    """Files for 0-, 2- and 3-decimal currencies validate, with the right control sum."""
    xml = build_pain001(batch(currency, *amounts))
    validate_pain001(xml)
    assert f"<CtrlSum>{total}</CtrlSum>".encode() in xml
    msg, cur, transfers = read_pain001(xml)
    assert (msg, cur, [t.amount for t in transfers]) == (f"B-{currency}-1", currency, list(amounts))


def test_schema_violations_are_reported_with_lines() -> None:
    """A file that breaks the XSD is refused with the line, the element and the rule, and
    never the value (lxml's own message quotes it: a name, an account number)."""
    xml = build_pain001(batch("USD", 1_000_000)).replace(
        b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>Secret Name</NbOfTxs>", 1
    )
    with pytest.raises(
        BankFileInvalid, match=r"line \d+ GrpHdr/NbOfTxs: SCHEMAV_CVC_PATTERN"
    ) as exc:
        validate_pain001(xml)
    assert "Secret" not in str(exc.value)
    with pytest.raises(BankFileInvalid, match="not well-formed"):
        validate_pain001(b"<Document>")


def test_sub_minor_amounts_cannot_be_written() -> None:
    """A payout must be whole minor units; a fraction of a cent never reaches a file."""
    with pytest.raises(BankFileInvalid, match="not whole USD minor units"):
        amount_text(1_234_567, "USD")
    with pytest.raises(BankFileInvalid, match="at least one transfer"):
        build_pain001(batch("USD"))


@given(
    st.lists(
        st.integers(min_value=1, max_value=10**12).map(lambda c: c * 10_000),
        min_size=1,
        max_size=20,
    )
)
@settings(max_examples=40, deadline=None)
def test_any_batch_validates_and_reads_back(amounts: list[int]) -> None:
    """Random USD batches always validate and read back to the same amounts."""
    xml = build_pain001(batch("USD", *amounts))
    validate_pain001(xml)
    assert [t.amount for t in read_pain001(xml)[2]] == amounts


def test_status_report_round_trip() -> None:
    """pain.002 tells accepted from rejected items, with ISO reason codes."""
    xml = build_pain002(
        message_id="S1",
        created_at=NOW,
        original_message_id="B-USD-1",
        rejected={"PO2": "AC04", "PO3": "AM04"},
        accepted=["PO1"],
    )
    report = parse_report(xml)
    assert (report.kind, report.original_message_id, report.file_status) == (
        "pain.002",
        "B-USD-1",
        "PART",
    )
    assert {(i.end_to_end_id, i.kind, i.code) for i in report.items} == {
        ("PO1", "accepted", ""),
        ("PO2", "rejected", "AC04"),
        ("PO3", "rejected", "AM04"),
    }
    assert (
        next(i for i in report.items if i.code == "AM04").reason == "insufficient funds at the bank"
    )


def test_notification_round_trip_with_a_return() -> None:
    """camt.054: a debit books a transfer, a credit with return info returns it."""
    xml = build_camt054(
        message_id="N1",
        created_at=NOW,
        account=DEBTOR,
        currency="BHD",
        booked_on=date(2026, 11, 26),
        entries=[Entry("PO1", 4_001_000), Entry("PO2", 1_000, "AC06")],
    )
    items = parse_report(xml).items
    assert items[0].kind == "booked" and items[0].amount == 4_001_000
    assert items[1].kind == "returned" and items[1].code == "AC06"
    assert items[1].reason == "blocked account" and items[1].booked_on == date(2026, 11, 26)


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "12,50", "1e999999"])
def test_a_report_amount_that_is_not_a_number_is_refused_by_name(amount: str) -> None:
    """`<Amt>NaN</Amt>` is a bank file we cannot read (quarantined), not a crash retried
    forever."""
    xml = build_camt054(
        message_id="C-1", created_at=NOW, account=DEBTOR, currency="USD",
        booked_on=date(2026, 11, 26), entries=[Entry("PO000001", 1_000_000)],
    ).replace(b">1.00</Amt>", f">{amount}</Amt>".encode())  # fmt: skip
    assert amount.encode() in xml
    with pytest.raises(BankFileInvalid, match="bank report has a value it cannot read"):
        parse_report(xml)


def test_unknown_report_is_refused() -> None:
    """Anything but pain.002 or camt.054 is refused by name."""
    with pytest.raises(BankFileInvalid, match="unknown bank report"):
        parse_report(b"<Document xmlns='urn:x'><Other/></Document>")
