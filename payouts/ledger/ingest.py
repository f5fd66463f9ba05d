"""Ingest micro-earnings from a CSV or JSON Lines file (optionally gzip-compressed).

Columns (CSV header, or JSON keys): event_id, user_id, amount, currency[, earned_at[,
reverses, reason]]. `amount` is a decimal string of major units ("0.000125"); `earned_at`
an ISO 8601 time with a timezone (default: now).

A row whose `reverses` names an earning's event id is a reversal of that earning: its own
`event_id` is the reversal's id (its idempotency key), `amount` what is taken back (empty:
all that is left), `reason` says why (required), `user_id` and `currency` must be the
earning's, and `earned_at` stays empty. Reversals apply after the file's earnings (they may
reverse one of them). The whole file is credited in one database transaction:

- strict (default): one bad row refuses the whole file, nothing is written, and the error
  names the line, the field and the rule (the first few bad lines are listed);
- with a rejects file: good rows are credited; each bad one is written to the rejects file
  (line, reason, original text) as CSV.

Re-ingesting a file is harmless: an event id already credited with the same content is
counted as a duplicate and skipped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from payouts.domain import validation
from payouts.domain.money import CURRENCIES, parse_micros
from payouts.errors import (
    IdempotencyConflict,
    IngestRefused,
    InvalidInput,
    PayoutError,
    ReversalRefused,
)
from payouts.ledger import IN_BATCH_CONFLICT, CreditSummary, EarningRow, Ledger
from payouts.ledger.reversals import IN_BATCH_CONFLICT as REVERSAL_IN_BATCH
from payouts.ledger.reversals import ReversalRow, check_reversal
from payouts.store.tables import to_epoch_us

COLUMNS = ("event_id", "user_id", "amount", "currency", "earned_at", "reverses", "reason")
REQUIRED = COLUMNS[:4]
POSITIONAL = (4, 5, 7)  # the column counts a file without a header may have
MAX_LISTED = 20
CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class Rejected:
    line: int
    reason: str
    raw: str


@dataclass
class IngestReport:
    path: str
    rows: int = 0
    credited: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    credited_amount: dict[str, int] = field(default_factory=dict)
    reversed: int = 0
    reversed_amount: dict[str, int] = field(default_factory=dict)
    owed_changes: int = 0  # payees whose owed amount the file's reversals changed


def open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def detect_format(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".txt")):
        return "csv"
    with open_text(path) as fh:
        for line in fh:
            if line.strip():
                return "jsonl" if line.lstrip().startswith("{") else "csv"
    return "csv"


class _RowParser:
    """Turns raw field values into an `EarningRow`, or raises `InvalidInput`."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._times: dict[str, int] = {}

    def __call__(self, values: dict[str, Any]) -> EarningRow | ReversalRow:
        ev = validation.event_id(values.get("event_id"))
        user = validation.user_id(values.get("user_id"))
        reverses = values.get("reverses") or None
        raw_amount = values.get("amount")
        if raw_amount is None or (raw_amount == "" and reverses is None):
            raise InvalidInput("amount: missing", field="amount")
        amount = parse_micros(raw_amount, field="amount", allow_zero=False) if raw_amount else None
        cur = values.get("currency")
        code = cur.strip().upper() if isinstance(cur, str) else None
        if code not in CURRENCIES:
            raise InvalidInput(
                f"currency: {cur!r} is not a supported ISO 4217 currency code", field="currency"
            )
        reason = values.get("reason") or None
        if reverses is not None:
            if values.get("earned_at"):
                raise InvalidInput("earned_at: a reversal row leaves it empty", field="earned_at")
            return check_reversal(
                ReversalRow(
                    ev,
                    validation.event_id(reverses, field="reverses"),
                    amount,
                    reason if isinstance(reason, str) else "",
                    user,
                    code,
                )
            )
        if reason is not None:
            raise InvalidInput(
                "reason: only a reversal row (with reverses) has one", field="reason"
            )
        assert amount is not None
        earned = values.get("earned_at")
        earned_us: int | None
        if earned is None or earned == "":
            earned_us = None
        else:
            cached = self._times.get(earned)
            if cached is None:
                cached = to_epoch_us(
                    validation.timestamp(
                        earned, field="earned_at", now=self.now, max_skew=CLOCK_SKEW
                    )
                )
                if len(self._times) < 100_000:
                    self._times[earned] = cached
            earned_us = cached
        return EarningRow(ev, user, code, amount, earned_us)


Row = EarningRow | ReversalRow


def read_rows(
    fh: IO[str], fmt: str, now: datetime
) -> Iterator[tuple[int, Row | None, str | None, str]]:
    """Yield (line number, row or None, error or None, raw text) for every data line."""
    parse = _RowParser(now)
    if fmt == "jsonl":
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line, parse_float=str, parse_int=str)
                if not isinstance(obj, dict):
                    raise InvalidInput("expected a JSON object per line")
                extra = set(obj) - set(COLUMNS)
                if extra:
                    raise InvalidInput(f"unknown field(s): {', '.join(sorted(extra))}")
                yield number, parse(obj), None, line.rstrip("\n")
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON ({exc.msg})", line.rstrip("\n")
            except PayoutError as exc:
                yield number, None, exc.message, line.rstrip("\n")
        return
    reader = csv.reader(fh)
    header: tuple[str, ...] | None = None
    for record in reader:
        number = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if header is None:
            names = tuple(c.strip().lower() for c in record)
            if names and names[0] == "event_id":
                missing = [c for c in REQUIRED if c not in names]
                unknown = [c for c in names if c not in COLUMNS]
                if missing or unknown:
                    problem = (
                        f"missing column(s) {', '.join(missing)}"
                        if missing
                        else f"unknown column(s) {', '.join(unknown)}"
                    )
                    raise IngestRefused(
                        f"line {number}: header {problem}; expected {','.join(COLUMNS)}"
                    )
                header = names
                continue
            header = COLUMNS[: len(record)] if len(record) in POSITIONAL else COLUMNS[:5]
        raw = ",".join(record)
        if len(record) != len(header):
            yield number, None, f"expected {len(header)} columns, found {len(record)}", raw
            continue
        try:
            yield number, parse(dict(zip(header, record, strict=True))), None, raw
        except PayoutError as exc:
            yield number, None, exc.message, raw


def ingest_file(
    ledger: Ledger,
    path: Path,
    *,
    rejects: Path | None = None,
    fmt: str | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Credit every earning in `path` (see module docstring for the rules)."""
    if not path.is_file():
        raise IngestRefused(f"file: {path} does not exist or is not a file")
    if rejects is not None:
        _check_rejects_path(path, rejects)
    fmt = fmt or detect_format(path)
    report = IngestReport(path=str(path))
    now = now or datetime.now(UTC)
    reversals: list[ReversalRow] = []  # filled while the earnings are read
    lines: dict[str, list[tuple[int, str]]] = {}  # a reversal's id -> its first two lines

    with open_text(path) as fh:
        raw_bytes = getattr(fh, "buffer", None)

        def good_rows() -> Iterator[EarningRow]:
            last = 0
            for number, row, error, raw in read_rows(fh, fmt, now):
                report.rows += 1
                if progress is not None and report.rows % 10_000 == 0:
                    pos = _position(raw_bytes)
                    if pos is not None:
                        progress(pos - last)
                        last = pos
                if isinstance(row, ReversalRow):
                    reversals.append(row)
                    seen = lines.setdefault(row.reversal_id, [])
                    if len(seen) < 2:
                        seen.append((number, raw))
                elif row is not None:
                    yield row
                else:
                    report.rejected.append(Rejected(number, error or "invalid", raw))
                    if rejects is None and len(report.rejected) >= MAX_LISTED:
                        break
            if rejects is None and report.rejected:
                raise IngestRefused(_refusal(path, report))

        try:
            summary = ledger.credit_earnings(
                good_rows(), on_conflict="raise" if rejects is None else "skip", reversals=reversals
            )
        except (IdempotencyConflict, ReversalRefused) as exc:
            found = [rid for rid in lines if f"(reversal {rid!r})" in exc.message]
            where = f"line {_line_of(lines, found[0], exc.message)[0]}: " if found else ""
            raise IngestRefused(f"{path}: refused, nothing written: {where}{exc.message}") from None
    _merge(report, summary)
    for refusal in summary.reversals.refused if summary.reversals else ():
        number, raw = _line_of(lines, refusal.reversal_id, refusal.reason)
        report.rejected.append(
            Rejected(number, f"event_id {refusal.event_id!r}: {refusal.reason}", raw)
        )
    report.rejected.sort(key=lambda r: r.line)
    if summary.conflicts:
        _locate(path, fmt, now, report, summary)
    if rejects is not None:
        _write_rejects(rejects, report.rejected)
    return report


def _line_of(lines: dict[str, list[tuple[int, str]]], rid: str, why: str) -> tuple[int, str]:
    """The line a reversal's refusal is about: the second with its id when two rows of the
    file conflict (the first was applied), else the first."""
    found = lines.get(rid) or [(0, "")]
    return found[-1] if REVERSAL_IN_BATCH in why else found[0]


def _merge(report: IngestReport, summary: CreditSummary) -> None:
    report.credited = summary.credited
    report.duplicates = summary.duplicates
    report.credited_amount = dict(summary.credited_amount)
    if summary.reversals is not None:
        report.reversed = summary.reversals.reversed
        report.duplicates += summary.reversals.duplicates
        report.reversed_amount = dict(summary.reversals.amount)
        report.owed_changes = len(summary.reversals.owed_changes)


def _locate(
    path: Path, fmt: str, now: datetime, report: IngestReport, summary: CreditSummary
) -> None:
    """Name the line of each conflicting row: a second pass over the file, only when there
    are conflicts. It tells rows apart the way `credit_earnings` did: the first row with an
    event id conflicts when the ledger already holds that id with other content; a later
    row conflicts when it differs from the first."""
    with_ledger = {c.event_id: c.reason for c in summary.conflicts if c.reason != IN_BATCH_CONFLICT}
    in_batch = {c.event_id for c in summary.conflicts if c.reason == IN_BATCH_CONFLICT}
    first: dict[str, EarningRow] = {}
    with open_text(path) as fh:
        for number, row, _, raw in read_rows(fh, fmt, now):
            if not isinstance(row, EarningRow) or (
                row.event_id not in with_ledger and row.event_id not in in_batch
            ):
                continue
            seen = first.setdefault(row.event_id, row)
            if seen is row and row.event_id in with_ledger:
                why = with_ledger[row.event_id].removeprefix("event_id ")
            elif seen is not row and seen != row:
                why = IN_BATCH_CONFLICT.removeprefix("event_id ")
            else:
                continue
            report.rejected.append(Rejected(number, f"event_id: {row.event_id!r} {why}", raw))
    report.rejected.sort(key=lambda r: r.line)


def _refusal(path: Path, report: IngestReport) -> str:
    listed = "; ".join(f"line {r.line}: {r.reason}" for r in report.rejected[:MAX_LISTED])
    more = " (and maybe more; listing stopped)" if len(report.rejected) >= MAX_LISTED else ""
    return (
        f"{path}: refused, nothing written: {listed}{more}. Fix the file, or pass --rejects "
        "FILE to credit the good rows and set the bad ones aside"
    )


def _check_rejects_path(source: Path, rejects: Path) -> None:
    """Refused before anything is read or written: the rejects file may not be the input
    (by any name: a link, a relative path) nor a directory."""
    if rejects.is_dir():
        raise IngestRefused(f"rejects: {rejects} is a directory; name a file", field="rejects")
    if rejects.resolve() == source.resolve() or (
        rejects.exists() and os.path.samefile(rejects, source)
    ):
        raise IngestRefused(
            f"rejects: {rejects} is the input file; name another file", field="rejects"
        )


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets a
    leading apostrophe (OWASP's CSV injection advice); the rows are the platform's input,
    the file is for a person to open."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _write_rejects(path: Path, rejected: list[Rejected]) -> None:
    """Written whole or not at all (a temporary file, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "reason", "raw"])
        for r in rejected:
            writer.writerow([r.line, cell(r.reason), cell(r.raw)])
    os.replace(partial, path)


def _position(raw: Any) -> int | None:
    """Bytes of the file read so far (the compressed file's position for .gz)."""
    source = getattr(raw, "fileobj", raw)
    try:
        return int(source.tell()) if source is not None else None
    except (OSError, ValueError):
        return None
