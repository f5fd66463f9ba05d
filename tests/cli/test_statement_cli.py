"""`payouts statement USER`: the payee's statement as a table, CSV and JSON Lines, and its
one-line errors naming the flag."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from payouts import cli
from payouts.cli.common import out
from payouts.config.settings import Settings
from payouts.domain.money import format_micros
from payouts.ledger import Ledger
from payouts.ledger.reversals import ReversalRow
from payouts.store.database import Database
from tests.db.test_statement import history
from tests.support.databases import FakeClock

Run = Callable[..., tuple[int, str, str]]
FIELDS = ("pending", "available", "held", "owed")


@pytest.fixture
def run_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Run:
    """The CLI on a fresh data folder whose ledger holds alice's history (two currencies,
    cash-outs paid, voided, returned, reversals, what she owes and its settlements)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYOUTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("PAYOUTS_DATABASE_URL", raising=False)
    monkeypatch.delenv("PAYOUTS_POLICY", raising=False)
    monkeypatch.setattr(out, "_width", 220)  # a wide terminal: table cells unwrapped
    db = Database(Settings().ledger_url)
    clock = FakeClock()
    ledger = Ledger(db, clock=clock)
    history(ledger, clock)
    ledger.reverse_earnings([ReversalRow("=1+1", "a-30", None, "fraud")])
    db.dispose()

    def run(*args: str) -> tuple[int, str, str]:
        cli.env.reset()
        code = cli.run(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def balances(run_cli: Run) -> dict[str, dict[str, int]]:
    code, text, _ = run_cli("balance", "alice", "--json")
    assert code == 0
    return {b["currency"]: b for b in json.loads(text)}


def test_table_shows_lines_and_balances(run_cli: Run) -> None:
    """The table shows opening, each movement with its change and balances, closing."""
    code, text, err = run_cli("statement", "alice", "--currency", "usd")
    assert code == 0, err
    assert "Statement of alice" in text
    for shown in (
        "opening balance",
        "40 tasks earned on 2026-11-15 (all already available)",
        "cash-out a paid: 5.99 USD sent, fee 0.35 USD, 5.64 USD to you",
        "earning a-p0 reversed (price adjusted): 0.05 USD from pending",
        "2.00 USD of what you owe paid back from cash-out b, voided",
        "available -6.00, held +6.00",
        "closing balance",
    ):
        assert shown in text, shown
    assert "EUR" not in text
    closing = next(line for line in text.splitlines() if "closing balance" in line)
    cells = [c.strip() for c in closing.split("│")]
    usd = balances(run_cli)["USD"]
    assert cells[-6:-2] == [format_micros(usd[k], "USD") for k in FIELDS]


def test_csv_streams_decimal_amounts_and_safe_cells(run_cli: Run) -> None:
    """--csv writes decimal amounts, the ledger's closing balances, formulas defused."""
    code, text, err = run_cli("statement", "alice", "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["kind"] for r in rows[:2]] == ["opening", "opening"]
    closing = {r["currency"]: r for r in rows if r["kind"] == "closing"}
    for cur, bal in balances(run_cli).items():
        for field in FIELDS:
            assert closing[cur][field] == format_micros(bal[field], cur), (cur, field)
    paid = next(r for r in rows if r["kind"] == "cashout_paid")
    assert (paid["reference"], paid["held_change"], paid["available_change"]) == (
        "cashout-a", "-6.00", "0.01",
    )  # fmt: skip
    assert any(r["reference"] == "'=1+1" for r in rows)
    assert not any(r["reference"].startswith("=") for r in rows)


def test_json_lines_carry_micro_units(run_cli: Run) -> None:
    """--json writes JSON Lines with micro-unit ints and the ledger's closing balances."""
    code, text, err = run_cli("statement", "alice", "--json")
    assert code == 0, err
    lines = [json.loads(line) for line in text.splitlines()]
    closing = {x["currency"]: x["balance"] for x in lines if x["kind"] == "closing"}
    for cur, bal in balances(run_cli).items():
        assert closing[cur] == {k: bal[k] for k in FIELDS}
    returned = next(x for x in lines if x["kind"] == "cashout_returned")
    assert returned["cashout"]["status"] == "reversed" and returned["change"]["available"] == (
        8_000_000
    )
    reversal = next(x for x in lines if x["kind"] == "reversal")
    assert isinstance(reversal["reversal"]["amount"], int)


def test_from_and_to_are_utc_days_to_included(run_cli: Run) -> None:
    """--from DAY opens at its UTC midnight; --to DAY closes after it (the day included)."""
    code, text, err = run_cli(
        "statement", "alice", "--from", "2026-11-20", "--to", "2026-11-20", "--json"
    )
    assert code == 0, err
    lines = [json.loads(line) for line in text.splitlines()]
    assert {x["at"] for x in lines if x["kind"] == "opening"} == {"2026-11-20T00:00:00Z"}
    assert {x["at"] for x in lines if x["kind"] == "closing"} == {"2026-11-21T00:00:00Z"}
    moves = [x for x in lines if x["kind"] not in ("opening", "closing")]
    assert moves and all(x["at"].startswith("2026-11-20") for x in moves)
    code, text, _ = run_cli("statement", "alice", "--from", "2026-11-21T10:00:00+01:00", "--csv")
    assert code == 0 and text.splitlines()[1].startswith("2026-11-21T09:00:00+00:00,")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "nope"), "--from: 'nope' is not a date (YYYY-MM-DD) or an ISO 8601 time"),
        (("--to", "2026-13-01"), "--to: '2026-13-01' is not a date"),
        (("--from", "2026-11-20T10:00"), "--from: '2026-11-20T10:00' is not a date"),
        (("--from", "2026-11-21", "--to", "2026-11-20"), "--to: '2026-11-20' is not after"),
        (("--currency", "ZZZ"), "--currency: 'ZZZ' is not a supported ISO 4217"),
        (("--csv", "--json"), "--csv: choose --csv or --json, not both"),
    ],
)
def test_bad_flags_are_one_line_errors(run_cli: Run, args: tuple[str, ...], message: str) -> None:
    """A bad date, currency or output choice is refused on one line naming the flag, exit 1."""
    code, text, err = run_cli("statement", "alice", *args)
    assert code == 1 and text == ""
    assert message in err and err.strip().count("\n") == 0


def test_a_payee_with_nothing(run_cli: Run) -> None:
    """A payee with no movements gets a sentence, not an empty table; a bad id is refused."""
    assert run_cli("statement", "nobody")[1].strip() == "nobody has no movements"
    code, _, err = run_cli("statement", "bad/user")
    assert code == 1 and "USER: 'bad/user'" in err
