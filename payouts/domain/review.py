"""Review rules: what the policy decides for a cash-out, and which reviewer decisions count.

Pure functions over the policy slice a cash-out carries, so the workflow can call them
deterministically (signals and updates are checked here, by the same code).
"""

from __future__ import annotations

from enum import StrEnum

from anyascii import anyascii

from payouts.domain.money import format_money
from payouts.domain.policy import CashoutRules


class Verdict(StrEnum):
    AUTO_APPROVE = "auto_approve"
    REVIEW = "review"
    REJECT = "reject"


def needs_identity(rules: CashoutRules, gross: int) -> bool:
    return gross > rules.currency_rules.identity_required_above


def decide(rules: CashoutRules, gross: int, risk_score: int) -> tuple[Verdict, str, int]:
    """(verdict, why, approvals needed). Above four_eyes_above a review needs two people."""
    cur = rules.currency_rules
    money = format_money(gross, rules.currency)
    if risk_score >= rules.review.risk_reject_score:
        return (
            Verdict.REJECT,
            f"risk score {risk_score} is at or above {rules.review.risk_reject_score}",
            0,
        )
    approvals = 2 if gross > cur.four_eyes_above else 1
    why: list[str] = []
    if gross > cur.review_above:
        why.append(
            f"{money} is above the review threshold of "
            f"{format_money(cur.review_above, rules.currency)}"
        )
    if risk_score >= rules.review.risk_review_score:
        why.append(f"risk score {risk_score} is at or above {rules.review.risk_review_score}")
    if why:
        if approvals == 2:
            why.append(
                f"two reviewers (one senior) needed above "
                f"{format_money(cur.four_eyes_above, rules.currency)}"
            )
        return Verdict.REVIEW, "; ".join(why), approvals
    return Verdict.AUTO_APPROVE, f"{money} with risk score {risk_score}: within auto-approval", 0


def refusal(
    rules: CashoutRules,
    *,
    payee: str,
    reviewer: str,
    decision: str,
    awaiting_review: bool,
    approvals_so_far: tuple[str, ...],
    approvals_needed: int,
) -> str | None:
    """Why a reviewer's decision cannot count, or None when it can."""
    if not awaiting_review:
        return "the cash-out is not awaiting review"
    roles = rules.reviewers.get(reviewer)
    if roles is None:
        return f"{reviewer!r} is not a registered reviewer"
    if reviewer == payee:
        return "reviewers cannot decide on their own cash-out"
    if decision not in ("approve", "reject"):
        return f"unknown decision {decision!r}"
    if reviewer in approvals_so_far:
        return f"{reviewer!r} has already approved; a second approval must come from someone else"
    if decision == "approve" and approvals_needed == 2:
        seniors = [r for r in approvals_so_far if "senior" in rules.reviewers.get(r, ())]
        last = len(approvals_so_far) + 1 == approvals_needed
        if last and not seniors and "senior" not in roles:
            return "one of the two approvals must come from a senior reviewer"
    return None


def _name_tokens(name: str) -> list[str]:
    plain = anyascii(name).casefold()  # é -> e, Ł -> L, ß -> ss, 李 -> Li
    return "".join(c if c.isalnum() else " " for c in plain).split()


def names_match(holder: str, legal: str) -> bool:
    """Does the bank account holder's name match the verified identity's name?

    Tolerant of case, accents, punctuation and word order ("MARTIN, Chloe" matches
    "Chloé Martin"); nothing else (a missing or extra name is a mismatch).
    """
    return sorted(_name_tokens(holder)) == sorted(_name_tokens(legal))
