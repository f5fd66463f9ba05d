"""The outside world: identity (KYC) and disbursement rails, as protocols with sandboxes.

The sandboxes keep their own state in a SQLite file of their own (the "other side"), so
what a rail has paid survives our worker crashing, and tests count payouts at the rail.
"""
