"""Rules for a cash-out request, applied by the client before any workflow starts.

Every refusal names the field and the rule. Bank details are checked with schwifty (IBAN
checksum and country format, BIC structure); names are normalised (NFC) and refused when
they carry control or invisible formatting characters (bidi overrides, zero-width marks).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta

from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from payouts.domain import validation
from payouts.domain.cashout import (
    BankAccount,
    CashoutInput,
    CashoutRequest,
    Destination,
    GiftCardDelivery,
    SavedRef,
    WalletAccount,
)
from payouts.domain.fees import Quote, Speed, quote_with_rules
from payouts.domain.money import check_micros, get_currency
from payouts.domain.policy import Method, Policy
from payouts.errors import InvalidInput, QuoteRefused

_EMAIL = re.compile(
    r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}", re.ASCII
)
_PHONE = re.compile(r"\+[1-9][0-9]{7,14}", re.ASCII)
QUOTE_VALID_FOR = timedelta(minutes=15)
QUOTE_CLOCK_SKEW = timedelta(minutes=2)


def method_of(value: object) -> Method:
    try:
        return Method(str(value))
    except ValueError:
        names = ", ".join(m.value for m in Method)
        raise InvalidInput(f"method: {value!r} is not one of {names}", field="method") from None


def holder_name(value: object, *, field: str = "destination.holder_name") -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: the account holder's name is required", field=field)
    name = unicodedata.normalize("NFC", " ".join(value.split()))
    bad = [
        c
        for c in value
        if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs", "Cn") and c not in " \t"
    ]
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:3])
        raise InvalidInput(
            f"{field}: contains control or invisible characters ({codes})", field=field
        )
    if not 2 <= len(name) <= 140:
        raise InvalidInput(f"{field}: must be 2 to 140 characters", field=field)
    if not any(c.isalpha() for c in name):
        raise InvalidInput(f"{field}: must contain letters", field=field)
    return name


_SAVED_ID = re.compile(r"dst_[0-9a-f]{20}")


def _saved(value: object) -> SavedRef | None:
    if isinstance(value, SavedRef):
        dst = value.destination_id
    elif isinstance(value, dict) and (value.get("method") == "saved" or "destination_id" in value):
        dst = str(value.get("destination_id", ""))
    elif isinstance(value, str) and value.startswith("saved:"):
        dst = value.removeprefix("saved:")
    else:
        return None
    if not _SAVED_ID.fullmatch(dst):
        raise InvalidInput(
            f"destination.destination_id: {dst[:40]!r} is not a saved destination id (dst_...)",
            field="destination.destination_id",
        )
    return SavedRef(destination_id=dst)


def destination_for(
    method: Method,
    value: object,
    *,
    holder: str | None = None,
    bic: str | None = None,
) -> Destination:
    """Build and check the destination of `method` from a model, a dict or a string. A
    saved destination (`SavedRef`, `{"destination_id": ...}` or `"saved:dst_..."`) is
    checked for its form; the worker resolves it at admission."""
    saved = _saved(value)
    if saved is not None:
        return saved
    if isinstance(value, BankAccount | WalletAccount | GiftCardDelivery):
        if value.method != method.value:
            raise InvalidInput(
                f"destination: a {value.method} destination cannot receive a {method.value} payout",
                field="destination",
            )
        value = value.model_dump()
    if isinstance(value, dict):
        data = {k: v for k, v in value.items() if k != "method"}
    elif isinstance(value, str):
        key = {"bank_transfer": "iban", "wallet": "wallet_id", "gift_card": "email"}[method.value]
        data = {key: value}
        if holder is not None:
            data["holder_name"] = holder
        if bic is not None:
            data["bic"] = bic
    else:
        raise InvalidInput("destination: required", field="destination")
    if method is Method.BANK_TRANSFER:
        return _bank(data)
    if method is Method.WALLET:
        wallet = str(data.get("wallet_id", "")).strip()
        if not (_EMAIL.fullmatch(wallet) or _PHONE.fullmatch(wallet)):
            raise InvalidInput(
                f"destination.wallet_id: {wallet!r} must be an e-mail address or an E.164 phone "
                "number such as +4915112345678",
                field="destination.wallet_id",
            )
        return WalletAccount(wallet_id=wallet)
    email = str(data.get("email", "")).strip()
    if not _EMAIL.fullmatch(email):
        raise InvalidInput(
            f"destination.email: {email!r} is not an e-mail address", field="destination.email"
        )
    return GiftCardDelivery(email=email)


def _bank(data: dict[str, object]) -> BankAccount:
    raw = str(data.get("iban", ""))
    try:
        iban = IBAN(raw)
    except SchwiftyException as exc:
        raise InvalidInput(
            f"destination.iban: {raw!r} is not a valid IBAN ({exc})", field="destination.iban"
        ) from None
    bic_value = data.get("bic")
    bic_text: str | None = None
    if bic_value:
        try:
            bic_obj = BIC(str(bic_value))
        except SchwiftyException as exc:
            raise InvalidInput(
                f"destination.bic: {bic_value!r} is not a valid BIC ({exc})",
                field="destination.bic",
            ) from None
        if bic_obj.country_code != iban.country_code:
            raise InvalidInput(
                f"destination.bic: {bic_obj} is in {bic_obj.country_code}, the IBAN in "
                f"{iban.country_code}",
                field="destination.bic",
            )
        bic_text = str(bic_obj)
    return BankAccount(
        iban=iban.compact, bic=bic_text, holder_name=holder_name(data.get("holder_name"))
    )


def honoured(
    quote: Quote,
    fresh: Quote,
    *,
    now: datetime,
    registry: Callable[[str], Policy | None] | None,
) -> Quote:
    """The quote a cash-out charges: the one shown to the payee, if it may be honoured."""
    if (quote.method, quote.currency, quote.requested, quote.speed) != (
        fresh.method,
        fresh.currency,
        fresh.requested,
        fresh.speed,
    ):
        raise QuoteRefused("quote: it was given for another amount, method, currency or speed")
    if quote.quoted_at is not None and quote.quoted_at > now + QUOTE_CLOCK_SKEW:
        raise QuoteRefused("quote.quoted_at: in the future")
    if _figures(quote) == _figures(fresh):
        return quote
    stale = quote.quoted_at is None or now - quote.quoted_at > QUOTE_VALID_FOR
    if quote.policy_version == fresh.policy_version or stale:
        raise QuoteRefused(
            "quote: it no longer matches the policy; show the payee the new quote "
            f"(fee {fresh.fee} micros instead of {quote.fee})"
        )
    if registry is None:
        adds_up = quote.gross + quote.remainder == quote.requested and quote.remainder >= 0
        if not adds_up or quote.fee < 0 or quote.gross - quote.fee != quote.net or quote.net <= 0:
            raise QuoteRefused("quote: its figures do not add up")
        return quote
    then = registry(quote.policy_version)
    if then is None:
        raise QuoteRefused(f"quote: policy version {quote.policy_version!r} is not registered")
    rules = then.rules_for(quote.method, quote.currency)
    if _figures(quote) != _figures(quote_with_rules(rules, quote.requested, quote.speed)):
        raise QuoteRefused(
            f"quote: its figures are not what policy version {quote.policy_version} gives"
        )
    return quote


def _figures(q: Quote) -> Quote:
    return q.model_copy(update={"quoted_at": None})


def build_input(
    policy: Policy,
    *,
    request_id: str,
    user_id: str,
    amount: int,
    currency: str,
    method: Method | str,
    destination: object,
    holder: str | None = None,
    bic: str | None = None,
    quote: Quote | None = None,
    speed: Speed = "standard",
    now: datetime,
    registry: Callable[[str], Policy | None] | None = None,
) -> CashoutInput:
    """Validate a request and cut the policy slice and quote it will run under.

    A quote the payee saw is honoured when it is for this amount, method and currency and
    either matches today's policy or was given less than 15 minutes ago under another
    version. With a `registry` of policy versions (the worker's admission), such a quote is
    recomputed under its own version and must match it to the micro; without one (the
    platform's client, which knows only its own policy) its figures must add up.
    """
    rid = validation.request_id(request_id)
    user = validation.user_id(user_id)
    check_micros(amount, field="amount", allow_zero=False)
    code = get_currency(currency).code
    m = method_of(method)
    dest = destination_for(m, destination, holder=holder, bic=bic)
    rules = policy.rules_for(m, code)
    if speed not in ("standard", "instant"):
        raise InvalidInput("speed: must be standard or instant", field="speed")
    fresh = quote_with_rules(rules, amount, speed)
    if quote is not None:
        fresh = honoured(quote, fresh, now=now, registry=registry)
    request = CashoutRequest(
        request_id=rid,
        user_id=user,
        amount=amount,
        currency=code,
        method=m,
        destination=dest,
        quote=quote,
        speed=speed,
    )
    return CashoutInput(request=request, quote=fresh, rules=rules, requested_at=now)
