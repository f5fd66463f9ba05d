"""Hostile input, generated: the client API's request rules, the CLI and ingest files.

Every rejection must be a `PayoutError` whose message starts with the field it is about
(`field: rule`), nothing may be half-written, and the run counts what it tried (printed in
the test summary).
"""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts import cli
from payouts.config.policy_file import load_policy
from payouts.domain.money import CURRENCIES, INT64_MAX
from payouts.domain.policy import Policy
from payouts.domain.requests import build_input
from payouts.errors import IngestRefused, PayoutError
from payouts.ledger import Ledger
from payouts.ledger.ingest import ingest_file

TRIED: Counter[str] = Counter()
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
POLICY = load_policy()
FIELD = re.compile(r"^[a-z_.\-A-Z]+[a-zA-Z_.]*: |^quote: ")

TRICKS = [
    "\u202e",
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u0000",
    "\u2028",
    "\u061c",
    "\u2066",
    "Ａｌｉｃｅ",
    "аlice",
    "ｉｂａｎ",
    "Ω",
    "名字",
    "🙂",
    "\n",
    "\t",
    "'",
    '"',
    ";--",
    "%s",
]

junk_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(TRICKS).flatmap(lambda t: st.text(max_size=8).map(lambda s: s + t + s)),
    st.sampled_from(["", " ", "alice", "a" * 200, "DE89370400440532013000", "null"]),
)
amounts = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, INT64_MAX, INT64_MAX + 1, True, None, "12.50", "1e3", "NaN"]),
)
currencies = st.one_of(
    st.sampled_from([*sorted(CURRENCIES)[:5], "usd", "XXX", "", "US D"]), junk_text
)
methods = st.one_of(
    st.sampled_from(["bank_transfer", "wallet", "gift_card", "cheque", ""]), junk_text
)
ibans = st.one_of(
    st.sampled_from(
        [
            "DE89370400440532013000",
            "DE89370400440532013001",
            "GB33BUKB20201555555555",
            "FR1420041010050500013M02606",
            "DE00123",
            "XX89370400440532013000",
        ]
    ),
    st.text(alphabet=string.ascii_uppercase + string.digits + " ", max_size=40),
)


def _check_refusal(exc: PayoutError) -> None:
    """A refusal names its field and rule, on one line, in a bounded message."""
    assert FIELD.match(exc.message), exc.message
    assert "\n" not in exc.message and len(exc.message) < 2000


@given(
    request_id=junk_text,
    user_id=junk_text,
    amount=amounts,
    currency=currencies,
    method=methods,
    destination=st.one_of(junk_text, ibans),
    holder=st.one_of(st.none(), junk_text),
)
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_client_request_rules(
    request_id: object,
    user_id: object,
    amount: object,
    currency: object,
    method: object,
    destination: object,
    holder: object,
) -> None:
    """Random requests: either a sound workflow input, or a refusal naming the field."""
    TRIED["client requests"] += 1
    try:
        inp = build_input(
            POLICY,
            request_id=request_id,
            user_id=user_id,
            amount=amount,  # type: ignore[arg-type]
            currency=currency,
            method=method,
            destination=destination,
            holder=holder,  # type: ignore[arg-type]
            now=NOW,
        )
    except PayoutError as exc:
        _check_refusal(exc)
        return
    assert isinstance(inp.request.amount, int) and 0 < inp.request.amount <= INT64_MAX
    assert inp.request.request_id.isascii() and inp.request.user_id.isascii()
    assert inp.quote.gross + inp.quote.remainder == inp.request.amount
    assert inp.rules.currency in CURRENCIES


def test_duplicate_and_conflicting_request_ids_offline(policy: Policy) -> None:
    """The same request twice builds the same fingerprint; any change of content changes it
    (the client compares fingerprints to refuse a reused id)."""
    from payouts.temporal.starting import request_fingerprint

    rng = random.Random(5)
    for _ in range(300):
        TRIED["request id pairs"] += 1
        base = dict(
            request_id="r-1",
            user_id="u1",
            amount=rng.randint(10, 500) * 1_000_000,
            currency="USD",
            method="wallet",
            destination="u1@example.com",
        )
        first = build_input(policy, now=NOW, **base)  # type: ignore[arg-type]
        again = build_input(policy, now=NOW, **base)  # type: ignore[arg-type]
        assert request_fingerprint(first) == request_fingerprint(again)
        key = rng.choice(["amount", "destination", "user_id"])
        changed = {
            **base,
            key: {"amount": base["amount"] + 10_000, "destination": "x@y.zz", "user_id": "u2"}[key],
        }
        assert request_fingerprint(build_input(policy, now=NOW, **changed)) != request_fingerprint(
            first
        )  # type: ignore[arg-type]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))
    cli.env.reset()
    return cli.env


@given(
    args=st.lists(
        st.one_of(
            junk_text,
            st.sampled_from(["--currency", "-c", "--json", "USD", "1.5", "-1", "NaN", "1e9"]),
        ),
        max_size=5,
    ),
    command=st.sampled_from(["earn", "quote", "balance"]),
)
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_cli_never_crashes(cli_env, capsys, command: str, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Any argv: exit 0, or 1/2 with a one-line message and no traceback; the books stay
    sound whatever was refused."""
    TRIED["CLI invocations"] += 1
    argv = [command, *args]
    if command == "quote":
        argv += ["--method", "wallet"]
    code = cli.run(argv)
    captured = capsys.readouterr()
    assert code in (0, 1, 2), (argv, captured.err)
    assert "Traceback" not in captured.err
    if code == 1:
        assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert cli_env.ledger.audit() == []


lines = st.one_of(
    st.builds(
        lambda e, u, a, c: f"{e},{u},{a},{c}",
        junk_text,
        junk_text,
        st.one_of(st.decimals(allow_nan=True).map(str), junk_text),
        currencies,
    ),
    st.text(max_size=60),
    st.sampled_from(
        [
            "e1,u1,1.00,USD",
            "e2,u1,0.000001,EUR",
            "e1,u1,2.00,USD",
            "e3,u2,1,KRW,2026-01-01T00:00:00Z",
            "e4,u2,1,USD,2026-01-01T00:00:00",
        ]
    ),
)


@given(body=st.lists(lines, min_size=1, max_size=12))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_ingest_files_are_all_or_nothing(tmp_path: Path, body: list[str]) -> None:
    """A random file: in strict mode everything is credited or nothing is; with a rejects
    file, every line is credited, a duplicate, or rejected with a reason."""
    from payouts.store.database import Database

    TRIED["ingest files"] += 1
    case = tmp_path / f"case-{TRIED['ingest files']}"
    case.mkdir()
    path = case / "e.csv"
    path.write_text("\n".join(["event_id,user_id,amount,currency", *body]) + "\n", encoding="utf-8")
    ledger = Ledger(Database(f"sqlite:///{case / 'l.sqlite3'}"))
    before = {c: ledger.totals(c).earned for c in ("USD", "EUR", "KRW")}
    refusal: str | None = None
    try:
        report = ingest_file(ledger, path, now=NOW)
    except IngestRefused as exc:
        refusal = exc.message
    if refusal is not None:
        assert "refused, nothing written" in refusal or "header" in refusal
        assert {c: ledger.totals(c).earned for c in before} == before
    else:
        assert report.rejected == []
    report = ingest_file(ledger, path, rejects=case / "r.csv", now=NOW)
    assert report.rows == report.credited + report.duplicates + len(report.rejected)
    for r in report.rejected:
        assert r.line > 0 and r.reason
    assert ledger.audit() == []
    ledger.db.dispose()


def test_zz_inputs_were_tried() -> None:
    """Runs last in this module: the generators did run (the count is printed in the
    test summary)."""
    assert sum(TRIED.values()) > 0
