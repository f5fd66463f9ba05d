"""Pure rules: fraud scores with reasons, the policy's verdict, which reviews count,
and request validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from payouts.domain.cashout import BankAccount, GiftCardDelivery, WalletAccount, mask
from payouts.domain.fees import quote
from payouts.domain.policy import Method, Policy
from payouts.domain.requests import build_input, destination_for, holder_name
from payouts.domain.review import Verdict, decide, needs_identity, refusal
from payouts.domain.risk import RiskFacts, assess
from payouts.errors import InvalidInput, QuoteRefused

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def facts(**changes: object) -> RiskFacts:
    base = dict(
        as_of=NOW,
        currency="USD",
        amount=20_000_000,
        first_earning_at=NOW - timedelta(days=90),
        cashouts_24h=0,
        cashouts_7d=0,
        previous_paid=3,
        earned_24h=1_000_000,
        earned_prior_30d=30_000_000,
        destination_other_users=0,
        destination_first_used_at=NOW - timedelta(days=60),
        other_destinations=0,
    )
    base.update(changes)
    return RiskFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "score", "reason"),
    [
        ({}, 0, None),
        ({"first_earning_at": None}, 30, "no earnings on record"),
        ({"first_earning_at": NOW - timedelta(hours=5)}, 25, "account is 5 hours old"),
        ({"first_earning_at": NOW - timedelta(days=3)}, 15, "account is 3 days old"),
        ({"cashouts_24h": 2}, 20, "3 cash-outs in the last 24 hours"),
        ({"cashouts_7d": 9}, 10, "10 cash-outs in the last 7 days"),
        ({"earned_24h": 9_000_000}, 25, "9x the daily average of the 30 days before"),
        ({"earned_prior_30d": 0, "earned_24h": 15_000_000}, 15, "most of the amount was earned"),
        ({"destination_other_users": 2}, 40, "also used by 2 other users"),
        (
            {"other_destinations": 1, "destination_first_used_at": None},
            20,
            "payout destination is new for this user",
        ),
        (
            {"other_destinations": 1, "destination_first_used_at": NOW - timedelta(days=2)},
            20,
            "payout destination changed 2 days ago",
        ),
        ({"previous_paid": 0}, 10, "first cash-out"),
    ],
)
def test_each_fraud_rule_scores_and_explains(
    changes: dict[str, object], score: int, reason: str | None
) -> None:
    """Every rule adds its points and says why in words."""
    got, reasons = assess(facts(**changes))
    assert got == score
    if reason is None:
        assert reasons == ()
    else:
        assert any(reason in r for r in reasons), reasons


def test_scores_add_up_capped_and_ordered() -> None:
    """Several rules add up, most serious first, capped at 100."""
    score, reasons = assess(
        facts(first_earning_at=None, destination_other_users=1, previous_paid=0, cashouts_24h=5)
    )
    assert score == 100
    assert reasons[0].startswith("payout destination is also used")


@pytest.mark.parametrize(
    ("gross", "risk", "verdict", "approvals"),
    [
        (100_000_000, 10, Verdict.AUTO_APPROVE, 0),
        (500_000_000, 10, Verdict.AUTO_APPROVE, 0),  # at the threshold: not above it
        (500_010_000, 10, Verdict.REVIEW, 1),
        (100_000_000, 50, Verdict.REVIEW, 1),
        (2_000_010_000, 0, Verdict.REVIEW, 2),
        (100_000_000, 85, Verdict.REJECT, 0),
    ],
)
def test_policy_verdicts(
    policy: Policy, gross: int, risk: int, verdict: Verdict, approvals: int
) -> None:
    """Amount and risk thresholds pick auto-approval, review (one or two people), or reject."""
    rules = policy.rules_for("wallet", "USD")
    got, why, needed = decide(rules, gross, risk)
    assert (got, needed) == (verdict, approvals)
    assert why


def test_identity_threshold(policy: Policy) -> None:
    """Identity is verified above identity_required_above only."""
    rules = policy.rules_for("wallet", "USD")
    assert not needs_identity(rules, 50_000_000)
    assert needs_identity(rules, 50_010_000)


@pytest.mark.parametrize(
    ("payee", "reviewer", "decision", "awaiting", "so_far", "needed", "why"),
    [
        ("pat", "bob", "approve", True, (), 1, None),
        ("pat", "bob", "approve", False, (), 1, "not awaiting review"),
        ("pat", "zed", "approve", True, (), 1, "'zed' is not a registered reviewer"),
        ("alice", "alice", "approve", True, (), 1, "cannot decide on their own cash-out"),
        ("alice", "alice", "reject", True, (), 1, "cannot decide on their own cash-out"),
        ("pat", "bob", "approve", True, ("bob",), 2, "'bob' has already approved"),
        ("pat", "carol", "approve", True, ("bob",), 2, "must come from a senior reviewer"),
        ("pat", "alice", "approve", True, ("bob",), 2, None),
        ("pat", "carol", "approve", True, ("alice",), 2, None),
        ("pat", "carol", "reject", True, ("bob",), 2, None),
        ("pat", "bob", "maybe", True, (), 1, "unknown decision"),
    ],
)
def test_review_refusals(
    policy: Policy,
    payee: str,
    reviewer: str,
    decision: str,
    awaiting: bool,
    so_far: tuple[str, ...],
    needed: int,
    why: str | None,
) -> None:
    """Only registered reviewers, never the payee, never twice, a senior among two."""
    rules = policy.rules_for("wallet", "USD")
    got = refusal(
        rules,
        payee=payee,
        reviewer=reviewer,
        decision=decision,
        awaiting_review=awaiting,
        approvals_so_far=so_far,
        approvals_needed=needed,
    )
    if why is None:
        assert got is None
    else:
        assert got is not None and why in got


@pytest.mark.parametrize(
    ("method", "value", "extra", "message"),
    [
        (Method.BANK_TRANSFER, "DE89370400440532013001", {"holder": "A B"}, "Invalid checksum"),
        (Method.BANK_TRANSFER, "XX89370400440532013000", {"holder": "A B"}, "country-code"),
        (Method.BANK_TRANSFER, "DE89370400440532013000", {}, "holder's name is required"),
        (Method.BANK_TRANSFER, "DE89370400440532013000", {"holder": "A\u200bB"}, r"U\+200B"),
        (
            Method.BANK_TRANSFER,
            "DE89370400440532013000",
            {"holder": "12345"},
            "must contain letters",
        ),
        (
            Method.BANK_TRANSFER,
            "DE89370400440532013000",
            {"holder": "A B", "bic": "BNPAFRPP"},
            "the IBAN in DE",
        ),
        (Method.WALLET, "ana@", {}, "e-mail address or an E.164 phone"),
        (Method.WALLET, "12345", {}, "e-mail address or an E.164 phone"),
        (Method.GIFT_CARD, "not-an-email", {}, "is not an e-mail address"),
    ],
)
def test_destination_rules_name_the_field(
    method: Method, value: str, extra: dict[str, str], message: str
) -> None:
    """Bank details are checked with schwifty; names and addresses have clear rules."""
    with pytest.raises(InvalidInput, match=message) as info:
        destination_for(method, value, **extra)
    assert info.value.message.startswith("destination")


def test_destinations_are_normalised_and_masked() -> None:
    """IBANs lose their spaces, names are NFC; masks hide account numbers and addresses."""
    bank = destination_for(
        Method.BANK_TRANSFER,
        "de89 3704 0044 0532 0130 00",
        holder="  Chloe\u0301   Martin ",
        bic="COBADEFFXXX",
    )
    assert isinstance(bank, BankAccount)
    assert (bank.iban, bank.holder_name, bank.bic) == (
        "DE89370400440532013000",
        "Chloé Martin",
        "COBADEFFXXX",
    )
    assert mask(bank) == "IBAN DE** **** 3000"
    assert mask(WalletAccount(wallet_id="ana@example.com")) == "a***@example.com"
    assert mask(GiftCardDelivery(email="bo@x.org")) == "b***@x.org"
    assert holder_name("Ana") == "Ana"


def test_a_wrong_kind_of_destination_is_refused() -> None:
    """A wallet destination cannot receive a bank transfer."""
    with pytest.raises(InvalidInput, match="a wallet destination cannot receive a bank_transfer"):
        destination_for(Method.BANK_TRANSFER, WalletAccount(wallet_id="a@b.cd"))


def test_build_input_honours_a_recent_quote(policy: Policy) -> None:
    """The quote the payee saw is the fee charged; a forged or stale one is refused."""
    shown = quote(policy, "wallet", "USD", 20_000_000).model_copy(update={"quoted_at": NOW})
    inp = build_input(
        policy,
        request_id="r1",
        user_id="u1",
        amount=20_000_000,
        currency="USD",
        method="wallet",
        destination="u1@example.com",
        quote=shown,
        now=NOW,
    )
    assert inp.quote.fee == shown.fee and inp.rules.policy_version == policy.version
    forged = shown.model_copy(update={"fee": 0, "net": shown.gross})
    with pytest.raises(QuoteRefused, match="no longer matches the policy"):
        build_input(
            policy,
            request_id="r1",
            user_id="u1",
            amount=20_000_000,
            currency="USD",
            method="wallet",
            destination="u1@example.com",
            quote=forged,
            now=NOW,
        )
    older = shown.model_copy(update={"policy_version": "old", "fee": 1, "net": shown.gross - 1})
    honoured = build_input(
        policy,
        request_id="r1",
        user_id="u1",
        amount=20_000_000,
        currency="USD",
        method="wallet",
        destination="u1@example.com",
        quote=older,
        now=NOW + timedelta(minutes=5),
    )
    assert honoured.quote.fee == 1
    with pytest.raises(QuoteRefused, match="no longer matches"):
        build_input(
            policy,
            request_id="r1",
            user_id="u1",
            amount=20_000_000,
            currency="USD",
            method="wallet",
            destination="u1@example.com",
            quote=older,
            now=NOW + timedelta(minutes=16),
        )
    with pytest.raises(QuoteRefused, match="another amount, method, currency or speed"):
        build_input(
            policy,
            request_id="r1",
            user_id="u1",
            amount=21_000_000,
            currency="USD",
            method="wallet",
            destination="u1@example.com",
            quote=shown,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("request_id", "has space", "request_id: 'has space' must be"),
        ("user_id", "", "user_id: '' must be"),
        ("amount", 0, "amount: must be greater than zero"),
        ("amount", -1, "is negative"),
        ("currency", "XYZ", "currency: 'XYZ'"),
        ("method", "cheque", "method: 'cheque' is not one of"),
    ],
)
def test_request_fields_are_checked(
    policy: Policy, field: str, value: object, message: str
) -> None:
    """Each request field has a rule and a message that names it."""
    args: dict[str, object] = dict(
        request_id="r1",
        user_id="u1",
        amount=20_000_000,
        currency="USD",
        method="wallet",
        destination="u1@example.com",
    )
    args[field] = value
    with pytest.raises((InvalidInput, QuoteRefused), match=message):
        build_input(policy, now=NOW, **args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ speeds


def test_instant_has_its_own_fee_and_is_refused_where_not_offered(policy: Policy) -> None:
    standard = quote(policy, "wallet", "USD", 40_000_000)
    instant = quote(policy, "wallet", "USD", 40_000_000, "instant")
    assert (standard.fee, instant.fee) == (700_000, 1_250_000)  # 0.10 + 1.5% / 0.25 + 2.5%
    assert instant.gross == standard.gross and instant.speed == "instant"
    with pytest.raises(QuoteRefused, match="speed: instant is not offered for gift_card in USD"):
        quote(policy, "gift_card", "USD", 40_000_000, "instant")


def test_a_standard_request_signs_the_bytes_it_signed_before_speeds(policy: Policy) -> None:
    """Clients and cash-outs of the release before keep verifying: a standard request's
    message and digest leave the speed out; an instant one's include it."""
    from payouts.domain.trust import request_digest, request_message

    now = datetime(2026, 12, 1, tzinfo=UTC)
    args = {"request_id": "r-1", "user_id": "u", "amount": 40_000_000, "currency": "USD",
            "method": "wallet", "destination": "u@example.org", "now": now}  # fmt: skip
    standard = build_input(policy, **args)  # type: ignore[arg-type]
    shown = quote(policy, "wallet", "USD", 40_000_000)
    with_quote = build_input(policy, **args, quote=shown)  # type: ignore[arg-type]
    instant = build_input(policy, **args, speed="instant")  # type: ignore[arg-type]
    for inp in (standard, with_quote):
        assert b"speed" not in request_message(inp.request, now)
    assert b'"speed":"instant"' in request_message(instant.request, now).replace(b" ", b"")
    assert request_digest(standard) != request_digest(instant)
    # the digest binds who, how much (gross), how, where and the speed; not the fee
    relabelled = instant.quote.model_copy(update={"speed": "standard"})
    assert request_digest(standard.model_copy(update={"quote": relabelled})) == request_digest(
        standard
    )
