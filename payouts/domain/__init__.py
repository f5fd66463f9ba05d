"""The domain: pure rules and types, no I/O.

`carried` is imported here so that `CashoutInput` (which may carry a `Carried` state, a
type built from the messages that themselves refer to `CashoutInput`) is complete
whichever module is imported first.
"""

from payouts.domain import carried as _carried  # noqa: F401
