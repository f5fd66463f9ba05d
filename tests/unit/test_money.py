"""Money: parsing decimal strings into micro-units, formatting back, minor units."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.money import (
    INT64_MAX,
    format_micros,
    get_currency,
    parse_amount,
    parse_micros,
    split_minor,
)
from payouts.errors import InvalidAmount, UnknownCurrency


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("0.000125", 125),
        ("0.000001", 1),
        ("1", 1_000_000),
        ("1.5", 1_500_000),
        ("12.345678", 12_345_678),
        ("  7.25 ", 7_250_000),
        ("0", 0),
        ("0.0", 0),
        ("007.10", 7_100_000),
        ("+3", 3_000_000),
        ("1.1000000000", 1_100_000),  # trailing zeros beyond micros lose nothing
        ("9223372036854.775807", INT64_MAX),
    ],
)
def test_parse_micros_accepts_plain_decimals(text: str, micros: int) -> None:
    """Plain decimal strings parse exactly into micro-units."""
    assert parse_micros(text) == micros


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("0.0000001", "7 decimal places; the ledger keeps at most 6"),
        ("1.0000015", "7 decimal places"),
        ("-1", "is negative"),
        ("-0.000001", "is negative"),
        ("NaN", "NaN and Infinity are not amounts"),
        ("nan", "NaN and Infinity are not amounts"),
        ("Infinity", "NaN and Infinity are not amounts"),
        ("-inf", "NaN and Infinity are not amounts"),
        ("1e-6", "exponent notation"),
        ("1E3", "exponent notation"),
        ("2.5e2", "exponent notation"),
        ("9223372036854.775808", "beyond the largest amount"),
        ("99999999999999999999999", "beyond the largest amount"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("1,000.00", "not a plain decimal"),
        ("1.", "not a plain decimal"),
        (".5", "not a plain decimal"),
        ("0x10", "not a plain decimal"),
        ("١٢", "not a plain decimal"),  # Arabic-Indic digits are not ASCII digits
        ("1_000", "not a plain decimal"),
        ("12 USD", "not a plain decimal"),
    ],
)
def test_parse_micros_refuses_with_field_and_rule(text: str, rule: str) -> None:
    """Each refused amount names the field, and the rule it breaks."""
    with pytest.raises(InvalidAmount) as info:
        parse_micros(text, field="amount")
    assert info.value.message.startswith("amount: ")
    assert rule in info.value.message
    assert info.value.field == "amount"


def test_parse_micros_zero_can_be_refused() -> None:
    """allow_zero=False refuses zero with its own rule."""
    with pytest.raises(InvalidAmount, match="greater than zero"):
        parse_micros("0.000", allow_zero=False)


def test_parse_micros_refuses_non_strings() -> None:
    """A float is never an amount, not even 0.5."""
    with pytest.raises(InvalidAmount, match="expected a decimal string, got float"):
        parse_micros(0.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "minor"),
    [("USD", 2), ("EUR", 2), ("GBP", 2), ("KRW", 0), ("JPY", 0), ("BHD", 3), ("KWD", 3)],
)
def test_currency_minor_units_follow_iso_4217(code: str, minor: int) -> None:
    """The currency table carries the ISO 4217 minor units."""
    cur = get_currency(code)
    assert cur.minor_units == minor
    assert cur.minor_unit_micros == 10 ** (6 - minor)


def test_unknown_currency_is_named() -> None:
    """Unknown codes are refused naming the field and the value."""
    with pytest.raises(UnknownCurrency, match="currency: 'XYZ' is not a supported ISO 4217"):
        get_currency("XYZ")
    assert get_currency(" usd ").code == "USD"


@pytest.mark.parametrize(
    ("text", "currency", "ok"),
    [
        ("1.25", "USD", True),
        ("1.255", "USD", False),
        ("100", "KRW", True),
        ("100.5", "KRW", False),
        ("1.255", "BHD", True),
        ("1.2555", "BHD", False),
    ],
)
def test_parse_amount_whole_minor_units(text: str, currency: str, ok: bool) -> None:
    """whole_minor_units refuses amounts finer than the currency's minor unit."""
    if ok:
        assert parse_amount(text, currency, whole_minor_units=True) > 0
    else:
        with pytest.raises(InvalidAmount, match="not a whole number of .* minor units"):
            parse_amount(text, currency, whole_minor_units=True)


@pytest.mark.parametrize(
    ("micros", "currency", "payable", "rest"),
    [
        (12_345_678, "USD", 12_340_000, 5_678),
        (12_345_678, "KRW", 12_000_000, 345_678),
        (12_345_678, "BHD", 12_345_000, 678),
        (10_000, "USD", 10_000, 0),
        (9_999, "USD", 0, 9_999),
    ],
)
def test_split_minor_keeps_the_remainder(
    micros: int, currency: str, payable: int, rest: int
) -> None:
    """A payout is whole minor units; the sub-minor remainder is kept, never rounded away."""
    assert split_minor(micros, currency) == (payable, rest)


@pytest.mark.parametrize(
    ("micros", "currency", "text"),
    [
        (1_500_000, "USD", "1.50"),
        (125, "USD", "0.000125"),
        (0, "USD", "0.00"),
        (1_000_000_000, "KRW", "1000"),
        (1_000_500_000, "KRW", "1000.5"),
        (2_000_000, "BHD", "2.000"),
        (-1_250_000, "USD", "-1.25"),
        (1, None, "0.000001"),
    ],
)
def test_format_micros(micros: int, currency: str | None, text: str) -> None:
    """Formatting shows at least the minor digits and never drops a micro."""
    assert format_micros(micros, currency) == text


@given(st.integers(min_value=0, max_value=INT64_MAX))
def test_format_then_parse_round_trips(micros: int) -> None:
    """Every int64 amount survives formatting and parsing unchanged."""
    assert parse_micros(format_micros(micros, "USD")) == micros


@pytest.mark.parametrize(
    ("text", "micros"),
    [("0" * 5000 + "1", 1_000_000), ("0" * 5000 + "1.5", 1_500_000), ("0" * 5000, 0)],
)
def test_leading_zeros_of_any_length_are_still_the_number(text: str, micros: int) -> None:
    """Python's int() refuses strings over 4,300 digits; zeros in front do not count."""
    assert parse_micros(text) == micros


def test_a_huge_amount_is_refused_by_name_and_quoted_short() -> None:
    with pytest.raises(InvalidAmount, match=r"^amount: '0{40}…' is beyond") as exc:
        parse_micros("0" * 5000 + "1" + "0" * 30)
    assert len(str(exc.value)) < 200


@given(st.text(max_size=6000))
def test_any_text_parses_or_is_refused_as_an_amount(text: str) -> None:
    why = ""
    try:
        parse_micros(text)
    except InvalidAmount as exc:
        why = str(exc)
    assert why == "" or why.startswith("amount: ")
