"""The bank's answers in ISO 20022: pain.002 status reports and camt.054 notifications.

- `build_pain002` / `build_camt054` are what a bank sends back (the sandbox bank uses
  them): a status report per file (accepted, or rejected transactions with ISO reason
  codes), and debit/credit notifications per booked item or return.
- `parse_report` reads either kind into `ItemReport`s keyed by EndToEndId.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from lxml import etree

from payouts.errors import BankFileInvalid
from payouts.rails.bank.iso20022 import (
    CAMT054,
    PAIN002,
    REASONS,
    Party,
    _account,
    _bytes,
    _el,
    _header,
    _micros,
    _namespace,
    _text,
    _timestamp,
    amount_text,
)


@dataclass(frozen=True)
class ItemReport:
    """What a bank file says about one transaction."""

    end_to_end_id: str
    kind: str  # accepted | rejected | booked | returned
    code: str = ""
    reason: str = ""
    amount: int | None = None
    booked_on: date | None = None


@dataclass(frozen=True)
class Report:
    message_id: str
    kind: str  # pain.002 | camt.054
    original_message_id: str | None
    file_status: str | None  # pain.002 group status: ACCP, ACTC, PART, RJCT
    items: tuple[ItemReport, ...] = field(default_factory=tuple)


def build_pain002(
    *,
    message_id: str,
    created_at: datetime,
    original_message_id: str,
    rejected: dict[str, str],
    accepted: list[str],
    file_rejected: bool = False,
) -> bytes:
    """Status report for one pain.001: `rejected` maps EndToEndId -> reason code;
    `file_rejected` refuses the whole file (FF01, e.g. it broke the schema)."""
    ns = f"{{{PAIN002}}}"
    root = etree.Element(ns + "Document", nsmap={None: PAIN002})
    if file_rejected:
        status = "RJCT"
    else:
        status = "RJCT" if rejected and not accepted else "PART" if rejected else "ACCP"
    with _namespace(ns):
        rpt = _el(root, "CstmrPmtStsRpt")
        _header(rpt, message_id, created_at)
        grp = _el(rpt, "OrgnlGrpInfAndSts")
        _el(grp, "OrgnlMsgId", original_message_id)
        _el(grp, "OrgnlMsgNmId", "pain.001.001.09")
        _el(grp, "GrpSts", status)
        if file_rejected:
            rsn = _el(grp, "StsRsnInf")
            _el(_el(rsn, "Rsn"), "Cd", "FF01")
            _el(rsn, "AddtlInf", REASONS["FF01"])
        pmt = _el(rpt, "OrgnlPmtInfAndSts")
        _el(pmt, "OrgnlPmtInfId", f"{original_message_id}-1")
        for e2e in accepted:
            tx = _el(pmt, "TxInfAndSts")
            _el(tx, "OrgnlEndToEndId", e2e)
            _el(tx, "TxSts", "ACCP")
        for e2e, code in rejected.items():
            tx = _el(pmt, "TxInfAndSts")
            _el(tx, "OrgnlEndToEndId", e2e)
            _el(tx, "TxSts", "RJCT")
            rsn = _el(tx, "StsRsnInf")
            _el(_el(rsn, "Rsn"), "Cd", code)
            _el(rsn, "AddtlInf", REASONS.get(code, "rejected"))
    return _bytes(root)


@dataclass(frozen=True)
class Entry:
    end_to_end_id: str
    amount: int
    returned_code: str | None = None  # a credit: the money came back


def build_camt054(
    *,
    message_id: str,
    created_at: datetime,
    account: Party,
    currency: str,
    booked_on: date,
    entries: list[Entry],
) -> bytes:
    """Debit notifications for booked transfers, credit notifications for returns."""
    ns = f"{{{CAMT054}}}"
    root = etree.Element(ns + "Document", nsmap={None: CAMT054})
    with _namespace(ns):
        ntf = _el(root, "BkToCstmrDbtCdtNtfctn")
        _header(ntf, message_id, created_at)
        n = _el(ntf, "Ntfctn")
        _el(n, "Id", f"{message_id}-1")
        _el(n, "CreDtTm", _timestamp(created_at))
        _account(n, "Acct", account.iban, currency)
        for e in entries:
            returned = e.returned_code is not None
            direction = "CRDT" if returned else "DBIT"
            ntry = _el(n, "Ntry")
            _el(ntry, "Amt", amount_text(e.amount, currency), Ccy=currency)
            _el(ntry, "CdtDbtInd", direction)
            _el(_el(ntry, "Sts"), "Cd", "BOOK")
            _el(_el(ntry, "BookgDt"), "Dt", booked_on.isoformat())
            _el(_el(ntry, "ValDt"), "Dt", booked_on.isoformat())
            _el(ntry, "AcctSvcrRef", f"{message_id}-{e.end_to_end_id}"[:35])
            domn = _el(_el(ntry, "BkTxCd"), "Domn")
            _el(domn, "Cd", "PMNT")
            fmly = _el(domn, "Fmly")
            _el(fmly, "Cd", "ICDT")
            _el(fmly, "SubFmlyCd", "RRTN" if returned else "ESCT")
            tx = _el(_el(ntry, "NtryDtls"), "TxDtls")
            _el(_el(tx, "Refs"), "EndToEndId", e.end_to_end_id)
            _el(tx, "Amt", amount_text(e.amount, currency), Ccy=currency)
            _el(tx, "CdtDbtInd", direction)
            if returned:
                rtr = _el(tx, "RtrInf")
                _el(_el(rtr, "Rsn"), "Cd", e.returned_code or "MS03")
                _el(rtr, "AddtlInf", REASONS.get(e.returned_code or "", "returned"))
    return _bytes(root)


def parse_report(xml: bytes) -> Report:
    """Read a pain.002 or camt.054 file from the bank (any namespace version). Anything
    it cannot read (not XML, an unknown root, an amount that is not a number) raises
    `BankFileInvalid` naming the problem."""
    try:
        return _parse(xml)
    except (ValueError, ArithmeticError, TypeError) as exc:
        raise BankFileInvalid(f"bank report has a value it cannot read: {str(exc)[:120]}") from None


def _parse(xml: bytes) -> Report:
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise BankFileInvalid(f"bank report is not well-formed XML: {str(exc)[:200]}") from None
    # Strip namespaces: versions differ only in them for the fields we read.
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    if root.find("CstmrPmtStsRpt") is not None:
        rpt = root.find("CstmrPmtStsRpt")
        items = []
        for tx in rpt.iter("TxInfAndSts"):
            e2e = _text(tx, "OrgnlEndToEndId") or ""
            sts = _text(tx, "TxSts")
            if sts == "RJCT":
                code = _text(tx, "StsRsnInf/Rsn/Cd") or "MS03"
                why = _text(tx, "StsRsnInf/AddtlInf") or REASONS.get(code, "")
                items.append(ItemReport(e2e, "rejected", code, why))
            elif sts in ("ACCP", "ACSC", "ACSP", "ACTC", "ACWC"):
                items.append(ItemReport(e2e, "accepted"))
        return Report(
            message_id=_text(rpt, "GrpHdr/MsgId") or "",
            kind="pain.002",
            original_message_id=_text(rpt, "OrgnlGrpInfAndSts/OrgnlMsgId"),
            file_status=_text(rpt, "OrgnlGrpInfAndSts/GrpSts"),
            items=tuple(items),
        )
    ntf = root.find("BkToCstmrDbtCdtNtfctn")
    if ntf is None:
        raise BankFileInvalid(
            f"unknown bank report: root element {root[0].tag if len(root) else root.tag}"
        )
    items = []
    for ntry in ntf.iter("Ntry"):
        if _text(ntry, "Sts/Cd") not in ("BOOK", None):
            continue
        booked = _text(ntry, "BookgDt/Dt")
        for tx in ntry.iter("TxDtls"):
            e2e = _text(tx, "Refs/EndToEndId") or ""
            amount = _micros(_text(tx, "Amt") or _text(ntry, "Amt"))
            direction = _text(tx, "CdtDbtInd") or _text(ntry, "CdtDbtInd")
            when = date.fromisoformat(booked) if booked else None
            if direction == "CRDT":
                code = _text(tx, "RtrInf/Rsn/Cd") or "MS03"
                items.append(
                    ItemReport(
                        e2e,
                        "returned",
                        code,
                        _text(tx, "RtrInf/AddtlInf") or REASONS.get(code, ""),
                        amount,
                        when,
                    )
                )
            else:
                items.append(ItemReport(e2e, "booked", amount=amount, booked_on=when))
    return Report(
        message_id=_text(ntf, "GrpHdr/MsgId") or "",
        kind="camt.054",
        original_message_id=None,
        file_status=None,
        items=tuple(items),
    )
