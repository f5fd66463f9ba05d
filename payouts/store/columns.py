"""Column types the tables share: money (BIGINT micro-units) and times (BIGINT microseconds
since the Unix epoch, UTC: the same on SQLite and PostgreSQL, cheap to compare, and writable
by the bulk paths without a driver-specific datetime format)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from payouts.errors import InvalidInput


def to_epoch_us(value: datetime) -> int:
    if value.tzinfo is None:
        raise InvalidInput("time: ledger times must be timezone-aware", field="time")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EpochMicros(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as BIGINT microseconds since the epoch (UTC)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, int):
            return value
        return to_epoch_us(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_epoch_us(int(value))


def money_column() -> Any:
    return Field(sa_column=Column(BigInteger, nullable=False))


def when_column(index: bool = False, nullable: bool = False) -> Any:
    return Field(sa_column=Column(EpochMicros, nullable=nullable, index=index))
