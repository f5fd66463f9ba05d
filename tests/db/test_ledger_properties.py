"""Property tests: random sequences of earn/mature/reserve/post/void/reverse keep the books.

After every step: per-currency conservation (earned = paid out + fees + held + available +
pending), every transaction's legs sum to zero, balances equal the sum of their legs, no
user balance is negative, and every balance equals an independent in-memory model.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import defaultdict
from typing import ClassVar

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from payouts.errors import InsufficientFunds, InvalidState
from payouts.ledger import EarningRow, Ledger
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us
from tests.support.databases import PG_URL, FakeClock, require_postgres

USERS = ("u0", "u1", "u2")
CURRENCIES = ("USD", "KRW")
amounts = st.integers(min_value=1, max_value=50_000_000)


class LedgerMachine(RuleBasedStateMachine):
    backend: ClassVar[str] = "sqlite"
    holds = Bundle("holds")
    posted = Bundle("posted")

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
        # the model: (user, currency) -> [pending, available, held]; holds -> facts
        self.model: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.immature: list[tuple[int, str, str, int]] = []  # (matures_at_us, user, cur, amt)
        self.hold_facts: dict[str, tuple[str, str, int]] = {}
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

    @rule(
        user=st.sampled_from(USERS),
        cur=st.sampled_from(CURRENCIES),
        amount=amounts,
        age_hours=st.integers(min_value=0, max_value=200),
        resend=st.booleans(),
    )
    def earn(self, user: str, cur: str, amount: int, age_hours: int, resend: bool) -> None:
        self.events += 1
        earned = to_epoch_us(self.clock.now) - age_hours * 3_600_000_000
        row = EarningRow(f"e{self.events}", user, cur, amount, earned)
        rows = [row, row] if resend else [row]
        self.ledger.credit_earnings(rows)
        if resend:
            assert self.ledger.credit_earnings([row]).duplicates == 1
        matures = earned + 72 * 3_600_000_000
        if matures <= to_epoch_us(self.clock.now):
            self.model[(user, cur)][1] += amount
        else:
            self.model[(user, cur)][0] += amount
            self.immature.append((matures, user, cur, amount))

    @rule(hours=st.integers(min_value=1, max_value=100))
    def mature(self, hours: int) -> None:
        self.clock.advance(hours=hours)
        now = to_epoch_us(self.clock.now)
        self.ledger.mature_due()
        still = []
        for item in self.immature:
            matures, user, cur, amount = item
            if matures <= now:
                self.model[(user, cur)][0] -= amount
                self.model[(user, cur)][1] += amount
            else:
                still.append(item)
        self.immature = still

    @rule(
        target=holds, user=st.sampled_from(USERS), cur=st.sampled_from(CURRENCIES), amount=amounts
    )
    def reserve(self, user: str, cur: str, amount: int) -> str:
        hold = self._key("hold")
        bal = self.model[(user, cur)]
        try:
            self.ledger.reserve(
                key=f"{hold}:r", hold_id=hold, user_id=user, currency=cur, amount=amount
            )
        except InsufficientFunds:
            assert bal[1] < amount
            return "none"
        assert bal[1] >= amount
        bal[1] -= amount
        bal[2] += amount
        self.hold_facts[hold] = (user, cur, amount)
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
        user, cur, amount = self.hold_facts[hold]
        gross = max(1, amount * paid_permille // 1000)
        fee = gross * fee_permille // 1000
        self.ledger.post(key=f"{hold}:p", hold_id=hold, gross=gross, fee=fee)
        bal = self.model[(user, cur)]
        bal[2] -= amount
        bal[1] += amount - gross
        self.hold_facts[hold] = (user, cur, gross)
        return hold

    @rule(hold=consumes(holds))
    def void(self, hold: str) -> None:
        if hold not in self.hold_facts:
            return
        user, cur, amount = self.hold_facts.pop(hold)
        self.ledger.void(key=f"{hold}:v", hold_id=hold, reason="test")
        bal = self.model[(user, cur)]
        bal[2] -= amount
        bal[1] += amount

    @rule(hold=consumes(posted))
    def reverse(self, hold: str) -> None:
        if hold not in self.hold_facts:
            return
        user, cur, gross = self.hold_facts.pop(hold)
        self.ledger.reverse(key=f"{hold}:x", hold_id=hold, reason="returned")
        self.model[(user, cur)][1] += gross
        with pytest.raises(InvalidState):
            self.ledger.reverse(key=f"{hold}:x2", hold_id=hold, reason="twice")

    @invariant()
    def books_balance(self) -> None:
        assert self.ledger.audit() == []
        for cur in CURRENCIES:
            assert self.ledger.totals(cur).conserved

    @invariant()
    def balances_match_the_model(self) -> None:
        for (user, cur), (pending, available, held) in self.model.items():
            bal = self.ledger.balance(user, cur)
            assert (bal.pending, bal.available, bal.held) == (pending, available, held)


class PostgresLedgerMachine(LedgerMachine):
    backend = "postgresql"


_common = settings(
    deadline=None,
    stateful_step_count=20,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TestLedgerPropertiesSQLite = LedgerMachine.TestCase
TestLedgerPropertiesSQLite.settings = settings(_common, max_examples=40)


@pytest.fixture
def _postgres() -> None:
    require_postgres()


@pytest.mark.usefixtures("_postgres")
class TestLedgerPropertiesPostgres(PostgresLedgerMachine.TestCase):  # type: ignore[name-defined,misc]
    settings = settings(_common, max_examples=15)
