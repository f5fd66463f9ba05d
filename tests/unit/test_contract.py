"""The Temporal contract: the names running cash-outs depend on, and the activity
implementations registered under their interfaces' names."""

from __future__ import annotations

import inspect

import pytest
from temporalio import activity

from activities.bank import BankActivities
from activities.cashout import CashoutActivities
from activities.ops import OpsActivities
from activities.payees import PayeeActivities
from payouts.temporal import contract
from payouts.temporal.interfaces import BankSteps, CashoutSteps, OpsSteps, PayeeSteps

PAIRS = [
    (CashoutSteps, CashoutActivities),
    (BankSteps, BankActivities),
    (OpsSteps, OpsActivities),
    (PayeeSteps, PayeeActivities),
]


def defined(cls: type) -> dict[str, str]:
    """method name -> activity name, for every activity a class defines."""
    found = {}
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        defn = activity._Definition.from_callable(fn)
        if defn is not None:
            found[name] = str(defn.name)
    return found


@pytest.mark.parametrize(("interface", "impl"), PAIRS, ids=[i.__name__ for i, _ in PAIRS])
def test_each_implementation_registers_its_interface_names(interface: type, impl: type) -> None:
    """Workflows call the interface; the worker runs the implementation: same names, and
    nothing registered that no workflow can call by reference."""
    assert defined(impl) == defined(interface)
    assert issubclass(impl, interface)


def test_every_activity_name_is_in_the_contract() -> None:
    names = {v for k, v in vars(contract.Activity).items() if k.isupper()}
    registered = set().union(*(defined(i).values() for i, _ in PAIRS))
    assert registered == names


def test_the_names_running_cash_outs_depend_on_do_not_change() -> None:
    """These are written in every history and every ledger key; changing one strands
    cash-outs in flight (the replay test would also say so)."""
    assert contract.Workflow.CASHOUT == "CashoutWorkflow"
    assert (contract.Signal.APPROVE, contract.Signal.CANCEL) == ("approve", "cancel")
    assert (contract.Query.STATUS, contract.Update.REVIEW) == ("status", "review")
    wid = contract.cashout_id("r-1")
    assert wid == "cashout-r-1" and contract.request_id_of(wid) == "r-1"
    assert contract.step_key(wid, contract.Step.RESERVE) == "cashout-r-1:reserve"
    assert contract.notification_id(wid, "PAID") == "cashout-r-1:notify:PAID"
    assert contract.hold_id(wid) == wid
