"""The sandboxes' own SQLite file: the rail's and the identity provider's books."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sandbox_payouts (
    key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    method TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount INTEGER NOT NULL,
    destination_fp TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    reference TEXT NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    created_at_us INTEGER NOT NULL,
    settles_at_us INTEGER
);
CREATE INDEX IF NOT EXISTS ix_sandbox_payouts_request ON sandbox_payouts (request_id);
CREATE TABLE IF NOT EXISTS sandbox_calls (
    key TEXT PRIMARY KEY,
    calls INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_vop_accounts (
    iban TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_identities (
    user_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    legal_name TEXT,
    tier INTEGER NOT NULL DEFAULT 1,
    pending_seconds INTEGER NOT NULL DEFAULT 0,
    first_checked_at_us INTEGER
);
"""


class SandboxDB:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._conn().executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        return self._conn()
