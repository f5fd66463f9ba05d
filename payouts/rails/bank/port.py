"""The bank, as the payout pipeline sees it: where batch files go and answers come from.

A real adapter speaks the bank's host-to-host channel (SFTP or an API: its keys, file
naming, PGP if the bank wants it) behind these four methods; the ISO 20022 files, the batch
book and the acknowledgement protocol stay as they are. `SandboxBank` is the one here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class BankLine:
    """One line of the bank's statement (reconciliation reads these)."""

    end_to_end_id: str
    message_id: str
    currency: str
    amount: int
    status: str  # rejected | accepted | booked | returned
    code: str | None


class Bank(Protocol):
    def submit(self, name: str, xml: bytes, at: datetime) -> None:
        """Hand a pain.001 file to the bank (it takes a message id once)."""
        ...

    def instant_reachable(self, iban: str) -> bool:
        """Does the payee's bank take instant transfers (the scheme's reachability check)?"""
        ...

    def fetch(self, as_of: datetime) -> list[tuple[str, bytes]]:
        """Every report (pain.002, camt.054) not acknowledged yet, as (file name, XML)."""
        ...

    def acknowledge(self, names: list[str]) -> None:
        """We have applied these reports: the bank stops offering them."""
        ...

    def statement(self) -> list[BankLine]:
        """The bank's view of every transfer, for reconciliation."""
        ...
