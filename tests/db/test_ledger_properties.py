"""Property tests: random sequences of credits, reversals, maturations, cash-outs and returns
keep the books, on SQLite and PostgreSQL.

After every step: per-currency conservation (earned - reversed = paid out + fees + held +
available + pending - owed), every transaction's legs sum to zero, balances equal the sum of
their legs, no user balance is negative and no owed one above zero (`audit`), and every
balance (pending, available, held, owed), every total and every owed notification equals an
independent in-memory model, which knows the settlement rule (money that becomes available
pays back what is owed first) and what reversals took of each earning.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from payouts.errors import (
    IdempotencyConflict,
    InsufficientFunds,
    InvalidState,
    OwedBalance,
    ReversalRefused,
)
from payouts.ledger import EarningRow, Ledger
from payouts.ledger.reversals import ReversalRow, ReversalSummary
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us
from tests.support.databases import PG_URL, FakeClock, require_postgres

USERS = ("u0", "u1", "u2")
CURRENCIES = ("USD", "KRW")
HOLD_US = 72 * 3_600_000_000
PENDING, AVAILABLE, HELD, OWED = range(4)
amounts = st.integers(min_value=1, max_value=50_000_000)
allowances = st.one_of(st.just(0), amounts)
ages = st.one_of(st.integers(0, 71), st.integers(72, 200))  # hours: pending, or matured already
modes = st.sampled_from(["raise", "skip"])
# (aim at a cashed-out payee, which earning, all or part, how much, a twist): see `_row`
TWISTS = (None,) * 10 + ("named",) * 2 + ("over", "unknown", "wrong_user", "wrong_currency")
row_specs = st.tuples(
    st.booleans(),
    st.integers(min_value=0, max_value=63),
    st.sampled_from(["all", "part"]),
    st.integers(min_value=1, max_value=1000),
    st.sampled_from(TWISTS),
)
RowSpec = tuple[bool, int, str, int, str | None]
# a payee: an index among those whose balances make the step interesting, or any (`_payee`)
payees = st.one_of(
    st.integers(min_value=0, max_value=7),
    st.tuples(st.sampled_from(USERS), st.sampled_from(CURRENCIES)),
)
# why a row is refused, and the words of the ledger's reason for it
REFUSALS = {
    "in_batch": "appears twice in this batch with different content",
    "conflict": "with other content",
    "unknown": "no earning was credited with this event id",
    "mismatch": "this row says",
    "full": "is already reversed in full",
    "over": "is more than the",
}
CONFLICTS = ("in_batch", "conflict")


def why_refused(reason: str) -> str:
    """The kind of refusal (a key of REFUSALS) the ledger's reason text says."""
    return next(why for why, words in REFUSALS.items() if words in reason)


@dataclass
class Earned:
    user: str
    cur: str
    amount: int
    matures: int
    matured: bool
    reversed: int = 0


@dataclass
class Outcome:
    """What a batch of reversals should do, worked out by the model."""

    applied: list[str] = field(default_factory=list)
    duplicates: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # rid, event, why
    amount: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    owed: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # before, after, rids

    @property
    def conflict(self) -> bool:
        return any(why in CONFLICTS for _, _, why in self.refused)


@dataclass
class Model:
    """The books as they should be, computed without the ledger."""

    balances: dict[tuple[str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0])
    )
    earnings: dict[str, Earned] = field(default_factory=dict)
    # reversal id -> event, amount taken, why, amount asked (None: all that was left), payee,
    # currency
    reversals: dict[str, tuple[str, int, str, int | None, str, str]] = field(default_factory=dict)
    money: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )  # currency -> earned, reversed, paid_out, fees
    notes: dict[str, tuple[str, str, int, int, list[str]]] = field(default_factory=dict)

    def release(self, user: str, cur: str, amount: int, how: str) -> None:
        """Money becomes available: it pays back what is owed first."""
        bal = self.balances[(user, cur)]
        settled = min(bal[OWED], amount)
        if settled:
            event(f"settled owed: {how}")
        bal[AVAILABLE] += amount - settled
        bal[OWED] -= settled

    def credit(self, row: EarningRow, now: int) -> None:
        assert row.earned_at is not None
        matures = row.earned_at + HOLD_US
        self.earnings[row.event_id] = Earned(
            row.user_id, row.currency, row.amount, matures, matures <= now
        )
        self.money[row.currency]["earned"] += row.amount
        if matures <= now:
            self.release(row.user_id, row.currency, row.amount, "credited mature")
        else:
            self.balances[(row.user_id, row.currency)][PENDING] += row.amount

    def reverse(self, rows: list[ReversalRow]) -> Outcome:
        """Apply a batch of reversals as `skip` mode would; the caller keeps or drops the
        changed model (`raise` mode writes nothing when anything is refused)."""
        out = Outcome()
        seen: dict[str, ReversalRow] = {}
        fresh: list[ReversalRow] = []
        for row in rows:
            first = seen.get(row.reversal_id)
            if first is None:
                seen[row.reversal_id] = row
                fresh.append(row)
            elif first == row:
                out.duplicates += 1
            else:
                out.refused.append((row.reversal_id, row.event_id, "in_batch"))
        staged: list[ReversalRow] = []
        for row in fresh:
            was = self.reversals.get(row.reversal_id)
            if was is None:
                staged.append(row)
            elif (
                (row.event_id, row.reason, row.amount) == (was[0], was[2], was[3])
                and row.user_id in (None, was[4])
                and row.currency in (None, was[5])
            ):
                out.duplicates += 1
            else:
                out.refused.append((row.reversal_id, row.event_id, "conflict"))
        for row in staged:
            rid, ev = row.reversal_id, row.event_id
            e = self.earnings.get(ev)
            if e is None:
                out.refused.append((rid, ev, "unknown"))
                continue
            if (row.user_id or e.user, row.currency or e.cur) != (e.user, e.cur):
                out.refused.append((rid, ev, "mismatch"))
                continue
            left = e.amount - e.reversed
            amount = left if row.amount is None else row.amount
            if left <= 0 or amount > left:
                out.refused.append((rid, ev, "full" if left <= 0 else "over"))
                continue
            e.reversed += amount
            bal = self.balances[(e.user, e.cur)]
            owed_before = bal[OWED]
            if e.matured:
                taken = min(bal[AVAILABLE], amount)
                bal[AVAILABLE] -= taken
                bal[OWED] += amount - taken
            else:
                bal[PENDING] -= amount
            if bal[OWED] != owed_before:
                change = out.owed.setdefault((e.user, e.cur), [owed_before, 0, []])
                change[1] = bal[OWED]
                change[2].append(rid)
            self.reversals[rid] = (ev, amount, row.reason, row.amount, e.user, e.cur)
            self.money[e.cur]["reversed"] += amount
            out.amount[e.cur] += amount
            out.applied.append(rid)
        return out


class LedgerMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "sqlite"
    holds = Bundle("holds")
    posted = Bundle("posted")
    reversals = Bundle("reversals")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self._tmp: str | None = None
        self._schema: str | None = None
        if self.backend == "sqlite":
            self._tmp = tempfile.mkdtemp()
            url = f"sqlite:///{self._tmp}/l.sqlite3"
        else:
            self._schema = f"p_{uuid.uuid4().hex[:10]}"
            with sa.create_engine(PG_URL).begin() as conn:
                conn.execute(sa.text(f"CREATE SCHEMA {self._schema}"))
            url = f"{PG_URL}?options=-csearch_path%3D{self._schema}"
        self.db = Database(url, pool_size=2)
        self.ledger = Ledger(self.db, hold_hours=72, clock=self.clock)
        self.model = Model()
        self.hold_facts: dict[str, tuple[str, str, int, int]] = {}  # user, cur, amount|gross, fee
        self.event_ids: list[str] = []  # every event id sent, credited or not
        self.events = 0
        self.keys = 0

    def teardown(self) -> None:
        self.db.dispose()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        if self._schema:
            with sa.create_engine(PG_URL).begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {self._schema} CASCADE"))

    def _key(self, what: str) -> str:
        self.keys += 1
        return f"{what}-{self.keys}"

    def _now(self) -> int:
        return to_epoch_us(self.clock.now)

    def _earning(self, user: str, cur: str, amount: int, age_hours: int) -> EarningRow:
        self.events += 1
        self.event_ids.append(f"e{self.events}")
        return EarningRow(
            f"e{self.events}", user, cur, amount, self._now() - age_hours * 3600_000_000
        )

    def _payee(self, choice: tuple[str, str] | int, *wanted: int) -> tuple[str, str]:
        """The payee given, or (`choice` an index) one whose balance of a `wanted` kind is
        above zero, else the one of a recent earning: random steps meet more often."""
        if isinstance(choice, tuple):
            return choice
        found = sorted(k for k, b in self.model.balances.items() if any(b[i] for i in wanted))
        if found:
            return found[choice % len(found)]
        ev = self.event_ids[-1 - choice % len(self.event_ids)] if self.event_ids else ""
        e = self.model.earnings.get(ev)
        return (e.user, e.cur) if e else (USERS[0], CURRENCIES[0])

    # ------------------------------------------------------------------ earnings

    @initialize(funds=st.lists(amounts, min_size=len(USERS), max_size=len(USERS)), age_hours=ages)
    def fund(self, funds: list[int], age_hours: int) -> None:
        """Every payee starts with an earning in one currency (matured, or not yet)."""
        rows = [
            self._earning(user, CURRENCIES[i % len(CURRENCIES)], amount, age_hours)
            for i, (user, amount) in enumerate(zip(USERS, funds, strict=True))
        ]
        self.ledger.credit_earnings(rows)
        for row in rows:
            self.model.credit(row, self._now())

    @rule(
        payee=payees,
        amount=amounts,
        age_hours=ages,
        resend=st.booleans(),
    )
    def earn(self, payee: tuple[str, str] | int, amount: int, age_hours: int, resend: bool) -> None:
        row = self._earning(*self._payee(payee, OWED, HELD), amount, age_hours)
        rows = [row, row] if resend else [row]
        self.ledger.credit_earnings(rows)
        if resend:
            assert self.ledger.credit_earnings([row]).duplicates == 1
        self.model.credit(row, self._now())

    @rule(hours=st.integers(min_value=1, max_value=100))
    def mature(self, hours: int) -> None:
        self.clock.advance(hours=hours)
        now = self._now()
        result = self.ledger.mature_due()
        due = [e for e in self.model.earnings.values() if not e.matured and e.matures <= now]
        moved: dict[str, int] = defaultdict(int)
        for e in due:
            e.matured = True
            left = e.amount - e.reversed  # what reversals took stays behind
            self.model.balances[(e.user, e.cur)][PENDING] -= left
            self.model.release(e.user, e.cur, left, "matured")
            moved[e.cur] += left
        assert result.earnings == len(due)
        assert {c: a for c, a in result.amount.items() if a} == {
            c: a for c, a in moved.items() if a
        }

    # ------------------------------------------------------------------ reversals

    def _row(self, spec: RowSpec) -> ReversalRow:
        """A fresh reversal of an earning sent before (`pick` back from the last; `aim`: of
        the matured ones whose payee has cashed out, so that reversals meet cash-outs): all
        that is left or a part of it; with a twist: naming its payee (a file row), more than
        is left, an event nobody sent, naming another payee or currency."""
        aim, pick, how, permille, twist = spec
        self.keys += 1
        rid = f"r{self.keys}"
        if twist == "unknown" or not self.event_ids:
            return ReversalRow(rid, f"nowhere-{rid}", None, "no such task")
        cashed_out = {(user, cur) for user, cur, _, _ in self.hold_facts.values()}
        aimed = [
            ev
            for ev in self.event_ids
            if (e := self.model.earnings.get(ev))
            and e.matured
            and e.reversed < e.amount
            and (e.user, e.cur) in cashed_out
        ]
        candidates = aimed if aim and aimed else self.event_ids
        ev = candidates[-1 - pick % len(candidates)]
        e = self.model.earnings.get(ev)  # None: a batch that was refused as a whole
        left = e.amount - e.reversed if e else 1
        user, cur = (e.user, e.cur) if e else ("u0", "USD")
        amount = None if how == "all" else max(1, left * permille // 1000)
        named = {
            "named": (user, cur),
            "wrong_user": (USERS[(USERS.index(user) + 1) % len(USERS)], None),
            "wrong_currency": (None, "KRW" if cur == "USD" else "USD"),
        }.get(twist or "", (None, None))
        if twist == "over":
            amount = left + permille
        return ReversalRow(rid, ev, amount, f"taken back ({how}, {twist})", *named)

    def _reverse(
        self, rows: list[ReversalRow], mode: str, apply: Callable[[], ReversalSummary | None]
    ) -> Any:
        """Run `apply` (which sends `rows` under `mode`) against the model's expectation:
        with `raise`, any refusal raises and changes nothing; with `skip`, refused rows are
        listed with their reason and the others applied. Returns the applied reversal ids."""
        after = copy.deepcopy(self.model)
        expect = after.reverse(rows)
        if mode == "raise" and expect.refused:
            error = IdempotencyConflict if expect.conflict else ReversalRefused
            with pytest.raises(error) as exc:
                apply()
            assert any(f"event_id {ev!r}" in str(exc.value) for _, ev, _ in expect.refused)
            event(f"refused whole batch: {error.__name__}")
            return multiple()
        summary = apply()
        assert summary is not None
        got = sorted((r.reversal_id, r.event_id, why_refused(r.reason)) for r in summary.refused)
        for _, _, why in expect.refused:
            event(f"refused row: {why}")
        if expect.owed:
            event("reversal left the payee owing")
        assert got == sorted(expect.refused)
        assert summary.reversed == len(expect.applied)
        assert summary.duplicates == expect.duplicates
        assert dict(summary.amount) == dict(expect.amount)
        changes = {(c.user_id, c.currency): [c.before, c.after] for c in summary.owed_changes}
        assert changes == {k: v[:2] for k, v in expect.owed.items()}
        for (user, cur), (before, after_owed, rids) in expect.owed.items():
            note = f"owed:{summary.transaction_id}:{cur}:{user}"
            after.notes[note] = (user, cur, before, after_owed, rids)
        self.model = after
        return multiple(*expect.applied)

    @rule(
        target=reversals,
        specs=st.lists(row_specs, min_size=1, max_size=3),
        again=st.sampled_from([None, None, None, "same", "other"]),
        mode=modes,
    )
    def reverse_earnings(self, specs: list[RowSpec], again: str | None, mode: str) -> Any:
        """Whole, partial and too large reversals, unknown events, rows naming a wrong payee;
        the first row again in the same batch (a duplicate, or a conflict)."""
        rows = [self._row(spec) for spec in specs]
        if again == "same":
            rows.append(rows[0])
        elif again == "other":
            rows.append(rows[0]._replace(reason="another reason"))
        return self._reverse(
            rows, mode, lambda: self.ledger.reverse_earnings(rows, on_conflict=mode)
        )

    @rule(
        target=reversals,
        rid=reversals,
        how=st.sampled_from(["same", "same_none", "reason", "amount", "event"]),
        extra=st.one_of(st.none(), row_specs),
        mode=modes,
    )
    def resend_reversal(self, rid: str, how: str, extra: RowSpec | None, mode: str) -> Any:
        """A reversal id sent again: the same content is a duplicate (without an amount only
        when it was first sent without one: "all that is left"), other content a conflict;
        maybe beside a fresh row."""
        ev, amount, reason, requested, _, _ = self.model.reversals[rid]
        other_ev = next((e for e in reversed(self.event_ids) if e != ev), f"nowhere-{rid}")
        row = {
            "same": ReversalRow(rid, ev, requested, reason),
            "same_none": ReversalRow(rid, ev, None, reason),
            "reason": ReversalRow(rid, ev, amount, "changed my mind"),
            "amount": ReversalRow(rid, ev, amount + 1, reason),
            "event": ReversalRow(rid, other_ev, amount, reason),
        }[how]
        rows = [row] if extra is None else [self._row(extra), row]
        return self._reverse(
            rows, mode, lambda: self.ledger.reverse_earnings(rows, on_conflict=mode)
        )

    @rule(
        target=reversals,
        payee=payees,
        amount=amounts,
        age_hours=ages,
        own=st.sampled_from([None, "all", "part", "over"]),
        specs=st.lists(row_specs, max_size=2),
        mode=modes,
    )
    def credit_with_reversals(
        self,
        payee: tuple[str, str] | int,
        amount: int,
        age_hours: int,
        own: str | None,
        specs: list[RowSpec],
        mode: str,
    ) -> Any:
        """A file's earnings and reversals in one transaction: the reversals (maybe of the
        earning credited in the same batch) apply after the earnings, or nothing does."""
        row = self._earning(*self._payee(payee, OWED, HELD), amount, age_hours)
        before = self.model
        self.model = copy.deepcopy(before)
        self.model.credit(row, self._now())  # the reversals see the earning
        rows = [self._row(spec) for spec in specs]
        if own is not None:
            twist = "over" if own == "over" else None
            spec = (False, 0, "all" if own == "all" else "part", 500, twist)
            rows.insert(0, self._row(spec))  # pick 0: event_ids[-1], this earning
        whole_refused = mode == "raise" and bool(copy.deepcopy(self.model).reverse(rows).refused)

        def apply() -> ReversalSummary | None:
            summary = self.ledger.credit_earnings([row], reversals=rows, on_conflict=mode)
            assert summary.credited == 1
            return summary.reversals if rows else ReversalSummary()

        applied = self._reverse(rows, mode, apply)
        if whole_refused:
            self.model = before  # nothing was written: the earning is not there either
        return applied

    # ------------------------------------------------------------------ cash-outs

    @rule(
        target=holds,
        payee=payees,
        permille=st.one_of(st.just(1000), st.integers(min_value=1, max_value=1100)),
        allowances=st.one_of(st.none(), st.dictionaries(st.sampled_from(CURRENCIES), allowances)),
    )
    def reserve(
        self, payee: tuple[str, str] | int, permille: int, allowances: dict[str, int] | None
    ) -> str:
        """A cash-out of a share of the available balance (sometimes more than all of it):
        refused while the payee owes more than the allowance in any currency (none given:
        nothing may be owed), else while the available balance is short."""
        user, cur = self._payee(payee, AVAILABLE, OWED)
        hold = self._key("hold")
        bal = self.model.balances[(user, cur)]
        amount = bal[AVAILABLE] * permille // 1000 or permille
        owes = any(
            b[OWED] > (allowances or {}).get(c, 0)
            for (u, c), b in self.model.balances.items()
            if u == user
        )
        try:
            self.ledger.reserve(
                key=f"{hold}:r",
                hold_id=hold,
                user_id=user,
                currency=cur,
                amount=amount,
                owed_allowances=allowances,
            )
        except OwedBalance:
            event("reserve refused: owed")
            assert owes
            return "none"
        except InsufficientFunds:
            assert not owes and bal[AVAILABLE] < amount
            return "none"
        assert not owes and bal[AVAILABLE] >= amount
        bal[AVAILABLE] -= amount
        bal[HELD] += amount
        self.hold_facts[hold] = (user, cur, amount, 0)
        return hold

    @rule(
        target=posted,
        hold=consumes(holds),
        paid_permille=st.integers(1, 1000),
        fee_permille=st.integers(0, 1000),
    )
    def post(self, hold: str, paid_permille: int, fee_permille: int) -> str:
        if hold not in self.hold_facts:
            return "none"
        user, cur, amount, _ = self.hold_facts[hold]
        gross = max(1, amount * paid_permille // 1000)
        fee = gross * fee_permille // 1000
        self.ledger.post(key=f"{hold}:p", hold_id=hold, gross=gross, fee=fee)
        self.model.balances[(user, cur)][HELD] -= amount
        self.model.release(user, cur, amount - gross, "unpaid rest")
        self.model.money[cur]["paid_out"] += gross - fee
        self.model.money[cur]["fees"] += fee
        self.hold_facts[hold] = (user, cur, gross, fee)
        return hold

    @rule(hold=consumes(holds))
    def void(self, hold: str) -> None:
        if hold not in self.hold_facts:
            return
        user, cur, amount, _ = self.hold_facts.pop(hold)
        self.ledger.void(key=f"{hold}:v", hold_id=hold, reason="test")
        self.model.balances[(user, cur)][HELD] -= amount
        self.model.release(user, cur, amount, "void")

    @rule(hold=consumes(posted))
    def reverse(self, hold: str) -> None:
        """A return: the rail gave the payout back; gross and fee go back to the payee."""
        if hold not in self.hold_facts:
            return
        user, cur, gross, fee = self.hold_facts.pop(hold)
        self.ledger.reverse(key=f"{hold}:x", hold_id=hold, reason="returned")
        self.model.release(user, cur, gross, "return")
        self.model.money[cur]["paid_out"] -= gross - fee
        self.model.money[cur]["fees"] -= fee
        with pytest.raises(InvalidState):
            self.ledger.reverse(key=f"{hold}:x2", hold_id=hold, reason="twice")

    # ------------------------------------------------------------------ after every step

    @invariant()
    def books_balance(self) -> None:
        assert self.ledger.audit() == []
        for cur in CURRENCIES:
            t = self.ledger.totals(cur)
            m = self.model.money[cur]
            assert (t.earned, t.reversed, t.paid_out, t.fees) == (
                m["earned"],
                m["reversed"],
                m["paid_out"],
                m["fees"],
            )
            mine = [b for (_, c), b in self.model.balances.items() if c == cur]
            sums = [sum(b[i] for b in mine) for i in (PENDING, AVAILABLE, HELD, OWED)]
            assert [t.pending, t.available, t.held, t.owed] == sums
            assert t.earned - t.reversed == (
                t.paid_out + t.fees + t.held + t.available + t.pending - t.owed
            )
            assert t.conserved

    @invariant()
    def balances_match_the_model(self) -> None:
        for (user, cur), bal in self.model.balances.items():
            assert min(bal) >= 0, (user, cur, bal)
            assert bal[OWED] == 0 or bal[AVAILABLE] == 0  # what is owed is settled first
        for user in USERS:
            got = {
                b.currency: [b.pending, b.available, b.held, b.owed]
                for b in self.ledger.balances(user)
            }
            want = {c: b for (u, c), b in self.model.balances.items() if u == user and any(b)}
            assert {c: b for c, b in got.items() if any(b)} == want
            assert all(min(b) >= 0 for b in got.values())  # owed too: shown as >= 0

    @invariant()
    def owed_notifications_match_the_model(self) -> None:
        with self.db.read_connection() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT event_id, user_id, payload_json FROM notifications "
                    "WHERE stage = 'OWED_CHANGED'"
                )
            ).all()
        got = {}
        for event_id, user, payload_json in rows:
            p = json.loads(payload_json)
            got[event_id] = (
                user,
                p["currency"],
                p["owed_before"],
                p["owed_after"],
                p["reversal_ids"],
            )
        assert got == self.model.notes


class PostgresLedgerMachine(LedgerMachine):
    backend = "postgresql"


_common = settings(
    deadline=None,
    stateful_step_count=30,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestLedgerPropertiesSQLite = LedgerMachine.TestCase
TestLedgerPropertiesSQLite.settings = settings(_common, max_examples=25)


@pytest.fixture
def _postgres() -> None:
    require_postgres()


@pytest.mark.usefixtures("_postgres")
class TestLedgerPropertiesPostgres(PostgresLedgerMachine.TestCase):  # type: ignore[name-defined,misc]
    settings = settings(_common, max_examples=9)
