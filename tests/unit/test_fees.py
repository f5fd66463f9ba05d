"""Fee quotes: rounding edges, caps, minimums, KRW and BHD, gift card combinations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.domain.fees import best_card_combination, quote, quote_with_rules
from payouts.domain.money import parse_micros
from payouts.domain.policy import CashoutRules, FeeSchedule, Policy, Rounding
from payouts.errors import InvalidAmount, QuoteRefused


def m(text: str) -> int:
    return parse_micros(text)


@pytest.mark.parametrize(
    ("method", "currency", "requested", "gross", "fee", "remainder"),
    [
        # bank USD: 0.25 + 0.50 %, min 0.25, max 5.00
        ("bank_transfer", "USD", "10.00", "10.00", "0.30", "0"),
        ("bank_transfer", "USD", "10.01", "10.01", "0.31", "0"),  # 0.30005 rounds up
        ("bank_transfer", "USD", "12.345678", "12.34", "0.32", "0.005678"),
        ("bank_transfer", "USD", "950.00", "950.00", "5.00", "0"),  # exactly the cap
        ("bank_transfer", "USD", "951.00", "951.00", "5.00", "0"),  # 5.005 capped
        ("bank_transfer", "USD", "10000.009999", "10000.00", "5.00", "0.009999"),
        # bank KRW (0 decimals): 300 + 0.50 %
        ("bank_transfer", "KRW", "10000", "10000", "350", "0"),
        ("bank_transfer", "KRW", "10001", "10001", "351", "0"),
        ("bank_transfer", "KRW", "10000.5", "10000", "350", "0.5"),
        ("bank_transfer", "KRW", "2000000", "2000000", "5000", "0"),  # 10,300 capped at 5,000
        # bank BHD (3 decimals): 0.100 + 0.50 %
        ("bank_transfer", "BHD", "4.000", "4.000", "0.120", "0"),
        ("bank_transfer", "BHD", "4.001", "4.001", "0.121", "0"),
        ("bank_transfer", "BHD", "4.0019", "4.001", "0.121", "0.0009"),
        # wallet JPY (0 decimals): 15 + 1.50 %
        ("wallet", "JPY", "500", "500", "23", "0"),  # 22.5 rounds up
        # gift card USD: face values, no fee
        ("gift_card", "USD", "37.99", "35.00", "0", "2.99"),
        ("gift_card", "USD", "5.00", "5.00", "0", "0"),
    ],
)
def test_quote_table(
    policy: Policy,
    method: str,
    currency: str,
    requested: str,
    gross: str,
    fee: str,
    remainder: str,
) -> None:
    """gross, fee, net and the remainder follow the policy to the micro-unit."""
    q = quote(policy, method, currency, m(requested))
    assert (q.gross, q.fee, q.remainder) == (m(gross), m(fee), m(remainder))
    assert q.net == q.gross - q.fee
    assert q.requested == q.gross + q.remainder
    assert q.policy_version == policy.version


def _rules(policy: Policy, rounding: Rounding, **fees: str | int) -> CashoutRules:
    base = policy.rules_for("bank_transfer", "USD")
    schedule = FeeSchedule.model_validate(
        context={"from_file": True},
        obj={
            "fixed": "0.00",
            "rate_bps": 50,
            "min_fee": "0.00",
            "max_fee": "100.00",
            "min_amount": "0.01",
            "max_amount": "10000.00",
        }
        | fees,
    )
    return base.model_copy(
        update={
            "fees": schedule,
            "rounding": rounding,
            "currency_rules": base.currency_rules.model_copy(update={"min_cashout": 10_000}),
        }
    )


@pytest.mark.parametrize(
    ("gross", "rounding", "fee"),
    [
        ("1.00", Rounding.CEILING, "0.01"),  # 0.005 -> up
        ("1.00", Rounding.HALF_UP, "0.01"),  # exactly half -> up
        ("0.99", Rounding.CEILING, "0.01"),  # 0.00495 -> up
        ("0.99", Rounding.HALF_UP, "0.00"),  # below half -> down
        ("2.00", Rounding.CEILING, "0.01"),  # exact: no rounding
        ("2.00", Rounding.HALF_UP, "0.01"),
        ("2.02", Rounding.CEILING, "0.02"),  # 0.0101 -> up
        ("2.02", Rounding.HALF_UP, "0.01"),
    ],
)
def test_rounding_rules_at_the_edges(
    policy: Policy, gross: str, rounding: Rounding, fee: str
) -> None:
    """ceiling rounds any fraction up; half_up rounds halves up and less than half down."""
    q = quote_with_rules(_rules(policy, rounding), m(gross))
    assert q.fee == m(fee)


def test_min_fee_applies_after_rounding(policy: Policy) -> None:
    """A tiny percentage fee is lifted to the minimum fee."""
    rules = _rules(policy, Rounding.CEILING, rate_bps=10, min_fee="0.50")
    assert quote_with_rules(rules, m("10.00")).fee == m("0.50")


@pytest.mark.parametrize(
    ("method", "currency", "requested", "reason"),
    [
        (
            "bank_transfer",
            "USD",
            "9.99",
            "below the minimum cash-out of 10.00 USD for bank_transfer",
        ),
        ("bank_transfer", "USD", "10.009999", None),  # pays 10.00: fine
        ("wallet", "USD", "4.999999", "below the minimum cash-out of 5.00 USD for wallet"),
        ("bank_transfer", "USD", "10000.01", "above the bank_transfer maximum of 10000.00 USD"),
        ("gift_card", "USD", "4.99", "below the minimum cash-out of 5.00 USD for gift_card"),
        ("bank_transfer", "KRW", "9999", "below the minimum cash-out of 10000 KRW"),
        ("gift_card", "KRW", "50000", "gift_card does not pay out in KRW"),
    ],
)
def test_quote_refusals_give_the_reason(
    policy: Policy, method: str, currency: str, requested: str, reason: str | None
) -> None:
    """Amounts below the threshold or method minimum are refused with the reason."""
    if reason is None:
        assert quote(policy, method, currency, m(requested)).gross == m("10.00")
        return
    with pytest.raises(QuoteRefused) as info:
        quote(policy, method, currency, m(requested))
    assert reason in info.value.message


def test_quote_refuses_non_positive_amounts(policy: Policy) -> None:
    """Zero and negative requests never reach the fee rules."""
    with pytest.raises(InvalidAmount, match="greater than zero"):
        quote(policy, "wallet", "USD", 0)
    with pytest.raises(InvalidAmount, match="negative"):
        quote(policy, "wallet", "USD", -5)


@pytest.mark.parametrize(
    ("faces", "amount", "cards"),
    [
        (("5", "10", "25", "50", "100"), "37.99", ("25", "10")),
        (("10", "25"), "30", ("10", "10", "10")),  # greedy would pay only 25
        (("10", "25"), "34.99", ("10", "10", "10")),
        (("10", "25"), "35", ("25", "10")),
        (("10", "25"), "9.99", ()),
        (("3", "7"), "11", ("7", "3")),  # 11 = 7+3 is not reachable exactly: 10
    ],
)
def test_gift_card_combination_is_largest_not_above(
    faces: tuple[str, ...], amount: str, cards: tuple[str, ...]
) -> None:
    """The payee gets the largest sum of face values not above the request, fewest cards."""
    got = best_card_combination(tuple(m(f) for f in faces), m(amount))
    assert got == tuple(m(c) for c in cards)


@given(st.integers(min_value=1, max_value=600_000_000))
def test_gift_card_combination_never_exceeds_and_is_maximal(amount: int) -> None:
    """No combination of face values lies between the chosen sum and the request."""
    faces = (m("10"), m("25"))
    total = sum(best_card_combination(faces, amount))
    assert total <= amount
    reachable = {10 * a + 25 * b for a in range(61) for b in range(25)}  # every sum <= 600
    best = max((v for v in reachable if v * 1_000_000 <= amount), default=0)
    assert total == best * 1_000_000


@given(
    st.sampled_from(["bank_transfer", "wallet"]),
    st.sampled_from(["USD", "EUR", "GBP"]),
    st.integers(min_value=10_000_000, max_value=2_000_000_000),
)
def test_quote_invariants(policy: Policy, method: str, currency: str, requested: int) -> None:
    """For any amount: gross + remainder = requested, fee within caps, gross in minor units."""
    q = quote(policy, method, currency, requested)
    fees = policy.methods[q.method].fees[currency]
    assert q.gross + q.remainder == requested
    assert 0 <= q.remainder < 10_000
    assert q.gross % 10_000 == 0 and q.fee % 10_000 == 0
    assert fees.min_fee <= q.fee <= fees.max_fee
    assert q.fee * 10_000 >= fees.fixed * 10_000 + q.gross * fees.rate_bps or q.fee == fees.max_fee
