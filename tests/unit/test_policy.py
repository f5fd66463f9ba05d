"""The policy file: loading, validation with field paths, the stable version hash."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from payouts.config.policy_file import default_policy_text, load_policy
from payouts.config.settings import Settings
from payouts.domain.policy import Method, Policy, parse_policy
from payouts.errors import PolicyInvalid, QuoteRefused


def default_data() -> dict[str, Any]:
    text = default_policy_text()
    return tomllib.loads(text)


def test_default_policy_loads_with_every_method(policy: Policy) -> None:
    """The shipped policy is valid and offers all three methods."""
    assert set(policy.methods) == {Method.BANK_TRANSFER, Method.WALLET, Method.GIFT_CARD}
    assert policy.currencies["USD"].min_cashout == 5_000_000
    assert policy.methods[Method.BANK_TRANSFER].fees["KRW"].fixed == 300_000_000


def test_version_ignores_formatting_but_not_rules(tmp_path: Path, policy: Policy) -> None:
    """Comments and layout leave the version alone; changing a rule changes it."""
    text = default_policy_text()
    reformatted = tmp_path / "p.toml"
    reformatted.write_text("# a new comment\n\n" + text.replace(" = ", "   =   "))
    assert load_policy(reformatted).version == policy.version
    changed = tmp_path / "q.toml"
    changed.write_text(text.replace('min_cashout = "5.00"', 'min_cashout = "6.00"', 1))
    assert load_policy(changed).version != policy.version


def test_settings_policy_path_overrides_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAYOUTS_POLICY points at another file."""
    text = default_policy_text()
    path = tmp_path / "custom.toml"
    path.write_text(text.replace('name = "default"', 'name = "custom"'))
    monkeypatch.setenv("PAYOUTS_POLICY", str(path))
    assert Settings().load_policy().name == "custom"


def _break(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    if value is KeyError:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("currencies.USD.min_cashout", 5.0, "currencies.USD.min_cashout: must be a decimal string"),
        ("currencies.USD.min_cashout", "1e3", "currencies.USD.min_cashout: '1e3' uses exponent"),
        ("currencies.USD.min_cashout", "5.001", "is not a whole number of USD minor units"),
        ("currencies.USD.four_eyes_above", "1.00", "four_eyes_above must be at least review_above"),
        ("methods.bank_transfer.fees.USD.rate_bps", 10_001, "rate_bps: Input should be less than"),
        ("methods.bank_transfer.fees.USD.max_fee", "0.10", "max_fee must be at least min_fee"),
        ("methods.wallet.fees.USD.min_amount", "0.10", "leaves nothing to pay out"),
        (
            "methods.bank_transfer.rounding",
            "down",
            "methods.bank_transfer.rounding: Input should be",
        ),
        ("review.risk_reject_score", 10, "risk_reject_score must be above risk_review_score"),
        ("review.timeout_action", "ignore", "review.timeout_action: Input should be"),
        ("review.timeout_hours", 0, "review.timeout_hours: Input should be greater than 0"),
        ("maturation.hold_hours", KeyError, "maturation.hold_hours: Field required"),
        ("limits.unknown_key", 1, "limits.unknown_key: Extra inputs are not permitted"),
        ("methods.gift_card.denominations.USD", [], "needs one or more positive face values"),
    ],
)
def test_invalid_policy_names_the_field_and_rule(path: str, value: Any, expected: str) -> None:
    """An invalid policy fails at load with the dotted field path and the rule."""
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(_break(default_data(), path, value), "test.toml")
    assert "policy test.toml is invalid" in info.value.message
    assert expected in info.value.message


def test_unknown_currency_and_method_are_refused() -> None:
    """Currency codes and method names are checked against what exists."""
    data = default_data()
    data["currencies"]["XXX"] = data["currencies"]["USD"]
    with pytest.raises(PolicyInvalid, match="'XXX' is not a supported ISO 4217"):
        parse_policy(data)
    data = default_data()
    data["methods"]["carrier_pigeon"] = data["methods"]["wallet"]
    with pytest.raises(PolicyInvalid, match="methods.carrier_pigeon"):
        parse_policy(data)


def test_fee_currency_needs_a_currency_entry() -> None:
    """A fee schedule for a currency without thresholds is refused."""
    data = default_data()
    data["methods"]["wallet"]["fees"]["CHF"] = data["methods"]["wallet"]["fees"]["USD"]
    with pytest.raises(PolicyInvalid, match=r"methods.wallet.fees.CHF: currency CHF has no entry"):
        parse_policy(data)


def test_bad_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    """Syntax errors and unreadable paths say so and name the file."""
    bad = tmp_path / "bad.toml"
    bad.write_text("name = ")
    with pytest.raises(PolicyInvalid, match="bad.toml is not valid TOML"):
        load_policy(bad)
    with pytest.raises(PolicyInvalid, match="cannot read"):
        load_policy(tmp_path / "missing.toml")


def test_rules_for_refuses_unoffered_method_or_currency(policy: Policy) -> None:
    """A method that does not pay out in a currency is refused with the reason."""
    with pytest.raises(QuoteRefused, match="gift_card does not pay out in KRW"):
        policy.rules_for("gift_card", "KRW")
    with pytest.raises(QuoteRefused, match="'cheque' is not one of"):
        policy.rules_for("cheque", "USD")
    rules = policy.rules_for("bank_transfer", "usd")
    assert rules.currency == "USD" and rules.policy_version == policy.version
