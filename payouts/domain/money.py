"""Money as integer micro-units.

Every amount in the ledger, the policy and across Temporal is a Python `int` counting
micro-units: 10^-6 of the currency's major unit. A payout is a whole number of the
currency's minor unit (USD cents, KRW won, BHD fils); `split_minor` cuts an amount into
the payable part and the sub-minor remainder that stays in the payee's balance.

Decimal strings are the only text form: "0.000125" parses to 125 micros. Exponents,
NaN/Infinity, more than six significant decimals and values outside int64 are refused
with a message that names the field, the value and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from payouts.errors import InvalidAmount, UnknownCurrency

MICRO_DECIMALS = 6
MICROS_PER_UNIT = 10**MICRO_DECIMALS
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Currency:
    code: str
    minor_units: int
    name: str

    @property
    def minor_unit_micros(self) -> int:
        """Micro-units in one minor unit (10_000 for USD cents, 1_000_000 for KRW)."""
        return int(10 ** (MICRO_DECIMALS - self.minor_units))


# ISO 4217 minor units (the "exponent" column of the ISO list, as published by SIX).
# Only currencies whose exponent is 0, 2 or 3 exist in ISO 4217 today; all fit micros.
_ISO_4217: tuple[tuple[str, int, str], ...] = (
    ("AED", 2, "UAE Dirham"),
    ("ARS", 2, "Argentine Peso"),
    ("AUD", 2, "Australian Dollar"),
    ("BHD", 3, "Bahraini Dinar"),
    ("BRL", 2, "Brazilian Real"),
    ("CAD", 2, "Canadian Dollar"),
    ("CHF", 2, "Swiss Franc"),
    ("CLP", 0, "Chilean Peso"),
    ("CNY", 2, "Yuan Renminbi"),
    ("COP", 2, "Colombian Peso"),
    ("CZK", 2, "Czech Koruna"),
    ("DKK", 2, "Danish Krone"),
    ("EGP", 2, "Egyptian Pound"),
    ("EUR", 2, "Euro"),
    ("GBP", 2, "Pound Sterling"),
    ("HKD", 2, "Hong Kong Dollar"),
    ("HUF", 2, "Forint"),
    ("IDR", 2, "Rupiah"),
    ("ILS", 2, "New Israeli Sheqel"),
    ("INR", 2, "Indian Rupee"),
    ("IQD", 3, "Iraqi Dinar"),
    ("ISK", 0, "Iceland Krona"),
    ("JOD", 3, "Jordanian Dinar"),
    ("JPY", 0, "Yen"),
    ("KES", 2, "Kenyan Shilling"),
    ("KRW", 0, "Won"),
    ("KWD", 3, "Kuwaiti Dinar"),
    ("LYD", 3, "Libyan Dinar"),
    ("MXN", 2, "Mexican Peso"),
    ("MYR", 2, "Malaysian Ringgit"),
    ("NGN", 2, "Naira"),
    ("NOK", 2, "Norwegian Krone"),
    ("NZD", 2, "New Zealand Dollar"),
    ("OMR", 3, "Rial Omani"),
    ("PHP", 2, "Philippine Peso"),
    ("PKR", 2, "Pakistan Rupee"),
    ("PLN", 2, "Zloty"),
    ("RON", 2, "Romanian Leu"),
    ("SAR", 2, "Saudi Riyal"),
    ("SEK", 2, "Swedish Krona"),
    ("SGD", 2, "Singapore Dollar"),
    ("THB", 2, "Baht"),
    ("TND", 3, "Tunisian Dinar"),
    ("TRY", 2, "Turkish Lira"),
    ("TWD", 2, "New Taiwan Dollar"),
    ("UAH", 2, "Hryvnia"),
    ("UGX", 0, "Uganda Shilling"),
    ("USD", 2, "US Dollar"),
    ("VND", 0, "Dong"),
    ("XAF", 0, "CFA Franc BEAC"),
    ("XOF", 0, "CFA Franc BCEAO"),
    ("ZAR", 2, "Rand"),
)

CURRENCIES: dict[str, Currency] = {
    code: Currency(code, minor, name) for code, minor, name in _ISO_4217
}


def get_currency(code: str, *, field: str = "currency") -> Currency:
    """The currency for an ISO 4217 code (case-insensitive), or `UnknownCurrency`."""
    if not isinstance(code, str):
        raise UnknownCurrency(f"{field}: expected an ISO 4217 code, got {type(code).__name__}")
    found = CURRENCIES.get(code.strip().upper())
    if found is None:
        raise UnknownCurrency(
            f"{field}: {code!r} is not a supported ISO 4217 currency code",
            field=field,
        )
    return found


def normalize_currency(code: str, *, field: str = "currency") -> str:
    return get_currency(code, field=field).code


_DECIMAL = re.compile(r"(?P<sign>[+-]?)(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?", re.ASCII)
_SPECIAL = re.compile(r"[+-]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_EXPONENT = re.compile(r"[+-]?[0-9]*\.?[0-9]*[eE][+-]?[0-9]+", re.ASCII)


def parse_micros(
    text: str,
    *,
    field: str = "amount",
    allow_negative: bool = False,
    allow_zero: bool = True,
) -> int:
    """Parse a plain decimal string of major units into micro-units.

    >>> parse_micros("0.000125")
    125
    """
    if not isinstance(text, str):
        raise InvalidAmount(
            f"{field}: expected a decimal string, got {type(text).__name__}", field=field
        )
    value = text.strip()
    match = _DECIMAL.fullmatch(value)
    if match is None:
        if not value:
            raise InvalidAmount(f"{field}: must not be empty", field=field)
        if _SPECIAL.fullmatch(value):
            raise InvalidAmount(
                f"{field}: {_shown(text)} is not a number; NaN and Infinity are not amounts",
                field=field,
            )
        if _EXPONENT.fullmatch(value):
            raise InvalidAmount(
                f"{field}: {_shown(text)} uses exponent notation; "
                "write a plain decimal such as 0.000125",
                field=field,
            )
        raise InvalidAmount(
            f"{field}: {_shown(text)} is not a plain decimal number (digits, optional '.' and "
            "up to 6 decimals)",
            field=field,
        )
    frac = match["frac"] or ""
    significant = frac.rstrip("0")
    if len(significant) > MICRO_DECIMALS:
        raise InvalidAmount(
            f"{field}: {_shown(text)} has {len(significant)} decimal places; "
            f"the ledger keeps at most {MICRO_DECIMALS} (micro-units)",
            field=field,
        )
    int_part = match["int"]
    # Refuse absurd lengths before building a huge int.
    if len(int_part.lstrip("0")) > 19:
        raise _too_large(text, field)
    # (leading zeros stripped first: "000...1" is 1, and int() refuses over 4,300 digits)
    whole = int(int_part.lstrip("0") or "0")
    micros = whole * MICROS_PER_UNIT + int(significant.ljust(MICRO_DECIMALS, "0"))
    if match["sign"] == "-":
        micros = -micros
    return check_micros(
        micros, field=field, allow_negative=allow_negative, allow_zero=allow_zero, shown=text
    )


def check_micros(
    micros: int,
    *,
    field: str = "amount",
    allow_negative: bool = False,
    allow_zero: bool = True,
    shown: str | None = None,
) -> int:
    """Validate an integer micro amount: int (not bool/float), sign rule, int64 range."""
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise InvalidAmount(
            f"{field}: expected an integer number of micro-units, got {type(micros).__name__}",
            field=field,
        )
    text = shown if shown is not None else str(micros)
    if abs(micros) > INT64_MAX:
        raise _too_large(text, field)
    if micros < 0 and not allow_negative:
        raise InvalidAmount(
            f"{field}: {_shown(text)} is negative; amounts must not be negative", field=field
        )
    if micros == 0 and not allow_zero:
        raise InvalidAmount(f"{field}: must be greater than zero", field=field)
    return micros


def _shown(text: object) -> str:
    """A caller's amount as quoted in an error: clipped, so a huge one stays readable."""
    raw = str(text)
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def _too_large(text: str, field: str) -> InvalidAmount:
    return InvalidAmount(
        f"{field}: {_shown(text)} is beyond the largest amount the ledger holds "
        f"({format_micros(INT64_MAX)})",
        field=field,
    )


def parse_amount(
    text: str,
    currency: str,
    *,
    field: str = "amount",
    whole_minor_units: bool = False,
    allow_zero: bool = True,
) -> int:
    """Parse an amount in `currency`; optionally require a whole number of minor units."""
    cur = get_currency(currency)
    micros = parse_micros(text, field=field, allow_zero=allow_zero)
    if whole_minor_units and micros % cur.minor_unit_micros:
        raise InvalidAmount(
            f"{field}: {_shown(text)} is not a whole number of {cur.code} minor units "
            f"({cur.minor_units} decimals)",
            field=field,
        )
    return micros


def split_minor(micros: int, currency: str) -> tuple[int, int]:
    """Split a non-negative amount into (payable whole minor units, sub-minor remainder)."""
    unit = get_currency(currency).minor_unit_micros
    remainder = micros % unit
    return micros - remainder, remainder


def format_micros(micros: int, currency: str | None = None) -> str:
    """Decimal text for display: at least the currency's minor digits, never losing micros.

    format_micros(1_500_000, "USD") == "1.50"; format_micros(125, "USD") == "0.000125";
    format_micros(1_000_000_000, "KRW") == "1000".
    """
    min_decimals = get_currency(currency).minor_units if currency else 0
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_UNIT)
    digits = f"{frac:06d}".rstrip("0")
    if len(digits) < min_decimals:
        digits = digits.ljust(min_decimals, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def format_money(micros: int, currency: str) -> str:
    return f"{format_micros(micros, currency)} {currency}"


def _decimal_string_only(value: Any, info: ValidationInfo) -> Any:
    """Policy files write amounts as decimal strings; in transit they are int micros."""
    from_file = isinstance(info.context, dict) and info.context.get("from_file", False)
    if not from_file and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return parse_micros(value, field="value")
        except InvalidAmount as exc:
            raise PydanticCustomError("amount", exc.message.removeprefix("value: ")) from None
    if isinstance(value, bool | float):
        raise PydanticCustomError(
            "amount",
            'must be a decimal string such as "5.00" (floats lose precision; '
            "integers would be ambiguous)",
        )
    if isinstance(value, int):
        raise PydanticCustomError(
            "amount", 'must be a decimal string such as "5.00", not a bare integer'
        )
    return value


DecimalAmount = Annotated[int, BeforeValidator(_decimal_string_only)]
"""Micros; in a policy file (validation context `from_file`) a decimal string of major units."""
