"""Payout profiles in the ledger database, on SQLite and PostgreSQL: saved destinations
(sealed, masked, cooled off, verified once per version, one default per method), automatic
cash-out rules and the sweep's pages, and the platform's event written with each change."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from payouts.domain.cashout import BankAccount, Destination, GiftCardDelivery, WalletAccount
from payouts.domain.policy import Method, Policy
from payouts.domain.profiles import (
    CHANGED,
    AutoRule,
    Every,
    PayeeCheck,
    ProfileAction,
    ProfileChange,
    Verification,
)
from payouts.errors import InvalidInput, NotFound
from payouts.ledger import EarningRow, Ledger
from payouts.payees.profiles import Profiles, auto_page
from payouts.security.vault import Vault, derived_key
from payouts.store.database import Database
from payouts.store.tables import to_epoch_us
from tests.support.databases import FakeClock

KEY = b"fingerprint key of the tests"
IBAN = "DE89370400440532013000"
OTHER_IBAN = "GB82WEST12345698765432"
USD = "USD"
EUR = "EUR"
_changes = itertools.count(1)


@pytest.fixture
def vault() -> Vault:
    return Vault([derived_key("secret of the tests", "gift-codes")])


@pytest.fixture
def profiles(db: Database, vault: Vault, policy: Policy, clock: FakeClock) -> Profiles:
    return Profiles(db, vault=vault, fingerprint_key=KEY, policy=policy, clock=clock)


def change(user: str, action: ProfileAction, clock: FakeClock, **kw: Any) -> ProfileChange:
    return ProfileChange(
        change_id=f"c-{next(_changes):08d}",  # in the order they are made
        user_id=user,
        action=action,
        requested_at=clock.now,
        **kw,
    )


def bank(iban: str = IBAN, holder: str = "Ana Lima") -> BankAccount:
    return BankAccount(iban=iban, holder_name=holder)


def save(
    profiles: Profiles, clock: FakeClock, user: str, dest: Destination, *, default: bool = False
) -> str:
    return profiles.apply(
        change(user, ProfileAction.SAVE, clock, destination=dest, make_default=default)
    )


def set_auto(profiles: Profiles, clock: FakeClock, user: str, rule: AutoRule) -> str:
    return profiles.apply(change(user, ProfileAction.AUTO, clock, auto=rule))


def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def profile_row(db: Database, dst: str) -> Any:
    [row] = rows(db, "SELECT * FROM payout_profiles WHERE id = :id", id=dst)
    return row


def events(db: Database, user: str) -> list[dict[str, Any]]:
    """The platform's events about this payee, oldest first (payload and row)."""
    found = rows(
        db,
        "SELECT event_id, request_id, stage, payload_json FROM notifications "
        "WHERE user_id = :u ORDER BY created_at, event_id",
        u=user,
    )
    return [
        {"event_id": r.event_id, "request_id": r.request_id, "stage": r.stage}
        | json.loads(r.payload_json)
        for r in found
    ]


# ------------------------------------------------------------------ sealed and masked


def test_a_saved_destination_is_sealed_and_shown_masked(
    db: Database, profiles: Profiles, vault: Vault, clock: FakeClock
) -> None:
    """The row keeps the account only sealed (no clear IBAN or holder anywhere in it); what
    is shown is masked; the destination resolves to the full account for a cash-out."""
    dst = save(profiles, clock, "ana", bank())
    row = profile_row(db, dst)
    in_the_clear = " ".join(str(v) for v in row)
    assert IBAN not in in_the_clear and IBAN[-10:] not in in_the_clear
    assert "Ana Lima" not in in_the_clear
    assert row.shown == "IBAN DE** **** 3000"
    assert json.loads(vault.decrypt(row.sealed)) == bank().model_dump(mode="json")
    [shown] = profiles.view("ana").destinations
    assert (shown.id, shown.method, shown.shown) == (dst, Method.BANK_TRANSFER, row.shown)
    destination, facts = profiles.resolve("ana", dst)
    assert destination == bank()
    assert facts.changed_at == clock.now
    assert facts.cooloff_until == clock.now + timedelta(hours=48)  # the bank transfer's


def test_a_wallet_is_masked_too(db: Database, profiles: Profiles, clock: FakeClock) -> None:
    dst = save(profiles, clock, "ana", WalletAccount(wallet_id="ana.wallet@example.org"))
    row = profile_row(db, dst)
    assert row.shown == "a***@example.org"
    assert "ana.wallet" not in row.sealed


# ------------------------------------------------------------------ cool-off and verification


def test_saving_the_same_destination_unchanged_keeps_its_cooloff(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """Saved again as it is (even written with spaces and in lower case), a destination
    keeps its id, its cool-off and its kept answer; the platform hears nothing new."""
    first = clock.now
    dst = save(profiles, clock, "ana", bank())
    profiles.record_verification("ana", dst, first, PayeeCheck(result=Verification.MATCH), at=first)
    clock.advance(hours=30)
    again = save(profiles, clock, "ana", bank(iban="de89 3704 0044 0532 0130 00"))
    assert again == dst
    [saved] = profiles.view("ana").destinations
    assert saved.changed_at == first
    assert saved.cooloff_until == first + timedelta(hours=48)
    assert saved.verification is Verification.MATCH
    assert [e["change"] for e in events(db, "ana")] == ["saved"]


def test_changing_a_destination_restarts_its_cooloff_and_forgets_its_verification(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """The same account with another holder is a change: same id, a new version (changed
    now, cool-off from now) and no verification; the answer kept for the old version no
    longer counts, and one recorded for it now is not written."""
    first = clock.now
    dst = save(profiles, clock, "ana", bank())
    assert profiles.kept_verification("ana", dst, first) is None  # never asked yet
    profiles.record_verification("ana", dst, first, PayeeCheck(result=Verification.MATCH), at=first)
    kept = profiles.kept_verification("ana", dst, first)
    assert kept == PayeeCheck(result=Verification.MATCH, bank_name="", kept=True)

    clock.advance(hours=30)
    second = clock.now
    assert save(profiles, clock, "ana", bank(holder="Ana M. Lima")) == dst
    [saved] = profiles.view("ana").destinations
    assert (saved.changed_at, saved.cooloff_until) == (second, second + timedelta(hours=48))
    assert saved.verification is None and saved.verified_name == ""
    assert profiles.kept_verification("ana", dst, first) is None
    assert profiles.kept_verification("ana", dst, second) is None
    assert profiles.resolve("ana", dst)[0] == bank(holder="Ana M. Lima")

    # the answer for the old version arrives late: nothing is written
    late = PayeeCheck(result=Verification.MATCH)
    profiles.record_verification("ana", dst, first, late, at=clock.now)
    row = profile_row(db, dst)
    assert (row.verification, row.verified_name, row.verified_at) == (None, None, None)
    assert profiles.kept_verification("ana", dst, second) is None

    # the answer for this version is kept, for this version only
    close = PayeeCheck(result=Verification.CLOSE_MATCH, bank_name="ANA MARIA LIMA")
    profiles.record_verification("ana", dst, second, close, at=clock.now)
    assert profiles.kept_verification("ana", dst, second) == PayeeCheck(
        result=Verification.CLOSE_MATCH, bank_name="ANA MARIA LIMA", kept=True
    )
    assert profiles.kept_verification("ana", dst, first) is None
    assert profile_row(db, dst).verified_at == to_epoch_us(clock.now)
    assert [e["change"] for e in events(db, "ana")] == ["saved", "changed"]


# ------------------------------------------------------------------ defaults


def defaults(db: Database, user: str) -> list[tuple[str, str]]:
    return [
        (r.method, r.id)
        for r in rows(
            db,
            "SELECT method, id FROM payout_profiles WHERE user_id = :u AND is_default "
            "ORDER BY method, id",
            u=user,
        )
    ]


def test_at_most_one_default_per_method(db: Database, profiles: Profiles, clock: FakeClock) -> None:
    """A new default replaces the old one of its method (saved as default or made so), and
    leaves the default of another method alone."""
    a = save(profiles, clock, "ana", bank(), default=True)
    wallet = save(profiles, clock, "ana", WalletAccount(wallet_id="+4915112345678"), default=True)
    assert defaults(db, "ana") == [("bank_transfer", a), ("wallet", wallet)]
    b = save(profiles, clock, "ana", bank(OTHER_IBAN), default=True)
    assert defaults(db, "ana") == [("bank_transfer", b), ("wallet", wallet)]
    assert profiles.apply(change("ana", ProfileAction.MAKE_DEFAULT, clock, destination_id=a)) == a
    assert defaults(db, "ana") == [("bank_transfer", a), ("wallet", wallet)]
    shown = {d.id: d.is_default for d in profiles.view("ana").destinations}
    assert shown == {a: True, b: False, wallet: True}
    # another payee's default of the same method is theirs
    bo = save(profiles, clock, "bo", bank(OTHER_IBAN), default=True)
    assert defaults(db, "bo") == [("bank_transfer", bo)]
    assert defaults(db, "ana") == [("bank_transfer", a), ("wallet", wallet)]


def test_the_database_refuses_two_defaults_for_a_method(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """Migration 0006's partial unique index: two active defaults of one payee and method
    written directly are refused; a removed destination does not count."""
    a = save(profiles, clock, "ana", bank(), default=True)
    b = save(profiles, clock, "ana", bank(OTHER_IBAN))
    make = "UPDATE payout_profiles SET is_default = :yes WHERE id = :id"
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.execute(sa.text(make), {"yes": True, "id": b})
    assert defaults(db, "ana") == [("bank_transfer", a)]
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE payout_profiles SET status = 'removed' WHERE id = :id"), {"id": a}
        )
        conn.execute(sa.text(make), {"yes": True, "id": b})
    assert sorted(defaults(db, "ana")) == sorted([("bank_transfer", a), ("bank_transfer", b)])


# ------------------------------------------------------------------ removal and auto rules


def test_removing_a_destination_drops_its_auto_rule(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """Removed, a destination is no longer shown nor resolved, its default is gone, the
    automatic cash-out that paid to it stops, and the platform hears of it; rules paying
    to other destinations stay."""
    a = save(profiles, clock, "ana", bank(), default=True)
    b = save(profiles, clock, "ana", bank(OTHER_IBAN))
    set_auto(profiles, clock, "ana", AutoRule(destination_id=a, currency=USD, threshold=10_000_000))
    set_auto(profiles, clock, "ana", AutoRule(destination_id=b, currency=EUR, every=Every.WEEKLY))
    assert len(rows(db, "SELECT * FROM auto_cashouts WHERE user_id = 'ana'")) == 2

    assert profiles.apply(change("ana", ProfileAction.REMOVE, clock, destination_id=a)) == a
    row = profile_row(db, a)
    assert (row.status, bool(row.is_default)) == ("removed", False)
    assert rows(db, "SELECT destination_id, currency FROM auto_cashouts") == [(b, EUR)]
    view = profiles.view("ana")
    assert [d.id for d in view.destinations] == [b]
    assert [(r.destination_id, r.currency) for r in view.auto] == [(b, EUR)]
    with pytest.raises(NotFound):
        profiles.resolve("ana", a)
    with pytest.raises(NotFound):  # and an automatic cash-out cannot name it again
        set_auto(profiles, clock, "ana", AutoRule(destination_id=a, currency=USD, threshold=10**7))
    assert [e["change"] for e in events(db, "ana")] == ["saved", "saved", "removed"]
    assert events(db, "ana")[-1]["destination_id"] == a


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"threshold": 4_999_999}, "auto.threshold"),
        ({"every": Every.MONTHLY, "minimum": 1_000_000}, "auto.minimum"),
    ],
)
def test_an_auto_amount_below_the_minimum_cashout_is_refused(
    db: Database,
    profiles: Profiles,
    clock: FakeClock,
    policy: Policy,
    rule: dict[str, Any],
    field: str,
) -> None:
    """A threshold or a minimum below the policy's minimum cash-out (5.00 USD) is refused
    naming the field, and the rule in place stays as it was."""
    assert policy.currencies[USD].min_cashout == 5_000_000
    dst = save(profiles, clock, "ana", bank())
    kept = AutoRule(destination_id=dst, currency=USD, threshold=5_000_000)  # exactly the minimum
    set_auto(profiles, clock, "ana", kept)
    before = rows(db, "SELECT * FROM auto_cashouts")
    with pytest.raises(InvalidInput, match=field) as refused:
        set_auto(profiles, clock, "ana", AutoRule(destination_id=dst, currency=USD, **rule))
    assert refused.value.field == field
    assert rows(db, "SELECT * FROM auto_cashouts") == before
    assert profiles.view("ana").auto == (kept,)


def test_an_auto_rule_in_a_currency_not_offered_is_refused(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    dst = save(profiles, clock, "ana", bank())
    with pytest.raises(InvalidInput, match="auto.currency") as refused:
        set_auto(
            profiles, clock, "ana", AutoRule(destination_id=dst, currency="XXX", threshold=10**9)
        )
    assert refused.value.field == "auto"
    assert rows(db, "SELECT * FROM auto_cashouts") == []


# ------------------------------------------------------------------ shared destinations


def test_a_destination_saved_by_two_payees_is_shared_in_both_views(
    profiles: Profiles, clock: FakeClock
) -> None:
    """The same account saved by two payees: each has their own id for it, both see it
    shared (and a cash-out to it is told so); a third payee's own account is not."""
    ana = save(profiles, clock, "ana", bank())
    bo = save(profiles, clock, "bo", bank(iban="DE89 3704 0044 0532 0130 00", holder="Bo Ek"))
    cy = save(profiles, clock, "cy", bank(OTHER_IBAN))
    assert len({ana, bo, cy}) == 3
    assert [d.shared for d in profiles.view("ana").destinations] == [True]
    assert [d.shared for d in profiles.view("bo").destinations] == [True]
    assert [d.shared for d in profiles.view("cy").destinations] == [False]
    assert profiles.resolve("ana", ana)[1].shared
    assert profiles.resolve("bo", bo)[1].shared
    assert not profiles.resolve("cy", cy)[1].shared


# ------------------------------------------------------------------ the sweep's pages


def test_auto_page_pages_in_user_order_with_matured_balances(
    db: Database, profiles: Profiles, ledger: Ledger, clock: FakeClock
) -> None:
    """Pages of at most `limit` rules in (user, currency) order, whatever order they were
    saved in, each with its destination's method and the payee's matured available balance
    in the rule's currency (pending earnings do not count until they mature)."""
    for user in ["dee", "bo", "ana", "cy"]:  # not in user order
        dst = save(profiles, clock, user, bank())
        set_auto(profiles, clock, user, AutoRule(destination_id=dst, currency=USD, threshold=10**8))
        clock.advance(minutes=1)
    gift = save(profiles, clock, "bo", GiftCardDelivery(email="bo@example.org"))
    set_auto(profiles, clock, "bo", AutoRule(destination_id=gift, currency=EUR, every=Every.WEEKLY))

    long_ago = to_epoch_us(clock.now - timedelta(hours=100))
    lately = to_epoch_us(clock.now - timedelta(hours=10))
    ledger.credit_earnings(
        [
            EarningRow("e1", "ana", USD, 7_000_000, long_ago),
            EarningRow("e2", "bo", USD, 1_000_000, long_ago),
            EarningRow("e3", "bo", EUR, 2_500_000, long_ago),
            EarningRow("e4", "bo", USD, 2_000_000, lately),  # pending for 62 more hours
            EarningRow("e5", "dee", USD, 3_000_000, lately),
        ]
    )

    def sweep(limit: int) -> list[list[tuple[str, str, Method, int]]]:
        pages: list[list[tuple[str, str, Method, int]]] = []
        after = ""
        while page := auto_page(db, after, limit):
            assert len(page) <= limit
            pages.append([(o.user_id, o.rule.currency, o.method, o.available) for o in page])
            after = page[-1].cursor
        return pages

    b, g = Method.BANK_TRANSFER, Method.GIFT_CARD
    assert sweep(2) == [
        [("ana", USD, b, 7_000_000), ("bo", EUR, g, 2_500_000)],
        [("bo", USD, b, 1_000_000), ("cy", USD, b, 0)],
        [("dee", USD, b, 0)],
    ]
    assert auto_page(db, "bo|EUR", 1)[0].user_id == "bo"  # after bo's EUR: bo's USD
    assert auto_page(db, "dee|USD", 10) == []

    matured = ledger.mature_due(now=clock.now + timedelta(hours=63))
    assert matured.earnings == 2
    [everyone] = sweep(10)
    assert [(u, c, a) for u, c, _, a in everyone] == [
        ("ana", USD, 7_000_000),
        ("bo", EUR, 2_500_000),
        ("bo", USD, 3_000_000),
        ("cy", USD, 0),
        ("dee", USD, 3_000_000),
    ]


def test_auto_page_visits_every_rule_once_whatever_the_user_ids(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """User ids of mixed case and punctuation (the database's collation orders them): pages
    of one, cursor after cursor, meet every rule exactly once, in the order of one page."""
    users = ["Zed", "ana", "a-b", "a.c", "A_1", "b:2", "ab", "B"]
    for user in users:
        dst = save(profiles, clock, user, WalletAccount(wallet_id=f"w{len(user)}@example.org"))
        for currency in (USD, EUR):
            rule = AutoRule(destination_id=dst, currency=currency, threshold=10**8)
            set_auto(profiles, clock, user, rule)
    whole = [o.cursor for o in auto_page(db, "", 100)]
    assert sorted(whole) == sorted(f"{u}|{c}" for u in users for c in (USD, EUR))
    one_by_one: list[str] = []
    after = ""
    while page := auto_page(db, after, 1):
        one_by_one.append(page[0].cursor)
        after = page[0].cursor
    assert one_by_one == whole


def test_auto_page_skips_rules_of_removed_destinations(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """Only rules paying to an active destination are swept."""
    dst = save(profiles, clock, "ana", bank())
    set_auto(profiles, clock, "ana", AutoRule(destination_id=dst, currency=USD, threshold=10**8))
    with db.engine.begin() as conn:  # as if removed without its rule
        conn.execute(sa.text("UPDATE payout_profiles SET status = 'removed'"))
    assert auto_page(db, "", 10) == []


# ------------------------------------------------------------------ the platform's event


def test_each_change_writes_the_platforms_event(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """Saved, changed and removed: one PAYOUT_DETAILS_CHANGED row each, named after the
    change, naming the destination (never the account)."""
    first = change("ana", ProfileAction.SAVE, clock, destination=bank())
    dst = profiles.apply(first)
    changed = change("ana", ProfileAction.SAVE, clock, destination=bank(holder="A. Lima"))
    profiles.apply(changed)
    gone = change("ana", ProfileAction.REMOVE, clock, destination_id=dst)
    profiles.apply(gone)
    found = events(db, "ana")
    assert [(e["event_id"], e["request_id"], e["stage"], e["change"]) for e in found] == [
        (f"profile-{first.change_id}", first.change_id, CHANGED, "saved"),
        (f"profile-{changed.change_id}", changed.change_id, CHANGED, "changed"),
        (f"profile-{gone.change_id}", gone.change_id, CHANGED, "removed"),
    ]
    assert {e["destination_id"] for e in found} == {dst}
    assert all(IBAN not in json.dumps(e) for e in found)


def test_a_remove_applied_twice_answers_as_the_first(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    """The module promises every change is idempotent: the profile change runs in a local
    activity, which a worker that dies after the commit runs again. Applied again, the same
    remove must answer the same destination and record nothing twice (SAVE, AUTO,
    STOP_AUTO and MAKE_DEFAULT do)."""
    dst = save(profiles, clock, "ana", bank())
    remove = change("ana", ProfileAction.REMOVE, clock, destination_id=dst)
    assert profiles.apply(remove) == dst
    assert profiles.apply(remove) == dst  # the local activity run again
    assert [e["change"] for e in events(db, "ana")] == ["saved", "removed"]


def test_a_failing_save_writes_no_event(
    db: Database, profiles: Profiles, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event is written in the save's own transaction: a save that fails after it was
    recorded (here in making the destination the default) leaves neither the destination
    nor the event; the same change applied again then writes both."""

    def broken(*args: object) -> None:
        raise RuntimeError("the database went away")

    attempt = change("ana", ProfileAction.SAVE, clock, destination=bank(), make_default=True)
    with monkeypatch.context() as patch:
        patch.setattr(profiles, "_make_default", broken)
        with pytest.raises(RuntimeError, match="went away"):
            profiles.apply(attempt)
    assert rows(db, "SELECT id FROM payout_profiles") == []
    assert rows(db, "SELECT event_id FROM notifications") == []

    dst = profiles.apply(attempt)
    assert profile_row(db, dst).is_default
    assert [e["event_id"] for e in events(db, "ana")] == [f"profile-{attempt.change_id}"]


def test_an_invalid_destination_writes_nothing(
    db: Database, profiles: Profiles, clock: FakeClock
) -> None:
    db.ensure_schema()
    with pytest.raises(InvalidInput, match="destination.iban") as refused:
        save(profiles, clock, "ana", bank(iban="DE00370400440532013000"))
    assert refused.value.field == "destination.iban"
    assert rows(db, "SELECT id FROM payout_profiles") == []
    assert rows(db, "SELECT event_id FROM notifications") == []
