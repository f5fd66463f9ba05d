"""Alembic revisions of the ledger's schema (`versions/`), one per change, never edited once
released. `HEAD` names the newest; a test checks it against the revisions here."""

HEAD = "0007"
