"""Every difference between SQLite and PostgreSQL, in one place.

Statements elsewhere are SQLAlchemy Core and run the same on both. What differs is here:

- locking: SQLite write transactions take the database lock up front (`BEGIN IMMEDIATE`,
  see `store.database`), so row locks are no-ops; PostgreSQL locks the rows a writer
  checks (`FOR UPDATE`) and the accounts it moves (`FOR NO KEY UPDATE`, in id order);
- "insert if new" and "insert or update" (`ON CONFLICT`), whose constructs are per dialect;
- the bulk paths of earnings ingest, the ledger's hot loop: rows go in through the driver
  (`executemany` on SQLite, `COPY` on PostgreSQL), the only place that bypasses Core;
- the engine: SQLite in WAL mode with a busy timeout and `BEGIN IMMEDIATE` for writers,
  PostgreSQL with a connection pool;
- legs and balance updates for many accounts at once: one statement over two arrays
  (`unnest`) on PostgreSQL, an `executemany` on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool


class Dialect:
    def __init__(self, name: str) -> None:
        if name not in ("sqlite", "postgresql"):
            raise NotImplementedError(f"the ledger runs on SQLite or PostgreSQL, not {name}")
        self.name = name
        self.is_sqlite = name == "sqlite"

    # ------------------------------------------------------------------ locks

    def for_update(self, stmt: Select[Any]) -> Select[Any]:
        """Lock the selected rows for this write transaction (PostgreSQL)."""
        return stmt if self.is_sqlite else stmt.with_for_update()

    def for_balance_update(self, stmt: Select[Any]) -> Select[Any]:
        """`FOR NO KEY UPDATE`: enough for a balance change, and it does not block other
        writers' foreign-key checks on the same account (PostgreSQL)."""
        return stmt if self.is_sqlite else stmt.with_for_update(key_share=True)

    def lock_accounts(self, conn: Connection, table: Table, ids: Sequence[int]) -> None:
        """Lock the accounts a transaction moves, in id order, before its legs are written.

        The order matters on PostgreSQL: inserting a leg takes a KEY SHARE lock on its
        account (the foreign key), and two posts that both held KEY SHARE on the platform's
        clearing account deadlocked when each tried to upgrade it for the balance update.
        """
        if self.is_sqlite or not ids:
            return
        conn.execute(
            select(table.c.id)
            .where(table.c.id == func.any(bindparam("ids", type_=ARRAY(Integer))))
            .order_by(table.c.id)
            .with_for_update(key_share=True),
            {"ids": list(ids)},
        )

    # ------------------------------------------------------------------ conflicts

    def insert_new(self, table: Table) -> Any:
        """`INSERT ... ON CONFLICT DO NOTHING`: a row whose key exists is skipped (rowcount
        0); a racing writer of the same key waits for the first to commit."""
        if self.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def upsert(
        self, table: Table, row: dict[str, Any], keys: list[str], changes: dict[str, Any]
    ) -> Any:
        """Insert `row`, or update `changes` on the row with the same `keys`."""
        stmt = sqlite.insert(table) if self.is_sqlite else postgresql.insert(table)
        return stmt.values(**row).on_conflict_do_update(index_elements=keys, set_=changes)

    def insert_new_accounts(
        self, conn: Connection, table: Table, keys: Sequence[tuple[str, str, str]]
    ) -> None:
        """Create the (owner, kind, currency) accounts that do not exist yet, at balance 0."""
        if self.is_sqlite:
            conn.execute(
                self.insert_new(table),
                [{"owner": o, "kind": k, "currency": c, "balance": 0} for o, k, c in keys],
            )
            return
        t = (
            func.unnest(
                bindparam("o", type_=ARRAY(String)),
                bindparam("k", type_=ARRAY(String)),
                bindparam("c", type_=ARRAY(String)),
            )
            .table_valued("o", "k", "c")
            .render_derived(name="t")
        )
        conn.execute(
            postgresql.insert(table)
            .from_select(
                ["owner", "kind", "currency", "balance"],
                select(t.c.o, t.c.k, t.c.c, literal(0, BigInteger)),
            )
            .on_conflict_do_nothing(),
            {
                "o": [o for o, _, _ in keys],
                "k": [k for _, k, _ in keys],
                "c": [c for *_, c in keys],
            },
        )

    def select_where_in(
        self, conn: Connection, stmt: Select[Any], col: Any, wanted: Sequence[Any]
    ) -> list[Any]:
        """The rows of `stmt` whose `col` is one of `wanted`, however many there are."""
        if not self.is_sqlite:
            return list(
                conn.execute(
                    stmt.where(col == func.any(bindparam("wanted", type_=ARRAY(col.type)))),
                    {"wanted": list(wanted)},
                )
            )
        rows: list[Any] = []
        for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            rows += conn.execute(stmt.where(col.in_(wanted[start : start + 500]))).all()
        return rows

    # ------------------------------------------------------------------ balances

    def add_to_balances(
        self, conn: Connection, table: Table, deltas: Sequence[tuple[int, int]]
    ) -> None:
        """balance += delta for each (account id, delta)."""
        if not deltas:
            return
        if self.is_sqlite:
            conn.execute(
                update(table)
                .where(table.c.id == bindparam("account"))
                .values(balance=table.c.balance + bindparam("delta")),
                [{"account": acc, "delta": amt} for acc, amt in deltas],
            )
            return
        t = _pairs("account", "delta")
        conn.execute(
            update(table)
            .where(table.c.id == t.c.account)
            .values(balance=table.c.balance + t.c.delta),
            {"a": [acc for acc, _ in deltas], "b": [amt for _, amt in deltas]},
        )

    def add_by_key(
        self,
        conn: Connection,
        column: Column[Any],
        key: Column[Any],
        pairs: Sequence[tuple[str, int]],
    ) -> None:
        """column += amount on the row whose unique text `key` is given, for each
        (key, amount): one statement over two arrays on PostgreSQL, an executemany on SQLite."""
        if not pairs:
            return
        table = column.table
        if self.is_sqlite:
            conn.execute(
                update(table)
                .where(key == bindparam("k"))
                .values({column.name: column + bindparam("d")}),
                [{"k": k, "d": d} for k, d in pairs],
            )
            return
        t = (
            func.unnest(
                bindparam("a", type_=ARRAY(String)), bindparam("b", type_=ARRAY(BigInteger))
            )
            .table_valued("k", "d")
            .render_derived(name="t")
        )
        conn.execute(
            update(table).where(key == t.c.k).values({column.name: column + t.c.d}),
            {"a": [k for k, _ in pairs], "b": [d for _, d in pairs]},
        )

    def insert_legs(
        self, conn: Connection, table: Table, tx_id: int, legs: Sequence[tuple[int, int]]
    ) -> None:
        """One leg of transaction `tx_id` per (account id, amount)."""
        if self.is_sqlite:
            conn.execute(
                insert(table),
                [{"transaction_id": tx_id, "account_id": acc, "amount": amt} for acc, amt in legs],
            )
            return
        t = _pairs("account", "amount")
        conn.execute(
            insert(table).from_select(
                ["transaction_id", "account_id", "amount"],
                select(bindparam("tx", type_=Integer), t.c.account, t.c.amount),
            ),
            {"tx": tx_id, "a": [acc for acc, _ in legs], "b": [amt for _, amt in legs]},
        )

    # ------------------------------------------------------------------ bulk rows

    def insert_rows(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> bool:
        """The bulk path: write `rows` straight into `table`. False if any row's unique key
        exists already (nothing of this call is then kept: the caller's savepoint rolls back
        and it takes the slow path)."""
        cols = ", ".join(columns)
        raw = conn.connection.driver_connection
        if self.is_sqlite:
            marks = ", ".join("?" for _ in columns)
            cur = raw.cursor()  # type: ignore[union-attr]
            cur.executemany(
                f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING",
                rows,
            )
            return int(cur.rowcount) == len(rows)
        try:
            with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({cols}) FROM STDIN") as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:  # a duplicate key aborts COPY
            if _is_unique_violation(exc):
                return False
            raise
        return True

    def staging_table(self, name: str, template: Table, extra: Iterable[Column[Any]] = ()) -> Table:
        """A temporary table with `template`'s columns (no keys) and `extra` ones, emptied at
        commit on PostgreSQL (SQLite keeps it per connection: the caller empties it)."""
        from sqlalchemy import MetaData

        cols = [Column(c.name, c.type) for c in template.columns if c.name != "id"]
        cols += [Column(c.name, c.type) for c in extra]
        kwargs: dict[str, Any] = {"prefixes": ["TEMPORARY"]}
        if not self.is_sqlite:
            kwargs["postgresql_on_commit"] = "DELETE ROWS"
        return Table(name, MetaData(), *cols, **kwargs)

    def fill(self, conn: Connection, table: Table, rows: list[tuple[Any, ...]]) -> None:
        """Empty a staging table and put `rows` in it."""
        conn.execute(table.delete())
        if not self.insert_rows(conn, table, [c.name for c in table.columns], rows):
            raise IntegrityError("staging", None, Exception("a staging table has no keys"))


def _is_unique_violation(exc: Exception) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate == "23505" or "unique" in str(exc).lower()


def _pairs(first: str, second: str) -> Any:
    """`unnest(:a, :b) AS t(first, second)`: many (int, bigint) rows in two array parameters,
    one statement whatever their number (PostgreSQL)."""
    return (
        func.unnest(bindparam("a", type_=ARRAY(Integer)), bindparam("b", type_=ARRAY(BigInteger)))
        .table_valued(first, second)
        .render_derived(name="t")
    )


# ---------------------------------------------------------------- engines


def create_engine_for(url: str, *, pool_size: int = 10) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": 60},
        poolclass=NullPool if path == ":memory:" else None,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=60000",
            "temp_store=MEMORY",
            "cache_size=-65536",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
