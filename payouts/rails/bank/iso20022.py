"""ISO 20022 files for bank payouts: pain.001 out, pain.002 and camt.054 back.

- `build_pain001` writes a customer credit transfer initiation (pain.001.001.09) for one
  batch; `validate_pain001` checks a file against the official ISO XSD (shipped in
  `payouts/schemas`), and every file is checked before it leaves.
- `build_pain002` / `build_camt054` are what a bank sends back (the sandbox bank uses
  them): a status report per file (accepted, or rejected transactions with ISO reason
  codes), and debit/credit notifications per booked item or return.
- `parse_report` reads either kind into `ItemReport`s keyed by EndToEndId.

Amounts are written with exactly the currency's minor digits (KRW 0, USD 2, BHD 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from importlib import resources

from lxml import etree

from payouts.domain.money import MICROS_PER_UNIT, get_currency
from payouts.errors import BankFileInvalid

PAIN001 = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"
CAMT054 = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08"

# ISO 20022 external status reason / return reason codes the pipeline explains.
REASONS = {
    "AC01": "incorrect account number",
    "AC04": "closed account number",
    "AC06": "blocked account",
    "AG01": "transaction forbidden on this account",
    "AM04": "insufficient funds at the bank",
    "AM05": "duplication",
    "BE04": "missing creditor address",
    "FF01": "invalid file format",
    "MD07": "end customer deceased",
    "MS03": "reason not specified",
    "RC01": "bank identifier incorrect",
}


@dataclass(frozen=True)
class Party:
    name: str
    iban: str
    bic: str | None = None


@dataclass(frozen=True)
class CreditTransfer:
    end_to_end_id: str  # Max35Text: how the bank's answers name this item
    amount: int  # micros, whole minor units
    creditor: Party
    remittance: str


@dataclass(frozen=True)
class Batch:
    message_id: str  # Max35Text, unique per file
    created_at: datetime
    currency: str
    debtor: Party
    execution_date: date
    transfers: tuple[CreditTransfer, ...]

    @property
    def total(self) -> int:
        return sum(t.amount for t in self.transfers)


def amount_text(micros: int, currency: str) -> str:
    """Exactly the currency's minor digits: 12.34 USD, 10000 KRW, 4.001 BHD."""
    cur = get_currency(currency)
    if micros % cur.minor_unit_micros:
        raise BankFileInvalid(f"amount {micros} micros is not whole {currency} minor units")
    value = Decimal(micros) / MICROS_PER_UNIT
    return f"{value:.{cur.minor_units}f}"


class _namespace:
    """Inside the block, `_el` creates elements in the given namespace."""

    current = ""

    def __init__(self, ns: str) -> None:
        self.ns = ns

    def __enter__(self) -> None:
        self.previous, _namespace.current = _namespace.current, self.ns

    def __exit__(self, *exc: object) -> None:
        _namespace.current = self.previous


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, _namespace.current + tag, **attrs)
    if text is not None:
        child.text = text
    return child


def _header(parent: etree._Element, message_id: str, created_at: datetime) -> etree._Element:
    """`GrpHdr` with the message id and creation time, which every message starts with."""
    hdr = _el(parent, "GrpHdr")
    _el(hdr, "MsgId", message_id)
    _el(hdr, "CreDtTm", _timestamp(created_at))
    return hdr


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


def _party(parent: etree._Element, tag: str, party: Party) -> None:
    _el(_el(parent, tag), "Nm", party.name[:140])


def _account(parent: etree._Element, tag: str, iban: str, currency: str | None = None) -> None:
    acct = _el(parent, tag)
    _el(_el(acct, "Id"), "IBAN", iban)
    if currency:
        _el(acct, "Ccy", currency)


def _agent(parent: etree._Element, tag: str, bic: str | None) -> None:
    fin = _el(_el(parent, tag), "FinInstnId")
    if bic:
        _el(fin, "BICFI", bic)
    else:
        _el(_el(fin, "Othr"), "Id", "NOTPROVIDED")


def build_pain001(batch: Batch) -> bytes:
    """One file, one payment information block, one transaction per cash-out."""
    if not batch.transfers:
        raise BankFileInvalid("a batch needs at least one transfer")
    cur = batch.currency
    total = amount_text(batch.total, cur)
    count = str(len(batch.transfers))
    root = etree.Element(f"{{{PAIN001}}}Document", nsmap={None: PAIN001})
    ns = f"{{{PAIN001}}}"
    initn = etree.SubElement(root, ns + "CstmrCdtTrfInitn")
    with _namespace(ns):
        hdr = _header(initn, batch.message_id, batch.created_at)
        _el(hdr, "NbOfTxs", count)
        _el(hdr, "CtrlSum", total)
        _party(hdr, "InitgPty", batch.debtor)
        pmt = _el(initn, "PmtInf")
        _el(pmt, "PmtInfId", f"{batch.message_id}-1")
        _el(pmt, "PmtMtd", "TRF")
        _el(pmt, "BtchBookg", "true")
        _el(pmt, "NbOfTxs", count)
        _el(pmt, "CtrlSum", total)
        _el(_el(pmt, "ReqdExctnDt"), "Dt", batch.execution_date.isoformat())
        _party(pmt, "Dbtr", batch.debtor)
        _account(pmt, "DbtrAcct", batch.debtor.iban, cur)
        _agent(pmt, "DbtrAgt", batch.debtor.bic)
        _el(pmt, "ChrgBr", "DEBT")
        for t in batch.transfers:
            tx = _el(pmt, "CdtTrfTxInf")
            _el(_el(tx, "PmtId"), "EndToEndId", t.end_to_end_id)
            _el(_el(tx, "Amt"), "InstdAmt", amount_text(t.amount, cur), Ccy=cur)
            if t.creditor.bic:
                _agent(tx, "CdtrAgt", t.creditor.bic)
            _party(tx, "Cdtr", t.creditor)
            _account(tx, "CdtrAcct", t.creditor.iban)
            _el(_el(tx, "RmtInf"), "Ustrd", t.remittance[:140])
    return _bytes(root)


def _bytes(root: etree._Element) -> bytes:
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return out


@cache
def _schema(name: str) -> etree.XMLSchema:
    path = resources.files("payouts.rails.bank").joinpath("schemas", f"{name}.xsd")
    return etree.XMLSchema(etree.parse(str(path)))


def validate_pain001(xml: bytes) -> None:
    """Raise `BankFileInvalid` listing every schema error (line and message)."""
    try:
        doc = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise BankFileInvalid(f"pain.001 is not well-formed XML: {exc}") from None
    schema = _schema("pain.001.001.09")
    if not schema.validate(doc):
        problems = "; ".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise BankFileInvalid(f"pain.001 does not validate against pain.001.001.09.xsd: {problems}")


# ---------------------------------------------------------------------- the bank's answers


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


def _text(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    return int(Decimal(text) * MICROS_PER_UNIT)


def parse_report(xml: bytes) -> Report:
    """Read a pain.002 or camt.054 file from the bank (any namespace version)."""
    try:
        root = etree.fromstring(xml)
    except etree.XMLSyntaxError as exc:
        raise BankFileInvalid(f"bank report is not well-formed XML: {exc}") from None
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


def read_pain001(xml: bytes) -> tuple[str, str, list[CreditTransfer]]:
    """(message id, currency, transfers) of a pain.001 file: what the bank reads."""
    root = etree.fromstring(xml)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.split("}", 1)[1]
    initn = root.find("CstmrCdtTrfInitn")
    if initn is None:
        raise BankFileInvalid("not a pain.001 customer credit transfer initiation")
    msg = _text(initn, "GrpHdr/MsgId") or ""
    transfers = []
    currency = ""
    for tx in initn.iter("CdtTrfTxInf"):
        amt = tx.find("Amt/InstdAmt")
        if amt is None:
            raise BankFileInvalid("transaction without InstdAmt")
        currency = amt.get("Ccy") or currency
        transfers.append(
            CreditTransfer(
                end_to_end_id=_text(tx, "PmtId/EndToEndId") or "",
                amount=_micros(amt.text) or 0,
                creditor=Party(
                    name=_text(tx, "Cdtr/Nm") or "",
                    iban=_text(tx, "CdtrAcct/Id/IBAN") or "",
                    bic=_text(tx, "CdtrAgt/FinInstnId/BICFI"),
                ),
                remittance=_text(tx, "RmtInf/Ustrd") or "",
            )
        )
    return msg, currency, transfers
