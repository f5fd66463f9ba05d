"""Review rules: what the policy decides for a cash-out, and which reviewer decisions count.

`decide` is the policy's verdict (auto-approve, review, reject). `ReviewBoard` is the review
itself, a plain state machine the workflow feeds with every decision that arrives, by
signal or update alike: it says whether the decision counts, keeps the record, counts the
refusals, and knows when the review is over. Everything here is deterministic over the
policy slice a cash-out carries, so the workflow replays it exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from anyascii import anyascii

from payouts.domain.bounds import MAX_NOTED_REFUSALS, MAX_REASON, shown
from payouts.domain.cashout import ReviewRecord
from payouts.domain.money import format_money
from payouts.domain.policy import CashoutRules, TimeoutAction


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
    authenticate: Callable[[], str | None] | None = None,
    keys_so_far: tuple[str, ...] = (),
) -> str | None:
    """Why a reviewer's decision cannot count, or None when it can.

    `authenticate` (given once decisions are signed) checks the signature; it runs only
    when everything before it holds, so a refused decision never uses up its nonce. Four
    eyes means two keys: an approval with a key that approved before is refused, whatever
    name it comes under."""
    if not awaiting_review:
        return "the cash-out is not awaiting review"
    roles = rules.reviewers.get(reviewer)
    if roles is None:
        return f"{shown(reviewer)} is not a registered reviewer"
    if reviewer == payee:
        return "reviewers cannot decide on their own cash-out"
    if decision not in ("approve", "reject"):
        return f"unknown decision {shown(decision, 16)}"
    if reviewer in approvals_so_far:
        return (
            f"{shown(reviewer)} has already approved; a second approval must come from someone else"
        )
    if authenticate is not None:
        why = authenticate()
        if why is not None:
            return why
        key = rules.reviewer_keys.get(reviewer)
        if decision == "approve" and key is not None and key in keys_so_far:
            return "this key has already approved under another name: four eyes need two keys"
    if decision == "approve" and approvals_needed == 2:
        seniors = [r for r in approvals_so_far if "senior" in rules.reviewers.get(r, ())]
        last = len(approvals_so_far) + 1 == approvals_needed
        if last and not seniors and "senior" not in roles:
            return "one of the two approvals must come from a senior reviewer"
    return None


def name_tokens(name: str) -> list[str]:
    """A name's words, compared without case, accents or punctuation."""
    plain = anyascii(name).casefold()  # é -> e, Ł -> L, ß -> ss, 李 -> Li
    return "".join(c if c.isalnum() else " " for c in plain).split()


def names_match(holder: str, legal: str) -> bool:
    """Does the bank account holder's name match the verified identity's name?

    Tolerant of case, accents, punctuation and word order ("MARTIN, Chloe" matches
    "Chloé Martin"); nothing else (a missing or extra name is a mismatch).
    """
    return sorted(name_tokens(holder)) == sorted(name_tokens(legal))


class ReviewOutcome(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Ruling:
    """How one decision was taken: its record, why it was refused (None: it counted), and
    what the timeline says about it (None once refusals are past the recorded cap)."""

    record: ReviewRecord
    refusal: str | None
    note: str | None

    @property
    def accepted(self) -> bool:
        return self.refusal is None


@dataclass
class ReviewBoard:
    """The reviewers' side of one held cash-out.

    open -> (approvals until `needed`) -> approved | rejected | timed out (policy action).
    A decision counts only while the board is open and the workflow awaits review; every
    other one is refused with the rule it broke. Refusals are counted; the first
    `MAX_RECORDED` of them are kept in the records and the timeline.
    """

    rules: CashoutRules
    payee: str
    needed: int = 0
    approvals: list[str] = field(default_factory=list)
    records: list[ReviewRecord] = field(default_factory=list)
    refusals: int = 0
    outcome: ReviewOutcome | None = None

    MAX_RECORDED = MAX_NOTED_REFUSALS

    def open(self, needed: int) -> None:
        self.needed = needed

    def decide(
        self,
        *,
        reviewer: str,
        decision: str,
        reason: str,
        via: str,
        client: str,
        at: datetime,
        awaiting_review: bool,
        authenticate: Callable[[], str | None] | None = None,
    ) -> Ruling:
        why = refusal(
            self.rules,
            payee=self.payee,
            reviewer=reviewer,
            decision=decision,
            awaiting_review=awaiting_review and self.outcome is None,
            approvals_so_far=tuple(self.approvals),
            approvals_needed=self.needed,
            authenticate=authenticate,
            keys_so_far=tuple(self.rules.reviewer_keys.get(r, "") for r in self.approvals),
        )
        record = ReviewRecord(
            at=at,
            reviewer=reviewer[:64],
            decision=decision[:16],
            reason=reason[:MAX_REASON],
            accepted=why is None,
            refusal=why or "",
            via=via,
            client=client[:64],
        )
        if why is not None:
            self.refusals += 1
            if self.refusals > self.MAX_RECORDED:
                return Ruling(record, why, None)
            self.records.append(record)
            note = f"refused {shown(decision, 16)} from {shown(reviewer)}: {why}"
            return Ruling(record, why, note)
        self.records.append(record)
        if decision == "reject":
            self.outcome = ReviewOutcome.REJECTED
            return Ruling(record, None, None)
        self.approvals.append(reviewer)
        remaining = self.needed - len(self.approvals)
        if remaining <= 0:
            self.outcome = ReviewOutcome.APPROVED
        more = f"; {remaining} more approval needed" if remaining > 0 else ""
        return Ruling(record, None, f"approved by {reviewer}{more}")

    def time_out(self, action: TimeoutAction) -> None:
        """No decision in time: the policy's action decides."""
        if action is TimeoutAction.APPROVE:
            self.outcome = ReviewOutcome.APPROVED
        else:
            self.outcome = ReviewOutcome.REJECTED

    @property
    def rejection(self) -> str:
        """Who rejected, and why, for the cash-out's outcome."""
        last = next(r for r in reversed(self.records) if r.accepted)
        return f"rejected by {last.reviewer}" + (f": {last.reason}" if last.reason else "")


def escalate(decided: tuple[Verdict, str, int], reasons: list[str]) -> tuple[Verdict, str, int]:
    """Send a cash-out to review for `reasons` the policy's amounts and scores do not see:
    an approval becomes a review by one reviewer; a review keeps its approvals and shows the
    reasons too; a rejection stays one."""
    verdict, why, approvals = decided
    if not reasons or verdict is Verdict.REJECT:
        return decided
    if verdict is Verdict.AUTO_APPROVE:
        return Verdict.REVIEW, "; ".join(reasons), 1
    return verdict, "; ".join([why, *reasons]), approvals
