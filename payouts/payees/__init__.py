"""Payees: their payout profiles (saved destinations, automatic cash-out) and the sweep
that pays them automatically."""
