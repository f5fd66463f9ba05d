"""ISO 20022 files for bank payouts: the pain.001 we send, and the XML both ways share.

- `build_pain001` writes a customer credit transfer initiation (pain.001.001.09) for one
  batch; `validate_pain001` checks a file against the official ISO XSD (shipped in
  `rails/bank/schemas`), and every file is checked before it leaves; `read_pain001`
  reads one back (the sandbox bank, reconciliation).
- The bank's answers (pain.002, camt.054) are in `rails.bank.reports`.

Amounts are written with exactly the currency's minor digits (KRW 0, USD 2, BHD 3).
"""

from __future__ import annotations

from dataclasses import dataclass
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
        # the element and the rule broken, never lxml's message: it quotes the value
        # (a name, an account number), and this message reaches logs and histories
        tree = doc.getroottree()
        problems = "; ".join(
            f"line {e.line} {_element(tree, e.path)}: {e.type_name}" for e in schema.error_log
        )
        raise BankFileInvalid(f"pain.001 does not validate against pain.001.001.09.xsd: {problems}")


def _element(tree: etree._ElementTree, path: str | None) -> str:
    """The element an error is about, as `Parent/Name` (e.g. `FinInstnId/BICFI`)."""
    try:
        found = tree.xpath(path) if path else []
    except etree.XPathError:
        found = []
    if not found or not isinstance(found[0], etree._Element):
        return "document"
    node = found[0]
    parent = node.getparent()
    names = [etree.QName(n).localname for n in (parent, node) if n is not None]
    return "/".join(names)


def _text(node: etree._Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _micros(text: str | None) -> int | None:
    if text is None:
        return None
    return int(Decimal(text) * MICROS_PER_UNIT)


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
