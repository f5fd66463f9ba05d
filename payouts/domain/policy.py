"""The cash-out policy: thresholds, holds, fees, limits, review rules and reviewers.

The policy is a TOML file (the package ships `default_policy.toml`; `PAYOUTS_POLICY` points
at another). It is validated by pydantic when loaded: an invalid file fails with the dotted
path of the field and the rule it breaks. Its `version` is a hash of the validated content,
so comments and formatting do not change it and any change of a rule does.

A cash-out does not carry the whole policy: `Policy.rules_for` cuts the slice that applies
to one method and currency (`CashoutRules`), stamped with the version. That slice travels
in the workflow input, so an in-flight cash-out keeps the rules it started under.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from payouts.domain.money import CURRENCIES, DecimalAmount, format_money, get_currency
from payouts.errors import PolicyInvalid, QuoteRefused


class Method(StrEnum):
    BANK_TRANSFER = "bank_transfer"
    WALLET = "wallet"
    GIFT_CARD = "gift_card"


class Rounding(StrEnum):
    """How a fee is rounded to the currency's minor unit; both favour the platform or are fair.

    `ceiling` rounds any fraction up; `half_up` rounds to the nearest minor unit, halves up.
    """

    CEILING = "ceiling"
    HALF_UP = "half_up"


class TimeoutAction(StrEnum):
    REJECT = "reject"
    APPROVE = "approve"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


BasisPoints = Annotated[int, Field(ge=0, le=10_000, strict=True)]
Score = Annotated[int, Field(ge=0, le=100, strict=True)]
PositiveHours = Annotated[int, Field(gt=0, strict=True)]


class FeeSchedule(_Frozen):
    """Fee and amount bounds of one method in one currency (amounts in micros)."""

    fixed: DecimalAmount
    rate_bps: BasisPoints
    min_fee: DecimalAmount
    max_fee: DecimalAmount
    min_amount: DecimalAmount
    max_amount: DecimalAmount

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_fee < self.min_fee:
            raise _broken("max_fee must be at least min_fee")
        if self.max_amount < self.min_amount:
            raise _broken("max_amount must be at least min_amount")
        return self


class BatchCost(_Frozen):
    """What the bank charges: per transfer sent alone, and per batch file."""

    item_cost: DecimalAmount
    batch_cost: DecimalAmount


class BatchingPolicy(_Frozen):
    """Bank transfers leave in batches: one file per currency at every cutoff."""

    cutoff_minutes: Annotated[int, Field(gt=0, le=1440, strict=True)]
    max_items: Annotated[int, Field(gt=0, le=9999, strict=True)]
    return_window_days: Annotated[int, Field(ge=0, le=120, strict=True)]
    costs: dict[str, BatchCost]


class InstantSpeed(_Frozen):
    """The instant speed of a method in one currency: its own fees, paid in minutes."""

    fees: FeeSchedule
    expected_arrival_minutes: Annotated[int, Field(gt=0, le=1440, strict=True)]


class MethodPolicy(_Frozen):
    enabled: bool = True
    rounding: Rounding = Rounding.CEILING
    expected_arrival_hours: Annotated[int, Field(ge=0, strict=True)]
    fees: dict[str, FeeSchedule]
    # Gift cards only: the face values a card can have, per currency (decimal strings).
    denominations: dict[str, list[DecimalAmount]] = Field(default_factory=dict)
    # Bank transfers only: batching, costs and how long a return can still arrive.
    batching: BatchingPolicy | None = None
    # A saved destination of this method added or changed less than this long ago sends
    # its cash-outs to review (`payouts.domain.profiles`).
    cooloff_hours: Annotated[int, Field(ge=0, le=24 * 30, strict=True)] = 0
    # The instant speed, per currency where it is offered (the standard one is `fees`).
    instant: dict[str, InstantSpeed] = Field(default_factory=dict)


class CurrencyPolicy(_Frozen):
    min_cashout: DecimalAmount
    identity_required_above: DecimalAmount
    review_above: DecimalAmount
    four_eyes_above: DecimalAmount
    daily_amount_limit: DecimalAmount
    # what a payee may owe (reversed earnings no balance covered) and still start a
    # cash-out; and above what a reviewer looks at their cash-outs (None: never flagged)
    owed_allowance: DecimalAmount = 0
    owed_review_above: DecimalAmount | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.four_eyes_above < self.review_above:
            raise _broken("four_eyes_above must be at least review_above")
        if self.owed_allowance < 0:
            raise _broken("owed_allowance must not be negative")
        if self.owed_review_above is not None and self.owed_review_above < self.owed_allowance:
            raise _broken("owed_review_above must be at least owed_allowance")
        if self.daily_amount_limit < self.min_cashout:
            raise _broken("daily_amount_limit must be at least min_cashout")
        return self


class ReviewPolicy(_Frozen):
    risk_review_score: Score
    risk_reject_score: Score
    timeout_hours: PositiveHours
    timeout_action: TimeoutAction = TimeoutAction.REJECT

    @model_validator(mode="after")
    def _scores(self) -> Self:
        if self.risk_reject_score <= self.risk_review_score:
            raise _broken("risk_reject_score must be above risk_review_score")
        return self


class IdentityPolicy(_Frozen):
    pending_timeout_hours: PositiveHours
    poll_minutes: Annotated[int, Field(gt=0, strict=True)]


class LimitsPolicy(_Frozen):
    daily_count: Annotated[int, Field(gt=0, strict=True)]


class MaturationPolicy(_Frozen):
    hold_hours: Annotated[int, Field(ge=0, strict=True)]


class AutomaticPolicy(_Frozen):
    """Automatic cash-outs beyond the payees' own standing instructions."""

    # pay a balance untouched (no earning, no cash-out) for this many days to the payee's
    # default destination, if they have one (None: never)
    dormant_days: Annotated[int | None, Field(ge=7, le=3650, strict=True)] = None


class OwedPolicy(_Frozen):
    """What a payee owes from reversed earnings: when reconciliation flags it."""

    # reconciliation lists a payee who has owed something for longer than this
    flag_after_days: Annotated[int, Field(gt=0, le=3650, strict=True)] = 30


Role = Literal["reviewer", "senior"]


def _default_roles() -> list[Role]:
    return ["reviewer"]


def _public_key(value: object) -> object:
    """A base64 Ed25519 public key (32 bytes), as `payouts keygen reviewer` prints it."""
    if value is None:
        return value
    try:
        raw = base64.b64decode(str(value), validate=True)
    except binascii.Error:
        raise _broken("not base64") from None
    if len(raw) != 32:
        raise _broken("an Ed25519 public key is 32 bytes")
    return base64.b64encode(raw).decode()


class Reviewer(_Frozen):
    """A reviewer: their id, roles, and the public key their decisions are signed with
    (`payouts keygen reviewer ID` makes the key pair and prints this line)."""

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
    roles: list[Role] = Field(default_factory=_default_roles)
    public_key: Annotated[str | None, BeforeValidator(_public_key)] = None


class Policy(_Frozen):
    name: str
    maturation: MaturationPolicy
    limits: LimitsPolicy
    review: ReviewPolicy
    identity: IdentityPolicy
    currencies: dict[str, CurrencyPolicy]
    methods: dict[Method, MethodPolicy]
    reviewers: list[Reviewer] = Field(default_factory=list)
    automatic: AutomaticPolicy = Field(default_factory=AutomaticPolicy)
    owed: OwedPolicy = Field(default_factory=OwedPolicy)

    @field_validator("currencies")
    @classmethod
    def _known_currencies(cls, value: dict[str, CurrencyPolicy]) -> dict[str, CurrencyPolicy]:
        for code in value:
            if code not in CURRENCIES:
                raise _broken(f"{code!r} is not a supported ISO 4217 currency code")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for code, cur in self.currencies.items():
            _whole_minor(f"currencies.{code}", code, cur.model_dump())
        for method, mp in self.methods.items():
            for code, fees in mp.fees.items():
                where = f"methods.{method.value}.fees.{code}"
                if code not in self.currencies:
                    raise _broken(f"{where}: currency {code} has no entry under [currencies]")
                _whole_minor(where, code, fees.model_dump(exclude={"rate_bps"}))
                if fee_for(fees, mp.rounding, code, fees.min_amount) >= fees.min_amount:
                    raise _broken(f"{where}: the fee at min_amount leaves nothing to pay out")
            for code, faces in mp.denominations.items():
                where = f"methods.{method.value}.denominations.{code}"
                if code not in mp.fees:
                    raise _broken(f"{where}: currency {code} has no fee schedule")
                if not faces or any(f <= 0 for f in faces):
                    raise _broken(f"{where}: needs one or more positive face values")
                _whole_minor(where, code, {str(i): f for i, f in enumerate(faces)})
            if method is Method.GIFT_CARD and set(mp.denominations) != set(mp.fees):
                raise _broken(f"methods.{method.value}: every currency needs denominations")
            if method is Method.BANK_TRANSFER:
                if mp.batching is None:
                    raise _broken("methods.bank_transfer.batching: required")
                for code in mp.fees:
                    cost = mp.batching.costs.get(code)
                    where = f"methods.bank_transfer.batching.costs.{code}"
                    if cost is None:
                        raise _broken(f"{where}: every bank currency needs its costs")
                    _whole_minor(where, code, cost.model_dump())
        ids = [r.id for r in self.reviewers]
        if len(ids) != len(set(ids)):
            raise _broken("reviewers: reviewer ids must be unique")
        keys = [r.public_key for r in self.reviewers if r.public_key]
        if len(keys) != len(set(keys)):
            raise _broken("reviewers: two reviewers share a public key (four eyes need two keys)")
        return self

    @property
    def version(self) -> str:
        """A stable hash of the validated content (formatting and comments do not count)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def with_reviewer_keys(self, keys: dict[str, str]) -> Policy:
        """This policy with public keys for the reviewers that have none (the embedded
        stack's generated keys); a key in the file always wins."""
        reviewers = [
            r
            if r.public_key or r.id not in keys
            else r.model_copy(update={"public_key": keys[r.id]})
            for r in self.reviewers
        ]
        return self.model_copy(update={"reviewers": reviewers})

    def rules_for(self, method: Method | str, currency: str) -> CashoutRules:
        """The slice of this policy that governs one cash-out by `method` in `currency`."""
        code = get_currency(currency).code
        try:
            m = Method(method)
        except ValueError:
            raise QuoteRefused(
                f"method: {method!r} is not one of {', '.join(x.value for x in Method)}"
            ) from None
        mp = self.methods.get(m)
        if mp is None or not mp.enabled:
            raise QuoteRefused(f"method: {m.value} is not offered")
        cur = self.currencies.get(code)
        fees = mp.fees.get(code)
        if cur is None or fees is None:
            raise QuoteRefused(f"currency: {m.value} does not pay out in {code}")
        return CashoutRules(
            policy_version=self.version,
            method=m,
            currency=code,
            rounding=mp.rounding,
            fees=fees,
            denominations=tuple(sorted(mp.denominations.get(code, []), reverse=True)),
            expected_arrival_hours=mp.expected_arrival_hours,
            currency_rules=cur,
            review=self.review,
            identity=self.identity,
            daily_count=self.limits.daily_count,
            reviewers={r.id: tuple(r.roles) for r in self.reviewers},
            reviewer_keys={r.id: r.public_key for r in self.reviewers if r.public_key},
            batch_cutoff_minutes=mp.batching.cutoff_minutes if mp.batching else None,
            return_window_days=mp.batching.return_window_days if mp.batching else 0,
            instant=mp.instant.get(code),
        )


class CashoutRules(_Frozen):
    """The policy slice one cash-out runs under; travels in the workflow input."""

    policy_version: str
    method: Method
    currency: str
    rounding: Rounding
    fees: FeeSchedule
    denominations: tuple[int, ...] = ()
    expected_arrival_hours: int
    currency_rules: CurrencyPolicy
    review: ReviewPolicy
    identity: IdentityPolicy
    daily_count: int
    reviewers: dict[str, tuple[str, ...]]
    # Reviewers' public keys (base64 Ed25519). Empty in cash-outs started before decisions
    # were signed: they keep the rules they started under.
    reviewer_keys: dict[str, str] = Field(default_factory=dict)
    batch_cutoff_minutes: int | None = None
    return_window_days: int = 0
    instant: InstantSpeed | None = None  # the instant speed, where it is offered


def fee_for(fees: FeeSchedule, rounding: Rounding, currency: str, gross: int) -> int:
    """fixed + gross × rate, rounded to the minor unit by `rounding`, clamped to [min, max]."""
    unit = get_currency(currency).minor_unit_micros
    numerator = fees.fixed * 10_000 + gross * fees.rate_bps  # exact, in micros × 10_000
    denominator = 10_000 * unit
    if rounding is Rounding.CEILING:
        units = -(-numerator // denominator)
    else:
        units = (2 * numerator + denominator) // (2 * denominator)
    return min(max(units * unit, fees.min_fee), fees.max_fee)


def _whole_minor(where: str, currency: str, amounts: dict[str, object]) -> None:
    unit = get_currency(currency).minor_unit_micros
    for name, value in amounts.items():
        if isinstance(value, int) and not isinstance(value, bool) and value % unit:
            raise _broken(
                f"{where}.{name}: {format_money(value, currency)} is not a whole number of "
                f"{currency} minor units"
            )


def _broken(message: str) -> PydanticCustomError:
    """A policy rule the file breaks (pydantic reports it with the field's path)."""
    return PydanticCustomError("policy_rule", message)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        lines.append(f"{path}: {msg}" if path else msg)
    return f"policy {source} is invalid: " + "; ".join(lines)


def parse_policy(data: dict[str, object], source: str = "<policy>") -> Policy:
    try:
        return Policy.model_validate(data, context={"from_file": True})
    except ValidationError as exc:
        raise PolicyInvalid(_format_errors(source, exc)) from None
