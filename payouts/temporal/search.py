"""Custom search attributes: what operators filter and sort cash-outs by in the Temporal UI.

No personal data here: the user is the platform's opaque id; names, account numbers and
wallet ids never appear. `PayoutAmount` is the gross in micro-units of `PayoutCurrency`.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("PayoutStage")
USER = SearchAttributeKey.for_keyword("PayoutUser")
METHOD = SearchAttributeKey.for_keyword("PayoutMethod")
CURRENCY = SearchAttributeKey.for_keyword("PayoutCurrency")
AMOUNT = SearchAttributeKey.for_int("PayoutAmount")
RISK = SearchAttributeKey.for_int("PayoutRiskScore")

ALL = (STAGE, USER, METHOD, CURRENCY, AMOUNT, RISK)


def server_flags() -> list[str]:
    """`--search-attribute` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "INT": "Int"}
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}"]
    return flags
