"""Payouts: a micropayment cash-out pipeline on Temporal."""
