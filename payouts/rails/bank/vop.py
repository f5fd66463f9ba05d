"""Verification of Payee (VoP): the bank's answer to "is this name on this account?", asked
before a transfer leaves (EU Instant Payments Regulation, since October 2025).

A real VoP service answers match, close match (with the name it holds), no match, or is
unavailable; `SandboxPayeeVerifier` answers the same way. The name it holds for an
account is the registered one (`register`), else by the account number's last four digits:

    0707  the service is unavailable (every time: the caller retries, then gives up)
    0808  another name: no match
    0909  the first names as initials ("D. Patel" for "Dev Patel"): close match

Any other account holds the name it is asked about (a match). Names are compared without
case, accents, punctuation or word order; initials for first names, or a small typo, make
a close match.
"""

from __future__ import annotations

import difflib
from typing import Protocol

from payouts.domain.profiles import Verification
from payouts.domain.review import name_tokens
from payouts.rails.sandbox_db import SandboxDB

UNAVAILABLE, OTHER_NAME, INITIALS = "0707", "0808", "0909"
CLOSE_RATIO = 0.8  # difflib similarity from which a name is a close match


class PayeeVerifier(Protocol):
    def verify(self, iban: str, name: str) -> tuple[Verification, str]:
        """(the answer, the name the bank holds on a close match, else "")."""
        ...


def compare(asked: str, held: str) -> Verification:
    a, h = sorted(name_tokens(asked)), sorted(name_tokens(held))
    if a == h:
        return Verification.MATCH
    if not a or not h:
        return Verification.NO_MATCH
    if _initials_of(a, h) or _initials_of(h, a):
        return Verification.CLOSE_MATCH
    ratio = difflib.SequenceMatcher(None, " ".join(a), " ".join(h)).ratio()
    return Verification.CLOSE_MATCH if ratio >= CLOSE_RATIO else Verification.NO_MATCH


def _initials_of(short: list[str], full: list[str]) -> bool:
    """Each word of `short` is a word of `full` or the initial of one, and one is whole."""
    rest = list(full)
    whole = False
    for word in short:
        if word in rest:
            rest.remove(word)
            whole = True
            continue
        initial = next((w for w in rest if len(word) == 1 and w.startswith(word)), None)
        if initial is None:
            return False
        rest.remove(initial)
    return whole and not rest


class SandboxPayeeVerifier:
    def __init__(self, db: SandboxDB) -> None:
        self.db = db

    def register(self, iban: str, name: str) -> None:
        """The bank holds `name` on `iban`."""
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO sandbox_vop_accounts (iban, name) VALUES (?, ?) "
                "ON CONFLICT(iban) DO UPDATE SET name = excluded.name",
                (_compact(iban), name),
            )

    def calls(self, iban: str) -> int:
        """How often the bank was asked about `iban` (a kept answer is not asked again)."""
        row = (
            self.db.read()
            .execute("SELECT calls FROM sandbox_calls WHERE key = ?", (f"vop:{_compact(iban)}",))
            .fetchone()
        )
        return int(row[0]) if row else 0

    def verify(self, iban: str, name: str) -> tuple[Verification, str]:
        iban = _compact(iban)
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO sandbox_calls (key, calls) VALUES (?, 1) "
                "ON CONFLICT(key) DO UPDATE SET calls = calls + 1",
                (f"vop:{iban}",),
            )
            row = conn.execute(
                "SELECT name FROM sandbox_vop_accounts WHERE iban = ?", (iban,)
            ).fetchone()
        code = iban[-4:]
        if row is None and code == UNAVAILABLE:
            return Verification.UNAVAILABLE, ""
        held = row[0] if row is not None else _held_by_code(code, name)
        result = compare(name, held)
        return result, held if result is Verification.CLOSE_MATCH else ""


def _held_by_code(code: str, name: str) -> str:
    if code == OTHER_NAME:
        return "Account Holder Other"
    if code == INITIALS:
        words = name_tokens(name)
        return " ".join([f"{w[0].upper()}." for w in words[:-1]] + [words[-1].title()])
    return name


def _compact(iban: str) -> str:
    return "".join(iban.split()).upper()
